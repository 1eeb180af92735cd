"""An incident's facts, assembled from the knowledge base for its postmortem.

Everything a postmortem may say comes from here: the incident row (title, severity, times, root
cause), its alerts, its timeline (lifecycle events and channel messages with permalinks, key
moments marked by a pin or reaction), skill findings stored on the incident (log findings, risk
readings), runbooks executed (executions and their audit records), the responders, and similar
past incidents. The result is a frozen value; writers and checkers only ever read it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge.models import (
    Alert,
    AuditRecord,
    Expert,
    Incident,
    RunbookExecution,
    Service,
    SlackMessage,
    TimelineEvent,
)

__all__ = [
    "TimelineItem", "AlertFact", "RunbookRun", "FindingFact", "Person", "RelatedIncident",
    "PostmortemFacts", "assemble_facts", "SimilarFn", "minutes_between", "similar_by_service",
]


@dataclass(frozen=True)
class TimelineItem:
    """One line of the timeline: a lifecycle event or a channel message."""

    at: dt.datetime
    kind: str
    text: str
    actor: str | None = None
    actor_name: str | None = None
    permalink: str | None = None
    key: bool = False
    source: str = "event"  # event, message, alert, runbook, change (a deploy, config push, flag: knowledge/changes.py)


@dataclass(frozen=True)
class AlertFact:
    name: str
    service: str | None
    severity: str | None
    status: str
    summary: str
    starts_at: dt.datetime | None


@dataclass(frozen=True)
class RunbookRun:
    slug: str
    version: int
    status: str
    dry_run: bool
    requested_by: str
    approved_by: str | None
    requested_at: dt.datetime
    finished_at: dt.datetime | None
    audit: tuple[str, ...] = ()


@dataclass(frozen=True)
class FindingFact:
    skill: str
    heading: str
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Person:
    user_id: str
    name: str


@dataclass(frozen=True)
class RelatedIncident:
    incident_id: int
    title: str
    service: str | None
    root_cause: str
    resolved_at: dt.datetime | None


SimilarFn = Callable[[Session, Incident], Sequence[RelatedIncident]]


def minutes_between(a: dt.datetime | None, b: dt.datetime | None) -> int | None:
    """Whole minutes from ``a`` to ``b`` (None when either is missing or b precedes a)."""
    if a is None or b is None or b < a:
        return None
    return int(round((b - a).total_seconds() / 60))


@dataclass(frozen=True)
class PostmortemFacts:
    """What is known about one incident; the only source a postmortem draws from."""

    incident_id: int
    title: str
    description: str
    severity: int
    status: str
    service: str | None
    services: tuple[str, ...]
    alert_name: str | None
    started_at: dt.datetime
    detected_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    mitigated_at: dt.datetime | None
    resolved_at: dt.datetime | None
    root_cause: str = ""
    resolution: str = ""
    root_cause_confirmed: bool = False
    impact: str = ""  # who or what it hurt, as people said it ("impact: ...")
    assignee: str | None = None
    alerts: tuple[AlertFact, ...] = ()
    timeline: tuple[TimelineItem, ...] = ()
    findings: tuple[FindingFact, ...] = ()
    runbooks: tuple[RunbookRun, ...] = ()
    responders: tuple[Person, ...] = ()
    related: tuple[RelatedIncident, ...] = ()
    known_services: tuple[str, ...] = field(default=(), repr=False)
    known_people: tuple[Person, ...] = field(default=(), repr=False)

    @property
    def durations(self) -> dict[str, int | None]:
        """Minutes from the start to detection, acknowledgement, mitigation and resolution."""
        return {
            "to_detect": minutes_between(self.started_at, self.detected_at),
            "to_acknowledge": minutes_between(self.started_at, self.acknowledged_at),
            "to_mitigate": minutes_between(self.started_at, self.mitigated_at),
            "to_resolve": minutes_between(self.started_at, self.resolved_at),
        }

    @property
    def message_count(self) -> int:
        return sum(1 for t in self.timeline if t.source == "message")

    def person_name(self, user_id: str | None) -> str | None:
        """The display name of a Slack user id, when the knowledge base knows it."""
        if not user_id:
            return None
        for p in (*self.responders, *self.known_people):
            if p.user_id == user_id:
                return p.name
        return None

    def map_text(self, fn: Callable[[str], str]) -> PostmortemFacts:
        """A copy with ``fn`` applied to every free-text field (used to mask secrets)."""
        rep = dataclasses.replace
        return rep(
            self, title=fn(self.title), description=fn(self.description), root_cause=fn(self.root_cause),
            resolution=fn(self.resolution),
            alerts=tuple(rep(a, summary=fn(a.summary)) for a in self.alerts),
            timeline=tuple(t if (new := fn(t.text)) == t.text else rep(t, text=new) for t in self.timeline),
            findings=tuple(rep(f, heading=fn(f.heading), lines=tuple(fn(x) for x in f.lines))
                           for f in self.findings),
            runbooks=tuple(rep(r, audit=tuple(fn(x) for x in r.audit)) for r in self.runbooks),
            related=tuple(rep(r, title=fn(r.title), root_cause=fn(r.root_cause)) for r in self.related),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (datetimes as ISO strings), including the derived durations and counts."""
        def conv(v: Any) -> Any:
            if isinstance(v, dt.datetime):
                return v.isoformat(timespec="seconds")
            if isinstance(v, (list, tuple)):
                return [conv(x) for x in v]
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            return v

        def flat(v: Any) -> Any:
            # dataclasses.asdict deep-copies every value; a shallow walk is ~20x faster on big timelines.
            if dataclasses.is_dataclass(v) and not isinstance(v, type):
                return {f.name: flat(getattr(v, f.name)) for f in dataclasses.fields(v)}
            if isinstance(v, (list, tuple)):
                return [flat(x) for x in v]
            return v

        out = {f.name: conv(flat(getattr(self, f.name))) for f in dataclasses.fields(self)
               if f.name not in ("known_services", "known_people")}
        out["durations_min"] = self.durations
        out["counts"] = {"alerts": len(self.alerts), "messages": self.message_count,
                         "timeline": len(self.timeline), "runbooks": len(self.runbooks)}
        return out


