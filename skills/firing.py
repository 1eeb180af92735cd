"""What is firing and what is hurt right now: "what alerts are firing?", "what's firing for payments?", "which alerts
are firing for this?" under a card, "which services are affected right now?".

Both went to the knowledge base, which answered with runbooks. The alerts are the ``alerts`` rows still firing,
grouped by name and service, each with how many, since when and the incident it belongs to; the services affected are
those with an open incident, and those that depend on them (``knowledge/service_graph.py``), which may be hurt too.
"""

from __future__ import annotations

import re
from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from knowledge.models import Alert, Incident
from knowledge.people import OPEN_STATUSES
from knowledge.service_graph import dependency_paths, graph
from skills.base import Section, SkillResult, esc, slack_clock

__all__ = ["FIRING_ASKED", "AFFECTED_ASKED", "firing", "affected"]

_GROUPS = 25
FIRING_ASKED = re.compile(
    r"^\W*(?:(?:what|which)\s+alerts?\s+(?:are|is)\s+(?:still\s+)?(?:firing|active|going\s+off|open)"
    r"|what(?:'s|\s+is)\s+(?:still\s+)?firing|(?:are\s+there\s+)?any\s+alerts?\s+(?:still\s+)?firing"
    r"|(?:show|list|give)\s+(?:me\s+)?(?:the\s+|all\s+)?(?:firing|active|open)\s+alerts"
    r"|(?:firing|active)\s+alerts)\b", re.I)
AFFECTED_ASKED = re.compile(
    r"^\W*(?:what|which)\s+services?\s+(?:are|is)\s+(?:affected|impacted|down|broken|failing|degraded|hurting"
    r"|having\s+(?:issues|problems|trouble))\b", re.I)


def firing(s: Session, *, services: set[str] | None = None, incident_id: int | None = None,
           label: str = "") -> SkillResult:
    """The alerts still firing (of ``services``, or of one incident), grouped by name and service."""
    q = select(Alert.name, Alert.service_name, Alert.incident_id, func.count(), func.min(Alert.starts_at),
               func.min(Alert.received_at)).where(Alert.status == "firing")
    if incident_id is not None:
        q = q.where(Alert.incident_id == incident_id)
    if services:
        q = q.where(func.lower(Alert.service_name).in_([x.lower() for x in services]))
    rows = s.execute(q.group_by(Alert.name, Alert.service_name, Alert.incident_id)).all()
    rows = sorted(rows, key=lambda r: (-r[3], r[0] or ""))
    lines = [f"*{esc(name or '?')}* on {esc(svc or 'an unknown service')}: {n} firing since "
             f"{slack_clock(started or received)}" + (f" (#{inc})" if inc else " (no incident)")
             for name, svc, inc, n, started, received in rows[:_GROUPS]]
    if len(rows) > _GROUPS:
        lines.append(f"… and {len(rows) - _GROUPS} more groups.")
    total = sum(r[3] for r in rows)
    where = f" for incident #{incident_id}" if incident_id is not None else f" {label}" if label else ""
    summary = (f"{total} alert(s) firing{where}, in {len(rows)} group(s) by name and service." if rows else
               f"Nothing is firing{where}.")
    return SkillResult(title="Firing alerts", summary=summary, sections=(Section("", tuple(lines)),) if lines else (),
                       data={"firing": total})


def affected(s: Session) -> SkillResult:
    """The services with an open incident, and those that depend on them (they may be hurt too)."""
    rows = s.scalars(select(Incident).where(Incident.status.in_(OPEN_STATUSES))
                     .order_by(Incident.severity, Incident.id)).all()
    by_service: dict[str, list[Incident]] = defaultdict(list)
    for r in rows:
        by_service[(r.service_name or "unknown service").lower()].append(r)
    lines = [f"*{esc(svc)}*: " + ", ".join(f"#{i.id} SEV{i.severity} [{i.status}] {esc(i.title[:60])}"
                                              for i in incs[:3]) + (f" and {len(incs) - 3} more" if len(incs) > 3
                                                                    else "")
             for svc, incs in sorted(by_service.items(), key=lambda kv: (min(i.severity for i in kv[1]), kv[0]))]
    deps = graph(s)
    downstream: dict[str, tuple[str, ...]] = {}
    for svc in by_service:
        for name, path in dependency_paths(deps, svc, reverse=True).items():
            if name not in by_service and (name not in downstream or len(path) < len(downstream[name])):
                downstream[name] = path
    maybe = [f"{esc(n)} (via {' → '.join(esc(p) for p in reversed(path[:-1]))})"
             for n, path in sorted(downstream.items())]
    summary = (f"{len(by_service)} service(s) with an open incident" + (
        f"; {len(maybe)} more depend on them and may be affected." if maybe else ".") if rows else
        "No service has an open incident.")
    sections = tuple(sec for sec in (Section("With an open incident", tuple(lines)),
                                     Section("May be affected (they depend on those)", tuple(maybe))) if sec.lines)
    return SkillResult(title="Services affected now", summary=summary, sections=sections,
                       data={"services": sorted(by_service), "maybe": sorted(downstream)})
