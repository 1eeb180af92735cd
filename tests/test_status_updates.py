"""Status updates for the people following an incident: "update: ..." (or `/incident update`) is a key note and
is posted in the status channel with the incident's state and a link to its card; then its mitigation and its
resolution are too. Notes stay internal, and incidents that never had an update are not announced."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.render import blocks_to_text
from bot.settings import Settings
from knowledge.models import TimelineEvent
from tests.conftest import Live, make_settings, open_incidents


@pytest.fixture
def settings(tmp_path: Path, standin: Any) -> Settings:
    return make_settings(tmp_path, standin, slack_status_channel="C0STATUS", warm_models=False)


def _status(live: Live) -> list[str]:
    return [blocks_to_text(m.get("blocks") or []) for m in live.standin.messages("C0STATUS")]


def test_updates_go_to_the_status_channel_and_notes_do_not(live: Live) -> None:
    cmd = live.driver.command
    pay, lag = open_incidents(live, "payments-api returning 503 sev1", "ingest lag growing sev3")
    cmd("/incident", f"note {pay.id} checking the pool settings", user="U0BOB", channel="C0OPS")
    cmd("/incident", f"note {lag.id} consumer restarted", user="U0BOB", channel="C0OPS")
    cmd("/incident", f"resolve {lag.id} restarted the consumer", user="U0BOB", channel="C0OPS")
    live.drain()
    assert _status(live) == []  # notes are internal; an incident that never had an update is not announced
    ts = f"{time.time():.6f}"
    assert live.driver.event({"type": "app_mention", "user": "U0BOB", "ts": ts, "event_ts": ts,
                              "text": "<@UWARROOM> update: failed over to the replica, token=abc123secretvalue",
                              "thread_ts": pay.card_ts, "channel": pay.channel_id}).status_code == 200
    live.drain()
    (first,) = _status(live)
    assert f"Incident #{pay.id}: payments-api returning 503" in first
    assert "*SEV1 · open · payments-api · 0 min*" in first
    assert "Update from <@U0BOB>: failed over to the replica, token=[REDACTED]" in first
    assert "abc123secretvalue" not in json.dumps(live.standin.messages("C0STATUS"))
    assert "|Follow the incident>" in first  # the card's permalink
    replies = " ".join(m["text"] for m in live.standin.messages(pay.channel_id) if m.get("thread_ts") == pay.card_ts)
    assert "Shared in <#C0STATUS>." in replies
    cmd("/incident", f"update {pay.id} error rate back to 0.2%, watching", user="U0BOB", channel="C0OPS")
    live.drain()  # two commands sent at once are worked on at once: either may be announced first
    cmd("/incident", f"mitigate {pay.id} traffic on the replica", user="U0BOB", channel="C0OPS")
    live.drain()
    cmd("/incident", f"resolve {pay.id} raised the pool limit", user="U0ALICE", channel="C0OPS")
    live.drain()
    said = _status(live)
    assert len(said) == 4, said
    assert "Update from <@U0BOB>: error rate back to 0.2%, watching" in said[1]
    assert "Mitigated by <@U0BOB>: traffic on the replica" in said[2] and "· mitigated ·" in said[2]
    assert "Resolved by <@U0ALICE>: raised the pool limit" in said[3] and "· resolved ·" in said[3]
    with live.db.session() as s:  # both updates are key notes on the timeline, like any note
        notes = s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == pay.id,
                                                      TimelineEvent.kind == "note").order_by(TimelineEvent.id)).all()
        assert [(n.key, bool((n.data or {}).get("broadcast"))) for n in notes] == [(True, False), (True, True),
                                                                                  (True, True)]
    # bad input: an update with nothing to say, an unknown incident
    for text, reply in ((f"update {pay.id}", "Say what to note"),
                        ("update 99999 hello", "There is no incident #99999")):
        before = len(live.standin.messages("C0BAD"))
        cmd("/incident", text, user="U0BOB", channel="C0BAD")
        live.drain()
        new = live.standin.messages("C0BAD")[before:]
        assert len(new) == 1 and reply in new[0]["text"], (text, new)
    assert len(_status(live)) == 4
