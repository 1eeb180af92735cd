"""Who is who: teams, service ownership, experts, on-call shifts and current load.

Keyword-only data access used by the router (``skills.routing``) and the CLI. Imports of people
files (YAML/CSV) and on-call calendars (iCal) live in :mod:`knowledge.people_import`.

Example::

    with db.session() as s:
        svc = service_named(session=s, name="payments-api")
        now = oncall_now(session=s, team_id=svc.team_id)
        load = open_load(session=s, user_ids=[e.slack_user_id for e in now])
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from knowledge.models import Expert, Incident, OnCallShift, Service, Team, utcnow

_R = TypeVar("_R")

__all__ = [
    "OPEN_STATUSES", "WORK_START_HOUR", "WORK_END_HOUR", "OnCall", "team_named", "service_named", "teams_in_text",
    "Scope", "scope_in_text", "asker_scope",
    "services_in_text", "winning", "shifts_now", "shift_end", "coverage_gaps", "oncall_now", "oncall_by_team",
    "escalation_for", "open_load", "local_time", "in_working_hours", "experts_by_ids",
]

OPEN_STATUSES: tuple[str, ...] = ("open", "acknowledged", "mitigated")
WORK_START_HOUR, WORK_END_HOUR = 9, 18  # local working day, Monday to Friday


@dataclass(frozen=True)
class OnCall:
    """One team's on-call situation right now."""

    team: str
    channel: str | None
    people: tuple[tuple[str, str], ...]  # (slack user id, name), active experts on shift now
    skipped: tuple[str, ...] = ()  # names on shift who are deactivated
    until: dt.datetime | None = None
    # who takes over next (active experts), and when: at ``until``, or, with nobody on call now, the next shift;
    # ``next_at`` without ``next_people``: nobody after ``until``, a gap in the schedule
    next_people: tuple[tuple[str, str], ...] = ()
    next_at: dt.datetime | None = None
    source: str = ""  # of the shifts that count now: "override" (a cover), "ical" (a calendar) or "rotation"


def team_named(*, session: Session, name: str) -> Team | None:
    """The team called ``name`` (case-insensitive), or None."""
    return session.scalar(select(Team).where(func.lower(Team.name) == name.strip().lower()))


def service_named(*, session: Session, name: str) -> Service | None:
    """The service called ``name`` (case-insensitive), or None."""
    return session.scalar(select(Service).where(func.lower(Service.name) == name.strip().lower()))


def names_in_text(names: Iterable[str], text: str) -> list[str]:
    """Which of ``names`` ``text`` mentions as whole names ("ingest", not inside "ingestion" or "ingest-api"),
    in order of first mention (longer first on ties)."""
    low = text.lower()
    found = {}
    for n in set(names):
        m = re.search(rf"(?<![\w-]){re.escape(n.lower())}(?![\w-])", low) if n else None
        if m:
            found[n] = m.start()
    return sorted(found, key=lambda n: (found[n], -len(n), n))


def services_in_text(*, session: Session, text: str) -> list[str]:
    """Names of services in the Service table mentioned in ``text`` (see ``names_in_text``)."""
    return names_in_text(session.scalars(select(Service.name)).all(), text)


def known_services_in_text(*, session: Session, text: str) -> list[str]:
    """Like :func:`services_in_text`, over the catalogue and every service an incident was filed under."""
    known = set(session.scalars(select(Service.name)).all()) | set(session.scalars(
        select(Incident.service_name).where(Incident.service_name.is_not(None)).distinct()).all())
    return names_in_text(known, text)


@dataclass(frozen=True)
class Scope:
    """The services a request names: services, and the services of teams ("/incident stats payments platform")."""

    label: str  # "on payments-api", "on the payments team's services", "on ingest and the platform team's services"
    services: frozenset[str]
    names: tuple[str, ...]  # the words that named them, in the order written


def scope_in_text(*, session: Session, text: str) -> Scope | None:
    """Every service ``text`` names (catalogue, or one an incident was filed under) and every team it names (their
    catalogue services), or None when it names neither."""
    services = known_services_in_text(session=session, text=text)
    teams = [t for n in names_in_text(session.scalars(select(Team.name)).all(), text)
             if (t := team_named(session=session, name=n)) is not None]
    if not services and not teams:
        return None
    covered = set(services)
    for team in teams:
        covered |= set(session.scalars(select(Service.name).where(Service.team_id == team.id)))
    def listed(words: list[str]) -> str:
        return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"

    names = [t.name for t in teams]
    parts = [*services, *([f"the {listed(names)} team{'s' * (len(names) > 1)}'{'s' * (len(names) == 1)} services"]
                          if teams else [])]
    label = "on " + listed(parts)
    return Scope(label, frozenset(covered), tuple([*services, *(t.name for t in teams)]))


