"""Nobody acknowledges a new incident: the bot reminds in the card's thread and calls the next people."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.settings import Settings
from bot.standin.server import SlackStandIn
from knowledge.models import Incident, TimelineEvent
from tests.conftest import Live, make_settings
from tests.test_intake_webhooks import load, post, resolved_copy, wait_processed


@pytest.fixture
def settings(tmp_path: Path, standin: SlackStandIn) -> Settings:
    # SEV1 and SEV2 after 0.5 s, SEV3 after 3 s, SEV4 never; two reminders at most
    return make_settings(tmp_path, standin, ack_reminder_s={1: 0.5, 2: 0.5, 3: 3.0}, ack_reminder_max=2)


def _incident(live: Live, title: str, timeout: float = 20.0) -> Incident:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with live.db.session() as s:
            inc = s.scalars(select(Incident).where(Incident.title == title)).first()
            if inc is not None and inc.card_ts:
                return inc
        time.sleep(0.05)
    raise AssertionError(f"incident {title!r} was not opened")


def _reminders(live: Live, inc: Incident) -> list[dict]:
    return [m for m in live.standin.messages(inc.channel_id)
            if m.get("thread_ts") == inc.card_ts and "has not been acknowledged" in m["text"]]


def test_an_unacknowledged_incident_is_reminded_and_an_acknowledged_one_is_not(live: Live) -> None:
    """Reminders call the router's people until someone acknowledges; :eyes: on a card acknowledges."""
    live.driver.command("/incident", "new payments-api returning 503 sev2", user="U0ERIN", channel="C0OPS")
    live.driver.command("/incident", "new ingest lag growing sev3", user="U0ERIN", channel="C0OPS")
    live.driver.command("/incident", "new billing-worker slow sev4", user="U0ERIN", channel="C0OPS")
    quiet = _incident(live, "ingest lag growing")
    live.driver.command("/incident", f"ack {quiet.id}", user="U0FARID", channel="C0OPS")  # before its 3 s
    live.drain(60)
    loud, low = _incident(live, "payments-api returning 503"), _incident(live, "billing-worker slow")
    first, second = _reminders(live, loud)  # two, then it stops (ack_reminder_max)
    assert f"Reminder 1: incident #{loud.id} (SEV2) has not been acknowledged 1 min after it opened" in first["text"]
    assert "declared owner of payments-api" in first["text"]  # the router's people for this incident
    assert f"Reminder 2: incident #{loud.id}" in second["text"]
    called = [set(re.findall(r"<@(U[A-Z0-9]+)>", m["text"])) for m in (first, second)]
    # payments-api has two people (on call, owner): the second reminder calls them again, as a pager does
    assert called[0] and called[1] == called[0] and "Nobody else to call; calling again" in second["text"]
    assert f'"value": "{loud.id}"' in json.dumps(first["blocks"]) and "incident:ack" in json.dumps(first["blocks"])
    assert _reminders(live, quiet) == [] and _reminders(live, low) == []  # acknowledged in time; SEV4: never
    with live.db.session() as s:
        events = s.scalars(select(TimelineEvent).where(TimelineEvent.kind == "reminder")).all()
        assert sorted(e.incident_id for e in events) == [loud.id, loud.id]
        assert s.get(Incident, loud.id).status == "open" and s.get(Incident, quiet.id).status == "acknowledged"
    live.driver.click("incident:ack", str(loud.id), user="U0BOB", channel=loud.channel_id, message_ts=first["ts"])
    live.driver.reaction("eyes", low.channel_id, low.card_ts, user="U0BOB")  # :eyes: on a card acknowledges it
    live.drain(30)
    live.driver.reaction("eyes", low.channel_id, low.card_ts, user="U0CARLA")  # once: a second one is quiet
    live.driver.reaction("eyes", low.channel_id, first["ts"], user="U0CARLA")  # not a card: nothing
    live.drain(30)
    with live.db.session() as s:
        assert s.get(Incident, loud.id).status == "acknowledged"
        row = s.get(Incident, low.id)
        assert (row.status, row.assignee) == ("acknowledged", "U0BOB")
    acked = [m["text"] for m in live.standin.messages(low.channel_id)
             if m.get("thread_ts") == low.card_ts and "acknowledged incident" in m["text"]]
    assert acked == [f"Incident #{low.id}: <@U0BOB> acknowledged incident #{low.id}."]


