"""Import who is who from files: experts/teams/services/rotations (YAML or CSV) and iCal on-call feeds.

Every problem with a file ends in :class:`PeopleImportError` with one line a person can act on
("people.csv row 3: missing slack_user_id"), never a traceback.

YAML uses the shape of ``knowledge/sample_world/world.yaml`` (``teams``, ``services`` with their
``depends_on``, ``experts``, ``rotations``). CSV holds one expert per row with the columns
``slack_user_id, name, team`` and optionally ``email, services, skills, timezone, active`` (lists
separated by ``;`` or ``|``).
Existing rows are updated (by team/service name, expert user id), so an import can deactivate
someone who left (``active: false``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from knowledge.csvfile import dict_reader
from knowledge.models import Expert, OnCallShift, Service, Team, TeamCalendar, utcnow
from knowledge.rotations import define_rotation
from knowledge.yamlfile import safe_load

__all__ = ["PeopleImportError", "ImportReport", "import_people", "import_ical", "fetch_ical", "refresh_calendars",
           "MAX_FILE_BYTES", "HORIZON_DAYS"]

log = logging.getLogger("warroom.oncall")

MAX_FILE_BYTES = 5_000_000
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


class PeopleImportError(ValueError):
    """A people or calendar file cannot be imported; the message is one line for a person."""


@dataclass(frozen=True)
class ImportReport:
    """What an import changed."""

    teams: int = 0
    services: int = 0
    experts_added: int = 0
    experts_updated: int = 0
    shifts: int = 0


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise PeopleImportError(f"{path.name}: larger than {MAX_FILE_BYTES // 1_000_000} MB")
        return path.read_text(encoding="utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError:
        raise PeopleImportError(f"{path.name}: not UTF-8 text") from None
    except OSError as exc:
        raise PeopleImportError(f"cannot read {path}: {exc.strerror or exc}") from None


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [p.strip() for p in str(value).replace("|", ";").split(";") if p.strip()]


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in _TRUE or s == "":
        return True
    if s in _FALSE:
        return False
    raise PeopleImportError(f"{where}: 'active' must be true or false, not '{value}'")


def _tz(value: Any, where: str) -> str:
    tz = str(value or "UTC").strip() or "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise PeopleImportError(f"{where}: unknown time zone '{tz}'") from None
    return tz


def _team(session: Session, name: Any, where: str, report: dict[str, int], channel: Any = None,
          description: Any = None, create: bool = True) -> Team:
    if not isinstance(name, str) or not name.strip():
        raise PeopleImportError(f"{where}: missing team")
    row = session.scalar(select(Team).where(func.lower(Team.name) == name.strip().lower()))
    if row is None:
        if not create:
            raise PeopleImportError(f"{where}: unknown team '{name}'")
        row = Team(name=name.strip(), slack_channel=str(channel) if channel else None,
                   description=str(description or ""))
        session.add(row)
        session.flush()
        report["teams"] += 1
    elif channel:
        row.slack_channel = str(channel)
    return row


def _upsert_expert(session: Session, rec: dict[str, Any], where: str, report: dict[str, int], seen: set[str]
                   ) -> Expert:
    uid = str(rec.get("slack_user_id") or "").strip()
    name = str(rec.get("name") or "").strip()
    if not uid:
        raise PeopleImportError(f"{where}: missing slack_user_id")
    if not re.fullmatch(r"[UW][A-Z0-9]{2,31}", uid):  # "alice" or an e-mail address here made a mention no one got
        raise PeopleImportError(f"{where}: slack_user_id {uid[:40]!r} is not a Slack user id (U... or W..., "
                                "from the person's profile: Copy member ID)")
    if not name:
        raise PeopleImportError(f"{where}: missing name")
    team = _team(session, rec.get("team"), where, report)
    row = session.scalar(select(Expert).where(Expert.slack_user_id == uid))
    new = row is None
    if row is None:
        row = Expert(slack_user_id=uid, name=name)
        session.add(row)
        report["experts_added"] += 1
    else:
        report["experts_updated"] += 1
    seen.add(uid)
    row.name, row.team_id = name, team.id
    row.email = str(rec["email"]).strip() if rec.get("email") else row.email
    row.services, row.skills = _list(rec.get("services")), _list(rec.get("skills"))
    row.timezone = _tz(rec.get("timezone"), where)
    # Only an ``active`` the file states changes it: someone deactivated in Slack (they left) stays inactive when a
    # file that still lists them is imported again (it made them routed and paged to once more)
    stated = rec.get("active")
    row.active = _bool(stated, where) if stated not in (None, "") else (True if new else row.active)
    session.flush()
    return row


def _import_yaml(session: Session, text: str, name: str, report: dict[str, int], seen: set[str]) -> None:
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise PeopleImportError(f"{name}:{line} not valid YAML") from None
    if isinstance(data, list):
        data = {"experts": data}
    if not isinstance(data, dict) or not any(k in data for k in ("teams", "services", "experts", "rotations")):
        raise PeopleImportError(f"{name}: expected a mapping with teams, services, experts or rotations")
    for i, t in enumerate(data.get("teams") or [], 1):
        if not isinstance(t, dict):
            raise PeopleImportError(f"{name} teams[{i}]: expected a mapping")
        _team(session, t.get("name"), f"{name} teams[{i}]", report, t.get("slack_channel"), t.get("description"))
    declared: list[tuple[str, Service]] = []
    for i, s in enumerate(data.get("services") or [], 1):
        where = f"{name} services[{i}]"
        if not isinstance(s, dict) or not s.get("name"):
            raise PeopleImportError(f"{where}: expected a mapping with a name")
        if not re.fullmatch(r"[\w.-]{1,100}", str(s["name"])):  # as alerts, /risk and the REST API name services
            raise PeopleImportError(f"{where}: {str(s['name'])[:40]!r} is not a service name (letters, digits, "
                                    ". _ -, at most 100)")
        tier = s.get("tier", 2)
        if isinstance(tier, bool) or not isinstance(tier, int) or not 0 <= tier <= 9:
            raise PeopleImportError(f"{where}: tier {str(tier)[:20]!r} is not a whole number from 0 to 9")
        team = _team(session, s.get("team"), where, report)
        row = session.scalar(select(Service).where(func.lower(Service.name) == str(s["name"]).lower()))
        if row is None:
            row = Service(name=str(s["name"]))
            session.add(row)
            report["services"] += 1
        row.team_id, row.tier = team.id, tier if "tier" in s else (row.tier or 2)
        row.description = str(s.get("description", row.description or ""))
        row.escalation = _list(s.get("escalation")) if "escalation" in s else (row.escalation or [])
        if "depends_on" in s:
            deps = list(dict.fromkeys(d.lower() for d in _list(s.get("depends_on"))))
            if str(s["name"]).lower() in deps:
                raise PeopleImportError(f"{where}: {s['name']} cannot depend on itself")
            row.depends_on = deps[:50]
            declared.append((where, row))
    if declared:  # every dependency names a service of the catalogue (this file's or one already known)
        session.flush()
        known = {n.lower() for n in session.scalars(select(Service.name))}
        for where, row in declared:
            unknown = [d for d in row.depends_on if d not in known]
            if unknown:
                raise PeopleImportError(f"{where}: depends_on names unknown service(s) {', '.join(unknown[:5])} "
                                        "(declare them under services)")
    for i, e in enumerate(data.get("experts") or [], 1):
        if not isinstance(e, dict):
            raise PeopleImportError(f"{name} experts[{i}]: expected a mapping")
        _upsert_expert(session, e, f"{name} experts[{i}]", report, seen)
    for i, r in enumerate(data.get("rotations") or [], 1):
        _rotation(session, r, f"{name} rotations[{i}]", report)


def _turn_hours(rot: dict[str, Any], where: str) -> int:
    """A turn's length: ``days`` or ``hours`` (whole numbers), a week when neither is given."""
    if "days" in rot and "hours" in rot:
        raise PeopleImportError(f"{where}: give a turn's length as days or hours, not both")
    key, unit, most = ("hours", 1, 24 * 366) if "hours" in rot else ("days", 24, 366)
    value = rot.get(key, 7)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise PeopleImportError(f"{where}: {key} '{value}' is not a whole number from 1 to {most}")
    return value * unit


