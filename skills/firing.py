"""What is firing and what is hurt right now: "what alerts are firing?", "what's firing for payments?", "which alerts
are firing for this?" under a card, "which services are affected right now?".

Both went to the knowledge base, which answered with runbooks. The alerts are the ``alerts`` rows still firing,
grouped by name and service, each with how many, since when and the incident it belongs to; the services affected are
those with an open incident, and those that depend on them (``knowledge/service_graph.py``), which may be hurt too.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from knowledge.models import Alert, Incident, utcnow
from knowledge.people import OPEN_STATUSES
from knowledge.service_graph import dependency_paths, graph
from skills.base import Section, SkillResult, duration, esc, slack_clock
from skills.clock_words import lookback

__all__ = ["FIRING_ASKED", "AFFECTED_ASKED", "NOISE_ASKED", "firing", "affected", "noise"]

_GROUPS = 25
FIRING_ASKED = re.compile(
    r"^\W*(?:(?:what|which)\s+alerts?\s+(?:are|is)\s+(?:still\s+)?(?:firing|active|going\s+off|open)"
    r"|what(?:'s|\s+is)\s+(?:still\s+)?firing|(?:are\s+there\s+)?any\s+alerts?\s+(?:still\s+)?firing"
    r"|(?:show|list|give)\s+(?:me\s+)?(?:the\s+|all\s+)?(?:firing|active|open)\s+alerts"
    r"|(?:firing|active)\s+alerts)\b", re.I)
AFFECTED_ASKED = re.compile(
    r"^\W*(?:what|which)\s+services?\s+(?:are|is)\s+(?:affected|impacted|down|broken|failing|degraded|hurting"
    r"|having\s+(?:issues|problems|trouble))\b", re.I)

# Alert fatigue: "which alerts are the noisiest this week?", "what alerts fire the most?", "how many alerts fired
# today?", "alert noise report", "top alerts for payments"
NOISE_ASKED = re.compile(
    r"^\W*(?:(?:which|what)\s+(?:are\s+)?(?:the\s+|our\s+)?(?:alerts?\s+(?:are|is|were|was)\s+(?:the\s+)?"
    r"(?:noisiest|loudest|most\s+(?:frequent|common|noisy)|flappiest|flapping)|(?:noisiest|loudest|most\s+frequent|most"
    r"\s+common|flappiest|flapping|noisy|top)\s+alerts?)"
    r"|(?:which|what)\s+alerts?\s+(?:fire|fired|fires|go\s+off|went\s+off|page|paged)\s+(?:us\s+)?(?:the\s+)?most"
    r"|how\s+many\s+alerts?\s+(?:fired|have\s+fired|did\s+we\s+(?:get|have|receive)|came\s+in|were\s+(?:there|received"
    r"|fired)|(?:have\s+)?we\s+(?:got|had|received))"
    r"|(?:show\s+(?:me\s+)?|give\s+(?:me\s+)?)?(?:the\s+)?(?:alert\s+(?:noise|stats|statistics|report|fatigue|volume)"
    r"|(?:noisy|noisiest|loudest|flapping|top)\s+alerts)"
    # "top alerting services", "which services alert the most?" (the help's "not sure"; "the noisiest services" are
    # the incident stats' most affected)
    r"|(?:(?:show|list|give)\s+(?:me\s+)?)?(?:the\s+|our\s+)?(?:top\s+alerting|most\s+alerting)\s+services"
    r"|(?:which|what)\s+services?\s+(?:alerts?|pages?|fires?|fired|paged|alerted)\s+(?:us\s+)?(?:the\s+)?most"
    # "what alerts fired today?", "which alerts went off overnight?", "what's flapping?" (the knowledge base's runbooks)
    r"|(?:what|which)\s+alerts?\s+(?:have\s+)?(?:fired|went\s+off|gone\s+off|came\s+in|paged(?:\s+us)?)"
    r"(?=\s*$|\W*$|\s+(?:today|yesterday|overnight|last\s+night|this\s+(?:week|month)|in\s+the\s+(?:last|past)|over\s+the"
    r"|during\s+the|since|on\s+the\s+weekend|this\s+weekend|recently|lately))"
    r"|what(?:'s|\s+is|\s+has\s+been|\s+are)\s+(?:been\s+)?flapping|(?:any|which|what)\s+flapping\s+alerts?)\b", re.I)
NOISE_SPAN = dt.timedelta(days=7)
_QUICK = dt.timedelta(minutes=10)  # an alert that stopped firing this soon, by itself, is a tuning candidate


def noise(s: Session, *, text: str = "", services: set[str] | None = None, label: str = "") -> SkillResult:
    """Which alerts made the most noise over a span (the one ``text`` names, "today", "last 2 days"; a week by
    default): per alert name and service, the incidents it opened or joined, the notifications received, how many of
    those incidents nobody acknowledged, and how long it usually fired. The candidates for tuning come first."""
    span, said = lookback(text, dt.timedelta(days=90)) or (NOISE_SPAN, "the last 7 days")
    since = utcnow() - span
    q = (select(Alert.name, Alert.service_name, Alert.incident_id, Alert.occurrences, Alert.starts_at, Alert.ends_at,
                Alert.received_at, Incident.acknowledged_at)
         .join(Incident, Incident.id == Alert.incident_id, isouter=True).where(Alert.received_at >= since))
    if services:
        q = q.where(func.lower(Alert.service_name).in_([x.lower() for x in services]))
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for name, svc, inc, occ, start, end, received, acked in s.execute(q.limit(50_000)):
        g = groups.setdefault((name or "?", svc or ""), {"incidents": set(), "unacked": set(), "received": 0,
                                                         "episodes": 0, "fired": []})
        g["episodes"] += 1
        g["received"] += occ or 1
        if inc is not None:
            g["incidents"].add(inc)
            if acked is None:
                g["unacked"].add(inc)
        if end is not None and (start or received) is not None and end >= (start or received):
            g["fired"].append((end - (start or received)).total_seconds())
    ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]["incidents"]), -kv[1]["received"], kv[0]))
    lines = []
    for (name, svc), g in ranked[:_GROUPS]:
        n_inc, unacked = len(g["incidents"]), len(g["unacked"])
        line = (f"*{esc(name)}*{f' on {esc(svc)}' if svc else ''}: fired {g['episodes']} time(s), {n_inc} incident(s), "
                f"{g['received']} notification(s)")
        if n_inc:
            line += f", {unacked} never acknowledged" if unacked else ", all acknowledged"
        if g["fired"]:
            typical = statistics.median(g["fired"])
            line += f", usually firing {duration(typical)}"
            if typical < _QUICK.total_seconds() and unacked and unacked == n_inc:
                line += " · _tuning candidate: short, and nobody acted_"
        lines.append(line)
    if len(ranked) > _GROUPS:
        lines.append(f"… and {len(ranked) - _GROUPS} more.")
    total = sum(g["episodes"] for g in groups.values())
    received = sum(g["received"] for g in groups.values())
    where = f" {label}" if label else ""
    summary = (f"{total} alert(s){where} in {said} ({received} notification(s)), {len(groups)} distinct by name and "
               "service; the noisiest first. One that fires briefly and that nobody acknowledges is worth a longer "
               "`for:`, a higher threshold, or deleting." if groups else f"No alerts{where} in {said}.")
    return SkillResult(title=f"Alert noise: {said}", summary=summary,
                       sections=(Section("", tuple(lines)),) if lines else (),
                       data={"alerts": total, "notifications": received, "distinct": len(groups)})


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
