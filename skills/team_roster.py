"""Who of a team is around now: "is anyone awake in platform?", "who's around in payments?", "who is on the storage
team?". Before, these went to the knowledge base ("I found nothing ...") or to the routing ranking, which names at
most three people and not whether they are awake.

Per team: who is on call now (and until when), then every active member with their local time and whether it is
within working hours there (weekdays 09:00-18:00, the rule routing uses), and how many open incidents they are
assigned; someone covering from outside the team is listed too; who left is named at the end. The head answers the
question: yes and who, or nobody within working hours and who is on call (the one to page).
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import people
from knowledge.models import Expert, Incident, Team, utcnow
from skills.base import Section, SkillError, SkillResult, esc, slack_when

__all__ = ["ROSTER_ASKED", "team_roster"]

_AROUND = r"(?:awake|around|online|available|about|reachable|free|at\s+(?:work|their\s+desks?)|in\s+(?:the\s+)?office)"
ROSTER_ASKED = re.compile(
    # "is anyone awake in platform?", "is there anybody around from payments?", "are any people online in storage?"
    rf"^\W*(?:is|are)\s+(?:there\s+)?(?:any|some)(?:one|body|\s+people|\s+folks)\s+(?:(?:still|else)\s+)?{_AROUND}\b"
    # "anyone around in payments?", "anybody awake on the platform team?"
    rf"|^\W*(?:any|some)(?:one|body)\s+(?:(?:still|else)\s+)?{_AROUND}\b"
    # "who's around in payments right now?", "who is available on platform?", "who else is awake?"
    rf"|^\W*who(?:'s|’s|\s+is|\s+are|\s+else\s+is)?\s+(?:(?:still|else)\s+)?{_AROUND}\b"
    # "who is on the payments team?", "who's in team storage?", "who are the members of platform?"
    r"|^\W*who(?:'s|’s|\s+is|\s+are)\s+(?:in|on)\s+(?:the\s+)?(?:[\w.-]+\s+team|team\s+[\w.-]+)\W*$"
    r"|^\W*(?:who\s+are\s+)?(?:the\s+)?(?:members|people)\s+(?:of|in|on)\s+(?:the\s+)?(?:team\s+)?[\w.-]+(?:\s+team)?"
    r"\W*$"
    r"|^\W*(?:list|show)\s+(?:me\s+)?(?:the\s+)?[\w.-]+\s+team(?:'s)?\s+(?:members|people|roster)\W*$"
    # "what's the slack channel for payments?", "which channel is storage in?", "how do I reach the platform team?"
    # (the knowledge base, which answered with a postmortem): the team's channel heads the answer
    r"|^\W*(?:what(?:'s|\s+is)|which\s+is|where(?:'s|\s+is))\s+(?:the\s+)?(?:slack\s+)?channel\s+(?:for|of)\s+"
    r"(?:the\s+)?[\w.-]+(?:\s+team)?\W*$|^\W*which\s+(?:slack\s+)?channel\s+(?:is|does)\s+(?:the\s+)?[\w.-]+"
    r"(?:\s+team)?\s+(?:in|use)\W*$"
    r"|^\W*(?:how\s+(?:do|can)\s+(?:i|we)\s+(?:reach|contact|get\s+hold\s+of|talk\s+to)|where\s+(?:do|can)\s+(?:i|we)\s+"
    r"(?:reach|find|ask))\s+(?:the\s+)?(?:[\w.-]+\s+team|team\s+[\w.-]+)\W*$", re.I)
_LIMIT = 25


def _teams(s: Session, text: str, user_id: str | None, incident_id: int | None) -> list[str]:
    """The teams the words name (a service: the team that owns it); none named: the team of the incident asked
    under, else the asker's own."""
    named = people.teams_in_text(session=s, text=text)
    if named:
        return named
    inc = s.get(Incident, incident_id) if incident_id is not None else None
    if inc is not None and inc.service_name:
        named = people.teams_in_text(session=s, text=inc.service_name)
        if named:
            return named
    me = s.scalar(select(Expert).where(Expert.slack_user_id == user_id)) if user_id else None
    if me is not None and me.team is not None:
        return [me.team.name]
    known = ", ".join(s.scalars(select(Team.name).order_by(Team.name)).all()[:12])
    raise SkillError("Which team? Name one or one of its services, e.g. `@warroom who's around in payments?`"
                     + (f" Teams: {esc(known)}." if known else " No team is known yet: `warroom experts import FILE`."))


