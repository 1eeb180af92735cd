"""A person's own on-call: ``/oncall mine`` and "when is my next shift?" / "am I on call in 2h?" list the asker's
shifts in every team with what changes them (a cover someone else took), and answer yes or no by the same rules
as ``/oncall``, so the two never disagree."""

from __future__ import annotations

import datetime as dt

from bot.render import blocks_to_text
from tests.conftest import Live
from tests.test_rotations import _only_payments_shifts, _say


def _ask(live: Live, text: str, user: str) -> str:
    live.driver.mention(text, user=user, channel="C0OPS")
    live.drain(due_within_s=60)
    msgs = live.standin.messages("C0OPS")
    return blocks_to_text(msgs[-1].get("blocks") or []) or msgs[-1].get("text", "")


def test_my_shifts_show_covers_and_answer_am_i_on_call(live: Live) -> None:
    now = _only_payments_shifts(live, (("U0ALICE", -1, 30), ("U0BOB", 30, 60)))
    _say(live, "cover payments for 3h", "U0BOB")  # Bob takes Alice's pager for the next three hours
    said = _say(live, "mine", "U0ALICE")
    assert "Your on-call shifts" in said and "You are not on call now." in said, said
    assert "*payments*" in said and "per the calendar" in said and "· *now*" in said
    assert f"<@U0BOB> covers {now:%a %d %b}" in said  # what takes her pager off her, and when
    said = _say(live, "mine", "U0BOB")
    # covering: on call until the cover ends, three hours from now
    until = f"You are on call now for payments until {now + dt.timedelta(hours=3):%a %d %b}"
    assert until in said and "(covering)" in said, said
    assert f"{now + dt.timedelta(hours=30):%a %d %b %H:%M}" in said  # his own calendar week, later
    # in words, by the same rules as /oncall: the cover wins for three hours, then the calendar
    assert "No: you will not be on call at" in _ask(live, "am I on call in 2h?", "U0ALICE")
    yes = _ask(live, "am I on call in 10h?", "U0ALICE")
    assert "Yes: you will be on call for payments at" in yes, yes
    assert "Yes: you will be on call for payments" in _ask(live, "am I on call in 40h?", "U0BOB")
    nxt = _ask(live, "when is my next shift?", "U0BOB")
    assert "Your on-call shifts" in nxt and until in nxt, nxt
    for q in ("what's my next shift?", "show me my upcoming shifts"):  # the knowledge base's "I don't know"
        said = _ask(live, q, "U0BOB")
        assert "Your on-call shifts" in said and until in said, (q, said)
    # "when does my shift end?" went to the knowledge base ("I don't know")
    for q in ("when does my shift end?", "when is my on-call over?", "when am I off call?"):
        assert until in _ask(live, q, "U0BOB"), q
    # someone in no team is told how to get in, not shown an empty schedule; a word it cannot read is said back
    assert "you are in no team I know" in _say(live, "mine", "U0STRANGER")
    assert "I cannot read `thursdya`" in _say(live, "mine thursdya", "U0ALICE")
    assert "`/oncall mine [when]` (your own shifts)" in _say(live, "payments thursdya", "U0ALICE")
