"""Swapping on-call shifts from Slack: "swap my shift with alice next week", "can I trade my on-call week with @carla?",
"switch my dec 24 shift with Bob". These got the help ("I am not sure what you need"); a swap needed two calendar
edits or two ``/oncall cover`` commands typed at the right moments.

The asker's shift is the one running at the moment named (none: now, else their next one), on their rotation or
calendar (a cover is no shift of theirs to give away); the other person's is their next shift on the same team after
it (else the last one before it still to come), within ``WEEKS`` weeks. Nothing changes until the other person
presses **Accept swap** (only they can; the asker or they can decline): then each gets an ``override`` shift over the
other's (``knowledge.people.winning``: a cover beats the calendar and the rotation), so ``/oncall``, routing, pages,
``/oncall mine`` and the handover follow it, and the team's channel is told. The shifts are checked again on the
click: one that changed since is said, not swapped.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import people
from knowledge.models import Expert, OnCallShift, Team, utcnow
from skills.base import USER_ID, Action, SkillError, SkillResult, esc, slack_when
from skills.clock_words import moment, own_zone
from skills.oncall_cover import _announce, _me

__all__ = ["SWAP_ASKED", "swap_request", "swap_answer", "WEEKS"]

WEEKS = 8
SWAP_ASKED = re.compile(
    # "swap my shift with alice next week", "can I trade my on-call week with @carla?", "I'd like to switch shifts
    # with bob", "please swap my dec 24 shift with <@U0BOB>"
    r"^\W*(?:(?:can|could|may)\s+i\s+|i(?:'d|\s+would)\s+like\s+to\s+|i\s+(?:want|need)\s+to\s+|please\s+|pls\s+"
    r"|let'?s\s+)?(?:swap|trade|switch|exchange)\s+(?:my\s+|our\s+)?(?:[\w\s,'-]{0,30}?\s)?(?:on[- ]?call\s+)?"
    r"(?:shifts?|weeks?|on[- ]?call|rotations?|pager|turns?)\b"
    # "swap with alice next week", "trade with @carla"
    r"|^\W*(?:swap|trade|switch)\s+with\s+", re.I)
_WITH = re.compile(rf"\bwith\s+(?:<@(?P<id>{USER_ID})(?:\|[^>]*)?>|@?(?P<name>[A-Za-z][\w.'-]*(?:\s+[A-Z][\w'-]*)?))")
_USAGE = "`@warroom swap my shift with @someone [next week | on dec 24]`"
_VALUE = re.compile(r"^(?P<a>\d{1,10}):(?P<b>\d{1,10}):(?P<asker>[A-Z0-9]{2,32}):(?P<other>[A-Z0-9]{2,32})$")


def _own_shifts(s: Session, who: Expert, team_id: int | None, after: dt.datetime,
                until: dt.datetime) -> list[OnCallShift]:
    """``who``'s rotation and calendar shifts ending after ``after`` and starting before ``until``, earliest first
    (a cover they took is not theirs to give away)."""
    q = select(OnCallShift).where(OnCallShift.expert_id == who.id, OnCallShift.source != "override",
                                  OnCallShift.ends_at > after, OnCallShift.starts_at < until)
    if team_id is not None:
        q = q.where(OnCallShift.team_id == team_id)
    return list(s.scalars(q.order_by(OnCallShift.starts_at, OnCallShift.id).limit(200)))


def _span(x: OnCallShift, now: dt.datetime) -> str:
    return f"{slack_when(max(x.starts_at, now))} → {slack_when(x.ends_at)}"


def swap_request(s: Session, text: str, user_id: str | None) -> SkillResult:
    """Find the two shifts and ask the other person, with Accept and Decline buttons."""
    from skills.person import people_named

    now = utcnow().replace(microsecond=0)
    me = _me(s, user_id)
    m = _WITH.search(text)
    if m is None or (m.group("name") or "").lower() in ("me", "someone", "anyone", "somebody", "anybody"):
        raise SkillError(f"Swap with whom? {_USAGE}. To hand your pager to anyone who can take it: `can someone "
                         "cover for me?`")
    ids = [m.group("id")] if m.group("id") else people_named(s, m.group("name"))
    if len(ids) != 1:
        raise SkillError(f"{'Several people are' if ids else 'I know nobody'} called `{esc(m.group('name')[:40])}`: "
                         f"mention the one you mean. {_USAGE}")
    other = s.scalar(select(Expert).where(Expert.slack_user_id == ids[0]))
    if other is None or not other.active:
        raise SkillError(f"<@{ids[0]}> is not an active expert in the knowledge base, so has no shifts to swap.")
    if other.id == me.id:
        raise SkillError("That is you: name the person to swap with.")
    rest = text[:m.start()] + " " + text[m.end():]
    when = moment(rest, me.timezone or "", now, usage=_USAGE,
                  is_team=lambda w: people.team_named(session=s, name=w) is not None)
    at = when.at if when is not None else now
    teams = [t for n in people.teams_in_text(session=s, text=rest)
             if (t := people.team_named(session=s, name=n)) is not None]
    horizon = now + dt.timedelta(weeks=WEEKS)
    start, end = max(at, now), at + dt.timedelta(seconds=1)  # a moment said: the shift running then
    if when is not None and re.search(r"\bnext\s+week\b", when.said, re.I):  # the week from next Monday
        local = now.replace(tzinfo=dt.UTC).astimezone(own_zone(me.timezone or ""))
        monday = (local + dt.timedelta(days=7 - local.weekday())).replace(hour=0, minute=0, second=0)
        start = monday.astimezone(dt.UTC).replace(tzinfo=None)
        end = start + dt.timedelta(days=7)
    elif when is None:  # none said: the one running now, else the next
        end = horizon
    team_id = teams[0].id if teams else None
    mine = _own_shifts(s, me, team_id, start, min(end, horizon))
    if not mine:
        after = _own_shifts(s, me, team_id, start, horizon)
        said = f" {esc(when.said)} ({slack_when(start)})" if when is not None else ""
        raise SkillError(f"You have no shift{said} to swap" + (
            f": your next is {_span(after[0], now)}, say `swap my shift with @someone on "
            f"{after[0].starts_at:%b %d}`." if after else f" in the next {WEEKS} weeks (`/oncall mine` lists yours)."))
    a = mine[0]
    team = s.get(Team, a.team_id)
    assert team is not None
    theirs = _own_shifts(s, other, a.team_id, now, horizon)
    after = [x for x in theirs if x.starts_at >= a.ends_at]
    before = [x for x in theirs if x.ends_at <= a.starts_at]
    b = after[0] if after else before[-1] if before else None
    if b is None:
        raise SkillError(f"<@{other.slack_user_id}> has no {esc(team.name)} shift in the next {WEEKS} weeks that does "
                         f"not overlap yours ({_span(a, now)}), so there is nothing to swap; they can cover yours "
                         "instead when it starts (`/oncall cover`).")
    summary = (f"<@{other.slack_user_id}>: <@{me.slack_user_id}> asks to swap {esc(team.name)} on-call shifts with "
               f"you. You would take theirs, {_span(a, now)}; they would take yours, {_span(b, now)}. Nothing changes "
               "until you press Accept swap.")
    value = f"{a.id}:{b.id}:{me.slack_user_id}:{other.slack_user_id}"
    return SkillResult(title=f"Shift swap: {team.name}", summary=summary,
                       actions=(Action("routing:swap_accept", "Accept swap", value, "primary"),
                                Action("routing:swap_decline", "Decline", value)),
                       data={"team": team.name, "shifts": [a.id, b.id], "with": other.slack_user_id})


def swap_answer(s: Session, value: str, clicker: str | None, accept: bool, origin: str | None) -> SkillResult:
    """The other person's answer. Accepting checks both shifts again, then writes the two override shifts (once:
    a second click finds them) and tells the team's channel."""
    v = _VALUE.match(value or "")
    if v is None:
        raise SkillError("This button does not carry a shift swap.")
    asker, other = v.group("asker"), v.group("other")
    if clicker not in ((other,) if accept else (other, asker)):
        raise SkillError(f"Only <@{other}> can {'accept' if accept else 'decline'} this swap.")
    if not accept:
        return SkillResult(title="Shift swap declined",
                           summary=f"<@{clicker}> declined the swap of <@{asker}>'s and <@{other}>'s shifts. Nothing "
                           "changed.")
    a, b = s.get(OnCallShift, int(v.group("a"))), s.get(OnCallShift, int(v.group("b")))
    me = s.scalar(select(Expert).where(Expert.slack_user_id == asker))
    them = s.scalar(select(Expert).where(Expert.slack_user_id == other))
    now = utcnow().replace(microsecond=0)
    if (a is None or b is None or me is None or them is None or a.expert_id != me.id or b.expert_id != them.id
            or a.team_id != b.team_id):
        raise SkillError("These shifts changed since the swap was asked (a calendar import, a rotation change): ask "
                         "again, `swap my shift with @someone`.")
    if not (me.active and them.active):
        raise SkillError("One of you is no longer an active expert, so the swap cannot be made.")
    if b.ends_at <= now or a.ends_at <= now:
        raise SkillError("One of these shifts is over: ask again for the next ones.")
    team = s.get(Team, a.team_id)
    assert team is not None
    made = 0
    for shift, taker in ((a, them), (b, me)):
        done = s.scalar(select(OnCallShift.id).where(  # a second click (or a retried one) finds it made
            OnCallShift.team_id == shift.team_id, OnCallShift.expert_id == taker.id, OnCallShift.source == "override",
            OnCallShift.ends_at == shift.ends_at, OnCallShift.starts_at >= shift.starts_at))
        if done is None:
            s.add(OnCallShift(team_id=shift.team_id, expert_id=taker.id, starts_at=max(shift.starts_at, now),
                              ends_at=shift.ends_at, source="override"))
            made += 1
    if not made:
        return SkillResult(title="Shift swap", summary=f"This swap was already made: <@{other}> has <@{asker}>'s "
                           f"shift ({_span(a, now)}) and <@{asker}> has <@{other}>'s ({_span(b, now)}).")
    summary = (f"Swapped {esc(team.name)} on-call shifts: <@{other}> takes {_span(a, now)} (for <@{asker}>), "
               f"<@{asker}> takes {_span(b, now)} (for <@{other}>). `/oncall {esc(team.name)}` and `/oncall mine` "
               "show it; pages and routing follow it.")
    _announce(s, team, f"Shift swap: {team.name}", summary, origin)
    return SkillResult(title=f"Shift swap: {team.name}", summary=summary, data={"swapped": [a.id, b.id]})