def _rotation(session: Session, rot: Any, where: str, report: dict[str, int]) -> None:
    if not isinstance(rot, dict) or not rot.get("members") or not rot.get("start"):
        raise PeopleImportError(f"{where}: a rotation needs team, start and members")
    team = _team(session, rot.get("team"), where, report, create=False)
    tz = _tz(rot["timezone"], where) if rot.get("timezone") else None
    try:
        start = dt.datetime.fromisoformat(str(rot["start"]))
    except ValueError:
        raise PeopleImportError(f"{where}: start '{rot['start']}' is not an ISO date") from None
    if start.tzinfo is not None:  # "2026-01-05T09:00+01:00": that instant, as wall-clock time in the timezone
        start = start.astimezone(ZoneInfo(tz) if tz else dt.UTC).replace(tzinfo=None)
    hours = _turn_hours(rot, where)
    members = []
    for uid in _list(rot["members"]):
        e = session.scalar(select(Expert).where(Expert.slack_user_id == uid))
        if e is None:
            raise PeopleImportError(f"{where}: unknown member '{uid}'")
        members.append(e.id)
    report["shifts"] += define_rotation(session, team_id=team.id, start=start, members=members, shift_hours=hours,
                                        timezone=tz)


def _import_csv(session: Session, text: str, name: str, report: dict[str, int], seen: set[str]) -> None:
    reader = dict_reader(text)  # commas, or Excel's semicolons where the decimal separator is a comma
    cols = {c.strip() for c in reader.fieldnames or []}
    missing = {"slack_user_id", "name", "team"} - cols
    if missing:
        raise PeopleImportError(f"{name}: missing column(s) {', '.join(sorted(missing))}")
    n = 0
    for n, row in enumerate(reader, 2):
        _upsert_expert(session, {(k or "").strip(): v for k, v in row.items()}, f"{name} row {n}", report, seen)
    if n == 0:
        raise PeopleImportError(f"{name}: no rows")


