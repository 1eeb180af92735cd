"""CLI of changes: ``warroom changes add`` (a deploy pipeline's last step, where it cannot reach the REST API),
``warroom changes import FILE`` (a deploy history, to backfill) and ``warroom changes list``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from bot.cli import CliError, _settings, app

__all__ = ["changes_app"]

changes_app = typer.Typer(help="Changes to services (deploys, config, flags, rollbacks): the first suspects of an "
                               "incident.", no_args_is_help=True)
app.add_typer(changes_app, name="changes")


def _when(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--at {value!r} is not an ISO 8601 time (e.g. 2026-12-04T14:05:00Z)") from None


@changes_app.command("add")
def changes_add(
    service: Annotated[str, typer.Argument(help="The service changed, as in the catalogue.")],
    summary: Annotated[str, typer.Argument(help="What changed, for people.")],
    kind: Annotated[str, typer.Option(help="deploy, config, flag, rollback, infra or other.")] = "deploy",
    version: Annotated[str | None, typer.Option(help="The version deployed.")] = None,
    author: Annotated[str | None, typer.Option(help="Who made the change.")] = None,
    url: Annotated[str | None, typer.Option(help="An http(s) link: the pipeline run, the pull request.")] = None,
    at: Annotated[str | None, typer.Option(help="When it took effect, ISO 8601 (default: now).")] = None,
    change_id: Annotated[str | None, typer.Option("--id", help="The pipeline's own id: run twice, kept once.")] = None,
) -> None:
    """Record a change; prints it as JSON. The open incidents it may touch get their cards refreshed."""
    from bot.changes_api import tell_open_incidents
    from knowledge.db import Database
    from skills.base import SkillError
    from skills.changes import report

    settings = _settings()
    db = Database(settings.database_url)
    db.upgrade()
    try:
        with db.session() as s:
            row, created, known = report(s, service=service, summary=summary, kind=kind, version=version,
                                         author=author, url=url, at=_when(at), source="cli", external_id=change_id)
            s.flush()
            out = {"id": row.id, "service": row.service, "kind": row.kind, "at": row.at.isoformat() + "Z",
                   "created": created, "known_service": known}
            tell_open_incidents(s, row, settings.card_update_interval_s)  # a retry tells what is untold
    except SkillError as exc:
        raise CliError(str(exc).replace("`", "")) from None
    typer.echo(json.dumps(out))
    if not known:
        typer.echo(f"note: {row.service} is not in the service catalogue; incident cards match changes by the "
                   "catalogue's names", err=True)


MAX_IMPORT_BYTES = 50 * 1024 * 1024
_FIELDS = ("service", "summary", "kind", "version", "author", "url", "at", "id", "source")


def _rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, fields) of a JSON-lines file (one object a line) or a CSV file (a header naming the fields)."""
    from knowledge.csvfile import dict_reader

    if not path.is_file():
        raise CliError(f"{path}: no such file")
    if path.stat().st_size > MAX_IMPORT_BYTES:
        raise CliError(f"{path}: larger than {MAX_IMPORT_BYTES // 1024 // 1024} MiB; split it")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        from bot.cli_runbooks import numbered_jsonl

        return [(n, {k: "" if v is None else str(v) for k, v in obj.items()}) for n, obj in numbered_jsonl(path)]
    reader = dict_reader(path.read_text(encoding="utf-8-sig", errors="replace"))
    missing = {"service", "summary"} - set(reader.fieldnames or [])
    if missing:
        raise CliError(f"{path.name}: the header needs {', '.join(sorted(missing))} (columns: {', '.join(_FIELDS)})")
    return [(n, {k: (v or "") for k, v in row.items() if k}) for n, row in enumerate(reader, 2)]


@changes_app.command("import")
def changes_import(
    file: Annotated[Path, typer.Argument(help="JSON lines (.jsonl) or CSV with columns service, summary, and "
                                              "optionally kind, version, author, url, at, id, source.")],
) -> None:
    """Import a history of changes (a backfill). Every line is checked first: one bad line imports nothing and is
    named. A line whose id was imported before is skipped, so the file can be imported again."""
    from knowledge.changes import record
    from knowledge.db import Database
    from skills.base import SkillError
    from skills.changes import checked

    rows = _rows(file)
    unknown = sorted({k for _, r in rows for k in r if k not in _FIELDS})
    if unknown:
        raise CliError(f"{file.name}: unknown field(s) {', '.join(unknown[:5])} (known: {', '.join(_FIELDS)}); "
                       "nothing was imported")
    db = Database(_settings().database_url)
    db.upgrade()
    from knowledge.models import utcnow
    from skills.changes import MAX_AGE

    new = again = old = 0
    ready: list[dict[str, object]] = []
    for n, r in rows:  # every line checked before anything is written: a bad one imports nothing
        at = _when(r.get("at") or None) if r.get("at") else None
        if at is not None and (at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at) < (
                utcnow() - MAX_AGE):
            old += 1  # too old to matter to an incident: skipped, counted
            continue
        try:
            ready.append(checked(service=r.get("service", ""), summary=r.get("summary", ""),
                                 kind=r.get("kind") or "deploy", version=r.get("version") or None,
                                 author=r.get("author") or None, url=r.get("url") or None, at=at,
                                 source=(r.get("source") or "import")[:64], external_id=r.get("id") or None))
        except (SkillError, CliError) as exc:
            raise CliError(f"{file.name} line {n}: {str(exc).replace('`', '')}; nothing was imported") from None
    with db.session() as s:
        for fields in ready:
            _row, created = record(s, **fields)  # type: ignore[arg-type]
            new, again = new + created, again + (not created)
    typer.echo(json.dumps({"imported": new, "already_there": again, "older_than_kept": old}))


@changes_app.command("list")
def changes_list(
    service: Annotated[str | None, typer.Option(help="Only this service and what it depends on.")] = None,
    hours: Annotated[int, typer.Option(min=1, max=24 * 90, help="How far back.")] = 24,
) -> None:
    """The changes of the last HOURS, newest first, one JSON object per line."""
    from knowledge import changes
    from knowledge.db import Database
    from knowledge.models import utcnow

    db = Database(_settings().database_url)
    db.upgrade()
    with db.session() as s:
        for n in changes.near(s, service, utcnow() - dt.timedelta(hours=hours), utcnow() + dt.timedelta(minutes=10),
                              limit=1000):
            c = n.change
            typer.echo(json.dumps({"id": c.id, "service": c.service, "kind": c.kind, "summary": c.summary,
                                   "version": c.version, "author": c.author, "url": c.url,
                                   "at": c.at.isoformat() + "Z", "path": list(n.path)}))
