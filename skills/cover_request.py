"""Asking the team to take one's pager: "I'm sick, can someone cover?", "can anyone take my pager for 3h?", "I need
someone to cover my shift until 18:00". These got "I don't know" from the knowledge base, or the help.

The answer names the team and the span (to the end of the asker's shift, or the "for 3h" / "until 18:00" said), who of
the team is within working hours now (the likeliest to say yes), and carries an **I'll cover** button: whoever clicks
it is put on call for the team through ``/oncall cover`` (``skills/oncall_cover.py``), with all of its rules (a member
of the team, an active expert, at most 14 days). The team's channel is told too when the request was made elsewhere,
with the command that takes it. Someone who is not on call now is told so, and when their next shift starts: a cover
starts now.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import people
from knowledge.models import Expert, OnCallShift, Team, utcnow
from skills.base import Action, SkillError, SkillResult, esc, slack_when
from skills.oncall_cover import _FOR, _UNTIL, _announce, _when

__all__ = ["COVER_ASKED", "TAKE_ASKED", "cover_request", "cover_value", "parse_take", "take_offer"]

_WHO = r"(?:some|any)(?:one|body)"
_MINE = r"(?:my\s+(?:pager|shift|on[- ]?call|rotation|watch)|the\s+pager)"
# "cover", "cover for me", "take my pager", "hold the pager" (not "take a look")
_TAKE = (rf"(?:cover(?:\s+(?:for\s+me|me|{_MINE})|(?=\W*$)|(?=\s+(?:for|until|till|til)\s+(?:tomorrow\s+)?\d)"
         rf"|(?=\s+(?:tonight|today|now)\b))|(?:take|hold|watch)\s+(?:over\s+)?{_MINE})")
COVER_ASKED = re.compile(
    # "can someone cover for me?", "could anybody take my pager tonight?", "I'm sick, can someone cover?"
    rf"^(?:.{{0,60}}?[,.;:!-])?\W*+(?:can|could|would|will)\s+{_WHO}\s+(?:please\s+)?{_TAKE}\b"
    # "I need someone to take my pager", "I need a cover until 18:00", "need cover for 3h"
    rf"|^\W*(?:i\s+)?need\s+(?:{_WHO}\s+to\s+{_TAKE}|(?:a\s+)?cover\b)"
    # "who can cover for me?", "who can take my pager?"
    r"|^\W*who\s+(?:can|could|will)\s+(?:cover|take|hold)\s+(?:for\s+me|me|my\s+(?:pager|shift|on[- ]?call))"
    # "cover me", "please cover my shift"
    r"|^\W*(?:please\s+)?cover\s+(?:for\s+)?(?:me|my\s+(?:pager|shift|on[- ]?call))\b", re.I)
# "I'll take the pager for platform", "I'm taking over the pager": answered with the command and a button, since
# "tomorrow" or "tonight" may follow and a cover starts when it is set
TAKE_ASKED = re.compile(r"^\W*(?:i'?ll|i\s+will|i'?m|i\s+am|let\s+me|i\s+can|i\s+could)\s+(?:take|taking|grab|grabbing"
                        r"|hold|holding)\s+(?:over\s+)?(?:the\s+)?(?:pager|on-?call|shift)\b", re.I)
_VALUE = re.compile(r"^(?P<team>[\w.-]{1,100})\|(?P<span>[\w: ]{0,40})\|(?P<who>[A-Z0-9]{2,32})$")


def _span(text: str, me: Expert, now: dt.datetime, s: Session) -> str:
    """The span said, as ``/oncall cover`` reads it: "for 3h" (from when it is taken), "until 18:00" in the asker's
    time zone (or the zone written), handed on in UTC, since whoever takes it may live elsewhere; "" for the rest of
    the shift."""
    if m := _FOR.search(text):
        return " ".join(m.group(0).split())
    if not _UNTIL.search(text):
        return ""
    end, _ = _when(text, me.timezone, now, lambda w: people.team_named(session=s, name=w) is not None)
    if end is None:  # pragma: no cover - _UNTIL matched
        return ""
    return f"until {'tomorrow ' if end.date() > now.date() else ''}{end:%H:%M} UTC"


def _asker_and_team(s: Session, text: str, user_id: str | None, what: str, example: str) -> tuple[Expert, Team]:
    """The asker (an active expert) and the team the words name, else theirs.

    Raises:
        SkillError: the asker is in no experts file, or names no team and has none.
    """
    me = s.scalar(select(Expert).where(Expert.slack_user_id == user_id)) if user_id else None
    if me is None or not me.active:
        raise SkillError(f"Only people in the experts file can {what}: ask an admin to add you "
                         "(`warroom experts import`).")
    named = people.teams_in_text(session=s, text=text)
    team = people.team_named(session=s, name=named[0]) if named else me.team
    if team is None:
        raise SkillError(f"Which team's pager? Name it: \"{example}\"")
    return me, team


def cover_value(team: str, span: str, requester: str) -> str:
    return f"{team}|{span}|{requester}"


def cover_request(s: Session, text: str, user_id: str | None, origin: str | None = None) -> SkillResult:
    """Ask the asker's team (or the team named) for someone to take the pager from now.

    Raises:
        SkillError: the asker is in no experts file, or names no team and has none.
    """
    me, team = _asker_and_team(s, text, user_id, "hand their pager over", "can someone cover payments for me?")
    now = utcnow().replace(microsecond=0)
    (oc,) = people.oncall_by_team(session=s, team=team.name, at=now)
    span = _span(text, me, now, s)
    if me.slack_user_id not in (u for u, _ in oc.people):
        nxt = s.scalar(select(OnCallShift.starts_at).where(OnCallShift.team_id == team.id,
                                                            OnCallShift.expert_id == me.id,
                                                            OnCallShift.starts_at > now)
                       .order_by(OnCallShift.starts_at).limit(1))
        who = " and ".join(f"<@{u}>" for u, _ in oc.people) or "nobody"
        raise SkillError(f"You are not on call for {esc(team.name)} now ({who} is). A cover starts when it is set, so "
                         + (f"ask again when your next shift starts, {slack_when(nxt)}: whoever takes it then says "
                            f"`/oncall cover {esc(team.name)}`." if nxt else "there is nothing of yours to hand over."))
    until = f"for {span.removeprefix('for ')}" if span.startswith("for") else span or (
        f"until {slack_when(oc.until)} (the end of your shift)" if oc.until else "to the end of your shift")
    members = [e for e in s.scalars(select(Expert).where(Expert.team_id == team.id, Expert.active.is_(True))
                                    .order_by(Expert.name)) if e.id != me.id]
    awake = [e for e in members if people.in_working_hours(e.timezone, now)]
    ask = (f"<@{me.slack_user_id}> asks for someone to take the {esc(team.name)} pager from now {until}.")
    who_line = ("Within working hours now: " + ", ".join(f"<@{e.slack_user_id}>" for e in awake[:8]) + "."
                if awake else "Nobody else in the team is within working hours now.")
    how = f"`/oncall cover {esc(team.name)}{' ' + span if span else ''}` takes it"
    _announce(s, team, f"Cover wanted: {team.name}", f"{ask} {who_line} {how}.", origin)
    return SkillResult(title=f"Cover wanted: {esc(team.name)}", summary=f"{ask} {who_line} *I'll cover* (or {how}) "
                       "puts whoever clicks it on call instead; nothing changes until someone does.",
                       actions=(Action("routing:cover", "I'll cover", cover_value(team.name, span,
                                                                                   me.slack_user_id), "primary"),),
                       data={"team": team.name, "span": span, "awake": [e.slack_user_id for e in awake]})


def parse_value(value: str) -> tuple[str, str, str]:
    """(team, span, requester) of an *I'll cover* button."""
    m = _VALUE.match(value.strip())
    if m is None:
        raise SkillError("this button does not name a team and who asked")
    return m.group("team"), m.group("span").strip(), m.group("who")


