"""Times as people write them in Slack: zones after a time, and moments ("tomorrow", "monday 09:00", "in 3h").

``zone_at`` reads the zone written after a time: an IANA name, an offset (``UTC+2``, ``+05:30``), or a common
abbreviation read as the place's zone (``PST`` is Pacific time, summer or winter); an ambiguous one (``CST``) and
an unknown one in capitals (``AKST``) are refused. ``moment`` finds the moment a question is about ("who is on call
tomorrow?", "/oncall payments monday 18:00 CET", "yesterday 3am", "in 3h", "2026-12-24 18:00", "on christmas"), in
the asker's own zone unless another is written; a day without a time is 09:00 there (tonight 22:00), and says so.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from skills.base import SkillError, esc

__all__ = ["zone_at", "own_zone", "moment", "Moment", "lookback"]

# a zone after the time: an IANA name, an offset ("UTC+2", "+05:30"), or a word looked up in _ABBREV
_ZONE = re.compile(r"\s*+(?:(?P<iana>[A-Za-z]+(?:/[A-Za-z0-9_+-]+)+)|(?:utc|gmt)?\s*+"
                   r"(?P<off>[+-]\s*\d{1,2}(?::?\d{2})?)|(?P<word>[A-Za-z]{1,5}))\b", re.I)
# what people mean by the abbreviations they write: the place's zone, so "6pm PST" in July is 18:00 Pacific time
_ABBREV = {"utc": "UTC", "gmt": "UTC", "z": "UTC", "pt": "America/Los_Angeles", "pst": "America/Los_Angeles",
           "pdt": "America/Los_Angeles", "mt": "America/Denver", "mst": "America/Denver",
           "mdt": "America/Denver", "ct": "America/Chicago", "cdt": "America/Chicago", "et": "America/New_York",
           "est": "America/New_York", "edt": "America/New_York", "bst": "Europe/London", "wet": "Europe/Lisbon",
           "west": "Europe/Lisbon", "cet": "Europe/Paris", "cest": "Europe/Paris", "eet": "Europe/Athens",
           "eest": "Europe/Athens", "msk": "Europe/Moscow", "sgt": "Asia/Singapore", "hkt": "Asia/Hong_Kong",
           "jst": "Asia/Tokyo", "kst": "Asia/Seoul", "aest": "Australia/Sydney", "aedt": "Australia/Sydney",
           "nzst": "Pacific/Auckland", "nzdt": "Pacific/Auckland"}
_AMBIGUOUS = {"cst": "US Central or China", "ist": "India, Israel or Ireland", "ast": "Atlantic or Arabia"}


def own_zone(own: str | None) -> dt.tzinfo:
    """An expert's timezone as a zone (UTC when unset or unknown)."""
    try:
        return ZoneInfo(own) if own and own != "UTC" else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _zone_match(text: str, at: int, own: str, is_team: Callable[[str], bool],
                usage: str) -> tuple[dt.tzinfo, int]:
    """The zone written at ``text[at:]`` and where it ends (``at`` when none is written: the asker's own)."""
    m = _ZONE.match(text, at)
    if m and m.group("iana"):
        try:
            return ZoneInfo(m.group("iana")), m.end()
        except (ZoneInfoNotFoundError, ValueError):
            raise SkillError(f"`{esc(m.group('iana')[:40])}` is not a time zone I know: write it like "
                             f"`Europe/Berlin`, `UTC+2` or `PST`. {usage}") from None
    if m and m.group("off"):
        sign, digits = m.group("off")[0], re.sub(r"\D", "", m.group("off"))
        hours, minutes = (int(digits[:-2]), int(digits[-2:])) if len(digits) > 2 else (int(digits), 0)
        if hours > 14 or minutes > 59:
            raise SkillError(f"`{esc(m.group(0).strip())}` is not a UTC offset. {usage}")
        delta = dt.timedelta(hours=hours, minutes=minutes)
        return dt.timezone(-delta if sign == "-" else delta), m.end()
    word = m.group("word") if m else ""
    if word.lower() in _ABBREV:
        assert m is not None
        return (dt.UTC if _ABBREV[word.lower()] == "UTC" else ZoneInfo(_ABBREV[word.lower()])), m.end()
    if word.lower() in _AMBIGUOUS:
        raise SkillError(f"`{esc(word)}` could mean {_AMBIGUOUS[word.lower()]}: write the zone like `Asia/Kolkata` or "
                         f"`UTC+5:30`, or leave it out for your own ({esc(own or 'UTC')}).")
    if len(word) >= 2 and word.isupper() and not is_team(word):  # "until 18:00 AKST": a zone not read is refused
        raise SkillError(f"`{esc(word)}` is not a time zone I know: write it like `Europe/Berlin` or `UTC+2`, or "
                         f"leave it out for your own ({esc(own or 'UTC')}).")
    return own_zone(own), at


