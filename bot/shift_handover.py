"""At each on-call shift change, the handover goes to the team's channel by itself.

``oncall.plan`` looks up, for every team, the next time one of its shifts starts or ends, and queues one
``oncall.shift_change`` job for then (keyed by team and time, so planning again, from any process, queues
nothing twice). It runs when the bot's workers start and after `warroom experts import` /
`warroom oncall import-ical`. The change job posts in the team's Slack channel (else the incident channel)
who hands over to whom and the handover of the team's services over the shift that ended (``skills.handover``:
open incidents with their last update, what was resolved and how, runbook runs waiting, alerts), then plans
the next change. Nothing is posted when the same people stay on call, nor for a change the bot missed by more
than ``STALE`` (it was down): a handover hours late would be misleading.

``oncall.top_up`` writes the rotations' turns ahead (``knowledge.rotations.top_up``) and expands the kept iCal
calendars again, fetching those imported from a URL (``knowledge.people_import.refresh_calendars``): once when the
workers start, then every hour, keyed by the hour, so replicas and restarts run it once an hour. Without it a
rotation ran out 8 weeks after its import (a calendar's repeating events 180 days after) and nobody was on call.

Each planning also looks 48 hours ahead (``GAP_NOTICE``) for a time when nobody will be on call and tells the team's
channel once ("Heads-up: *nobody* will be on call for payments from ..."), keyed by team and gap start.

``oncall.announce`` tells a team's channel of a cover set or ended with ``/oncall cover|release`` in another channel
(skills/oncall_cover.py), queued in the same transaction as the change.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from knowledge import jobs
from knowledge.models import Expert, OnCallShift, Service, Team, utcnow
from knowledge.people import coverage_gaps, oncall_now, shifts_now
from knowledge.people_import import refresh_calendars
from knowledge.rotations import top_up
from skills.base import SkillResult, esc, slack_when
from skills.handover import DEFAULT_HOURS, MAX_HOURS, handover

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bot.services import Services

__all__ = ["register", "schedule_top_up", "top_up_now", "deactivated", "deactivate", "PLAN", "CHANGE", "TOP_UP",
           "ANNOUNCE", "DEACTIVATED"]

PLAN, CHANGE, TOP_UP, ANNOUNCE = "oncall.plan", "oncall.shift_change", "oncall.top_up", "oncall.announce"
DEACTIVATED = "slack.user_deactivated"
SOON = dt.timedelta(days=7)  # a deactivated person's shifts this far ahead are named to their team
EVERY_S = 3600  # oncall.top_up: rotations written ahead, calendars fetched and expanded again
STALE = dt.timedelta(hours=1)
GAP_NOTICE = dt.timedelta(hours=48)  # a gap in the schedule this far ahead is told to the team's channel, once
log = logging.getLogger("warroom.oncall")


def _plan(services: Services) -> None:
    """Queue the next shift change of every team."""
    if not services.settings.shift_handovers():
        return
    now, nxt = utcnow(), {}
    with services.db.session() as s:
        for edge in (OnCallShift.starts_at, OnCallShift.ends_at):  # a shift starting, or one ending (the
            # rotation takes over again after an override)
            for team_id, at in s.execute(select(OnCallShift.team_id, func.min(edge)).where(edge > now)
                                         .group_by(OnCallShift.team_id)).all():
                nxt[team_id] = min(at, nxt.get(team_id, at))
    for team_id, at in nxt.items():
        services.runner.submit(CHANGE, {"team_id": int(team_id), "at": at.isoformat()},
                               f"shiftchange:{team_id}:{at:%Y%m%dT%H%M%S}", delay_s=(at - now).total_seconds())
    _warn_of_gaps(services, now)


def _warn_of_gaps(services: Services, now: dt.datetime) -> None:
    """Tell a team's channel, once, of a time in the next ``GAP_NOTICE`` when nobody will be on call (a calendar
    that ends, a cover that ends in a hole, everyone on shift deactivated): at the change itself it is too late."""
    with services.db.session() as s:
        notices = []
        for team in s.scalars(select(Team).order_by(Team.id)):
            for start, end in coverage_gaps(session=s, team_id=team.id, since=now, until=now + GAP_NOTICE):
                if start <= now:
                    continue  # nobody on call now: /oncall and the handover already say so
                till = f"until {slack_when(end)}" if end else "with no shift after that"
                names = ", ".join(esc(n) for n in s.scalars(select(Service.name).where(Service.team_id == team.id)))
                notices.append((team.id, start, team.slack_channel or services.settings.slack_incident_channel, (
                    f"Heads-up: *nobody* will be on call for {esc(team.name)}" + (f" ({names})" if names else "")
                    + f" from {slack_when(start)} {till}. Take it with `/oncall cover {esc(team.name)} "
                    "...` when it starts, or fix the rotation or the calendar.")))
    for team_id, start, channel, text in notices:
        services.runner.submit(ANNOUNCE, {"channel": channel, "title": "On-call gap ahead", "summary": text},
                               f"oncall.gap:{team_id}:{start:%Y%m%dT%H%M%S}")


def top_up_now(services: Services, fetch: bool = True) -> int:
    """Write every rotation's turns up to ``knowledge.rotations.HORIZON`` ahead, and every kept calendar's repeating
    events up to ``knowledge.people_import.HORIZON_DAYS`` ahead, fetching the feeds again unless not ``fetch``;
    return how many shifts were written."""
    with services.db.session() as s:
        n = top_up(s)
    with services.db.session() as s:
        m = refresh_calendars(s, fetch=fetch)
    if n or m:
        log.info("wrote %d rotation shifts ahead; calendars expanded again: %d shifts", n, m)
    return n + m


def schedule_top_up(services: Services, delay_s: float = 0.0) -> None:
    """Queue the top-up of the hour ``delay_s`` from now (once an hour, whoever asks)."""
    slot = int((utcnow().timestamp() + delay_s) // EVERY_S)
    services.runner.submit(TOP_UP, {}, f"{TOP_UP}:{slot}", delay_s=delay_s)


def deactivated(services: Services, user_id: str) -> int:
    """Someone was deactivated in Slack (they left): :func:`deactivate` them; return how many teams are told."""
    with services.db.session() as s:
        told = deactivate(s, user_id, channel=services.settings.slack_incident_channel, why="was deactivated in Slack")
    if told >= 0:
        log.info("%s was deactivated in Slack: expert marked inactive, %d team(s) told", user_id, told)
    return max(told, 0)


def deactivate(s: Session, user_id: str, *, channel: str, why: str) -> int:
    """Mark the expert inactive, so routing, pages and ``/oncall`` skip them, and, in the same transaction, queue the
    notice to each team that had them on call now or in the next ``SOON`` (``oncall.announce``, in the team's channel,
    else ``channel``: a Slack hiccup retries it, never loses it). ``why`` ends "<@U> (Name) ...". Return how many teams
    are told; -1 for someone warroom does not know or already marked inactive (nothing done)."""
    now = utcnow()
    e = s.scalar(select(Expert).where(Expert.slack_user_id == user_id))
    if e is None or not e.active:
        return -1
    e.active = False
    rows = s.execute(select(OnCallShift.team_id, func.min(OnCallShift.starts_at), func.max(OnCallShift.ends_at))
                     .where(OnCallShift.expert_id == e.id, OnCallShift.ends_at > now,
                            OnCallShift.starts_at < now + SOON).group_by(OnCallShift.team_id)).all()
    told = 0
    for team_id, first, last in rows:
        team = s.get(Team, team_id)
        if team is None:
            continue
        now_on = ", ".join(f"<@{x.slack_user_id}>" for x in oncall_now(session=s, team_id=team.id, at=now))
        when = "now" if first <= now else f"from {slack_when(first)}"
        jobs.enqueue(s, kind=ANNOUNCE, dedup_key=f"oncall.deactivated:{user_id}:{team.id}", payload={
            "channel": team.slack_channel or channel,
            "title": "No longer on call",
            "summary": f"<@{user_id}> ({esc(e.name)}) {esc(why)}: warroom no longer routes or pages to them, and skips "
                       f"their {esc(team.name)} on-call shifts ({when} until {slack_when(last)}). On call now: "
                       f"{now_on or '*nobody*'}. Take their shifts with `/oncall cover {esc(team.name)} ...`, and fix "
                       "the rotation or the calendar."})
        told += 1
    return told


def _on_call(s: Session, team_id: int, at: dt.datetime) -> tuple[list[str], dt.datetime | None]:
    """Who is on call for the team at ``at`` (``knowledge.people.shifts_now``: a calendar shift overrides the
    rotation), and since when the earliest of their shifts runs."""
    rows = shifts_now(session=s, team_id=team_id, at=at)
    return sorted({e.slack_user_id for e, _, _ in rows}), min((start for _, _, start in rows), default=None)


def register(services: Services) -> None:
    """Register ``oncall.plan`` and ``oncall.shift_change`` on the runner."""
    from bot.handlers import deliver

    def plan(payload: dict[str, Any]) -> None:
        _plan(services)

    def change(payload: dict[str, Any]) -> None:
        at = dt.datetime.fromisoformat(str(payload["at"]))
        try:
            if utcnow() - at > STALE:
                return
            with services.db.session() as s:
                team = s.get(Team, int(payload["team_id"]))
                if team is None:
                    return
                before, began = _on_call(s, team.id, at - dt.timedelta(seconds=1))
                after, _ = _on_call(s, team.id, at)
                if before == after:
                    return  # the same people stay on call: nothing to hand over
                hours = (min(MAX_HOURS, max(1, round((at - began).total_seconds() / 3600))) if began
                         else DEFAULT_HOURS)
                names = list(s.scalars(select(Service.name).where(Service.team_id == team.id)))
                report = handover(s, hours, services=names or None)
                out = ", ".join(f"<@{u}>" for u in before) or "nobody"
                new = ", ".join(f"<@{u}>" for u in after) or "*nobody* (the schedule has a gap)"
                channel, name = team.slack_channel or services.settings.slack_incident_channel, team.name
            scope = f" ({', '.join(esc(n) for n in names)})" if names else ""
            result = SkillResult(title=f"On-call handover: {esc(name)}",
                                 summary=f"{out} hands {esc(name)}{scope} over to {new}. {report.summary}",
                                 sections=report.sections, data=report.data)
            deliver(services, result, {"channel": channel})
        finally:
            _plan(services)

    def top_up_job(payload: dict[str, Any]) -> None:
        try:
            top_up_now(services)
            _plan(services)  # a team whose shifts had run out has a next change again; gaps ahead are told
        finally:
            schedule_top_up(services, EVERY_S)

    def announce(payload: dict[str, Any]) -> None:  # a cover set or ended from Slack, told in the team's channel
        deliver(services, SkillResult(title=str(payload["title"]), summary=str(payload["summary"])),
                {"channel": str(payload["channel"])})

    def user_deactivated(payload: dict[str, Any]) -> None:
        if deactivated(services, str(payload["user"])):
            _plan(services)  # the gaps their shifts leave are told ahead

    services.runner.register(ANNOUNCE, announce)
    services.runner.register(DEACTIVATED, user_deactivated)
    services.runner.register(PLAN, plan)
    services.runner.register(CHANGE, change)
    services.runner.register(TOP_UP, top_up_job)
