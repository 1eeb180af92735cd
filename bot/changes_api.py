"""REST door of changes (deploys, config pushes, feature flags, rollbacks): ``POST /api/v1/changes`` from a CI/CD
pipeline's last step, ``GET /api/v1/changes`` to read them back; ``GET /api/v1/freezes?service=X`` before a deploy
(``frozen``: true means hold), and a deploy reported while a freeze holds is answered with it (``frozen``).

Authorised like the rest of the API (``Authorization: Bearer <WARROOM_KB_TOKEN>``; none configured: 403). A change
is committed before the answer (201; the same ``id`` again: 200 and the first one, so a retried step records one
change). Each open incident on the service, or on a service that depends on it, is told: a line on its timeline, a
message in its card's thread, its card refreshed (a deploy or a rollback made during an incident is news to it).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.api import ErrorOut, SafeValidationRoute
from bot.api_auth import auth_errors, require_token
from bot.similar_api import IsoDateTime
from knowledge import changes, freezes
from knowledge.models import MAX_ID, ChangeEvent, DeployFreeze, Incident, TimelineEvent, utcnow
from knowledge.people import OPEN_STATUSES
from knowledge.service_graph import dependency_paths, graph
from skills.base import SkillError
from skills.changes import MAX_AGE, report
from skills.redact import mask_secrets

__all__ = ["router", "ChangeIn", "tell_open_incidents"]

router = APIRouter(prefix="/api/v1", tags=["changes"], route_class=SafeValidationRoute,
                   dependencies=[Depends(require_token)])


class ChangeIn(BaseModel):
    """One change, as a pipeline reports it."""

    model_config = ConfigDict(extra="forbid")

    service: Annotated[str, Field(min_length=1, max_length=200, description="As in the service catalogue")]
    summary: Annotated[str, Field(min_length=1, max_length=2000, description="What changed, for people")]
    kind: Literal["deploy", "config", "flag", "rollback", "infra", "other"] = "deploy"
    version: Annotated[str | None, Field(max_length=200)] = None
    author: Annotated[str | None, Field(max_length=200)] = None
    url: Annotated[str | None, Field(max_length=1000, description="http(s) link: the pipeline run, the PR")] = None
    at: IsoDateTime = Field(default=None, description="When it took effect (ISO 8601; default: now)")
    id: Annotated[str | None, Field(max_length=200, description="The sender's own id: a retry records nothing new")
                  ] = None
    source: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w.-]+$")] = "api"


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body cannot be read (e.g. it is not UTF-8)"},
    **auth_errors(ErrorOut),
}


def _out(c: ChangeEvent) -> dict[str, Any]:
    return {"id": c.id, "service": c.service, "kind": c.kind, "summary": c.summary, "version": c.version,
            "author": c.author, "url": c.url, "at": c.at.isoformat() + "Z", "source": c.source,
            "external_id": c.external_id}


def tell_open_incidents(s: Session, change: ChangeEvent, interval_s: float) -> list[tuple[int, float]]:
    """Tell each open incident on the changed service, or on a service that depends on it (a change there may be their
    cause, or their fix): a line on its timeline, a message in its card's thread, its card refreshed; and a deploy made
    while a freeze holds on it is told to the owning team's channel (``_freeze_breaches``). Returns the jobs
    to hand to the workers. Idempotent: an incident already told about this change is skipped, so a retried report
    (the same ``id``) tells what a failure after the change was kept left untold (on SQLite the change row can be
    committed by its own savepoint before the rest)."""
    from bot.intake_worker import queue_card
    from knowledge import jobs
    from skills.base import esc

    paths = {change.service: (change.service,), **dependency_paths(graph(s), change.service, reverse=True)}
    rows = s.scalars(select(Incident).where(Incident.status.in_(OPEN_STATUSES),
                                            Incident.service_name.in_(list(paths))).limit(50)).all()
    what = (f"{change.kind} of {change.service}" + (f" {change.version}" if change.version else "")
            + (f" by {change.author}" if change.author else ""))
    told = {e.incident_id for e in s.scalars(select(TimelineEvent).where(
        TimelineEvent.incident_id.in_([i.id for i in rows]), TimelineEvent.kind == "change"))
        if (e.data or {}).get("change") == change.id}  # a retried report: told once
    refs: list[tuple[int, float]] = _freeze_breaches(s, change, what)
    for inc in rows:
        if inc.id in told:
            continue
        via = "" if (inc.service_name or "").lower() == change.service else f" (it depends on {change.service})"
        s.add(TimelineEvent(incident_id=inc.id, at=utcnow(), kind="change",
                            text=f"{what}{via}: {change.summary}"[:2000], data={"change": change.id}))
        when = ("during this incident" if change.at >= inc.created_at - dt.timedelta(minutes=1) else
                f"{int((inc.created_at - change.at).total_seconds() // 60)} min before this incident opened")
        ref = jobs.enqueue(s, kind="incident.notice", dedup_key=f"change:{change.id}:{inc.id}", payload={
            "incident_id": inc.id, "text": f":rocket: {esc(what)}{esc(via)}, {when}: {esc(change.summary[:300])}. "
                                           f"`/incident changes {inc.id}` lists them."})
        if ref.created:
            refs.append((ref.id, 0.0))
        if card := queue_card(s, inc.id, interval_s=interval_s):
            refs.append(card)
    return refs


def _freeze_breaches(s: Session, change: ChangeEvent, what: str) -> list[tuple[int, float]]:
    """A deploy or rollback reported while a freeze holds on its service: the owning team's channel is told (the one
    who froze it mentioned), once per change and freeze (a retried report tells nothing twice)."""
    from knowledge import jobs
    from knowledge.people import service_named
    from skills.base import esc, slack_when
    from skills.deploy_freeze import frozen_by

    if change.kind not in ("deploy", "rollback"):
        return []
    svc = service_named(session=s, name=change.service)
    channel = svc.team.slack_channel if svc is not None and svc.team is not None else None
    refs = []
    for f in freezes.holding(s, [change.service], change.at) if channel else []:
        by = f" by {frozen_by(f)}" if f.created_by else ""
        scope = f"deploys to {esc(change.service)}" if f.service else "every deploy"
        ref = jobs.enqueue(s, kind="oncall.announce", dedup_key=f"freeze:{change.id}:{f.id}", payload={
            "channel": channel, "title": f"Deployed during a freeze: {change.service}"[:150],
            "summary": f":warning: {esc(what)} was reported {slack_when(change.at)} while {scope} are frozen (since "
                       f"{slack_when(f.starts_at)}{by}" + (f": {esc(f.reason[:200])}" if f.reason else "") + "). "
                       f"{esc(change.summary[:300])}. `is there a deploy freeze?` lists them."})
        if ref.created:
            refs.append((ref.id, 0.0))
    return refs


@router.post("/changes", status_code=201, responses={
    **_ERRORS, 200: {"description": "The same `id` (per `source`) again: the first change, nothing new recorded"},
    201: {"description": "Recorded"}})
def post_change(body: ChangeIn, request: Request) -> JSONResponse:
    """Record a change; the cards of the open incidents it may touch are refreshed."""
    services = request.app.state.services
    with services.db.session() as s:
        try:
            row, created, known = report(s, service=body.service, summary=body.summary, kind=body.kind,
                                         version=body.version, author=body.author, url=body.url, at=body.at,
                                         source=body.source, external_id=body.id)
        except SkillError as exc:  # the same shape as every other 422 of the API
            raise HTTPException(422, [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]) from None
        s.flush()
        out = _out(row)
        refs = tell_open_incidents(s, row, services.settings.card_update_interval_s)  # again on a retry: see there
        broken = [freezes.as_dict(f) for f in freezes.holding(s, [row.service], row.at)] \
            if row.kind in ("deploy", "rollback") else []
    if refs:
        services.runner.handoff(refs)
    return JSONResponse({**out, "created": created, "known_service": known, "frozen": broken},
                        status_code=201 if created else 200)


@router.get("/changes", responses=_ERRORS)
def list_changes(request: Request,
                 service: Annotated[str | None, Query(max_length=200)] = None,
                 hours: Annotated[int, Query(ge=1, le=MAX_AGE.days * 24)] = 24) -> dict[str, Any]:
    """The changes of the last ``hours`` (on ``service`` and what it depends on, if named), newest first."""
    with request.app.state.services.db.session() as s:
        found = changes.near(s, service, utcnow() - dt.timedelta(hours=hours), utcnow() + dt.timedelta(minutes=10),
                             limit=500)
        return {"changes": [{**_out(n.change), "path": list(n.path)} for n in found]}


@router.get("/freezes", responses=_ERRORS)
def list_freezes(request: Request, service: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    """The deploy freezes holding now (on ``service`` or on every service, if named): a CI pipeline stops when
    ``frozen`` is true; ``upcoming``: those set to start within 30 days. Freezes are set and lifted in Slack ("freeze
    deploys on payments-api until monday 09:00")."""
    with request.app.state.services.db.session() as s:
        rows = freezes.holding(s, [service] if service else None)
        coming = freezes.upcoming(s, [service] if service else None)
        return {"frozen": bool(rows), "freezes": [freezes.as_dict(f) for f in rows],
                "upcoming": [freezes.as_dict(f) for f in coming]}


class FreezeIn(BaseModel):
    """A deploy freeze set by a release pipeline or a tool (people say it in Slack)."""

    model_config = ConfigDict(extra="forbid")

    service: Annotated[str | None, Field(min_length=1, max_length=200,
                                         description="A service or a team of the catalogue; none: all")] = None
    reason: Annotated[str, Field(min_length=1, max_length=1000, description="Why, for people")]
    starts_at: IsoDateTime = Field(default=None, description="When it starts (ISO 8601; default: now)")
    ends_at: IsoDateTime = Field(default=None, description="When it ends (ISO 8601; none: until lifted)")
    by: Annotated[str, Field(min_length=1, max_length=200, description="Who or what set it")] = "api"


def _unprocessable(msg: str, field: str = "body") -> HTTPException:
    return HTTPException(422, [{"loc": ["body", field] if field != "body" else ["body"], "msg": msg,
                                "type": "value_error"}])


@router.post("/freezes", status_code=201, responses={**_ERRORS, 201: {"description": "Set (or its span changed)"}})
def post_freeze(body: FreezeIn, request: Request) -> JSONResponse:
    """Freeze deploys on a service, a team's services or every service, now or from ``starts_at``, until ``ends_at``
    or until lifted; at most 92 days. A freeze already set on the same service from the same start gets the new end
    and reason."""
    from knowledge.people import service_named, team_named
    from skills.deploy_freeze import check_span

    def utc(t: dt.datetime) -> dt.datetime:  # stored naive UTC, like every time in the database
        return (t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t).replace(microsecond=0)

    now = utcnow().replace(microsecond=0)
    starts = utc(body.starts_at) if body.starts_at else now
    ends = utc(body.ends_at) if body.ends_at else None
    try:
        check_span(starts, ends, now)
    except SkillError as exc:
        raise _unprocessable(str(exc)) from None
    with request.app.state.services.db.session() as s:
        services: list[str] | None = None
        if body.service is not None:
            team = team_named(session=s, name=body.service)
            svc = service_named(session=s, name=body.service)
            if svc is None and team is None:
                raise _unprocessable(f"no service or team named {body.service[:60]!r} in the catalogue", "service")
            services = [svc.name] if svc is not None else [x.name for x in team.services]
            if not services:
                raise _unprocessable(f"team {body.service[:60]!r} owns no service", "service")
        rows = freezes.freeze(s, services, until=ends, reason=mask_secrets(body.reason), by=body.by,
                              starts=starts)
        out = [freezes.as_dict(f) for f in rows]
        notices = freezes.notice_jobs(s, rows, request.app.state.services.settings.slack_incident_channel)
    runner = request.app.state.services.runner
    for job in notices if freezes.NOTICE in runner.handlers else []:  # its start and end told to the teams
        runner.submit(job["kind"], job["payload"], job["dedup_key"], delay_s=job["delay_s"])  # (bot/freeze_jobs.py)
    return JSONResponse({"freezes": out}, status_code=201)


@router.delete("/freezes/{freeze_id}", responses={**_ERRORS, 404: {"model": ErrorOut, "description": "No such freeze"}})
def lift_freeze(freeze_id: Annotated[int, Path(ge=1, le=MAX_ID)], request: Request,
                by: Annotated[str, Query(min_length=1, max_length=200)] = "api") -> dict[str, Any]:
    """Lift one freeze now (one set for later is cancelled); lifting it again changes nothing."""
    with request.app.state.services.db.session() as s:
        f = s.get(DeployFreeze, freeze_id)
        if f is None:
            raise HTTPException(404, f"There is no freeze {freeze_id}.")
        if f.lifted_at is None and (f.ends_at is None or f.ends_at > utcnow()):
            f.lifted_at, f.lifted_by = utcnow(), by
        return {"freeze": freezes.as_dict(f)}
