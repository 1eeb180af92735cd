"""CLI of routing: ``warroom experts import``, ``warroom oncall import-ical``, ``warroom train routing``,
``warroom eval routing``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli import CliError, _settings, app, eval_app, train_app

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["experts_app", "oncall_app"]

experts_app = typer.Typer(help="Experts, teams and services (who is who).", no_args_is_help=True)
oncall_app = typer.Typer(help="On-call schedules.", no_args_is_help=True)
app.add_typer(experts_app, name="experts")
app.add_typer(oncall_app, name="oncall")


def _db():  # type: ignore[no-untyped-def]
    from knowledge.db import Database

    db = Database(_settings().database_url)
    db.upgrade()
    return db


def _replan(s: Session) -> None:
    """New shifts: a running bot's workers plan the next on-call handovers again (bot/shift_handover.py)."""
    from knowledge import jobs

    jobs.enqueue(s, kind="oncall.plan", payload={})


@experts_app.command("import")
def experts_import(
    file: Annotated[Path, typer.Argument(help="A .yaml/.yml (world shape) or .csv file.")],
    prune: Annotated[bool, typer.Option("--prune", help="Deactivate the experts the file does not list (it is the "
                                                         "whole staff list, e.g. an HR export).")] = False,
) -> None:
    """Import experts (and from YAML also teams, services, rotations); updates existing rows."""
    from sqlalchemy import select

    from bot.shift_handover import deactivate
    from knowledge.models import Expert
    from knowledge.people_import import PeopleImportError, import_people

    db = _db()
    listed: set[str] = set()
    gone: list[str] = []
    try:
        with db.session() as s:
            report = import_people(session=s, path=file, seen=listed)
            if prune and not listed:
                raise CliError(f"nothing changed: {file.name} lists no experts, and --prune would deactivate "
                               "everyone")
            if prune:  # left the company: routed and paged to no more, their teams told of the shifts they leave
                channel = _settings().slack_incident_channel
                for uid in s.scalars(select(Expert.slack_user_id).where(Expert.active.is_(True))
                                     .order_by(Expert.slack_user_id)).all():
                    if uid not in listed and deactivate(s, uid, channel=channel,
                                                        why=f"is no longer in {file.name}") >= 0:
                        gone.append(uid)
            _replan(s)
    except PeopleImportError as exc:
        raise CliError(str(exc)) from None
    typer.echo(json.dumps({**report.__dict__, **({"deactivated": gone} if prune else {})}))
    if gone:
        typer.echo(f"by mistake? warroom experts activate {' '.join(gone)}", err=True)


@experts_app.command("activate")
def experts_activate(users: Annotated[list[str], typer.Argument(help="Slack user ids (U...).")]) -> None:
    """Mark experts active again (back from leave, or deactivated by mistake, e.g. by `import --prune`): routed and
    paged to again. An import only changes this when its file states `active`."""
    _set_active(users, True)


@experts_app.command("deactivate")
def experts_deactivate(users: Annotated[list[str], typer.Argument(help="Slack user ids (U...).")]) -> None:
    """Mark experts inactive (they left): no longer routed or paged to, and each team that had them on call in the
    next week is told in its channel, as for a Slack deactivation."""
    _set_active(users, False)


def _set_active(users: list[str], active: bool) -> None:
    from sqlalchemy import select

    from bot.shift_handover import deactivate
    from knowledge.models import Expert

    with _db().session() as s:
        rows = {e.slack_user_id: e for e in s.scalars(select(Expert).where(Expert.slack_user_id.in_(users)))}
        unknown = [u for u in users if u not in rows]
        if unknown:  # nothing is changed then: a typo in one id must not leave the others half done
            raise CliError(f"nothing changed: no expert {', '.join(unknown[:10])} (see `warroom oncall show`)")
        changed = []
        for uid in dict.fromkeys(users):
            if rows[uid].active == active:
                continue
            if active:
                rows[uid].active = True
            else:
                deactivate(s, uid, channel=_settings().slack_incident_channel, why="was deactivated by an admin")
            changed.append(uid)
        _replan(s)
    typer.echo(json.dumps({"activated" if active else "deactivated": changed}))


@oncall_app.command("import-ical")
def oncall_import_ical(source: Annotated[str, typer.Argument(help="An iCalendar (.ics) file (one VEVENT per shift, "
                                                         "or repeating ones: RRULE), or the http(s)/webcal URL of a "
                                                         "scheduling tool's on-call feed, fetched again every hour.")],
                       team: Annotated[str, typer.Option("--team", help="The team these shifts are for.")]) -> None:
    """Replace a team's iCal-sourced on-call shifts with the events of an .ics file or feed URL."""
    from knowledge.people_import import PeopleImportError, import_ical

    url = source if re.match(r"^(?:https?|webcal)://", source, re.I) else None
    db = _db()
    try:
        with db.session() as s:
            report = import_ical(session=s, path=None if url else Path(source), url=url, team=team)
            _replan(s)
    except PeopleImportError as exc:
        raise CliError(str(exc)) from None
    typer.echo(json.dumps({"team": team, "shifts": report.shifts}))


