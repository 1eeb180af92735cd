"""Shift handover: what the next person on call needs to know about the last hours, in one message.

``/incident handover [hours]`` (also "handover", "what did I miss?", "what happened overnight?"): the open
incidents, most severe first, each with who is on it and its last update (when, and what it said); the
incidents resolved in the period and what fixed them; runbook runs waiting for an approver; and the alerts
that fired most. "Last update" is the same notion the update reminders use (``last_updates``): a key moment on
the timeline or a change a person made (acknowledged, re-rated, assigned, escalated, mitigated, reopened), not
chat.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Collection

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from knowledge.models import Alert, ChangeEvent, Incident, Postmortem, RunbookExecution, TimelineEvent, utcnow
from knowledge.service_graph import dependency_paths, graph
from skills.base import Section, SkillError, SkillResult, duration, esc, esc_keep_users
from skills.intake import OPEN_STATUSES

__all__ = ["HANDOVER", "UPDATE_KINDS", "handover", "handover_hours", "last_updates"]

# Timeline kinds that tell someone reading the incident where it stands (besides any key moment).
UPDATE_KINDS = ("note", "ack", "sev", "assign", "reassign", "escalate", "mitigated", "reopen", "reopened")
MAX_HOURS = 168
DEFAULT_HOURS = 12

# "handover", "shift handover", "handover for the last 8h", "what did I miss?", "catch me up",
# "what happened overnight?", "what happened while I was off?"
HANDOVER = re.compile(
    r"^\W*(?:(?:(?:give|send|show)\s+me\s+|post\s+|can\s+i\s+(?:get|have)\s+)?(?:(?:a|the)\s+)?"
    r"(?:shift\s+|on-?call\s+)?hand-?over(?:\s+(?:summary|notes?|report))?(?!\s+to\b)"
    r"|what\s+did\s+i\s+miss|did\s+i\s+miss\s+anything|anything\s+i\s+should\s+know|catch\s+me\s+up"
    # "any incidents overnight?", "anything happen last night?" (the knowledge base's closest passage)
    r"|any(?:thing|\s+(?:incidents?|alerts?|pages?|issues?|outages?))\s+(?:happen(?:ed)?\s+|(?:come|came)\s+in\s+)?"
    r"(?:overnight|last\s+night|while\s+i\s+was\s+(?:away|off|out|asleep)|(?:on|during)\s+(?:my|the\s+last)\s+shift)"
    r"|(?:give\s+me\s+)?(?:a\s+)?(?:shift\s+)?summary\s+of\s+(?:my|the)\s+shift"
    r"|what\s+(?:happened|went\s+on)\s+(?:overnight|last\s+night|while\s+i\s+was\s+(?:away|off|out|asleep)"
    r"|(?:on|during)\s+(?:my|the\s+last)\s+shift)"
    # "summarize the last 24 hours", "recap of the past day", "what happened in the last 8h?"
    r"|(?:summari[sz]e|recap(?:\s+of)?|(?:give\s+me\s+)?(?:a\s+)?summary\s+of|what\s+(?:happened|went\s+on)\s+"
    r"(?:in|over|during))\s+(?:the\s+)?(?:last|past)\s+(?:\d{1,4}\s*(?:h|hrs?|hours?|d|days?)|day|night|shift)"
    # "give me a summary of today", "recap of this week", "what happened today?" (today's: "Which incident?")
    r"|(?:summari[sz]e|recap(?:\s+of)?|(?:give\s+me\s+)?(?:a\s+)?summary\s+(?:of|for)|what\s+(?:happened|went\s+on))\s+"
    r"(?:today|yesterday|this\s+week|the\s+(?:day|week))(?=\W*$))\b",
    re.I)
_HOURS = re.compile(r"\b(\d{1,4})\s*(h|hrs?|hours?|d|days?)\b", re.I)


def handover_hours(text: str, strict: bool) -> int:
    """The period asked for, in hours: "8h", "24 hours", "2 days", "today" (24); 12 when none is named.
    ``strict`` (a slash command): anything else in the text is refused, with the usage."""
    low = text.lower()
    m = _HOURS.search(low) or re.fullmatch(r"\s*(\d{1,4})\s*()", low)
    if m:
        hours = int(m.group(1)) * (24 if m.group(2).startswith("d") else 1)
        if not 1 <= hours <= MAX_HOURS:
            raise SkillError(f"A handover covers 1 to {MAX_HOURS} hours (a week); you asked for {hours}.")
        rest = low[:m.start()] + low[m.end():]
    else:
        hours = (24 if re.search(r"\b(today|yesterday|24\s*h|(?:last|past|the)\s+day)\b", low)
                 else MAX_HOURS if re.search(r"\b(?:this|the|last|past)\s+week\b", low) else DEFAULT_HOURS)
        rest = re.sub(r"\b(today|yesterday|this\s+week)\b", "", low)
    if strict and re.sub(r"\b(for|the|last|past|of|handover)\b|\W", "", rest):
        raise SkillError("Usage: `/incident handover [hours] [service or team ...]`, e.g. `/incident handover 8h "
                         f"payments` (default 12 hours, at most {MAX_HOURS}).")
    return hours


def last_updates(s: Session, incident_ids: list[int]) -> dict[int, TimelineEvent]:
    """Each incident's latest update: a key moment or a change a person made (see ``UPDATE_KINDS``)."""
    if not incident_ids:
        return {}
    rows = s.scalars(select(TimelineEvent).where(
        TimelineEvent.incident_id.in_(incident_ids),
        or_(TimelineEvent.key.is_(True), TimelineEvent.kind.in_(UPDATE_KINDS)))
        .order_by(TimelineEvent.at, TimelineEvent.id)).all()
    return {e.incident_id: e for e in rows}  # the last one of each wins