def take_offer(s: Session, text: str, user_id: str | None) -> SkillResult:
    """"I'll take the pager for platform": the command that does it, and a button that does it now.

    Raises:
        SkillError: the asker is in no experts file, or names no team and has none.
    """
    me, team = _asker_and_team(s, text, user_id, "be on call", "I'll take the pager for payments")
    now = utcnow().replace(microsecond=0)
    span = _span(text, me, now, s)
    (oc,) = people.oncall_by_team(session=s, team=team.name, at=now)
    who = " and ".join(f"<@{u}>" for u, _ in oc.people) or "nobody"
    how = f"`/oncall cover {esc(team.name)}{' ' + span if span else ''}`"
    return SkillResult(title=f"Take the pager: {esc(team.name)}", summary=(
        f"On call for {esc(team.name)} now: {who}. *Take the pager* (or {how}) puts you on call from now "
        + (f"{span}." if span else "to the end of the current shift.")
        + " For later (tonight, tomorrow), say it then: a cover starts when it is set."),
        actions=(Action("routing:take_pager", "Take the pager", f"{team.name}|{span}", "primary"),),
        data={"team": team.name, "span": span})


def parse_take(value: str) -> tuple[str, str]:
    """(team, span) of a *Take the pager* button."""
    m = re.fullmatch(r"(?P<team>[\w.-]{1,100})\|(?P<span>[\w: ]{0,40})", value.strip())
    if m is None:
        raise SkillError("this button does not name a team")
    return m.group("team"), m.group("span").strip()