def _findings(raw: dict[str, Any]) -> tuple[FindingFact, ...]:
    out = []
    for skill, val in sorted((raw or {}).items()):
        if isinstance(val, dict):
            lines = val.get("lines") or []
            out.append(FindingFact(skill=skill, heading=str(val.get("heading") or skill),
                                   lines=tuple(str(x) for x in lines if isinstance(x, (str, int, float)))))
        elif isinstance(val, (str, int, float)) and not isinstance(val, bool):
            out.append(FindingFact(skill=skill, heading=skill.replace("_", " "), lines=(str(val),)))
    return tuple(out)


def _timeline(session: Session, inc: Incident, names: dict[str, str]) -> list[TimelineItem]:
    # Plain column rows, not ORM objects: an incident channel can hold thousands of messages.
    items: list[TimelineItem] = []
    seen_links: set[str] = set()
    seen_text: set[tuple[str, str | None]] = set()
    ev_cols = (TimelineEvent.at, TimelineEvent.kind, TimelineEvent.text, TimelineEvent.actor,
               TimelineEvent.permalink, TimelineEvent.key)
    for at, kind, text, actor, link, key in session.execute(
            select(*ev_cols).where(TimelineEvent.incident_id == inc.id).order_by(TimelineEvent.at, TimelineEvent.id)):
        source = "message" if kind == "message" else "event"
        items.append(TimelineItem(at=at, kind=kind, text=text or "", actor=actor, actor_name=names.get(actor or ""),
                                  permalink=link, key=bool(key), source=source))
        if link:
            seen_links.add(link)
        if source == "message":
            seen_text.add((text or "", actor))
    msg_cols = (SlackMessage.created_at, SlackMessage.text, SlackMessage.user_id, SlackMessage.permalink,
                SlackMessage.key)
    pinned: list[tuple[str | None, str, str | None]] = []
    for at, text, user, link, key in session.execute(
            select(*msg_cols).where(SlackMessage.incident_id == inc.id)
            .order_by(SlackMessage.created_at, SlackMessage.id)):
        if (link and link in seen_links) or (text or "", user) in seen_text:
            if key:  # a pin recorded only on the message row still marks the timeline line
                pinned.append((link, text or "", user))
            continue
        items.append(TimelineItem(at=at, kind="message", text=text or "", actor=user,
                                  actor_name=names.get(user or ""), permalink=link, key=bool(key), source="message"))
    if pinned:
        links = {p[0] for p in pinned if p[0]}
        texts = {(p[1], p[2]) for p in pinned}
        items = [dataclasses.replace(t, key=True) if t.source == "message" and not t.key and
                 ((t.permalink and t.permalink in links) or (t.text, t.actor) in texts) else t for t in items]
    # What changed on its service or a dependency (deploys, config, flags) from 6 h before it: often the trigger
    from knowledge.changes import for_incident

    for n in for_incident(session, inc, limit=10):
        c = n.change
        where = c.service if len(n.path) == 1 else f"{c.service} (a dependency)"
        items.append(TimelineItem(at=c.at, kind=c.kind, text=f"{where}{' ' + c.version if c.version else ''}: "
                                  f"{c.summary}", actor_name=c.author, permalink=c.url, source="change"))
    items.sort(key=lambda t: t.at)
    return items