def import_people(*, session: Session, path: Path, seen: set[str] | None = None) -> ImportReport:
    """Import experts (and, from YAML, teams, services and rotations) from ``path``; ``seen`` collects the Slack
    user ids of the experts the file lists.

    Raises:
        PeopleImportError: unreadable file, unknown format, or a bad row (nothing is kept then,
            as long as the caller rolls the session back).
    """
    text = _read(path)
    counts = {"teams": 0, "services": 0, "experts_added": 0, "experts_updated": 0, "shifts": 0}
    listed = seen if seen is not None else set()
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        _import_yaml(session, text, path.name, counts, listed)
    elif suffix == ".csv":
        _import_csv(session, text, path.name, counts, listed)
    else:
        raise PeopleImportError(f"{path.name}: use a .yaml, .yml or .csv file")
    return ImportReport(**counts)


def _utc(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    raise TypeError(type(value).__name__)


def _who(session: Session, event: Any) -> Expert | None:
    keys: list[str] = []
    attendees = event.get("ATTENDEE")
    for a in attendees if isinstance(attendees, list) else [attendees] if attendees else []:
        keys.append(str(a).lower().removeprefix("mailto:"))
    keys.append(str(event.get("SUMMARY", "")).strip().lower())
    keys.append(str(event.get("DESCRIPTION", "")).strip().lower())
    for e in session.scalars(select(Expert).order_by(Expert.slack_user_id)):
        ids = {e.slack_user_id.lower(), e.name.lower()} | ({e.email.lower()} if e.email else set())
        if any(k and (k in ids or any(i and i in k.split() for i in ids) or e.name.lower() in k) for k in keys):
            return e
    return None


HORIZON_DAYS = 180  # a repeating event's occurrences are written this far ahead (and again every day)
MAX_OCCURRENCES = 5_000  # of repeating events in the horizon: a weekly rotation of 8 people has 26 a year
# Repeats from a rule's DTSTART to the end of the horizon: the expansion walks them all (about 10 us each), so a
# rule that started long ago and repeats often costs CPU even when few of its repeats fall in the horizon.
MAX_EXPANSION = 200_000
_FREQ_S = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3_600, "DAILY": 86_400, "WEEKLY": 7 * 86_400,
           "MONTHLY": 28 * 86_400, "YEARLY": 365 * 86_400}  # the shortest month and year: more periods, a bound