@oncall_app.command("show")
def oncall_show(names: Annotated[list[str] | None, typer.Argument(
        help="Teams, or services (the team that owns each), as /oncall takes them (default: every team).")] = None,
    at: Annotated[str | None, typer.Option(
        "--at", help="When, as /oncall reads it, in UTC unless a zone is written: 'tomorrow 09:00', "
                     "'2026-12-24 18:00 Europe/Berlin', 'in 3h', 'yesterday 03:00'.")] = None,
) -> None:
    """Who is on call now (or at --at)."""
    from knowledge.models import utcnow
    from knowledge.people import oncall_by_team, teams_in_text
    from skills.base import SkillError
    from skills.clock_words import moment

    when = None
    if at is not None:
        try:
            m = moment(at, "UTC", utcnow().replace(microsecond=0), usage="")
        except SkillError as exc:
            raise CliError(f"--at: {str(exc).strip()}") from None
        if m is None or m.without(at).strip():
            raise CliError(f"--at: cannot read {at!r} as a time: say 'tomorrow 09:00', '2026-12-24 18:00', 'in 3h'")
        when = m.at
        typer.echo(f"at {when:%Y-%m-%d %H:%M} UTC")
    with _db().session() as s:
        try:  # "payments-api" is its owner's team, as in Slack; a name it knows neither way is an error
            teams = [t for n in names or [] for t in (teams_in_text(session=s, text=n) or [n])]
            rows = [r for t in dict.fromkeys(teams or [None]) for r in oncall_by_team(session=s, team=t, at=when)]
        except LookupError as exc:
            raise CliError(str(exc)) from None
    for r in rows:
        who = ", ".join(f"{n} ({u})" for u, n in r.people) or "nobody"
        nxt = "" if r.next_at is None else (
            f"; next: {', '.join(f'{n} ({u})' for u, n in r.next_people)} from {r.next_at:%Y-%m-%d %H:%M} UTC"
            if r.next_people else f"; then nobody from {r.next_at:%Y-%m-%d %H:%M} UTC (a gap in the schedule)")
        why = {"override": " (covering)", "ical": " (per the calendar)"}.get(r.source, "") if r.people else ""
        typer.echo(f"{r.team}: {who}{why}{nxt}" + (f"  [deactivated, skipped: {', '.join(r.skipped)}]" if r.skipped
                                                   else ""))


def _cols(text: str) -> list[str]:
    cols = [c.strip() for c in text.split(",") if c.strip()]
    if not cols:
        raise CliError("--text needs at least one column name (comma-separated)")
    return cols


@train_app.command("routing")
def train_routing(
    csv: Annotated[Path | None, typer.Option(help="Train on a labelled CSV instead of the knowledge base.")] = None,
    text: Annotated[str, typer.Option(help="Text column(s) of the CSV, comma-separated.")] = "title,body",
    label: Annotated[str, typer.Option(help="Label column of the CSV.")] = "team",
    min_class: Annotated[int, typer.Option("--min-class", help="Drop CSV classes with fewer rows.")] = 1,
) -> None:
    """Train the ticket -> team classifier on past incidents and "wrong owner" feedback (or a CSV)."""
    from models.routing_artifact import save_routing_model, train_from_knowledge_base, train_routing_model
    from models.routing_eval import EvalInputError, load_ticket_csv

    settings = _settings()
    if csv is None:
        with _db().session() as s:
            try:
                path, rows, teams = train_from_knowledge_base(s, settings.models_path)
            except ValueError as exc:
                raise CliError(str(exc)) from None
        typer.echo(json.dumps({"saved": str(path), "rows": rows, "classes": teams, "rows_used": rows,
                               "feedback_included": True}))
        return
    try:
        texts, labels, info = load_ticket_csv(csv, _cols(text), label, max(1, min_class))
    except EvalInputError as exc:
        raise CliError(str(exc)) from None
    model = train_routing_model(texts, labels)
    path = save_routing_model(model, settings.models_path, texts=texts, labels=labels, source=f"csv:{csv.name}",
                              metrics=info)
    typer.echo(json.dumps({"saved": str(path), "rows": len(texts), "classes": len(model.classes_), **info}))


@eval_app.command("routing")
def eval_routing(
    csv: Annotated[Path, typer.Option(help="A labelled ticket CSV.")],
    text: Annotated[str, typer.Option(help="Text column(s), comma-separated (joined with spaces).")],
    label: Annotated[str, typer.Option(help="The label column.")],
    min_class: Annotated[int, typer.Option("--min-class", help="Keep classes with at least this many rows.")] = 50,
    test_size: Annotated[float, typer.Option(help="Share of rows held out (stratified).")] = 0.2,
    seed: Annotated[int, typer.Option(help="random_state of the split.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
) -> None:
    """Accuracy, macro-F1 and top-3 accuracy of the routing classifier next to TF-IDF + LinearSVC."""
    from models.routing_eval import EvalInputError, evaluate_routing, load_ticket_csv

    if not 0.05 <= test_size <= 0.5:
        raise CliError("--test-size must be between 0.05 and 0.5")
    if min_class < 2:
        raise CliError("--min-class must be at least 2 (a stratified split needs 2 rows per class)")
    try:
        texts, labels, info = load_ticket_csv(csv, _cols(text), label, min_class)
        metrics, _model = evaluate_routing(texts, labels, test_size=test_size, random_state=seed)
    except EvalInputError as exc:
        raise CliError(str(exc)) from None
    out = {**metrics, **info, "csv": csv.name, "label": label, "text": _cols(text), "random_state": seed}
    if as_json:
        typer.echo(json.dumps(out))
        return
    typer.echo(f"{info['rows_used']} rows, {info['classes']} classes (>= {min_class} rows each)")
    for k in ("accuracy", "macro_f1", "top3_accuracy"):
        typer.echo(f"{k:>14}: ours {metrics[k]:.4f}   baseline {metrics['baseline_' + k]:.4f}")