def test_an_incident_an_alert_reopens_is_reminded_again(live: Live) -> None:
    """Alertmanager opens it (SEV1, nobody acks), resolves it (mitigated), fires again (reopened): a new round."""
    payload = load("alertmanager")
    assert post(live, "alertmanager", payload).status_code == 202
    wait_processed(live)
    assert post(live, "alertmanager", resolved_copy(payload)).status_code == 202
    wait_processed(live)
    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.source != "import")).one()
        assert inc.status == "mitigated"
    assert post(live, "alertmanager", payload).status_code == 202  # it fires again
    wait_processed(live)
    texts = [m["text"] for m in _reminders(live, inc)]
    assert [t.split(":")[0] for t in texts] == [f"Incident #{inc.id}"] * 4  # two per opening
    assert sum("after it opened" in t for t in texts) == 2 and sum("after it reopened" in t for t in texts) == 2
    # Acknowledged now; the alert flaps (resolves, fires again): still acknowledged, no new round.
    live.driver.command("/incident", f"ack {inc.id}", user="U0BOB", channel="C0OPS")
    live.drain()
    for body in (resolved_copy(payload), payload):
        assert post(live, "alertmanager", body).status_code == 202
        wait_processed(live)
    live.drain()
    with live.db.session() as s:
        assert s.get(Incident, inc.id).status == "acknowledged"
        last = s.scalars(select(TimelineEvent.text).where(TimelineEvent.incident_id == inc.id,
                                                          TimelineEvent.kind == "reopened")
                         .order_by(TimelineEvent.id.desc())).first()
    assert last == "An alert fired again (still acknowledged by <@U0BOB>)"
    time.sleep(1.0)  # past the SEV1 delay: a round would have started
    live.drain()
    assert len(_reminders(live, inc)) == 4


def test_reminders_still_reach_people_when_the_incident_channel_is_archived(tmp_path: Path,
                                                                             standin: SlackStandIn) -> None:
    """Someone archives the incident's own channel while nobody has acknowledged it: the reminder cannot go in
    the card's thread (``is_archived``), so it goes to the incident channel; the chain of reminders goes on,
    and the timeline has each reminder once."""
    from tests.conftest import live_with

    with live_with(tmp_path, standin, ack_reminder_s={2: 5.0}, ack_reminder_max=2,
                   slack_open_incident_channels=True, warm_models=False) as live:
        live.driver.command("/incident", "new ledger writes time out sev2", user="U0ERIN", channel="C0OPS")
        inc = _incident(live, "ledger writes time out")
        assert inc.dedicated_channel
        live.drain(60, due_within_s=1)  # triage done, its card updates made: only the reminders are ahead
        live.standin.archive(inc.channel_id)
        live.drain(60, due_within_s=30)
        home = live.services.settings.slack_incident_channel
        said = [m["text"] for m in live.standin.messages(home) if "has not been acknowledged" in m["text"]]
        assert len(said) == 2 and "Reminder 1" in said[0] and "Reminder 2" in said[1], said
        with live.db.session() as s:
            events = s.scalars(select(TimelineEvent).where(TimelineEvent.kind == "reminder")).all()
            assert len(events) == 2
            moved = s.get(Incident, inc.id)
            assert moved is not None and moved.channel_id == home, "the card followed to the incident channel"
            assert any(m.get("ts") == moved.card_ts for m in live.standin.messages(home))