# A word after "on", "for", "of", "to", "in" where a service or team would be named ("freeze deploys on paymnts",
# "uptime of paymnts"), for questions that would otherwise answer for every service as if none had been named
_TARGET = re.compile(r"\b(?:on|for|to|of|in)\s+(?:the\s+)?([a-z][\w.-]+)", re.I)
_NOT_A_NAME = frozenset((
    "all everything every everyone everybody prod production now today tonight tomorrow yesterday a an us me good real "
    "sure it this that them our my your we you deploys deploy deployments releases changes services service weekend "
    "code merges freeze freezes hours hour minutes minute days day weeks week months month quarter quarters year "
    "years last past next team teams incidents incident uptime availability downtime average total general example "
    "case order time while monday tuesday wednesday thursday friday saturday sunday").split())


def unknown_target(text: str) -> str | None:
    """The first word after "on", "for", "of", "to" or "in" that stands where a service or team is named but is no
    ordinary word of such a request (`paymnts` in "freeze deploys on paymnts"); call it when nothing known was found,
    to say the word back instead of answering for everything."""
    for m in _TARGET.finditer(text):
        word = m.group(1).rstrip(".-")
        if word.lower() not in _NOT_A_NAME and not word.isdigit():
            return word
    return None


_OURS = re.compile(r"\b(?:mine|my|our|my\s+team'?s?)\b", re.I)


def asker_scope(*, session: Session, text: str, user_id: str | None) -> Scope | None:
    """What :func:`scope_in_text` finds, or, when the text names none but says "our", "my team's", "mine", the
    asker's team's services ("what changed on our services?", "noisiest alerts on my team's services")."""
    scope = scope_in_text(session=session, text=text)
    if scope is None and user_id and _OURS.search(text):
        me = session.scalar(select(Expert).where(Expert.slack_user_id == user_id))
        scope = scope_in_text(session=session, text=me.team.name) if me is not None and me.team else None
    return scope


def team_in_text(*, session: Session, text: str) -> str:
    """The first team named in free text, else the owner of the first service named ("" when neither)."""
    named = services_in_text(session=session, text=text)
    if named:  # "who is on call for ingest?": the team that owns ingest
        svc = session.scalars(select(Service).where(Service.name == named[0])).first()
        owner = session.get(Team, svc.team_id) if svc is not None and svc.team_id else None
        if owner is not None:
            return owner.name
    low = text.lower()
    names = [n for n in session.scalars(select(Team.name)) if re.search(rf"\b{re.escape(n.lower())}\b", low)]
    return min(names, key=lambda n: low.index(n.lower())) if names else ""


def teams_in_text(*, session: Session, text: str) -> list[str]:
    """Every team free text names, directly or by a service it owns, in the order named ("payments platform",
    "ingest and dns")."""
    low = text.lower()
    found: list[tuple[int, str]] = []
    for name in services_in_text(session=session, text=text):
        svc = session.scalars(select(Service).where(Service.name == name)).first()
        owner = session.get(Team, svc.team_id) if svc is not None and svc.team_id else None
        if owner is not None:
            found.append((low.find(name.lower()), owner.name))
    for n in session.scalars(select(Team.name)):
        if m := re.search(rf"\b{re.escape(n.lower())}\b", low):
            found.append((m.start(), n))
    return list(dict.fromkeys(n for _, n in sorted(found)))


def winning(rows: list[_R], source: Callable[[_R], str]) -> list[_R]:
    """Of the shifts running at one time, the ones that count: a cover set in Slack (source "override") replaces
    everything else, a calendar shift ("ical") the rotation."""
    for first in ("override", "ical"):
        if any(source(r) == first for r in rows):
            return [r for r in rows if source(r) == first]
    return rows


def shifts_now(*, session: Session, team_id: int, at: dt.datetime | None = None,
               include_inactive: bool = False) -> list[tuple[Expert, str, dt.datetime]]:
    """The shifts of a team running at ``at`` (UTC, default now), as (expert, source, start): a cover set with
    ``/oncall cover`` (source "override") replaces everything else while it runs, and imported calendar shifts
    (source "ical": overrides and swaps) replace the rotation; the most recently started first."""
    at = at or utcnow()
    q = (select(Expert, OnCallShift.source, OnCallShift.starts_at)
         .join(OnCallShift, OnCallShift.expert_id == Expert.id)
         .where(OnCallShift.team_id == team_id, OnCallShift.starts_at <= at, OnCallShift.ends_at > at))
    if not include_inactive:
        q = q.where(Expert.active.is_(True))
    rows = winning([(e, str(src), start) for e, src, start in session.execute(q).all()], lambda r: r[1])
    return sorted(rows, key=lambda r: (-r[2].timestamp(), r[0].slack_user_id))


def oncall_now(*, session: Session, team_id: int, at: dt.datetime | None = None,
               include_inactive: bool = False) -> list[Expert]:
    """Experts on shift for a team at ``at`` (UTC, default now), see :func:`shifts_now`: a calendar override
    replaces the rotation; the most recently started shift first."""
    seen: dict[str, Expert] = {}
    for e, _src, _start in shifts_now(session=session, team_id=team_id, at=at, include_inactive=include_inactive):
        seen.setdefault(e.slack_user_id, e)
    return list(seen.values())


