"""``/oncall cover`` and ``/oncall release``: someone takes the pager for a while, from Slack.

"Can you take my shift tonight?" used to need a new iCal file. ``/oncall cover [team] [for 3h | until 18:00]`` puts
the requester (or ``<@someone>``) on call for the team from now on: an ``override`` shift, which wins over the
calendar and the rotation while it runs (``knowledge.people.shifts_now``), so ``/oncall``, routing, pages and the
shift-change handover all follow it. Without a time it runs to the end of the shift that counts now (another's
cover: its end, as ``/oncall`` says). ``until 18:00`` is the requester's own local time (their expert timezone), the
next 18:00 to come, unless a zone follows: ``UTC``, an IANA name, an offset (``UTC+2``) or a common abbreviation read
as the place's zone (``PST`` is Pacific time, summer or winter); an ambiguous one (``CST``) is refused. A new cover
replaces the one running. ``/oncall release [team]`` ends your cover now, or, naming a team you may set covers for,
the one running there. Only a member of the team, or whoever is
on call for it, can set who covers it; the person covering must be a known, active expert. Imports never touch
override shifts.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import jobs, people
from knowledge.models import Expert, OnCallShift, Team, utcnow
from skills.base import USER_ID, Section, SkillContext, SkillError, SkillResult, esc, slack_when
from skills.clock_words import zone_at

__all__ = ["cover", "release", "MAX_COVER", "USAGE"]

MAX_COVER = dt.timedelta(days=14)
_FOR = re.compile(r"\bfor\s+(\d{1,5})\s*(m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)\b", re.I)
# a time the two patterns above did not read ("for 1.5h", "until noon"): asked for, so never a silent default
_TIME_ASKED = re.compile(r"\bfor\s+\d|\b(?:until|till|til)\b", re.I)
_UNTIL = re.compile(r"\buntil\s+(tomorrow\s+)?(\d{1,2})(?::(\d{2}))?\s*(am|pm)?\b", re.I)
_MENTION = re.compile(rf"<@({USER_ID})(?:\|[^<>]*)?>")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
USAGE = "`/oncall cover [team] [for 3h | until 18:00] [<@someone>]`"


def _zone(text: str, at: int, own: str, is_team: Callable[[str], bool]) -> dt.tzinfo:
    """The zone written at ``text[at:]`` (after an ``until`` time), else the requester's own (``own``)."""
    return zone_at(text, at, own, is_team, USAGE)


def _when(text: str, tz: str, now: dt.datetime,
          is_team: Callable[[str], bool] = lambda _: False) -> tuple[dt.datetime | None, str]:
    """The end the words ask for (naive UTC), or None, and how to say it; ``is_team`` tells a team named in capitals
    after the time from a zone."""
    m = _FOR.search(text)
    if m:
        return now + dt.timedelta(seconds=int(m.group(1)) * _UNIT_S[m.group(2)[0].lower()]), ""
    m = _UNTIL.search(text)
    if not m:
        asked = _TIME_ASKED.search(text)
        if asked:
            words = text[asked.start():].split()[:3]
            raise SkillError(f"I cannot read `{esc(' '.join(words))}` as a time: say `for 90m`, `for 3h`, `for 2d` "
                             f"or `until 18:00`. {USAGE}")
        return None, ""
    hour, minute = int(m.group(2)), int(m.group(3) or 0)
    if m.group(4):  # 6pm, 12am
        if not 1 <= hour <= 12:
            raise SkillError(f"`{esc(m.group(0).strip())}` is not a time of day. {USAGE}")
        hour = hour % 12 + (12 if m.group(4).lower() == "pm" else 0)
    if hour > 23 or minute > 59:
        raise SkillError(f"`{esc(m.group(0).strip())}` is not a time of day. {USAGE}")
    zone = _zone(text, m.end(), tz, is_team)
    local_now = now.replace(tzinfo=dt.UTC).astimezone(zone)
    end = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if m.group(1) or end <= local_now:
        end = (end.replace(tzinfo=None) + dt.timedelta(days=1)).replace(tzinfo=zone)  # the same wall-clock time
    shown = "" if zone is dt.UTC else f" ({end:%H:%M} {zone})"
    return end.astimezone(dt.UTC).replace(tzinfo=None), shown


def _team(s: Session, text: str, me: Expert) -> Team:
    named = people.teams_in_text(session=s, text=text)
    if len(named) > 1:  # "cover payments and platform": the second was dropped, its pager left as it was
        raise SkillError(f"One team at a time: `/oncall cover {esc(named[0])} ...`, then `/oncall cover "
                         f"{esc(named[1])} ...`.")
    name = people.team_in_text(session=s, text=text)
    team = people.team_named(session=s, name=name) if name else (s.get(Team, me.team_id) if me.team_id else None)
    if team is None:
        raise SkillError(f"Which team? Name it, e.g. {USAGE}.")
    return team


def _me(s: Session, user_id: str | None) -> Expert:
    me = s.scalar(select(Expert).where(Expert.slack_user_id == user_id)) if user_id else None
    if me is None or not me.active:
        raise SkillError("Only people in the knowledge base can change who is on call: ask an admin to add you "
                         "(`warroom experts import`).")
    return me


def _announce(s: Session, team: Team, title: str, summary: str, origin: str | None) -> None:
    """The team hears of it in its own channel too (``oncall.announce``, bot/shift_handover.py), in the same
    transaction as the change."""
    if team.slack_channel and team.slack_channel != origin:
        jobs.enqueue(s, kind="oncall.announce", payload={"channel": team.slack_channel, "title": title,
                                                          "summary": summary})


