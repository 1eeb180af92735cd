"""Who someone is and whether they can help now: "who is alice?", "is @carla available?", "what time is it for
alice?", "what's bob's timezone?", "how busy is alice?", "what is <@U0ALICE> working on?", "where is Alice Moreau?".

One answer for all of them, from the experts file (``warroom experts import``) and the incidents: the person's team,
their local time and whether it is within working hours there (the same rule routing uses), whether they are on call
now and until when (or their next shift), the open incidents they are on and the roles they hold in them, and what
they know (services, skills). A person who has left says so, with whom to turn to instead.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from knowledge import people
from knowledge.models import Expert, Incident, OnCallShift, Team, utcnow
from skills.base import USER_ID, Section, SkillError, SkillResult, esc, slack_when

__all__ = ["PERSON_ASKED", "asked_person", "person", "people_named"]

# What "who is X" is not about: "who is on call?", "who is the IC?", "who is working on #113?" (other answers)
_NOT_A_NAME = frozenset("""a an the this that it its our my your their his her we you i me us they he she here there
    who what which whose whom when where why how someone somebody anyone anybody everyone everybody nobody none
    on in at up to for of with by from about after before next now today tomorrow currently still already also just
    working looking handling assigned responsible available around online free awake doing taking paging covering
    fixing deploying leading running owning best most least secondary primary backup second ic commander comms scribe
    ops lead owner oncall on-call affected down out off going happening new old warroom bot you're""".split())
_SECOND = "|".join(re.escape(w) for w in sorted(_NOT_A_NAME))  # "alice working on": one name
_REF = rf"(<@{USER_ID}(?:\|[^>]*)?>|[a-z][\w'.-]{{0,40}}(?:\s+(?!(?:{_SECOND})\b)[a-z][\w'.-]{{0,40}})?)"
_NOW = r"(?:\s+(?:now|right\s+now|today|at\s+the\s+moment))?\W*$"
PERSON_ASKED = re.compile(
    rf"^\W*(?:(?:who(?:'?s|\s+is)|tell\s+me\s+about)\s+{_REF}\W*$"
    rf"|is\s+{_REF}\s+(?:available|around|online|awake|free|busy|reachable|working|at\s+work|in|off"
    rf"|on\s+(?:shift|duty|call|on-call|holiday|vacation|leave|pto)){_NOW}"
    rf"|what\s+time\s+is\s+it\s+(?:for|where)\s+{_REF}(?:\s+is)?\W*$"
    rf"|what(?:'s|\s+is)\s+the\s+(?:local\s+)?time\s+(?:for|of)\s+{_REF}\W*$"
    rf"|what(?:'s|\s+is)\s+{_REF}(?:'s|’s|')\s+(?:time\s*zone|tz|local\s+time|time|load|team|schedule)\W*$"
    rf"|what\s+time\s*zone\s+is\s+{_REF}\s+in\W*$"
    rf"|where\s+is\s+{_REF}(?:\s+based)?{_NOW}"
    rf"|how\s+busy\s+is\s+{_REF}{_NOW}"
    rf"|what\s+is\s+{_REF}\s+(?:working\s+on|doing|on|busy\s+with){_NOW}"
    rf"|what(?:'s|\s+is)\s+on\s+{_REF}(?:'s|’s|')\s+plate{_NOW})", re.I)
_LIMIT = 8


def asked_person(text: str) -> str | None:
    """The person a question names (a ``<@U...>`` mention, or one or two words of a name), or None when ``text`` is
    not a question about a person."""
    m = PERSON_ASKED.match(text)
    if m is None:
        return None
    who = next(g for g in m.groups() if g)
    if who.startswith("<@"):
        return who
    words = who.lower().replace("’", "'").split()
    if any(w.strip("'.") in _NOT_A_NAME for w in words) or any(re.search(r"\d", w) for w in words):
        return None  # "who is on call", "who is the IC", "what is inc-113 doing"
    return who


def _named(s: Session, who: str) -> list[Expert]:
    """The experts ``who`` names: a mention's user id; else the full name, else a first or last name (any case)."""
    if m := re.match(rf"<@({USER_ID})", who):
        return list(people.experts_by_ids(session=s, user_ids=[m.group(1)]).values())
    name = " ".join(who.strip(" '.").removesuffix("'s").split()).lower()
    rows = s.scalars(select(Expert).where(func.lower(Expert.name) == name)).all()
    if rows:
        return list(rows)
    everyone = s.scalars(select(Expert).order_by(Expert.active.desc(), Expert.name)).all()
    return [e for e in everyone if name in e.name.lower().split()]


