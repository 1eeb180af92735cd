"""An incident's own channel (WARROOM_SLACK_OPEN_INCIDENT_CHANNELS=true) shows its state in the topic, set when
the state changes and not again when it does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.settings import Settings
from knowledge.models import Incident
from tests.conftest import Live, make_settings


@pytest.fixture
def settings(tmp_path: Path, standin: Any) -> Settings:
    return make_settings(tmp_path, standin, slack_open_incident_channels=True, warm_models=False)


def test_the_incident_channel_topic_follows_its_state(live: Live) -> None:
    live.driver.command("/incident", "new payments-api returning 503 sev2", user="U0ERIN", channel="C0OPS")
    live.drain()
    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.title == "payments-api returning 503")).one()
    assert inc.dedicated_channel and inc.channel_id

    def topics() -> list[str]:
        return [c.args["topic"] for c in live.standin.calls_to("conversations.setTopic")
                if c.args["channel"] == inc.channel_id]

    assert topics() == [f"SEV2 · open · payments-api · on it: nobody yet · #{inc.id} payments-api returning 503"]
    live.driver.command("/incident", "take", user="U0BOB", channel=inc.channel_id)  # in its channel: this one
    live.drain()
    live.driver.command("/incident", "status", user="U0BOB", channel=inc.channel_id)  # changes nothing
    live.driver.command("/incident", "sev 1", user="U0BOB", channel=inc.channel_id)
    live.drain()
    assert topics()[1:] == [
        f"SEV2 · acknowledged · payments-api · on it: <@U0BOB> · #{inc.id} payments-api returning 503",
        f"SEV1 · acknowledged · payments-api · on it: <@U0BOB> · #{inc.id} payments-api returning 503"]
    live.standin.refuse("conversations.setTopic", "missing_scope")  # Slack refuses: the card still updates
    live.driver.command("/incident", "resolve rolled back", user="U0BOB", channel=inc.channel_id)
    live.drain()
    with live.db.session() as s:
        done = s.get(Incident, inc.id)
        assert done is not None and done.status == "resolved"
        assert done.findings["channel_topic"].startswith("SEV1 · acknowledged")  # the refused one was not kept
    assert any("resolved" in c.args["text"] for c in live.standin.calls_to("chat.update"))
