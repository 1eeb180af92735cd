"""CLI of changes: ``warroom changes add`` (a deploy pipeline's last step, where it cannot reach the REST API) and
``warroom changes list``."""

from __future__ import annotations

import datetime as dt
import json
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
            if created:
                tell_open_incidents(s, row, settings.card_update_interval_s)
    except SkillError as exc:
        raise CliError(str(exc).replace("`", "")) from None
    typer.echo(json.dumps(out))
    if not known:
        typer.echo(f"note: {row.service} is not in the service catalogue; incident cards match changes by the "
                   "catalogue's names", err=True)


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
