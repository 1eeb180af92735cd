"""How hard the pager hit each person: "who's been paged the most this week?", "on-call load for payments", "how many
pages did I get this week?", "pager load this month".

An incident pages whoever is on call for its service's team when it opens (the same rule as ``/oncall``: a cover
wins over the calendar, the calendar over the rotation). Over the span asked (7 days by default), for each person:
how many incidents opened on their watch, how many of those outside their working hours and at night in their own
time zone (22:00-07:00), and how many they took themselves. False alarms count (they paged someone);
duplicates do not (they joined another incident). Where on-call load piles up is the first thing to fix after an
outage week, and what a fair rotation is judged by.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import people
from knowledge.models import Expert, Incident, Service, Team, utcnow
from skills.base import Section, SkillResult, esc
from skills.clock_words import lookback

__all__ = ["LOAD_ASKED", "oncall_load"]

LOAD_ASKED = re.compile(
    r"^\W*(?:who(?:'s|\s+has|\s+was|\s+got|\s+is)?\s+(?:been\s+)?(?:paged|woken\s+up|called\s+out)(?:\s+the)?\s+most"
    r"|(?:show\s+(?:me\s+)?|what(?:'s|\s+is)\s+)?(?:the\s+|our\s+)?(?:on-?\s?call|pager|paging)\s+(?:load|burden|health"
    r"|stats|fatigue)\b"
    r"|how\s+(?:many\s+(?:times\s+)?(?:pages\s+did\s+i\s+get|was\s+i\s+(?:paged|woken\s+up))|often\s+(?:was|have|am)"
    r"\s+i\s+(?:been\s+)?(?:paged|woken\s+up)))", re.I)
_NIGHT = (22, 7)  # local hours: from 22:00 to 07:00
_LIMIT = 500


def _span(text: str) -> tuple[dt.timedelta, str]:
    if re.search(r"\bmonth\b", text, re.I):
        return dt.timedelta(days=30), "the last 30 days"
    if re.search(r"\bquarter\b", text, re.I):
        return dt.timedelta(days=90), "the last 90 days"
    return lookback(text, dt.timedelta(days=90)) or (dt.timedelta(days=7), "the last 7 days")


def oncall_load(s: Session, text: str, user_id: str | None = None) -> SkillResult:
    """Per person, the incidents that paged them over the span ``text`` names, the out-of-hours and night ones, and
    those they acknowledged; of the teams ``text`` names (all when none), or the asker's own ("how many pages did I
    get?")."""
    span, said = _span(text)
    since = utcnow() - span
    mine = bool(re.search(r"\b(?:i|me|my)\b", text, re.I))
    teams = people.teams_in_text(session=s, text=text)
    team_of = dict(s.execute(select(Service.name, Team.name).join(Team, Team.id == Service.team_id)).all())
    rows = [r for r in s.scalars(select(Incident).where(Incident.created_at >= since)
                                 .order_by(Incident.created_at).limit(_LIMIT))
            if (r.findings or {}).get("closed_as") != "duplicate"]
    zones = {e.slack_user_id: e.timezone for e in s.scalars(select(Expert))}
    pages: dict[str, list[Incident]] = defaultdict(list)
    nobody = 0
    for inc in rows:
        team = team_of.get(inc.service_name or "")
        if team is None or (teams and team not in teams):
            continue
        on = [u for r in people.oncall_by_team(session=s, team=team, at=inc.created_at) for u, _ in r.people]
        if not on:
            nobody += 1
        for uid in on:
            pages[uid].append(inc)
    if mine and user_id:
        pages = {user_id: pages.get(user_id, [])}
    where = (" for " + ", ".join(esc(t) for t in teams)) if teams else ""
    lines: list[str] = []
    for uid, incs in sorted(pages.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        tz = zones.get(uid, "UTC")
        off = [i for i in incs if not people.in_working_hours(tz, i.created_at)]
        night = [i for i in incs if (h := people.local_time(tz, i.created_at).hour) >= _NIGHT[0] or h < _NIGHT[1]]
        parts = [f"{len(incs)} incident(s)", f"{len(off)} outside working hours", f"{len(night)} at night",
                 f"{sum(1 for i in incs if i.assignee == uid)} taken by them"]
        lines.append(f"<@{uid}>: " + ", ".join(parts) + (" (" + ", ".join(f"#{i.id}" for i in incs[-5:]) + ")"
                                                          if incs else ""))
    if mine and user_id:
        n = len(pages[user_id])
        summary = f"You were paged for {n} incident(s) in {said}{where}."
    elif not lines:
        summary = f"Nobody was paged in {said}{where}: no incident opened on a service with a team."
    else:
        most = max(len(v) for v in pages.values())
        top = [f"<@{u}>" for u, v in sorted(pages.items()) if len(v) == most]
        summary = (f"{sum(len(v) for v in pages.values())} page(s) to {len(pages)} person(s) in {said}{where}; the "
                   f"most: {', '.join(top[:5])} ({most}{' each' if len(top) > 1 else ''}).")
    if nobody:
        summary += f" {nobody} incident(s) opened with nobody on call for their team."
    if len(rows) == _LIMIT:
        summary += f" Counted over the first {_LIMIT} incidents of the span."
    return SkillResult(title="On-call load", summary=summary, sections=(Section("", tuple(lines[:15])),) if lines
                       else (), data={"pages": {u: len(v) for u, v in pages.items()}, "no_one_on_call": nobody})
