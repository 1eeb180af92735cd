"""Everyday questions that went to the knowledge base (its "I don't know", or a runbook or postmortem passage about
something else), now answered from what the bot keeps, through the real app (signed mentions in, the Slack stand-in
read): which alerts fired today or overnight, what is flapping, how often a service breaks, my reminders, the status of
"the kafka incident" when none is open, and a call or ticket asked for under a card."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Live, open_incidents
from tests.test_incident_words import _say
from tests.test_risk_slack import _post_alert


def test_alerts_that_fired_today_and_what_is_flapping(live: Live) -> None:
    assert "No alerts in the last 24 hours." in _say(live, "what alerts fired today?")
    _post_alert(live, json.loads((Path(__file__).parent / "payloads" / "alertmanager.json").read_text()))
    live.drain()
    for words, span in (("what alerts fired today?", "the last 24 hours"),
                        ("which alerts went off overnight?", "the last 12 hours"),
                        ("what's flapping?", "the last 7 days"), ("any flapping alerts?", "the last 7 days")):
        said = _say(live, words)
        assert f"Alert noise: {span}" in said and "*HighErrorRate* on payments-api: fired 2 time(s)" in said, (words,
                                                                                                            said)


def test_how_often_a_service_breaks_counts_a_quarter_unless_a_span_is_said(live: Live) -> None:
    open_incidents(live, "payments-api 503 errors at checkout sev2")
    said = _say(live, "how often does payments-api break?")
    assert "1 incident(s) in the last 90 days on payments-api, 1 still open." in said, said
    said = _say(live, "how often did kafka fail this year?")  # the sample world's #109, in 2026
    assert "in the last 365 days on kafka" in said, said


def test_my_reminders_and_the_last_incident_of_a_service_with_none_open(live: Live) -> None:
    said = _say(live, "what are my reminders?")
    assert "You have no reminder to come." in said, said
    said = _say(live, "what's the status of the kafka incident?")
    assert "No open incidents (on kafka). The last one: #109 SEV1 [resolved] kafka broker out of disk" in said, said
    assert "(`/incident status 109`)" in said


def test_a_call_or_a_ticket_asked_for_is_said_to_be_out_of_reach_with_what_to_do(live: Live) -> None:
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    here = {"channel": inc.channel_id, "thread": inc.card_ts}
    said = _say(live, "can you open a zoom?", **here)
    assert "I cannot start a zoom: I hold no credentials for it." in said and "`bridge: <url>`" in said, said
    assert f"under incident #{inc.id}'s card" in said
    said = _say(live, "create a jira ticket for this", **here)
    assert "I cannot create a jira ticket" in said and "`jira PAY-123` or `ticket: <url>`" in said, said
    assert "I cannot start a bridge" in _say(live, "please start a bridge")
    # what it can do is still done: a link pasted goes on the incident
    _say(live, "bridge: https://zoom.example.com/j/123", **here)
    assert "https://zoom.example.com/j/123" in _say(live, "where's the bridge?", **here)


def test_a_personal_reminder_away_from_any_incident_points_to_slacks_own(live: Live) -> None:
    """"Remind me in 30 min to check the queue" away from a card only asked "Which incident?"."""
    open_incidents(live, "payments-api 503 errors at checkout sev2")
    said = _say(live, "remind me in 30 min to check the queue")
    assert "Which incident? Open now: #" in said and "Slack's `/remind me in 30m to check the queue` does it" in said