def cover(text: str, user_id: str | None, ctx: SkillContext, origin: str | None = None) -> SkillResult:
    """Put the requester (or the person mentioned) on call for a team from now on; ``origin``: the channel asked
    in (the team's channel is told too when it is another)."""
    now = utcnow().replace(microsecond=0)
    mention = _MENTION.search(text)
    rest = _MENTION.sub(" ", text)
    with ctx.db.session() as s:
        me = _me(s, user_id)
        who = me if mention is None else s.scalar(select(Expert).where(Expert.slack_user_id == mention.group(1)))
        if who is None or not who.active:
            raise SkillError(f"<@{mention.group(1) if mention else user_id}> is not an active expert in the "
                             "knowledge base, so cannot be put on call.")
        team = _team(s, _FOR.sub(" ", _UNTIL.sub(" ", rest)), me)
        current = people.oncall_now(session=s, team_id=team.id, at=now)
        if me.team_id != team.id and me not in current:
            raise SkillError(f"Only a member of {esc(team.name)}, or whoever is on call for it, can change who "
                             "covers it.")
        end, local = _when(rest, me.timezone, now, lambda w: people.team_named(session=s, name=w) is not None)
        if end is None:  # to the end of the shift that counts now (another's cover: its end, as /oncall says)
            _, end = people.shift_end(session=s, team_id=team.id, at=now)
            if end is None:
                raise SkillError(f"Nobody is on call for {esc(team.name)} now, so there is no shift to take over: "
                                 f"say until when, e.g. {USAGE}.")
        if end <= now:
            raise SkillError(f"That cover would end before it starts. {USAGE}")
        if end - now > MAX_COVER:
            raise SkillError(f"A cover runs at most {MAX_COVER.days} days; for longer, change the rotation or the "
                             "calendar (`warroom experts import`, `warroom oncall import-ical`).")
        for earlier in s.scalars(select(OnCallShift).where(  # a new cover replaces the one running now
                OnCallShift.team_id == team.id, OnCallShift.source == "override", OnCallShift.starts_at <= now,
                OnCallShift.ends_at > now)):
            earlier.ends_at = now
        s.add(OnCallShift(team_id=team.id, expert_id=who.id, starts_at=now, ends_at=end, source="override"))
        jobs.enqueue(s, kind="oncall.plan", payload={})  # the handover at the cover's end
        instead = [e for e in current if e.id != who.id]
        by = "" if who.slack_user_id == user_id else f" Set by <@{user_id}>."
        replaced = f", instead of {', '.join(f'<@{e.slack_user_id}>' for e in instead)}" if instead else ""
        result = SkillResult(
            title=f"On-call cover: {esc(team.name)}",
            summary=(f"<@{who.slack_user_id}> is on call for {esc(team.name)} from now until "
                     f"{slack_when(end)}{local}{replaced}.{by} `/oncall release {esc(team.name)}` ends it "
                     "early."),
            data={"team": team.name, "user": who.slack_user_id, "until": end.isoformat()})
        _announce(s, team, result.title, result.summary, origin)
    return result


def release(text: str, user_id: str | None, ctx: SkillContext, origin: str | None = None) -> SkillResult:
    """End the requester's running cover of a team now (the calendar or rotation takes over again). Not covering
    it, whoever may set a team's cover (a member, or whoever is on call for it) may end the one running: a cover
    set for someone else by mistake could be ended only by the person covering."""
    now = utcnow().replace(microsecond=0)
    with ctx.db.session() as s:
        me = _me(s, user_id)
        name = people.team_in_text(session=s, text=text)
        teams = [people.team_named(session=s, name=name)] if name else None
        q = select(OnCallShift).where(OnCallShift.source == "override", OnCallShift.starts_at <= now,
                                      OnCallShift.ends_at > now)
        if teams:
            q = q.where(OnCallShift.team_id.in_([t.id for t in teams if t is not None]))
        running = list(s.scalars(q.where(OnCallShift.expert_id == me.id)))
        team = teams[0] if teams else None
        if not running and team is not None:  # someone else's cover of a team named
            if me.team_id != team.id and me not in people.oncall_now(session=s, team_id=team.id, at=now):
                raise SkillError(f"You are not covering {esc(team.name)}, and only a member of it, or whoever is on "
                                 "call for it, can end another's cover.")
            running = list(s.scalars(q))
        if not running:
            raise SkillError("You are not covering " + (esc(name) if name else "any team") + " now" + (
                ", and nobody else is." if team is not None else "."))
        after: dict[str, list[str]] = {}
        whose: set[str] = set()
        for shift in running:
            shift.ends_at = now
        s.flush()
        for shift in running:
            team = s.get(Team, shift.team_id)
            if team is None:
                continue
            after[team.name] = [e.slack_user_id for e in people.oncall_now(session=s, team_id=team.id, at=now)]
            who = ", ".join(f"<@{u}>" for u in after[team.name]) or "nobody"
            covering = s.scalar(select(Expert.slack_user_id).where(Expert.id == shift.expert_id)) or user_id
            ended = "" if covering == user_id else f" Ended by <@{user_id}>."
            _announce(s, team, f"On-call cover ended: {esc(team.name)}",
                      f"<@{covering}> is no longer covering {esc(team.name)}; on call now: {who}.{ended}", origin)
            whose.add(covering)
        jobs.enqueue(s, kind="oncall.plan", payload={})
    names = sorted(after)
    lines = tuple(f"*{esc(n)}*: " + (", ".join(f"<@{u}>" for u in after[n]) or "nobody on call now") for n in names)
    by = "" if whose == {user_id} else f" Ended by <@{user_id}>."
    return SkillResult(title="On-call cover ended", summary=f"{', '.join(f'<@{u}>' for u in sorted(whose))} "
                       f"{'is' if len(whose) == 1 else 'are'} no longer covering {esc(', '.join(names))}.{by}",
                       sections=(Section("On call now", lines),), data={"teams": names})