def _ago(at: dt.datetime, now: dt.datetime) -> str:
    return duration((now - at).total_seconds())


def _quote(text: str, limit: int = 140) -> str:
    one = " ".join(text.split())
    return esc_keep_users(one if len(one) <= limit else one[:limit - 1] + "…")


def handover(s: Session, hours: int, now: dt.datetime | None = None,
             services: Collection[str] | None = None) -> SkillResult:
    """The handover for the last ``hours`` hours (of ``services`` only, when given: a team's handover)."""
    now = now or utcnow()
    since = now - dt.timedelta(hours=hours)
    scope = [Incident.service_name.in_(list(services))] if services else []
    open_rows = s.scalars(select(Incident).where(Incident.status.in_(OPEN_STATUSES), *scope)
                          .order_by(Incident.severity, Incident.id)).all()
    resolved = s.scalars(select(Incident).where(Incident.status == "resolved", Incident.resolved_at >= since, *scope)
                         .order_by(Incident.resolved_at)).all()
    opened = s.scalar(select(func.count()).select_from(Incident).where(Incident.created_at >= since, *scope)) or 0
    latest = last_updates(s, [r.id for r in open_rows])
    lines = []
    deps = graph(s)  # what is open upstream of an open incident may be its cause: said, nearest first
    by_service = {(r.service_name or "").lower(): r for r in sorted(open_rows, key=lambda x: (x.severity, x.id))}
    for r in open_rows[:15]:
        who = f"<@{r.assignee}>" if r.assignee else "*nobody on it*"
        comms = ((r.findings or {}).get("roles") or {}).get("comms")
        who += f", comms <@{comms}>" if comms else ""
        upd = latest.get(r.id)
        said = (f"last update {_ago(upd.at, now)} ago: {_quote(upd.text)}" if upd is not None
                else f"no update since it opened {_ago(r.created_at, now)} ago")
        up = dependency_paths(deps, r.service_name) if deps and r.service_name else {}
        causes = [by_service[n] for n in sorted(up, key=lambda n: len(up[n])) if n in by_service][:2]
        said += "".join(f"; may be caused by #{c.id} ({esc(c.service_name or '')})" for c in causes)
        from skills.incident import eta_text  # (skills.incident imports this module)

        if eta := eta_text(r):  # what the next person is told to expect ("eta: 30 min")
            said += f"; ETA {eta}"
        lines.append(f"*#{r.id}* SEV{r.severity} [{r.status}] {esc(r.title[:100])} "
                     f"({esc(r.service_name or 'unknown service')}, {who}); {said}")
    if len(open_rows) > 15:
        lines.append(f"... and {len(open_rows) - 15} more: `/incident list`")
    drafts = set(s.scalars(select(Postmortem.incident_id).where(
        Postmortem.incident_id.in_([r.id for r in resolved]), Postmortem.status == "draft")).all())
    done = []
    for r in resolved[-15:]:
        closed_as = (r.findings or {}).get("closed_as")
        how = ("closed as a false alarm" if closed_as == "false_alarm" else "closed as a duplicate" if closed_as
               else f"fixed by: {_quote(r.resolution)}" if r.resolution.strip() else "no fix recorded")
        pm = "; postmortem draft to finish" if r.id in drafts else ""
        done.append(f"*#{r.id}* SEV{r.severity} {esc(r.title[:100])} ({esc(r.service_name or 'unknown service')}), "
                    f"resolved {_ago(r.resolved_at, now)} ago after {_ago(r.created_at, r.resolved_at)}; {how}{pm}")
    open_ids = {r.id for r in open_rows}
    waiting = [f"run {e.id} of `{esc(e.runbook_slug)}`" + (f" for #{e.incident_id}" if e.incident_id else "")
               + f", asked by <@{e.requested_by}> {_ago(e.requested_at, now)} ago"
               for e in s.scalars(select(RunbookExecution).where(RunbookExecution.status == "awaiting_approval")
                                  .order_by(RunbookExecution.id)).all()
               if not services or e.incident_id is None or e.incident_id in open_ids]
    alerts = Counter(dict(s.execute(select(Alert.name, func.count()).where(
        or_(Alert.received_at >= since, Alert.last_seen_at >= since),
        *([Alert.service_name.in_(list(services))] if services else [])).group_by(Alert.name)).all()))
    nobody = sum(1 for r in open_rows if not r.assignee and r.status == "open")
    span = "the last 24 hours" if hours == 24 else f"the last {hours} hour{'s' * (hours != 1)}"
    summary = (f"Handover for {span}: {opened} incident(s) opened, {len(resolved)} resolved; "
               f"{len(open_rows)} open now" + (f", {nobody} with nobody on it" if nobody else "") + ".")
    if not open_rows:
        summary += " Nothing is open."
    sections = [Section("Open now", tuple(lines))] if lines else []
    if done:
        sections.append(Section(f"Resolved in {span}", tuple(done)))
    if waiting:
        sections.append(Section("Runbook runs waiting for an approver", tuple(waiting[:10])))
    if alerts:
        top = ", ".join(f"{esc(name[:60])} ({n})" for name, n in alerts.most_common(3))
        sections.append(Section("Alerts", (f"{sum(alerts.values())} alert(s) fired in {span}; by name: {top}",)))
    # the changes of the span (deploys, config, flags, rollbacks): what the next person should know was touched
    made = s.scalars(select(ChangeEvent).where(ChangeEvent.at >= since, ChangeEvent.at <= now,
                                               *([ChangeEvent.service.in_([x.lower() for x in services])]
                                                 if services else []))
                     .order_by(ChangeEvent.at.desc()).limit(11)).all()
    if made:
        lines_made = [f"{esc(c.kind)} {esc(c.service)}" + (f" {esc(c.version)}" if c.version else "")
                      + f" {_ago(c.at, now)} ago: {_quote(c.summary, 100)}" for c in made[:10]]
        if len(made) > 10:
            lines_made.append("... and more: \"recent changes\"")
        sections.append(Section(f"Changes in {span}", tuple(lines_made)))
    return SkillResult(title="Shift handover", summary=summary, sections=tuple(sections),
                       data={"hours": hours, "open": len(open_rows), "resolved": len(resolved)})