_WEEKS_IN = {"MONTHLY": 5, "YEARLY": 53}  # a weekday without an ordinal (BYDAY=MO) falls this often in a period
# The BY* parts that can add repeats inside a period when their unit is finer than FREQ's (RFC 5545 3.3.10:
# "expand"); at or above FREQ's unit they only remove repeats, and BYSETPOS only picks among them.
_BY_UNIT_S = {"BYSECOND": 1, "BYMINUTE": 60, "BYHOUR": 3_600, "BYDAY": 86_400, "BYMONTHDAY": 86_400,
              "BYYEARDAY": 86_400, "BYWEEKNO": 7 * 86_400, "BYMONTH": 28 * 86_400}


_CYCLE = {"BYSECOND": 60, "BYMINUTE": 60, "BYHOUR": 24, "BYDAY": 7}  # at or above FREQ's unit: len / cycle kept


def _per_period(rule: Any, freq_name: str, kept: bool) -> float:
    """At most how many repeats one period of the rule holds (``kept``: after the parts that only remove repeats,
    BYHOUR=9 on an hourly rule keeps one hour in 24; without: what the expansion walks through)."""
    freq = _FREQ_S[freq_name]
    n = 1.0
    for part, unit in _BY_UNIT_S.items():
        values = rule.get(part) or []
        if not values:
            continue
        if unit >= freq:
            plain = part != "BYDAY" or not any(any(c.isdigit() for c in str(v)) for v in values)
            if kept and part in _CYCLE and plain:
                n *= min(1.0, len(values) / _CYCLE[part])
            continue
        if part == "BYDAY":  # MO: every Monday of the period; 1MO / -1FR: one day
            n *= sum(1 if any(c.isdigit() for c in str(v)) else _WEEKS_IN.get(freq_name, 1) for v in values)
        elif part == "BYMONTHDAY" and freq_name == "YEARLY" and not rule.get("BYMONTH"):
            n *= 12 * len(values)
        elif part == "BYWEEKNO":
            n *= 7 * len(values)
        else:
            n *= len(values)
    return n


def _repeats_at_most(event: Any, since: dt.datetime, until: dt.datetime, kept: bool = True) -> float:
    """An upper bound on how many times ``event``'s RRULEs (and RDATEs) repeat from ``since`` to ``until``
    (naive UTC), read from the rule without expanding it: the periods of FREQ x INTERVAL in the span times what
    one period can hold, capped by COUNT and UNTIL (``kept``: see :func:`_per_period`)."""
    rules = event.get("RRULE") or []
    rules = rules if isinstance(rules, list) else [rules]
    start = _utc(event.decoded("DTSTART"))
    total = 0.0
    for rule in rules:
        freq_name = str((rule.get("FREQ") or ["?"])[0]).upper()
        if freq_name not in _FREQ_S:
            continue  # the library refuses an unknown FREQ with a clear error
        interval = max(1, int((rule.get("INTERVAL") or [1])[0]))
        end = until
        if rule.get("UNTIL"):
            end = min(end, _utc(rule["UNTIL"][0]))
        span = (end - max(since, start)).total_seconds()
        n = 0.0 if span < 0 else (span / (_FREQ_S[freq_name] * interval) + 1) * _per_period(rule, freq_name, kept)
        if rule.get("COUNT"):
            n = min(n, int(rule["COUNT"][0]))
        total += n
    rdates = event.get("RDATE") or []
    for rdate in rdates if isinstance(rdates, list) else [rdates]:
        total += len(getattr(rdate, "dts", []) or [])
    return total


