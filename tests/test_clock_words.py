"""The moments people name in Slack ("tomorrow", "monday 09:00 CET", "at 03:00", "in 3h"), read against a fixed now."""

from __future__ import annotations

import datetime as dt

import pytest

from skills.base import SkillError
from skills.clock_words import lookback, moment

NOW = dt.datetime(2026, 12, 3, 21, 10)  # a Thursday, 21:10 UTC (16:10 in New York, 22:10 in Paris)
USAGE = "usage"


def at(text: str, own: str = "", past: bool = False) -> dt.datetime | None:
    m = moment(text, own, NOW, usage=USAGE, past=past)
    return m.at if m is not None else None


@pytest.mark.parametrize(("text", "own", "past", "want"), [
    ("payments", "", False, None),
    ("payments tomorrow", "", False, dt.datetime(2026, 12, 4, 9, 0)),
    ("tomorrow 18:00", "Europe/Paris", False, dt.datetime(2026, 12, 4, 17, 0)),
    ("at 18:00", "", False, dt.datetime(2026, 12, 4, 18, 0)),  # six has gone today: the next one
    ("at 18:00", "", True, dt.datetime(2026, 12, 3, 18, 0)),  # "who was on call at 18:00?": the last one
    ("at 22:00", "", False, dt.datetime(2026, 12, 3, 22, 0)),
    ("6pm", "America/New_York", False, dt.datetime(2026, 12, 3, 23, 0)),
    ("monday 09:00 CET", "America/New_York", False, dt.datetime(2026, 12, 7, 8, 0)),
    ("on thursday", "", False, dt.datetime(2026, 12, 3, 9, 0)),  # today is Thursday
    ("next thursday", "", False, dt.datetime(2026, 12, 10, 9, 0)),
    ("this weekend", "", False, dt.datetime(2026, 12, 5, 9, 0)),
    ("tonight", "Europe/Paris", False, dt.datetime(2026, 12, 3, 21, 0)),
    ("yesterday 03:00", "", False, dt.datetime(2026, 12, 2, 3, 0)),
    ("in 3h", "", False, dt.datetime(2026, 12, 4, 0, 10)),
    ("next week", "", False, dt.datetime(2026, 12, 10, 21, 10)),
    ("2026-12-24 18:00 UTC+2", "", False, dt.datetime(2026, 12, 24, 16, 0)),
    ("at noon", "", False, dt.datetime(2026, 12, 4, 12, 0)),
    ("payments at 9", "", False, dt.datetime(2026, 12, 4, 9, 0)),
    # a month and a day, either way round (due dates, "who is on call on dec 24"); no year: the next one to come
    ("dec 24", "", False, dt.datetime(2026, 12, 24, 9, 0)),
    ("on December 24th 18:00", "Europe/Paris", False, dt.datetime(2026, 12, 24, 17, 0)),
    ("the 24th of dec", "", False, dt.datetime(2026, 12, 24, 9, 0)),
    ("5 jan", "", False, dt.datetime(2027, 1, 5, 9, 0)),  # January has gone this year
    ("nov 30", "", True, dt.datetime(2026, 11, 30, 9, 0)),
    ("jan 5", "", True, dt.datetime(2026, 1, 5, 9, 0)),  # "who was on call on jan 5": the last one gone
    ("sept 3, 2027", "", False, dt.datetime(2027, 9, 3, 9, 0)),
    ("may be later", "", False, None),  # "may" without a day is a word
    # holidays by name ("who is on call on christmas?"): the next one to come, or with ``past`` the last one gone
    ("on christmas", "", False, dt.datetime(2026, 12, 25, 9, 0)),
    ("christmas eve 18:00 CET", "", False, dt.datetime(2026, 12, 24, 17, 0)),
    ("new year's eve", "", False, dt.datetime(2026, 12, 31, 9, 0)),
    ("on new years day", "", False, dt.datetime(2027, 1, 1, 9, 0)),
    ("boxing day", "", False, dt.datetime(2026, 12, 26, 9, 0)),
    ("thanksgiving", "", True, dt.datetime(2026, 11, 26, 9, 0)),  # the fourth Thursday of November
    ("thanksgiving", "", False, dt.datetime(2027, 11, 25, 9, 0)),  # a different day next year
])
def test_moments(text: str, own: str, past: bool, want: dt.datetime | None) -> None:
    assert at(text, own, past) == want


def test_what_was_assumed_is_said_and_the_words_can_be_taken_out() -> None:
    m = moment("who is on call for payments tomorrow?", "Europe/London", NOW, usage=USAGE)
    assert m is not None and m.said == "tomorrow" and m.note.startswith("09:00 your time")
    assert m.without("who is on call for payments tomorrow?").split() == "who is on call for payments ?".split()
    m = moment("payments monday 18:00 Asia/Tokyo", "", NOW, usage=USAGE)
    assert m is not None and m.said == "monday 18:00 Asia/Tokyo" and m.note == ""


@pytest.mark.parametrize(("text", "error"), [
    ("at 25:00", "`at 25:00` is not a time of day"), ("13pm", "`13pm` is not a time of day"),
    ("2026-02-30", "`2026-02-30` is not a date"), ("at 18:00 IST", "`IST` could mean India, Israel or Ireland"),
    ("at 18:00 Mars/Olympus", "`Mars/Olympus` is not a time zone I know"),
    ("at 18:00 UTC+15", "is not a UTC offset"), ("feb 30", "`feb 30` is not a date"),
    ("31st of april", "`31st of april` is not a date"),
])
def test_times_that_are_none_are_refused(text: str, error: str) -> None:
    with pytest.raises(SkillError, match=error.replace("+", r"\+")):
        moment(text, "", NOW, usage=USAGE)


@pytest.mark.parametrize(("said", "days", "label"), [
    ("noisiest alerts this month", 30, "the last 30 days"), ("what changed last month?", 30, "the last 30 days"),
    ("deploys in the past 2 months", 60, "the last 60 days"), ("what ran this quarter", 90, "the last 90 days"),
    ("the last 6 months", 90, "the last 90 days"),  # at most the longest span asked for
    ("last 5 minutes", 5 / 1440, "the last 5 minutes"), ("this week", 7, "the last 7 days"),
    ("which alerts went off overnight?", 0.5, "the last 12 hours"), ("what fired last night", 0.5, "the last 12 hours"),
])
def test_a_month_or_a_quarter_back_is_read(said: str, days: float, label: str) -> None:
    """"This month", "last month", "last quarter" were not read, so the noise and change answers covered a week."""
    assert lookback(said, dt.timedelta(days=90)) == (dt.timedelta(days=days), label)