def shift_end(*, session: Session, team_id: int, at: dt.datetime) -> tuple[str, dt.datetime | None]:
    """The source of the shifts that count at ``at`` (see :func:`winning`) and when they end: a cover's own end,
    not that of the rotation week under it; ("", None) when nobody is on shift."""
    running = winning(session.execute(select(OnCallShift.source, OnCallShift.ends_at).where(
        OnCallShift.team_id == team_id, OnCallShift.starts_at <= at, OnCallShift.ends_at > at)).all(),
        lambda r: str(r[0]))
    return (str(running[0][0]), max(end for _, end in running)) if running else ("", None)


def oncall_by_team(*, session: Session, team: str | None = None, at: dt.datetime | None = None) -> list[OnCall]:
    """The on-call situation of one team (by name) or of every team, sorted by team name.

    Raises:
        LookupError: ``team`` names no known team (the message lists the known ones).
    """
    at = at or utcnow()
    if team:
        row = team_named(session=session, name=team)
        if row is None:
            known = ", ".join(session.scalars(select(Team.name).order_by(Team.name)))
            raise LookupError(f"no team called '{team}'. Known teams: {known or 'none yet'}")
        teams = [row]
    else:
        teams = list(session.scalars(select(Team).order_by(Team.name)))
    out: list[OnCall] = []
    for t in teams:
        everyone = oncall_now(session=session, team_id=t.id, at=at, include_inactive=True)
        source, until = shift_end(session=session, team_id=t.id, at=at)
        people = tuple((e.slack_user_id, e.name) for e in everyone if e.active)
        nxt = until if people else session.scalar(select(func.min(OnCallShift.starts_at)).where(
            OnCallShift.team_id == t.id, OnCallShift.starts_at > at))
        after = tuple((e.slack_user_id, e.name) for e in oncall_now(session=session, team_id=t.id, at=nxt)) if nxt \
            else ()
        if after == people or not (after or people):  # the same people go on, or nobody now and then
            after, nxt = (), None
        out.append(OnCall(team=t.name, channel=t.slack_channel, people=people,
                          skipped=tuple(e.name for e in everyone if not e.active), until=until,
                          next_people=after, next_at=nxt, source=source))
    return out


def coverage_gaps(*, session: Session, team_id: int, since: dt.datetime,
                  until: dt.datetime) -> list[tuple[dt.datetime, dt.datetime | None]]:
    """The times from ``since`` to ``until`` when nobody active is on shift for a team, as (start, end): end None
    when no shift follows. A team with no shift at all from ``since`` on has no schedule, and so no gaps."""
    rows = session.execute(
        select(OnCallShift.starts_at, OnCallShift.ends_at).join(Expert, Expert.id == OnCallShift.expert_id)
        .where(OnCallShift.team_id == team_id, Expert.active.is_(True), OnCallShift.ends_at > since)
        .order_by(OnCallShift.starts_at)).all()
    if not rows:
        return []
    gaps: list[tuple[dt.datetime, dt.datetime | None]] = []
    covered = since
    for start, end in rows:
        if start > covered:
            gaps.append((covered, start))
        covered = max(covered, end)
        if covered >= until:
            break
    if covered < until:
        gaps.append((covered, None))
    return [(a, b) for a, b in gaps if a < until]


def escalation_for(*, session: Session, service: Service) -> list[Expert]:
    """The service's escalation chain as expert rows (unknown user ids are left out), in order."""
    ids = [str(x) for x in (service.escalation or [])]
    rows = experts_by_ids(session=session, user_ids=ids)
    return [rows[i] for i in ids if i in rows]


def experts_by_ids(*, session: Session, user_ids: Iterable[str]) -> dict[str, Expert]:
    """Expert rows keyed by Slack user id (active or not)."""
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return {}
    return {e.slack_user_id: e for e in session.scalars(select(Expert).where(Expert.slack_user_id.in_(ids)))}


def open_load(*, session: Session, user_ids: Iterable[str] | None = None) -> dict[str, int]:
    """Open incidents assigned per Slack user id (only those with at least one)."""
    q = (select(Incident.assignee, func.count()).where(Incident.status.in_(OPEN_STATUSES),
                                                         Incident.assignee.is_not(None))
         .group_by(Incident.assignee))
    if user_ids is not None:
        q = q.where(Incident.assignee.in_(list(user_ids)))
    return {str(uid): int(n) for uid, n in session.execute(q).all()}


def local_time(tz: str, at: dt.datetime | None = None) -> dt.datetime:
    """``at`` (naive UTC, default now) in the time zone ``tz`` (UTC when the name is unknown)."""
    at = at or utcnow()
    try:
        zone = ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return at.replace(tzinfo=dt.UTC).astimezone(zone)


def in_working_hours(tz: str, at: dt.datetime | None = None) -> bool:
    """Whether it is a weekday between 09:00 and 18:00 in ``tz`` at ``at`` (naive UTC)."""
    loc = local_time(tz, at)
    return loc.weekday() < 5 and WORK_START_HOUR <= loc.hour < WORK_END_HOUR
