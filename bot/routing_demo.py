"""The routing part of ``warroom demo``: who is on call, a cover taken from Slack, a routed ticket, the card's Assign
and Wrong owner buttons."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select

from bot.standin.driver import SlackDriver
from bot.standin.harness import LiveServer
from bot.standin.server import SlackStandIn
from knowledge.models import Incident

__all__ = ["add_routing_steps"]

Act = Callable[[SlackDriver, LiveServer, SlackStandIn], Any]

TICKET = "checkout-web shows 404 for the JavaScript bundles after a CDN change"
INCIDENT = "payments-api 503s, postgres says remaining connection slots are reserved sev1"


def _ok(resp: httpx.Response) -> httpx.Response:
    if resp.status_code >= 300:
        raise RuntimeError(f"the app answered {resp.status_code}: {resp.text[:200]}")
    return resp


def _incident_id(srv: LiveServer) -> int:
    with srv.services.db.session() as s:
        row = s.scalar(select(Incident.id).where(Incident.title.like("payments-api 503s%"))
                       .order_by(Incident.id.desc()).limit(1))
    if row is None:
        raise RuntimeError("the routing demo incident was not opened")
    return int(row)


def _click(verb: str, user: str, channel: str) -> Act:
    def act(d: SlackDriver, srv: LiveServer, st: SlackStandIn) -> httpx.Response:
        inc_id = _incident_id(srv)
        with srv.services.db.session() as s:
            inc = s.get(Incident, inc_id)
            routing = ((inc.findings or {}).get("routing") or {}) if inc else {}
        cands = (routing.get("data") or {}).get("candidates") or []
        if not cands:
            raise RuntimeError("the card has no suggested responder")
        target = inc.assignee if verb == "wrong_owner" and inc and inc.assignee else cands[0]["user_id"]
        return _ok(d.click(f"routing:{verb}", f"{inc_id}:{target}", user=user, channel=channel))

    return act


def add_routing_steps(add: Callable[[str, str, Act], None], channel: str) -> None:
    """Append the routing steps to the demo scenario."""
    add("carla", "/oncall payments", lambda d, srv, st: _ok(d.command("/oncall", "payments", user="U0CARLA",
                                                                        channel=channel)))
    add("bob", "/oncall cover payments for 2h", lambda d, srv, st: _ok(d.command(
        "/oncall", "cover payments for 2h", user="U0BOB", channel=channel)))
    add("erin", f"/route {TICKET}", lambda d, srv, st: _ok(d.command("/route", TICKET, user="U0ERIN",
                                                                     channel=channel)))
    add("bob", f"/incident new {INCIDENT}", lambda d, srv, st: _ok(d.command("/incident", f"new {INCIDENT}",
                                                                             user="U0BOB", channel=channel)))
    add("bob", "[clicks Assign on the card's suggested responder]", _click("assign", "U0BOB", channel))
    add("alice", "[clicks Wrong owner]", _click("wrong_owner", "U0ALICE", channel))