def people_named(s: Session, text: str) -> list[str]:
    """The Slack user ids of the people ``text`` names: every ``<@U...>`` mention (known or not: Slack notifies
    them), and the active experts whose full name, or a first or last name only one of them has, is a word of it
    ("page alice about #113")."""
    ids = re.findall(rf"<@({USER_ID})(?:\|[^>]*)?>", text)
    low = re.sub(r"<[^>]*>", " ", text).lower()
    words = set(re.findall(r"[a-z][\w'-]*", low)) - _NOT_A_NAME
    by_word: dict[str, list[str]] = {}
    for e in s.scalars(select(Expert).where(Expert.active.is_(True))):
        full = " ".join(e.name.lower().split())
        if full and re.search(rf"(?<![\w-]){re.escape(full)}(?![\w-])", low):
            ids.append(e.slack_user_id)
            continue
        for part in set(full.split()):
            by_word.setdefault(part, []).append(e.slack_user_id)
    ids += [only[0] for w, only in by_word.items() if w in words and len(only) == 1]
    return list(dict.fromkeys(ids))


def person(s: Session, who: str) -> SkillResult | None:
    """What the team knows about the person ``who`` names; None when ``who`` is no one the experts file knows and
    was not a mention (then the words were about something else: "who is pgbouncer?").

    Raises:
        SkillError: a mention of someone in no experts file, or a name several people share.
    """
    found = _named(s, who)
    if not found:
        if who.startswith("<@"):
            raise SkillError(f"{who} is in no experts file I know, so I cannot say their team, time zone or shifts: "
                             "`warroom experts import FILE` adds people.")
        return None
    if len(found) > 1:
        raise SkillError(f"Several people are called {esc(who.strip())}: " + ", ".join(
            f"<@{e.slack_user_id}> ({esc(e.name)}{', ' + esc(e.team.name) if e.team else ''})" for e in found[:_LIMIT])
            + ". Mention the one you mean.")
    e = found[0]
    now = utcnow().replace(microsecond=0)
    team = e.team.name if e.team else None
    head = f"<@{e.slack_user_id}> ({esc(e.name)})" + (f", {esc(team)} team" if team else ", in no team")
    if not e.active:
        on_call = [r for r in people.oncall_by_team(session=s, team=team)] if team else []
        instead = ", ".join(f"<@{u}>" for r in on_call for u, _ in r.people)
        return SkillResult(title=e.name, summary=f"{head}, has left (deactivated): routing and paging skip them."
                           + (f" On call for {esc(team)} now: {instead}." if instead else ""),
                           data={"user_id": e.slack_user_id, "active": False})
    loc = people.local_time(e.timezone, now)
    working = people.in_working_hours(e.timezone, now)
    lines = [f"*Local time*: {loc:%a %H:%M} ({esc(e.timezone)}), "
             + ("within working hours" if working else "outside working hours")
             + f" (weekdays {people.WORK_START_HOUR:02d}:00-{people.WORK_END_HOUR:02d}:00 there)"]
    shift_teams = set(s.scalars(select(Team.name).join(OnCallShift, OnCallShift.team_id == Team.id).where(
        OnCallShift.expert_id == e.id, OnCallShift.ends_at > now)).all())
    on_now = [r for t in sorted(shift_teams | ({team} if team else set()))
              for r in people.oncall_by_team(session=s, team=t) if e.slack_user_id in (u for u, _ in r.people)]
    if on_now:
        on_text = "; ".join(f"{esc(r.team)}" + (f" until {slack_when(r.until)}" if r.until else "") for r in on_now)
        lines.append(f"*On call*: now, for {on_text}")
    else:
        nxt = s.execute(select(OnCallShift.starts_at, Team.name).join(Team, Team.id == OnCallShift.team_id).where(
            OnCallShift.expert_id == e.id, OnCallShift.starts_at > now).order_by(OnCallShift.starts_at)
            .limit(1)).first()
        lines.append("*On call*: not now" + (f"; next shift {slack_when(nxt[0])} for {esc(nxt[1])} (as scheduled)"
                                             if nxt else "; no shift scheduled"))
    from skills.incident import roles_of  # the roles as the incident skill keeps them

    mine: list[str] = []
    for inc in s.scalars(select(Incident).where(Incident.status.in_(people.OPEN_STATUSES))
                         .order_by(Incident.severity, Incident.id)):
        held = [r for r, uid in roles_of(inc).items() if uid == e.slack_user_id]
        if held:
            mine.append(f"#{inc.id} SEV{inc.severity} {esc(inc.title[:60])} ({', '.join(held)})")
    lines.append(f"*Open incidents*: {len(mine)}" + (": " + "; ".join(mine[:_LIMIT]) if mine else ""))
    if e.services or e.skills:
        lines.append("*Knows*: " + ", ".join(esc(str(x)) for x in [*(e.services or []), *(e.skills or [])][:12]))
    busy = f"on {len(mine)} open incident(s)" if mine else "on no open incident"
    summary = (f"{head}: {loc:%H:%M} there ({'working hours' if working else 'outside working hours'}), "
               f"{'on call now' if on_now else 'not on call now'}, {busy}.")
    return SkillResult(title=e.name, summary=summary, sections=(Section("", tuple(lines)),),
                       data={"user_id": e.slack_user_id, "active": True, "on_call": [r.team for r in on_now],
                             "working_hours": working, "open_incidents": len(mine)})