def _occurrences(cal: Any, uids: set[str], name: str, horizon_days: int, now: dt.datetime) -> list[Any]:
    """The occurrences of the repeating events ``uids`` from 30 days ago to ``horizon_days`` ahead (exceptions,
    moved and cancelled occurrences applied by recurring-ical-events), at most ``MAX_OCCURRENCES``.

    A rule that would repeat too often is refused from the rule itself, before it is expanded: expanding
    ``FREQ=MINUTELY`` over the horizon took minutes of CPU (recurring-ical-events' ``after()`` slows down with
    every window it has already returned), and an import must not be a way to keep the bot busy."""
    if not uids:
        return []
    import recurring_ical_events

    now = now.replace(tzinfo=dt.UTC)
    start, stop = now - dt.timedelta(days=30), now + dt.timedelta(days=horizon_days)
    naive_start, naive_stop = start.replace(tzinfo=None), stop.replace(tzinfo=None)
    in_horizon = walked = 0.0
    try:
        for ev in cal.walk("VEVENT"):
            if str(ev.get("UID")) in uids and not ev.get("RECURRENCE-ID"):
                in_horizon += _repeats_at_most(ev, naive_start, naive_stop)
                walked += _repeats_at_most(ev, dt.datetime.min, naive_stop, kept=False)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise PeopleImportError(f"{name}: cannot read a repeating event ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:100] if str(exc) else ''})") from None
    if in_horizon > MAX_OCCURRENCES:
        raise PeopleImportError(f"{name}: the repeating events have more than {MAX_OCCURRENCES:,} shifts in "
                                f"the next {horizon_days} days; is an RRULE too frequent?")
    if walked > MAX_EXPANSION:
        raise PeopleImportError(f"{name}: a repeating event repeats more than {MAX_EXPANSION:,} times from "
                                "its first DTSTART on; is an RRULE too frequent, or does it start decades ago?")
    try:
        out = [occ for occ in recurring_ical_events.of(cal).between(start, stop) if str(occ.get("UID")) in uids]
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise PeopleImportError(f"{name}: cannot expand a repeating event ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:100] if str(exc) else ''})") from None
    if len(out) > MAX_OCCURRENCES:  # the bound above holds; this keeps the promise if it ever did not
        raise PeopleImportError(f"{name}: the repeating events have more than {MAX_OCCURRENCES:,} shifts in "
                                f"the next {horizon_days} days; is an RRULE too frequent?")
    return sorted(out, key=lambda occ: _utc(occ.decoded("DTSTART")))


def fetch_ical(url: str, timeout_s: float = 10.0) -> str:
    """The text of the calendar at ``url`` (http, https, or webcal: PagerDuty's, Opsgenie's and Google's on-call
    feeds), at most ``MAX_FILE_BYTES``.

    Raises:
        PeopleImportError: not such a URL, unreachable, an HTTP error, too large, not UTF-8.
    """
    import httpx

    if url.lower().startswith("webcal://"):
        url = "https://" + url[len("webcal://"):]
    if not re.match(r"^https?://[^\s/]+", url, re.I):
        raise PeopleImportError(f"'{url[:100]}' is not an http(s) or webcal URL")
    where = url.split("?", 1)[0][:100]  # feeds carry their secret token in the query: never shown
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=True) as client, client.stream("GET", url) as resp:
            if resp.status_code >= 400:
                raise PeopleImportError(f"{where}: the server answered HTTP {resp.status_code}")
            body = bytearray()
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > MAX_FILE_BYTES:
                    raise PeopleImportError(f"{where}: larger than {MAX_FILE_BYTES // 1_000_000} MB")
    except httpx.HTTPError as exc:
        raise PeopleImportError(f"{where}: cannot fetch the calendar ({type(exc).__name__})") from None
    try:
        return bytes(body).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PeopleImportError(f"{where}: not UTF-8 text") from None


def import_ical(*, session: Session, path: Path | None = None, team: str, horizon_days: int = HORIZON_DAYS,
                now: dt.datetime | None = None, url: str | None = None) -> ImportReport:
    """Replace a team's iCal-sourced shifts with the events of an .ics file, and keep the file for the bot to
    write the repeating events ahead every day (:func:`refresh_calendars`).

    Each VEVENT is one shift (DTSTART..DTEND); a repeating one (RRULE, RDATE, with EXDATE and RECURRENCE-ID
    exceptions) is one shift per occurrence from 30 days before ``now`` (naive UTC, default now) to
    ``horizon_days`` ahead. The person is found by ATTENDEE e-mail, or by a Slack user id, e-mail or name in
    SUMMARY/DESCRIPTION. From a ``url`` instead of a file (a scheduling tool's feed), the calendar is fetched
    again every hour (:func:`refresh_calendars`), so swaps made there reach the bot.

    Raises:
        PeopleImportError: unreadable or malformed calendar, unknown team or person, bad times.
    """
    row = session.scalar(select(Team).where(func.lower(Team.name) == team.strip().lower()))
    if row is None:
        raise PeopleImportError(f"no team called '{team}'")
    if url:
        text, name = fetch_ical(url), url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "calendar"
    elif path is not None:
        text, name = _read(path), path.name
    else:
        raise PeopleImportError("give an .ics file or a calendar URL")
    report = _apply_calendar(session, row.id, text, name, horizon_days, now or utcnow())
    kept = session.scalar(select(TeamCalendar).where(TeamCalendar.team_id == row.id)) or TeamCalendar(team_id=row.id)
    kept.name, kept.ics, kept.url, kept.imported_at = name[:200], text, url, utcnow()
    session.add(kept)
    session.flush()
    return report


