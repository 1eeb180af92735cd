"""Swapping on-call shifts from Slack ("swap my shift with alice", "can I trade my on-call week with @alice?"): these
got the help ("I am not sure what you need"). Now the two shifts are found, the other person is asked with buttons,
and only their Accept writes the swap (two override shifts), which /oncall then follows. Through the real app: signed
mentions and clicks in, the Slack stand-in and the database read."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from knowledge.models import Expert, OnCallShift, utcnow
from knowledge.people import oncall_by_team
from tests.conftest import Live
from tests.test_incident_words import _say
from tests.test_team_roster import _buttons


def _shifts(live: Live, user: str) -> list[tuple[int, dt.datetime, dt.datetime]]:
    with live.db.session() as s:
        me = s.scalar(select(Expert).where(Expert.slack_user_id == user))
        return [(x.id, x.starts_at, x.ends_at) for x in s.scalars(select(OnCallShift).where(
            OnCallShift.expert_id == me.id, OnCallShift.source != "override", OnCallShift.ends_at > utcnow())
            .order_by(OnCallShift.starts_at))]


def _on_call_at(live: Live, at: dt.datetime) -> list[str]:
    with live.db.session() as s:
        (row,) = oncall_by_team(session=s, team="payments", at=at)
    return [u for u, _ in row.people]


def _said_since(live: Live, before: int) -> str:
    return " ".join(m.get("text", "") for m in live.standin.messages("C0OPS")[before:])


def test_a_swap_is_asked_and_made_only_when_the_other_person_accepts(live: Live) -> None:
    a = _shifts(live, "U0BOB")[0]  # Bob's shift running now, or his next
    b = next(x for x in _shifts(live, "U0ALICE") if x[1] >= a[2])  # Alice's next one after it
    mid_a, mid_b = max(a[1], utcnow()) + (a[2] - max(a[1], utcnow())) / 2, b[1] + (b[2] - b[1]) / 2
    assert _on_call_at(live, mid_a) == ["U0BOB"] and _on_call_at(live, mid_b) == ["U0ALICE"]
    said = _say(live, "can I trade my on-call week with alice?", user="U0BOB")
    assert "<@U0ALICE>: <@U0BOB> asks to swap payments on-call shifts with you." in said, said
    assert "Nothing changes until you press Accept swap." in said
    (accept,) = _buttons(live, "C0OPS", "routing:swap_accept")
    assert accept["value"] == f"{a[0]}:{b[0]}:U0BOB:U0ALICE"
    before = len(live.standin.messages("C0OPS"))
    for who in ("U0BOB", "U0IRIS"):  # the asker and a stranger cannot accept for Alice
        live.driver.click("routing:swap_accept", accept["value"], user=who, channel="C0OPS")
        live.drain()
    assert _said_since(live, before).count("Only <@U0ALICE> can accept this swap.") == 2
    assert _on_call_at(live, mid_a) == ["U0BOB"]
    live.driver.click("routing:swap_accept", accept["value"], user="U0ALICE", channel="C0OPS")
    live.drain()
    assert "Swapped payments on-call shifts: <@U0ALICE> takes" in _said_since(live, before)
    assert _on_call_at(live, mid_a) == ["U0ALICE"] and _on_call_at(live, mid_b) == ["U0BOB"]
    told = " ".join(m.get("text", "") for m in live.standin.messages("C0PAYMENTS"))
    assert "Swapped payments on-call shifts" in told  # the team's channel hears it
    before = len(live.standin.messages("C0OPS"))
    live.driver.click("routing:swap_accept", accept["value"], user="U0ALICE", channel="C0OPS")  # twice: once
    live.drain()
    assert "This swap was already made" in _said_since(live, before)
    with live.db.session() as s:
        assert len(s.scalars(select(OnCallShift).where(OnCallShift.source == "override")).all()) == 2


def test_a_swap_declined_or_asked_badly_changes_nothing(live: Live) -> None:
    _say(live, "swap my shift with <@U0ALICE>", user="U0BOB")
    (decline,) = _buttons(live, "C0OPS", "routing:swap_decline")
    before = len(live.standin.messages("C0OPS"))
    live.driver.click("routing:swap_decline", decline["value"], user="U0BOB", channel="C0OPS")  # the asker withdraws
    live.drain()
    assert "<@U0BOB> declined the swap" in _said_since(live, before)
    for words, error in (("swap my shift", "Swap with whom?"),
                         ("swap my shift with me", "Swap with whom?"),
                         ("swap my shift with zebediah", "I know nobody called `zebediah`"),
                         ("swap my shift with bob", "That is you"),
                         ("swap my shift with carla", "<@U0CARLA> has no payments shift in the next 8 weeks")):
        assert error in _say(live, words, user="U0BOB"), words
    before = len(live.standin.messages("C0OPS"))
    for value in ("999999:999998:U0BOB:U0ALICE", "not-a-swap"):  # a value that is no live swap
        live.driver.click("routing:swap_accept", value, user="U0ALICE", channel="C0OPS")
        live.drain()
    said = _said_since(live, before)
    assert "These shifts changed since the swap was asked" in said and "This button does not carry a shift swap" in said
    with live.db.session() as s:
        assert not s.scalars(select(OnCallShift).where(OnCallShift.source == "override")).all()
