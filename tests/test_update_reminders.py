"""An acknowledged incident nobody updates: the bot asks for an update in the card's thread, at most
``update_reminder_max`` times in a row; an update starts the count again; mitigating it stops them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.settings import Settings
from knowledge.models import Incident, Job, TimelineEvent
from tests.conftest import Live, make_settings, open_incidents


@pytest.fixture
def settings(tmp_path: Path, standin: Any) -> Settings:
    # SEV1 every second, SEV2 every 30 s (never reached here), SEV3 none; two reminders in a row at most
    return make_settings(tmp_path, standin, update_reminder_s={1: 1.0, 2: 30.0}, update_reminder_max=2)


def _asks(live: Live, inc: Incident) -> list[str]:
    return [m["text"] for m in live.standin.messages(inc.channel_id)
            if m.get("thread_ts") == inc.card_ts and "has had no update for" in m["text"]]


def test_a_quiet_acknowledged_incident_is_asked_for_updates(live: Live) -> None:
    cmd = live.driver.command
    pay, lag = open_incidents(live, "payments-api returning 503 sev1", "ingest lag growing sev3")
    time.sleep(1.5)
    live.drain()
    assert _asks(live, pay) == []  # nobody acknowledged it yet: that is the acknowledgement reminders' job
    cmd("/incident", f"take {pay.id}", user="U0BOB", channel="C0OPS")
    cmd("/incident", f"take {lag.id}", user="U0BOB", channel="C0OPS")  # SEV3 has no cadence here
    live.drain(30)
    first = _asks(live, pay)
    assert len(first) == 2, first  # two in a row, then quiet (update_reminder_max)
    assert first[0].startswith(f"Incident #{pay.id}: payments-api returning 503: Incident #{pay.id} (SEV1, "
                               "acknowledged) has had no update for 0 min. The last one (")
    assert "<@U0BOB>, please post one here: `update: what we know" in first[0]
    assert "I will not ask again" not in first[0] and "I will not ask again until the next update." in first[1]
    assert _asks(live, lag) == []
    assert "incident:resolve" in json.dumps(next(m for m in live.standin.messages(pay.channel_id)
                                                 if "has had no update" in m["text"])["blocks"])

    # an update (a note in the card's thread, masked) starts the count again, and the next ask quotes it
    ts = f"{time.time():.6f}"
    assert live.driver.event({"type": "app_mention", "user": "U0BOB", "ts": ts, "event_ts": ts,
                              "text": "<@UWARROOM> note: failover to the replica started, password=hunter2",
                              "thread_ts": pay.card_ts, "channel": pay.channel_id}).status_code == 200
    live.drain(30)
    second = _asks(live, pay)[2:]
    assert len(second) == 2, second
    assert "Note by <@U0BOB>: failover to the replica started" in second[0] and "hunter2" not in second[0]

    # mitigated: no more asks, even after an update
    cmd("/incident", f"mitigate {pay.id} traffic moved to the replica", user="U0BOB", channel="C0OPS")
    cmd("/incident", f"note {pay.id} watching error rates", user="U0BOB", channel="C0OPS")
    live.drain(30)
    time.sleep(1.5)
    live.drain(30)
    assert len(_asks(live, pay)) == 4
    with live.db.session() as s:
        kinds = [e.kind for e in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == pay.id)
                                           .order_by(TimelineEvent.at, TimelineEvent.id))]
        assert kinds.count("update_reminder") == 4
        # one check per due time: the card refreshes of the same state did not queue a second chain
        keys = [j.dedup_key for j in s.scalars(select(Job).where(Job.kind == "incident.update_check"))]
        assert len(keys) == 4, keys  # two chains of two (after the take, after the note); unique by key
    # the handover's "last update" is the note, not a reminder
    cmd("/incident", "handover", user="U0CARLA", channel="C0HAND")
    live.drain()
    said = json.dumps(live.standin.messages("C0HAND"))
    assert "last update 0 min ago: Note by <@U0BOB>: watching error rates" in said


def test_snoozing_the_update_reminders_while_heads_down(live: Live) -> None:
    """"Snooze the update reminders for 30m" got the help's "I do not silence alerts". The asking for updates waits
    until then (on the timeline), then starts again; an unacknowledged incident is told to ack instead."""
    import datetime as dt

    from knowledge.models import utcnow

    (pay,) = open_incidents(live, "payments-api returning 503 sev2")  # asked every 30 s here

    def say(text: str) -> str:
        before = len(live.standin.messages(pay.channel_id))
        ts = f"{time.time():.6f}"
        assert live.driver.event({"type": "app_mention", "user": "U0BOB", "ts": ts, "event_ts": ts,
                                  "text": f"<@UWARROOM> {text}", "thread_ts": pay.card_ts,
                                  "channel": pay.channel_id}).status_code == 200
        live.drain(30, due_within_s=20)
        return " || ".join(m["text"] for m in live.standin.messages(pay.channel_id)[before:])

    def next_check() -> dt.datetime:
        with live.db.session() as s:
            return max(j.run_after for j in s.scalars(select(Job).where(Job.kind == "incident.update_check",
                                                                         Job.status == "queued")))

    assert "is not acknowledged yet: its reminders stop when someone acknowledges it" in say(
        "snooze the update reminders for 30m")
    live.driver.command("/incident", f"take {pay.id}", user="U0BOB", channel="C0OPS")
    live.drain(30, due_within_s=20)
    assert next_check() < utcnow() + dt.timedelta(seconds=31)  # the cadence
    said = say("snooze the update reminders for 30m")
    assert f"I will not ask for updates on incident #{pay.id} until" in said and "(30 min)" in said, said
    assert next_check() > utcnow() + dt.timedelta(minutes=29)  # the snooze holds the next ask back
    assert "A snooze is for 1 minute to 8 hours" in say("snooze the update reminders for 12h")
    with live.db.session() as s:
        inc = s.get(Incident, pay.id)
        (snoozed,) = [e.text for e in inc.timeline if e.kind == "snooze"]
        assert snoozed.startswith("Update reminders snoozed until ") and snoozed.endswith(" UTC by <@U0BOB>")
        # the snooze ran out
        inc.findings = {**inc.findings, "updates_snoozed_until": (utcnow() - dt.timedelta(seconds=1)).isoformat()}
    live.driver.command("/incident", f"sev 1 {pay.id}", user="U0BOB", channel="C0OPS")  # SEV1: every second
    live.drain(30, due_within_s=20)
    time.sleep(1.5)
    live.drain(30, due_within_s=20)
    assert _asks(live, pay), "the snooze is over: asked again"
