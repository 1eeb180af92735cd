"""Incident time per service: "what's our uptime this month?", "how much downtime did payments-api have this month?",
"what's the availability of checkout-web?", "error budget for payments?". These went to the knowledge base ("I found
nothing") or to a postmortem passage.

The bot measures no availability (it probes nothing), so it answers from what it knows and says so: per service, the
time it had an open SEV1 or SEV2 incident, from when the incident opened until it was mitigated (or resolved, or now),
overlapping incidents counted once, as a share of the span; SEV3 and SEV4 incidents are counted, not timed; false
alarms and duplicates are left out. No SLA or SLO targets are known to it, and it says that too.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import people
from knowledge.models import Incident, utcnow
from skills.base import Section, SkillError, SkillResult, duration, esc
from skills.clock_words import lookback

__all__ = ["DOWNTIME_ASKED", "downtime"]

_WORD = r"(?:uptime|availability|downtime|up\s*time|down\s*time|sla|slo|error\s+budget)"
DOWNTIME_ASKED = re.compile(
    # "what's our uptime this month?", "what was the availability of payments-api last month?", "what is the SLA for X?"
    rf"^\W*(?:what(?:'s|\s+is|\s+was|\s+were)\s+(?:our\s+|the\s+|my\s+team'?s\s+|[\w.-]+'s\s+)?(?:current\s+)?{_WORD}\b"
    # "how much downtime did payments-api have?", "how much incident time did we have this quarter?"
    r"|how\s+much\s+(?:downtime|down\s*time|incident\s+time|impact\s+time|outage\s+time|error\s+budget)\b"
    # "how long was payments-api down this month?", "how long were we down last week?" ("how long has payments-api
    # been down?" is the outage now: its health, skills/incident.py)
    r"|how\s+long\s+(?:was|were)\s+(?:we|[\w.-]+)\s+(?:down|degraded|impacted|out)\b"
    # "uptime report", "show me the downtime for payments", "availability this month", "uptime?"
    rf"|(?:(?:show|give|list)\s+(?:me\s+)?)?(?:the\s+|our\s+)?{_WORD}(?:\s+(?:report|stats|numbers|of|for|on|this|"
    r"last|over|in|per)\b|\W*$))", re.I)
_DEFAULT = dt.timedelta(days=30)
_LONGEST = dt.timedelta(days=366)
_LIMIT = 15


def _merged(spans: list[tuple[dt.datetime, dt.datetime]]) -> float:
    """Seconds covered by ``spans``, overlaps counted once."""
    total, end = 0.0, None
    for a, b in sorted(spans):
        if end is not None and a < end:
            if b > end:
                total += (b - end).total_seconds()
                end = b
            continue
        total += (b - a).total_seconds()
        end = b
    return total


def downtime(s: Session, text: str, user_id: str | None = None) -> SkillResult:
    """Per service (those ``text`` names, a team's, "ours"; none: every service with an incident), the time with an
    open SEV1 or SEV2 incident over the span ``text`` names (30 days by default)."""
    now = utcnow()
    span, said = lookback(text, _LONGEST) or (_DEFAULT, "the last 30 days")
    since = now - span
    scope = people.asker_scope(session=s, text=text, user_id=user_id)
    if scope is None and (word := people.unknown_target(text)) is not None:  # "uptime of paymnts": not everything
        raise SkillError(f"I know no service or team `{esc(word[:60])}`: name one from the service catalogue, or none "
                         "for every service.")
    q = select(Incident).where(Incident.created_at < now,
                               (Incident.resolved_at.is_(None)) | (Incident.resolved_at > since))
    if scope is not None:
        q = q.where(Incident.service_name.in_(sorted(scope.services)))
    rows = [r for r in s.scalars(q.order_by(Incident.created_at).limit(20_000))
            if not (r.findings or {}).get("closed_as")]  # a false alarm or a duplicate hurt nobody
    spans: dict[str, list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
    major: dict[str, list[Incident]] = defaultdict(list)
    minor: dict[str, int] = defaultdict(int)
    for r in rows:
        svc = r.service_name or "unknown service"
        if r.severity > 2:
            minor[svc] += 1
            continue
        end = r.mitigated_at or r.resolved_at or now
        a, b = max(r.created_at, since), min(end, now)
        if b > a:
            spans[svc].append((a, b))
            major[svc].append(r)
    names = sorted(set(spans) | set(minor) | (set(scope.services) if scope else set()),
                   key=lambda n: (-_merged(spans.get(n, [])), -minor.get(n, 0), n))
    whole = span.total_seconds()
    lines = []
    for name in names[:_LIMIT]:
        hit = _merged(spans.get(name, []))
        incs = major.get(name, [])
        share = 100.0 * (1 - hit / whole)
        bits = [f"*{esc(name)}*: " + (f"{duration(hit)} with an open SEV1/SEV2 incident ({share:.2f}% of the span "
                                      "without)" if incs else "no SEV1/SEV2 incident (100%)")]
        if incs:
            bits.append(", ".join(f"#{r.id} SEV{r.severity}" + (" (open)" if r.status != "resolved" else "")
                                  for r in incs[:5]) + (f" and {len(incs) - 5} more" if len(incs) > 5 else ""))
        if minor.get(name):
            bits.append(f"{minor[name]} SEV3/SEV4 incident(s), not timed")
        lines.append("; ".join(bits))
    if len(names) > _LIMIT:
        lines.append(f"… and {len(names) - _LIMIT} more service(s).")
    where = f" {esc(scope.label)}" if scope else ""
    hurt = [n for n in names if spans.get(n)]
    if not names:
        head = f"No incident{where} in {said}: nothing I know of took anything down."
    elif not hurt:
        head = f"No SEV1 or SEV2 incident{where} in {said}."
    elif len(hurt) == 1:
        only = _merged(spans[hurt[0]])
        head = (f"In {said}, {esc(hurt[0])} had a SEV1 or SEV2 incident open for {duration(only)} "
                f"({100.0 * (1 - only / whole):.2f}% of the span without).")
    else:
        worst = hurt[0]
        head = (f"In {said}{where}, {len(hurt)} service(s) had a SEV1 or SEV2 incident open; the most: "
                f"{esc(worst)}, {duration(_merged(spans[worst]))} "
                f"({100.0 * (1 - _merged(spans[worst]) / whole):.2f}% of the span without).")
    note = (" From incidents, not from probes: an incident's time runs from when it opened until it was mitigated "
            "(or resolved, or now); I know no SLA or SLO targets.")
    return SkillResult(title=f"Incident time: {said}", summary=head + note,
                       sections=(Section("", tuple(lines)),) if lines else (),
                       data={"span_days": round(span.total_seconds() / 86400, 2),
                             "seconds": {n: _merged(spans.get(n, [])) for n in names}})