def _runbooks(session: Session, incident_id: int) -> tuple[RunbookRun, ...]:
    runs = list(session.scalars(select(RunbookExecution).where(RunbookExecution.incident_id == incident_id)
                                .order_by(RunbookExecution.requested_at)))
    if not runs:
        return ()
    audits: dict[int, list[str]] = {}
    for a in session.scalars(select(AuditRecord).where(AuditRecord.execution_id.in_([r.id for r in runs]))
                             .order_by(AuditRecord.at, AuditRecord.id)):
        audits.setdefault(a.execution_id or 0, []).append(
            f"{a.at:%H:%M} {a.action} by {a.actor or 'unknown'}")
    return tuple(RunbookRun(slug=r.runbook_slug, version=r.runbook_version, status=r.status, dry_run=r.dry_run,
                            requested_by=r.requested_by, approved_by=r.approved_by, requested_at=r.requested_at,
                            finished_at=r.finished_at, audit=tuple(audits.get(r.id, ())))
                 for r in runs)


def similar_by_service(session: Session, inc: Incident, limit: int = 3) -> list[RelatedIncident]:
    """Fallback similarity: resolved incidents on the same service or with the same alert name."""
    out: list[RelatedIncident] = []
    conds = [Incident.service_name == inc.service_name]
    if inc.alert_name:
        conds.append(Incident.alert_name == inc.alert_name)
    for cond in conds:  # same service first, then the same alert elsewhere
        rows = session.scalars(select(Incident).where(cond, Incident.id != inc.id, Incident.status == "resolved")
                               .order_by(Incident.resolved_at.desc()).limit(limit))
        out += [RelatedIncident(r.id, r.title, r.service_name, r.root_cause, r.resolved_at) for r in rows
                if all(o.incident_id != r.id for o in out)]
    return out[:limit]


def assemble_facts(session: Session, *, incident_id: int, similar: SimilarFn | None = None,
                   root_cause_confirmed: bool = False) -> PostmortemFacts | None:
    """Everything the knowledge base knows about one incident (None when it does not exist).

    Args:
        session: an open session.
        incident_id: the incident.
        similar: finds related past incidents; defaults to :func:`similar_by_service`.
        root_cause_confirmed: whether a person confirmed the root cause (kept on the postmortem).
    """
    inc = session.get(Incident, incident_id)
    if inc is None:
        return None
    experts = list(session.scalars(select(Expert)))
    names = {e.slack_user_id: e.name for e in experts}
    known_services = tuple(sorted(session.scalars(select(Service.name))))
    alerts = tuple(AlertFact(a.name, a.service_name, a.severity, a.status, a.summary or "", a.starts_at)
                   for a in session.scalars(select(Alert).where(Alert.incident_id == inc.id)
                                            .order_by(Alert.received_at, Alert.id)))
    timeline = _timeline(session, inc, names)
    runbooks = _runbooks(session, inc.id)
    services: list[str] = [s for s in [inc.service_name, *(a.service for a in alerts)] if s]
    responder_ids: list[str] = [u for u in [inc.assignee, inc.created_by] if u]
    responder_ids += [t.actor for t in timeline if t.actor and t.actor.startswith(("U", "W"))]  # W: Enterprise Grid
    responder_ids += [u for r in runbooks for u in (r.requested_by, r.approved_by) if u]
    responders = tuple(Person(u, names.get(u, u)) for u in dict.fromkeys(responder_ids))
    related = tuple((similar or similar_by_service)(session, inc))
    starts = [inc.created_at, *(a.starts_at for a in alerts if a.starts_at)]
    started = min(s for s in starts if s is not None)
    return PostmortemFacts(
        incident_id=inc.id, title=inc.title, description=inc.description or "", severity=inc.severity,
        status=inc.status, service=inc.service_name, services=tuple(dict.fromkeys(services)),
        alert_name=inc.alert_name, started_at=started, detected_at=inc.detected_at or inc.created_at,
        acknowledged_at=inc.acknowledged_at, mitigated_at=inc.mitigated_at, resolved_at=inc.resolved_at,
        root_cause=inc.root_cause or "", resolution=inc.resolution or "",
        root_cause_confirmed=root_cause_confirmed, assignee=inc.assignee, alerts=alerts,
        impact=str(((inc.findings or {}).get("impact") or {}).get("text") or ""),
        timeline=tuple(timeline), findings=_findings(inc.findings), runbooks=runbooks, responders=responders,
        related=related, known_services=known_services,
        known_people=tuple(Person(e.slack_user_id, e.name) for e in experts),
    )