def zone_at(text: str, at: int, own: str, is_team: Callable[[str], bool], usage: str) -> dt.tzinfo:
    """The zone written at ``text[at:]`` (after a time), else the asker's own (``own``, an IANA name).

    Raises:
        SkillError: an unknown IANA name, an offset past 14 hours, an ambiguous or unknown abbreviation.
    """
    return _zone_match(text, at, own, is_team, usage)[0]


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = (r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
          r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?")
_DAY = re.compile(r"\b(?:(?P<rel>today|tonight|tomorrow|tmrw|yesterday|this\s+weekend|the\s+weekend|weekend|"
                  r"next\s+week)|(?:on\s+|next\s+|this\s+)?(?P<wd>mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)"
                  r"(?:day)?|(?:on\s+)?(?P<iso>\d{4}-\d{2}-\d{2})"
                  rf"|(?:on\s+)?(?:(?P<mon>{_MONTH})\.?\s+(?P<md>\d{{1,2}})(?:st|nd|rd|th)?"
                  rf"|(?:the\s+)?(?P<dm>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon2>{_MONTH})\.?)"
                  r"|(?:on\s+)?(?P<hol>christmas\s+eve|christmas(?:\s+day)?|xmas(?:\s+eve)?|boxing\s+day|nye|"
                  r"new\s+year(?:'?s)?(?:\s+eve|\s+day)?|thanksgiving(?:\s+day)?)"
                  r"(?:,?\s+(?P<year>20\d\d))?)\b", re.I)
_TIME = re.compile(r"(?:\bat\s+(?P<h1>\d{1,2})(?::(?P<m1>\d{2}))?\s*(?P<ap1>am|pm)?(?![\d:])"
                   r"|\b(?P<h2>\d{1,2}):(?P<m2>\d{2})\s*(?P<ap2>am|pm)?(?![\d:])"
                   r"|\b(?P<h3>\d{1,2})\s*(?P<ap3>am|pm)\b|\b(?:at\s+)?(?P<word>noon|midnight))", re.I)
_IN = re.compile(r"\bin\s+(\d{1,3})\s*(m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)\b", re.I)
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class Moment:
    at: dt.datetime  # naive UTC
    said: str  # the words that named it, as written ("tomorrow 18:00")
    spans: tuple[tuple[int, int], ...]  # where they are in the text
    note: str = ""  # what was assumed ("09:00 your time")

    def without(self, text: str) -> str:
        """``text`` with the words that named the moment blanked out."""
        for a, b in sorted(self.spans, reverse=True):
            text = text[:a] + " " + text[b:]
        return text


def _clock(m: re.Match[str], usage: str) -> tuple[int, int]:
    if m.group("word"):
        return (12, 0) if m.group("word").lower() == "noon" else (0, 0)
    h = next(g for g in (m.group("h1"), m.group("h2"), m.group("h3")) if g is not None)
    mins = next((g for g in (m.group("m1"), m.group("m2")) if g is not None), "0")
    ap = next((g for g in (m.group("ap1"), m.group("ap2"), m.group("ap3")) if g is not None), None)
    hour, minute = int(h), int(mins)
    if ap:
        if not 1 <= hour <= 12:
            raise SkillError(f"`{esc(m.group(0).strip())}` is not a time of day. {usage}")
        hour = hour % 12 + (12 if ap.lower() == "pm" else 0)
    if hour > 23 or minute > 59:
        raise SkillError(f"`{esc(m.group(0).strip())}` is not a time of day. {usage}")
    return hour, minute


def _holiday(word: str, year: int) -> tuple[int, int]:
    """The (month, day) of a holiday named in words: Christmas (Eve), Boxing Day, New Year's (Eve), Thanksgiving
    (the US one: the fourth Thursday of November)."""
    word = re.sub(r"\s+", " ", word.lower())
    if word.startswith("thanksgiving"):
        first = dt.date(year, 11, 1).weekday()
        return 11, 1 + (3 - first) % 7 + 21
    if word.endswith("eve") or word == "nye":
        return (12, 31) if word.startswith("new") or word == "nye" else (12, 24)
    if word.startswith("new"):
        return 1, 1
    return (12, 26) if word.startswith("boxing") else (12, 25)


_NIGHT = re.compile(r"\b(?:(last\s+night)|overnight|during\s+the\s+night)\b", re.I)  # ("tonight": 22:00, below)


def moment(text: str, own: str, now: dt.datetime, *, usage: str, past: bool = False,
           is_team: Callable[[str], bool] = lambda _: False) -> Moment | None:
    """The moment ``text`` asks about, or None when it names none (now). ``own``: the asker's IANA zone, used unless
    the text writes one after its time; ``now`` naive UTC. A time of day without a day is the next one to come, or
    with ``past`` ("who was on call at 14:05?") the last one gone.

    Raises:
        SkillError: a time of day that is none (25:00, 13pm), a date that is none, a zone not known.
    """
    if (m := _NIGHT.search(text)) is not None and not _TIME.search(text) and (
            m.group(1) or re.search(r"\b(?:was|were|did|had)\b", text, re.I)):  # "who was on call last night?":
        local_now = now.replace(tzinfo=dt.UTC).astimezone(own_zone(own))  # the last 03:00 gone in the asker's zone;
        at = local_now.replace(hour=3, minute=0, second=0, microsecond=0)
        if at > local_now:
            at -= dt.timedelta(days=1)
        return Moment(at.astimezone(dt.UTC).replace(tzinfo=None), m.group(0), ((m.start(), m.end()),),
                      note="03:00 your time")
    if (m := _IN.search(text)) is not None:  # "in 3h"
        return Moment(now + dt.timedelta(seconds=int(m.group(1)) * _UNIT_S[m.group(2)[0].lower()]),
                      m.group(0), ((m.start(), m.end()),))
    day, clock = _DAY.search(text), _TIME.search(text)
    if day is not None and clock is not None and day.start() <= clock.start() < day.end():
        clock = _TIME.search(text, day.end())
    if day is None and clock is None:
        return None
    spans = [(x.start(), x.end()) for x in (day, clock) if x is not None]
    zone, note, written = own_zone(own), "", False
    if clock is not None:
        zone, end = _zone_match(text, clock.end(), own, is_team, usage)
        spans[-1], written = (clock.start(), end), end != clock.end()
    local_now = now.replace(tzinfo=dt.UTC).astimezone(zone)
    date = local_now.date()
    rel = (day.group("rel") or "").lower() if day is not None else ""
    rel = re.sub(r"\s+", " ", rel)
    if rel == "next week":
        if clock is None:
            return Moment(now + dt.timedelta(days=7), day.group(0) if day else "", tuple(spans))
        date += dt.timedelta(days=7)
    elif rel in ("tomorrow", "tmrw"):
        date += dt.timedelta(days=1)
    elif rel == "yesterday":
        date -= dt.timedelta(days=1)
    elif rel.endswith("weekend"):
        date += dt.timedelta(days=(5 - date.weekday()) % 7 if date.weekday() < 5 else 0)
    elif day is not None and day.group("wd"):
        want = _WEEKDAYS.index(day.group("wd")[:3].lower())
        ahead = (want - date.weekday()) % 7
        if day.group(0).lower().startswith("next") and ahead == 0:
            ahead = 7
        date += dt.timedelta(days=ahead)
    elif day is not None and day.group("iso"):
        try:
            date = dt.date.fromisoformat(day.group("iso"))
        except ValueError:
            raise SkillError(f"`{esc(day.group('iso'))}` is not a date. {usage}") from None
    elif day is not None and (day.group("mon") or day.group("mon2") or day.group("hol")):  # "dec 24", "christmas"
        year = day.group("year")
        if day.group("hol"):
            month, mday = _holiday(day.group("hol"), int(year) if year else date.year)
        else:  # "dec 24", "24th of December 2026"
            month = _MONTHS.index((day.group("mon") or day.group("mon2"))[:3].lower()) + 1
            mday = int(day.group("md") or day.group("dm"))
        try:
            date = dt.date(int(year) if year else date.year, month, mday)
        except ValueError:
            raise SkillError(f"`{esc(day.group(0).strip())}` is not a date. {usage}") from None
        if not year and (date < local_now.date() if not past else date > local_now.date()):
            try:  # no year: the next one to come (or with ``past`` the last one gone)
                year_to = date.year + (-1 if past else 1)
                date = (dt.date(year_to, *_holiday(day.group("hol"), year_to)) if day.group("hol")
                        else date.replace(year=year_to))
            except ValueError:  # 29 February
                raise SkillError(f"`{esc(day.group(0).strip())}` is not a date. {usage}") from None
    if clock is not None:
        hour, minute = _clock(clock, usage)
    elif rel == "tonight":
        hour, minute = 22, 0
        note = "22:00"
    else:
        hour, minute = 9, 0
        note = "09:00"
    if note:
        note = f"{note} {'your time' if own and not written else 'UTC'}: add a time, like `tomorrow 18:00`"
    wall = dt.datetime.combine(date, dt.time(hour, minute))
    at = wall.replace(tzinfo=zone).astimezone(dt.UTC).replace(tzinfo=None)
    if day is None and (at > now if past else at <= now):  # "at 18:00" after six: the next one (or the last)
        wall += dt.timedelta(days=-1 if past else 1)
        at = wall.replace(tzinfo=zone).astimezone(dt.UTC).replace(tzinfo=None)
    said = " ".join(text[a:b].strip() for a, b in spans)
    return Moment(at, said, tuple(spans), note)


# a span back from now: "in the last 2h", "over the past 30 minutes", "last hour", "today", "this week", "yesterday"
_LOOKBACK = re.compile(r"\b(?:(?:in\s+|over\s+|during\s+)?(?:the\s+)?(?:last|past)\s+(?:(\d{1,4})\s*)?"
                       r"(m|mins?|minutes?|h|hrs?|hours?|d|days?|weeks?|months?|quarters?)\b"
                       r"|(today|this\s+week|yesterday|this\s+month|this\s+quarter|overnight|last\s+night))", re.I)


def lookback(text: str, longest: dt.timedelta) -> tuple[dt.timedelta, str] | None:
    """The span back from now a question names ("in the last 2h": 2 hours, "the last 2 hours"), at most ``longest``;
    "today" and "yesterday" are the last 24 hours, "this week" the last 7 days, "this month" or "last month" 30,
    "this quarter" 90, "overnight" and "last night" the last 12 hours; None when it names none."""
    m = _LOOKBACK.search(text)
    if m is None:
        return None
    if m.group(3):  # "this month": the last 30 days, "this quarter" 90, as the incident stats count them
        said = m.group(3).lower()
        if said.startswith(("over", "last")):  # "which alerts went off overnight?": the last 12 hours
            return min(dt.timedelta(hours=12), longest), "the last 12 hours"
        days = 7 if "week" in said else 30 if "month" in said else 90 if "quarter" in said else 0
        return (min(dt.timedelta(days=days), longest), f"the last {min(days, longest.days)} days") if days else (
            dt.timedelta(hours=24), "the last 24 hours")
    n, unit = int(m.group(1) or 1), m.group(2).lower()
    if unit.startswith(("mo", "q")):  # "last month", "the past 2 months", "last quarter"
        days = n * (30 if unit.startswith("mo") else 90)
        return min(dt.timedelta(days=days), longest), f"the last {min(days, longest.days)} days"
    span = (dt.timedelta(minutes=n) if unit.startswith("m") else dt.timedelta(hours=n) if unit.startswith("h")
            else dt.timedelta(days=n) if unit.startswith("d") else dt.timedelta(weeks=n))
    word = {"m": "minute", "h": "hour", "d": "day", "w": "week"}[unit[0]]
    return min(span, longest), f"the last {n} {word}s" if n != 1 else f"the last {word}"