def refresh_calendars(session: Session, *, horizon_days: int = HORIZON_DAYS, now: dt.datetime | None = None,
                      fetch: bool = True) -> int:
    """Fetch every calendar imported from a URL again (unless not ``fetch``: then its last text is used), and expand
    every kept calendar with repeating events again, up to ``horizon_days`` ahead of ``now``, so a repeating rotation
    goes on and a swap made in the scheduling tool arrives; return how many shifts were written. A calendar that
    cannot be fetched or no longer imports (a person in it was removed) keeps the shifts it had, and the reason is
    logged."""
    written = 0
    for cal in session.scalars(select(TeamCalendar).order_by(TeamCalendar.id).with_for_update()).all():
        text = cal.ics
        try:
            if cal.url and fetch:
                text = fetch_ical(cal.url)
            elif "RRULE" not in text and "RDATE" not in text:
                continue  # a file where nothing repeats: the shifts it had are all it will ever have
            with session.begin_nested():
                written += _apply_calendar(session, cal.team_id, text, cal.name, horizon_days, now or utcnow()).shifts
            cal.ics, cal.imported_at = text, utcnow()
        except PeopleImportError as exc:
            log.warning("could not refresh the calendar of team %s, its shifts stay as they were: %s",
                        cal.team_id, exc)
    return written


def _apply_calendar(session: Session, team_id: int, text: str, name: str, horizon_days: int,
                    now: dt.datetime) -> ImportReport:
    from icalendar import Calendar

    try:
        cal = Calendar.from_ical(text)
    except (ValueError, IndexError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise PeopleImportError(f"{name}: not a valid iCal file ({first})") from None
    if hasattr(cal, "walk") and cal.get("X-WR-TIMEZONE"):
        # Google Calendar's exports: times without a zone are in the calendar's X-WR-TIMEZONE, not UTC
        import x_wr_timezone

        try:
            cal = x_wr_timezone.to_standard(cal)
        except (ValueError, KeyError) as exc:
            raise PeopleImportError(f"{name}: unknown X-WR-TIMEZONE ({str(exc)[:80]})") from None
    events = list(cal.walk("VEVENT")) if hasattr(cal, "walk") else []
    if not events:
        raise PeopleImportError(f"{name}: no VEVENT (on-call shift) in the calendar")
    # A rotation is usually one event repeating (RRULE:FREQ=WEEKLY;INTERVAL=3 per person), with EXDATEs and
    # one-week swaps (RECURRENCE-ID). Read as one shift each, everyone would be on call once and then never.
    recurring = {str(ev.get("UID")) for ev in events if ev.get("RRULE") or ev.get("RDATE")}
    single = [ev for ev in events if not (ev.get("RRULE") or ev.get("RDATE") or ev.get("RECURRENCE-ID"))
              or str(ev.get("UID")) not in recurring]
    events = single + _occurrences(cal, recurring, name, horizon_days, now)
    shifts: list[OnCallShift] = []
    for i, ev in enumerate(events, 1):
        try:
            start = _utc(ev.decoded("DTSTART"))
            end = _utc(ev.decoded("DTEND")) if ev.get("DTEND") else start + ev.decoded("DURATION")
        except (KeyError, TypeError, ValueError):
            raise PeopleImportError(f"{name} event {i}: missing or bad DTSTART/DTEND") from None
        if end <= start:
            raise PeopleImportError(f"{name} event {i}: ends before it starts")
        who = _who(session, ev)
        if who is None:
            raise PeopleImportError(f"{name} event {i} ('{ev.get('SUMMARY', '')}'): no known expert "
                                    "in ATTENDEE or SUMMARY")
        shifts.append(OnCallShift(team_id=team_id, expert_id=who.id, starts_at=start, ends_at=end, source="ical"))
    session.execute(delete(OnCallShift).where(OnCallShift.team_id == team_id, OnCallShift.source == "ical"))
    session.add_all(shifts)
    session.flush()
    return ImportReport(shifts=len(shifts))
