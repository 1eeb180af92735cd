"""The weekly alert-noise digest: from Monday 09:00 UTC each team's channel gets the noisiest alerts of its services
over the last week, once per week whatever the number of maintenance runs or replicas; a quiet team gets nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from bot.noise_digest import queue_digests
from bot.render import blocks_to_text
from bot.settings import Settings
from tests.conftest import Live, make_settings
from tests.test_risk_slack import _post_alert

MONDAY = dt.datetime(2026, 11, 30, 10, 0)  # a Monday, after 09:00 UTC


@pytest.fixture
def settings(tmp_path: Path, standin: Any) -> Settings:
    return make_settings(tmp_path, standin, alert_noise_digest=True, warm_models=False)


def test_each_team_hears_its_noisiest_alerts_once_a_week(live: Live) -> None:
    payload = json.loads((Path(__file__).parent / "payloads" / "alertmanager.json").read_text())
    _post_alert(live, payload)  # HighErrorRate on payments-api, two instances
    assert queue_digests(live.services, MONDAY - dt.timedelta(hours=2)) == 0  # before 09:00
    assert queue_digests(live.services, MONDAY + dt.timedelta(days=1)) == 0  # a Tuesday
    queued = queue_digests(live.services, MONDAY)
    assert queued >= 5, queued  # every team with a channel
    live.drain()
    said = [blocks_to_text(m.get("blocks") or []) for m in live.standin.messages("C0PAYMENTS")]
    (digest,) = [x for x in said if "Alert noise" in x]
    assert "2 alert(s) on the payments team's services in the last 24 hours" not in digest  # the week, not today
    assert "on the payments team's services in the last 7 days" in digest, digest
    assert "*HighErrorRate* on payments-api: fired 2 time(s), 1 incident(s)" in digest, digest
    assert not [m for m in live.standin.messages("C0DATA") if "Alert noise" in json.dumps(m)]  # a quiet week
    # the later runs of that Monday, and another replica, queue nothing new
    assert queue_digests(live.services, MONDAY + dt.timedelta(hours=6)) == 0
    live.drain()
    assert len([m for m in live.standin.messages("C0PAYMENTS") if "Alert noise" in json.dumps(m)]) == 1


def test_off_in_test_mode_unless_asked(tmp_path: Path, standin: Any) -> None:
    assert not make_settings(tmp_path, standin).noise_digests()
    assert make_settings(tmp_path, standin, mode="production", alert_noise_digest=None,
                         slack_bot_token="xoxb-real-0123456789", slack_signing_secret="s" * 32).noise_digests()