def team_roster(s: Session, text: str, user_id: str | None = None, incident_id: int | None = None) -> SkillResult:
    """Who of each team ``text`` names is on call and who is within working hours now."""
    now = utcnow().replace(microsecond=0)
    heads: list[str] = []
    sections: list[Section] = []
    data: list[dict[str, object]] = []
    for name in _teams(s, text, user_id, incident_id)[:5]:
        team = people.team_named(session=s, name=name)
        if team is None:  # pragma: no cover - teams_in_text names known teams only
            continue
        (oc,) = people.oncall_by_team(session=s, team=team.name, at=now)
        on_call = [uid for uid, _ in oc.people]
        members = list(s.scalars(select(Expert).where(Expert.team_id == team.id).order_by(Expert.name)))
        covering = [e for e in people.experts_by_ids(session=s, user_ids=on_call).values() if e.team_id != team.id]
        active = [*[e for e in members if e.active], *covering]
        load = people.open_load(session=s, user_ids=[e.slack_user_id for e in active])
        working = [e for e in active if people.in_working_hours(e.timezone, now)]
        lines = []
        for e in sorted(active, key=lambda e: (e.slack_user_id not in on_call, e not in working, e.name)):
            loc = people.local_time(e.timezone, now)
            bits = [f"{loc:%a %H:%M} {esc(e.timezone)}",
                    "within working hours" if e in working else "outside working hours"]
            if e.slack_user_id in on_call:
                bits.append("on call" + (f" until {slack_when(oc.until)}" if oc.until else ""))
            if e.team_id != team.id:
                bits.append(f"covering, of {esc(e.team.name) if e.team else 'no team'}")
            if load.get(e.slack_user_id):
                bits.append(f"on {load[e.slack_user_id]} open incident(s)")
            lines.append(f"<@{e.slack_user_id}> ({esc(e.name)}): " + ", ".join(bits))
        gone = [e.name for e in members if not e.active]
        if gone:
            lines.append("Left (deactivated, skipped by routing and pages): " + ", ".join(esc(n) for n in gone[:10]))
        who_on = " and ".join(f"<@{u}>" for u in on_call)
        awake = ", ".join(f"<@{e.slack_user_id}>" for e in working[:8]) + (" ..." if len(working) > 8 else "")
        if working:
            head = f"*{esc(team.name)}*: {len(working)} of {len(active)} within working hours now ({awake})"
            head += f"; on call: {who_on}" if who_on else "; *nobody on call*"
        elif who_on:
            head = (f"*{esc(team.name)}*: nobody within working hours now; on call: {who_on} "
                    f"(`@warroom page {esc(team.name)}` pages them)")
        else:
            head = (f"*{esc(team.name)}*: nobody within working hours and *nobody on call* now"
                    + (f": ask in <#{oc.channel}>" if oc.channel else "")
                    + f"; `/oncall cover {esc(team.name)}` takes it")
        if team.slack_channel and f"<#{team.slack_channel}>" not in head:
            head += f"; channel <#{team.slack_channel}>"
        heads.append(head + ".")
        sections.append(Section(f"{team.name} ({len(active)} active)", tuple(lines[:_LIMIT]) or ("No members.",)))
        data.append({"team": team.name, "on_call": on_call, "working_hours": [e.slack_user_id for e in working],
                     "active": len(active), "left": gone})
    return SkillResult(title="Who is around", summary=" ".join(heads), sections=tuple(sections),
                       data={"teams": data})
