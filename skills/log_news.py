"""What is new in the logs: "what's new in the logs?", "new log patterns today?", "any new errors in ingest logs this
week?". These went to the knowledge base, which answered with postmortem passages.

The bot keeps every log template it has classified (``log_templates``: pastes, uploads, alert excerpts, the CLI), with
when it was first seen; so "new" is new across time, as on the classification itself. The answer: the templates first
seen over the span (24 hours by default; "this week", "last 3 days", ...), the most severe and most frequent first,
each with its category, how often it came back, an example line (masked when it was stored) and the incident it first
came with; narrowed to a service's incidents when one is named, to errors when "errors" is asked.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import people
from knowledge.models import Incident, LogTemplate, utcnow
from skills.base import Section, SkillResult, esc
from skills.clock_words import lookback
from skills.log_engine import SEVERITY_RANK

__all__ = ["NEWS_ASKED", "log_news"]

_LOGS = r"(?:the\s+)?(?:[\w.-]+\s+)?logs?"
NEWS_ASKED = re.compile(
    # "what's new in the logs?", "anything new in the ingest logs?"
    rf"^\W*(?:what(?:'s|\s+is)|(?:is\s+there\s+)?anything)\s+new\s+in\s+{_LOGS}\b"
    # "new log patterns today?", "show me the new log templates", "any new errors in the logs this week?"
    r"|^\W*(?:(?:what\s+(?:are\s+)?|which\s+|any\s+|show\s+(?:me\s+)?|list\s+)?(?:the\s+)?)?new\s+(?:log\s+)?"
    rf"(?:patterns?|templates?|(?:log\s+)?(?:errors?|warnings?|lines?)(?:\s+in\s+{_LOGS})?)\b"
    # "any errors in ingest logs?", "errors in the logs today?"
    rf"|^\W*(?:(?:are\s+there\s+)?any\s+)?(?:errors?|warnings?|exceptions?)\s+in\s+{_LOGS}\b", re.I)
_LIMIT = 15
_DAY = dt.timedelta(hours=24)


def log_news(s: Session, text: str) -> SkillResult:
    """The log templates first seen over the span ``text`` names (of a service's incidents, errors only when asked)."""
    span, said = lookback(text, dt.timedelta(days=90)) or (_DAY, "the last 24 hours")
    since = utcnow() - span
    q = select(LogTemplate, Incident.service_name).join(Incident, Incident.id == LogTemplate.first_incident_id,
                                                        isouter=True).where(LogTemplate.first_seen >= since)
    scope = people.scope_in_text(session=s, text=text)
    if scope is not None:
        q = q.where(Incident.service_name.in_(scope.services))
    worst = re.search(r"\b(?:errors?|exceptions?)\b", text, re.I) is not None
    rows = [(t, svc) for t, svc in s.execute(q.limit(5000))
            if not worst or SEVERITY_RANK.get(t.severity, 0) >= SEVERITY_RANK["ERROR"]]
    rows.sort(key=lambda r: (-SEVERITY_RANK.get(r[0].severity, 0), -(r[0].count or 0), r[0].first_seen))
    where = (f" {esc(scope.label)}" if scope else "") + (" at ERROR or FATAL" if worst else "")
    if not rows:
        known = s.scalar(select(LogTemplate.id).limit(1)) is not None
        return SkillResult(title="New in the logs", summary=(
            f"No log template first seen in {said}{where}." + ("" if known else
                                                                 " I know only the logs I am given: paste them after "
                                                                 "`/logs`, upload a file in an incident's channel, or "
                                                                 "send alerts that carry log lines.")))
    lines = []
    for t, svc in rows[:_LIMIT]:
        came = (f", first with #{t.first_incident_id}" + (f" ({esc(svc)})" if svc else "")
                if t.first_incident_id else "")
        lines.append(f"*{esc(t.severity)}* {esc(t.category)} `{esc(t.template[:120])}`: seen {t.count or 0} time(s) "
                     f"since {t.first_seen:%d %b %H:%M} UTC{came}\n> {esc((t.example or '')[:200])}")
    more = f" ({_LIMIT} shown)" if len(rows) > _LIMIT else ""
    return SkillResult(title="New in the logs", summary=(
        f"{len(rows)} log template(s) first seen in {said}{where}{more}, the most severe first. From the logs I was "
        "given (pastes, uploads, alerts), not a log store."), sections=(Section("", tuple(lines)),),
        data={"templates": [t.template_id for t, _ in rows]})
