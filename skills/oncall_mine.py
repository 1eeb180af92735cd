"""One person's own on-call: "when is my next shift?", "am I on call this weekend?", ``/oncall mine``.

``/oncall`` answers per team; a person wants their own weeks, across every team they are in, with what changes
them: a cover someone else took during their shift (they are off then), a cover they took for someone else, a
calendar swap. The shifts are the ``oncall_shifts`` rows (rotations written ahead, imported calendars, covers set
in Slack) of the next ``DAYS`` days, merged as ``/oncall`` merges them (``knowledge.people.winning``: a cover beats
the calendar, the calendar the rotation), so the answer and ``/oncall`` never disagree.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import people
from knowledge.models import Expert, OnCallShift, Team, utcnow
from skills.base import Section, SkillError, SkillResult, esc, slack_when
from skills.clock_words import Moment

__all__ = ["MINE_ASKED", "my_shifts", "DAYS"]

DAYS = 28
_LIMIT = 12
_SHIFT = r"(?:on[- ]?call\s+)?(?:shifts?|schedule|rota|rotation|turn|week)"
# "when is my next shift?", "what's my on-call schedule?", "my shifts", "am I on call this weekend?",
# "when am I on call next?"
MINE_ASKED = re.compile(
    rf"^\W*(?:(?:when(?:'s|\s+is|\s+does)\s+my\s+next\s+{_SHIFT}|when\s+am\s+i\s+(?:next\s+)?on[- ]?call"
    rf"|what(?:'s|\s+is|\s+are|\s+was)\s+my\s+(?:next\s+|last\s+|upcoming\s+)?{_SHIFT}"
    rf"|(?:show|list|give)\s+(?:me\s+)?my\s+(?:next\s+|upcoming\s+)?{_SHIFT}|my\s+(?:next\s+|upcoming\s+)?{_SHIFT}"
    r"|am\s+i\s+on[- ]?call"
    # "when does my shift end?", "when is my on-call over?", "when am I off call?", "how long is my shift?"
    rf"|when\s+(?:does|will|do)\s+my\s+{_SHIFT}\s+(?:end|start|finish|begin|stop)"
    rf"|when(?:'s|\s+is)\s+my\s+(?:{_SHIFT}|on[- ]?call)\s+(?:over|done|finished)"
    r"|when\s+am\s+i\s+(?:off|done|free)(?:[- ]?call)?|how\s+long\s+(?:is|until)\s+(?:the\s+end\s+of\s+)?my\s+"
    rf"{_SHIFT})\b)", re.I)
_SOURCE = {"override": "covering", "ical": "per the calendar", "rotation": "rotation"}


def _span(start: dt.datetime, end: dt.datetime) -> str:
    return f"{slack_when(start)} → {slack_when(end)}"


def my_shifts(s: Session, user_id: str | None, when: Moment | None = None, *, asked: bool = False) -> SkillResult:
    """``user_id``'s shifts in the next ``DAYS`` days, each with what changes it; ``when`` (with ``asked``, "am I
    on call ...?"): whether they are on call at that moment, by the same rules as ``/oncall``.

    Raises:
        SkillError: the asker is unknown (not in Slack, or in no experts file).
    """
    if not user_id:
        raise SkillError("Whose shifts? Ask in Slack: `/oncall mine`.")
    me = s.scalar(select(Expert).where(Expert.slack_user_id == user_id))
    if me is None:
        raise SkillError(f"<@{user_id}>, you are in no team I know, so in no rotation: ask whoever runs warroom to "
                         "add you to the experts file (`warroom experts import FILE`).")
    now = utcnow().replace(microsecond=0)
    team_names = dict(s.execute(select(Team.id, Team.name)).all())
    rows = s.execute(select(OnCallShift).where(
        OnCallShift.expert_id == me.id, OnCallShift.ends_at > now,
        OnCallShift.starts_at < now + dt.timedelta(days=DAYS)).order_by(OnCallShift.starts_at)).scalars().all()
    lines: list[str] = []
    for r in rows[:_LIMIT]:
        team = esc(team_names.get(r.team_id, "?"))
        line = f"*{team}* {_span(r.starts_at, r.ends_at)} ({_SOURCE.get(r.source, r.source)})"
        if r.starts_at <= now:
            line += " · *now*"
        beaten = ("override",) if r.source == "ical" else ("override", "ical") if r.source == "rotation" else ()
        others = s.execute(select(OnCallShift, Expert.slack_user_id).join(Expert, Expert.id == OnCallShift.expert_id)
                           .where(OnCallShift.team_id == r.team_id, OnCallShift.expert_id != me.id,
                                  OnCallShift.source.in_(beaten), OnCallShift.starts_at < r.ends_at,
                                  OnCallShift.ends_at > r.starts_at)).all() if beaten else []
        for o, uid in others:
            how = "covers" if o.source == "override" else "has it per the calendar"
            line += f"; <@{uid}> {how} {_span(max(o.starts_at, r.starts_at), min(o.ends_at, r.ends_at))}"
        lines.append(line)
    if len(rows) > _LIMIT:
        lines.append(f"… and {len(rows) - _LIMIT} more in the next {DAYS} days.")
    teams = sorted({team_names[r.team_id] for r in rows if r.team_id in team_names}
                   | ({me.team.name} if me.team else set()))

    def on_at(at: dt.datetime) -> list[str]:
        return [r.team for t in teams for r in people.oncall_by_team(session=s, team=t, at=at)
                if user_id in (u for u, _ in r.people)]

    def until(team: str) -> str:  # "payments until Mon 07 Dec 00:00 UTC": when the shift that counts now ends
        end = next((r.until for r in people.oncall_by_team(session=s, team=team, at=now) if r.until), None)
        return esc(team) + (f" until {slack_when(end)}" if end else "")

    if asked and when is not None:
        on = on_at(when.at)
        gone = when.at < now
        verb = ("were" if gone else "will be") if on else ("were not" if gone else "will not be")
        summary = (f"{'Yes' if on else 'No'}: you {verb} on call"
                   + (f" for {esc(', '.join(on))}" if on else "") + f" at {slack_when(when.at)}"
                   + (f" ({when.note})" if when.note else "") + ".")
    else:
        on = on_at(now)
        if on:
            summary = f"You are on call now for {', '.join(until(t) for t in on)}."
        else:
            nxt = next((r for r in rows if r.starts_at > now), None)
            summary = ("You are not on call now." + (f" Your next shift: *{esc(team_names.get(nxt.team_id, '?'))}* "
                                                      f"from {slack_when(nxt.starts_at)}." if nxt else ""))
    if not rows:
        summary += f" You have no shifts in the next {DAYS} days."
    return SkillResult(title="Your on-call shifts", summary=summary, ephemeral=True,
                       sections=(Section(f"Next {DAYS} days", tuple(lines)),) if lines else (),
                       data={"shifts": [{"team": team_names.get(r.team_id), "starts_at": r.starts_at.isoformat(),
                                         "ends_at": r.ends_at.isoformat(), "source": r.source} for r in rows]})
