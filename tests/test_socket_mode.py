"""Socket Mode through the real app: the bot opens its WebSocket with the app-level token (``apps.connections.open`` on
the Slack stand-in), Slack's envelopes (slash commands, events, button clicks) arrive over it and are acknowledged on
it, the answers go out through the Web API stand-in, and alerts still arrive over HTTP in the same process. Slack
redelivering an envelope, sending garbage, asking the bot to reconnect, or refusing the token: nothing is lost or
done twice, and the reason is visible."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.standin.server import SlackStandIn
from bot.standin.socket_mode import SocketModeStandIn
from knowledge.models import Incident
from tests.conftest import Live, live_with
from tests.test_intake_webhooks import load, post, wait_processed

APP_TOKEN = "xapp-1-A0WARROOM-1-0123456789abcdef"


def _socket(standin: SlackStandIn, timeout: float = 15.0) -> SocketModeStandIn:
    deadline = time.monotonic() + timeout
    while standin.socket is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert standin.socket is not None, "the app never asked for a Socket Mode URL"
    assert standin.socket.wait_connected(1, timeout), "the app did not connect"
    return standin.socket


@pytest.fixture
def live(tmp_path: Path, standin: SlackStandIn) -> Iterator[Live]:
    standin.app_token = APP_TOKEN
    with live_with(tmp_path, standin, warm_models=False, slack_socket_mode=True,
                   slack_app_token=SecretStr(APP_TOKEN)) as live:
        yield live


def _texts(live: Live, channel: str) -> list[str]:
    return [m["text"] for m in live.standin.messages(channel)]


def test_commands_events_and_clicks_arrive_over_the_socket(live: Live) -> None:
    sock, d = _socket(live.standin), live.driver
    ready = httpx.get(f"{live.url}/readyz").json()
    assert ready["status"] == "ready" and ready["slack_socket"]["connected"] is True

    env = sock.send("slash_commands", d.command_form("/warroom", "status", user="U0BOB", channel="C0OPS"))
    assert sock.wait_ack(env) == {"envelope_id": env}  # acknowledged on the socket, within Slack's 3 s
    live.drain()
    assert any("I am up." in t for t in _texts(live, "C0OPS"))

    env = sock.send("slash_commands", d.command_form("/incident", "new ledger-api writes failing sev2",
                                                     user="U0ERIN", channel="C0OPS"))
    assert sock.wait_ack(env) is not None
    live.drain()
    with live.db.session() as s:
        inc = s.scalars(select(Incident).where(Incident.title == "ledger-api writes failing")).one()
        inc_id, card_ts = inc.id, inc.card_ts
    assert card_ts

    env = sock.send("interactive", d.click_payload("incident:ack", str(inc_id), user="U0CARLA",
                                                   channel="C0INCIDENTS", message_ts=card_ts))
    assert sock.wait_ack(env) is not None
    live.drain()
    with live.db.session() as s:
        inc = s.get(Incident, inc_id)
        assert inc is not None and (inc.status, inc.assignee) == ("acknowledged", "U0CARLA")

    env = sock.send("events_api", d.event_body(d.mention_event(f"status of #{inc_id}", user="U0BOB",
                                                               channel="C0OPS")))
    assert sock.wait_ack(env) is not None
    live.drain()
    (answer,) = [m for m in live.standin.messages("C0OPS") if m.get("thread_ts")]  # in the mention's thread
    assert f"Incident #{inc_id}" in answer["text"] and "acknowledged" in json.dumps(answer["blocks"])

    # Alerts still come in over HTTP, in the same process
    assert post(live, "alertmanager", load("alertmanager")).status_code == 202
    wait_processed(live)
    live.drain()
    with live.db.session() as s:
        assert s.scalars(select(Incident).where(Incident.id > inc_id)).one().card_ts  # opened from the alert


def test_a_redelivery_acts_once_and_garbage_does_not_break_the_link(live: Live) -> None:
    sock, d = _socket(live.standin), live.driver
    body = d.event_body(d.mention_event("what can you do?", user="U0BOB", channel="C0HELP"), event_id="Ev0SOCKET1")
    first = sock.send("events_api", body)
    assert sock.wait_ack(first) is not None
    again = sock.send("events_api", body, retry_attempt=1)  # Slack did not see the first ack in time
    assert sock.wait_ack(again) is not None
    live.drain()
    assert len(_texts(live, "C0HELP")) == 1  # answered once

    for frame in ("{not json", "hello", '{"type": "no_such_kind", "envelope_id": "e-odd", "payload": {}}',
                  '{"type": "events_api", "envelope_id": "e-empty", "payload": {}}'):
        sock.send_raw(frame)
    env = sock.send("slash_commands", d.command_form("/warroom", "status", user="U0BOB", channel="C0AFTER"))
    assert sock.wait_ack(env) is not None
    live.drain()
    assert any("I am up." in t for t in _texts(live, "C0AFTER"))
    assert sock.connections == 1  # the same connection throughout


def test_slack_asks_for_a_new_connection(live: Live) -> None:
    sock, d = _socket(live.standin), live.driver
    asked = len(live.standin.calls_to("apps.connections.open"))
    sock.disconnect("refresh_requested")
    assert sock.wait_connected(2), "the app did not reconnect"
    assert len(live.standin.calls_to("apps.connections.open")) == asked + 1  # a new URL for the new connection
    env = sock.send("slash_commands", d.command_form("/warroom", "status", user="U0BOB", channel="C0NEW"))
    assert sock.wait_ack(env) is not None
    live.drain()
    assert any("I am up." in t for t in _texts(live, "C0NEW"))


def test_a_refused_token_is_said_and_alerts_still_arrive(tmp_path: Path, standin: SlackStandIn) -> None:
    standin.app_token = "xapp-1-the-right-one"
    with live_with(tmp_path, standin, warm_models=False, slack_socket_mode=True,
                   slack_app_token=SecretStr(APP_TOKEN)) as live:
        deadline = time.monotonic() + 15
        while not (state := httpx.get(f"{live.url}/readyz").json().get("slack_socket", {})).get("error") \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state["connected"] is False and "invalid_auth" in state["error"]
        assert post(live, "alertmanager", load("alertmanager")).status_code == 202  # the HTTP door is open
        wait_processed(live)
        live.drain()
        with live.db.session() as s:
            assert s.scalars(select(Incident).where(Incident.status == "open")).one().card_ts
        assert standin.socket is None  # never handed a URL


def test_socket_mode_needs_an_app_level_token(tmp_path: Path, standin: SlackStandIn,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from bot.app import create_app
    from bot.cli import app
    from tests.conftest import BOT_TOKEN, make_settings

    with pytest.raises(ValueError, match="app-level token"):  # a bot token where the app token goes
        create_app(make_settings(tmp_path, standin, slack_socket_mode=True, slack_app_token=SecretStr(BOT_TOKEN)))
    with pytest.raises(ValueError, match="WARROOM_SLACK_APP_TOKEN"):
        create_app(make_settings(tmp_path, standin, slack_socket_mode=True))
    for k, v in {"WARROOM_MODE": "demo", "WARROOM_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
                 "WARROOM_DATA_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("WARROOM_SLACK_APP_TOKEN", raising=False)
    res = CliRunner().invoke(app, ["serve", "--socket-mode"])
    assert res.exit_code != 0 and "Socket Mode needs WARROOM_SLACK_APP_TOKEN" in str(res.exception)


def test_a_dropped_link_is_said_and_comes_back_with_a_new_url(tmp_path: Path, standin: SlackStandIn) -> None:
    """Slack's end of the socket goes away for good (a long network cut: the URL the bot had is dead): ``/readyz``
    says the link is down and since when; alerts still arrive over HTTP; once down longer than
    ``WARROOM_SLACK_SOCKET_STALE_S`` the bot asks Slack for a new URL (slack_sdk alone would retry the dead one
    forever), and the link is up again without anyone restarting the bot."""
    standin.app_token = APP_TOKEN
    with live_with(tmp_path, standin, warm_models=False, slack_socket_mode=True, slack_socket_stale_s=2.0,
                   slack_app_token=SecretStr(APP_TOKEN)) as live:
        sock = _socket(live.standin)
        assert httpx.get(f"{live.url}/readyz").json()["slack_socket"]["connected"] is True
        sock.stop()  # the WebSocket server is gone; for now apps.connections.open still hands its dead URL
        deadline = time.monotonic() + 20
        while (state := httpx.get(f"{live.url}/readyz").json()["slack_socket"])["connected"] \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state["connected"] is False, state
        assert "dropped" in state["error"] and state["down_since"]
        assert post(live, "alertmanager", load("alertmanager")).status_code == 202  # the HTTP door is open
        wait_processed(live)
        live.standin.socket = None  # Slack is back: the next apps.connections.open hands a new, live URL
        deadline = time.monotonic() + 60
        while not (state := httpx.get(f"{live.url}/readyz").json()["slack_socket"])["connected"] \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state["connected"] is True and state["error"] is None and state["down_since"] is None, state
        assert state["new_urls"] >= 1
        new = _socket(live.standin)  # and it works: a command over the new connection is answered
        env = new.send("slash_commands", live.driver.command_form("/warroom", "status", user="U0BOB",
                                                                  channel="C0BACK"))
        assert new.wait_ack(env) is not None
        live.drain()
        assert any("I am up." in t for t in _texts(live, "C0BACK"))
