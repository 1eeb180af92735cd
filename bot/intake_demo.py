"""The demo's incident-intake steps: an alert storm that ends as one card, then the lifecycle."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select

from bot.inbox_spool import backlog
from knowledge.models import Incident

__all__ = ["add_intake_steps", "STORM_SIZE"]

STORM_SIZE = 300


def _storm(secret: str) -> Callable[..., Any]:
    def act(d: Any, srv: Any, st: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {secret}"}
        resp = None
        with httpx.Client(timeout=30) as client:
            for i in range(STORM_SIZE):
                body = {"version": "4", "groupKey": '{}:{alertname="HighErrorRate"}', "status": "firing",
                        "receiver": "warroom", "commonLabels": {"alertname": "HighErrorRate",
                                                                "service": "payments-api", "severity": "critical"},
                        "alerts": [{"status": "firing", "labels": {"alertname": "HighErrorRate",
                                                                   "service": "payments-api", "severity": "critical",
                                                                   "pod": f"payments-api-{i % 6}"},
                                    "annotations": {"summary": "payments-api 5xx ratio above 5%",
                                                    "description": "5xx ratio 14% (cpu=91 errors=380 latency=850)\n"
                                                                   "FATAL: remaining connection slots are reserved"},
                                    "startsAt": "2026-11-23T10:00:00Z", "fingerprint": f"pay-5xx-{i % 6}"}]}
                resp = client.post(f"{srv.url}/webhooks/alertmanager", content=json.dumps(body), headers=headers)
                if resp.status_code != 202:
                    raise RuntimeError(f"webhook answered {resp.status_code}: {resp.text[:200]}")
        deadline = time.time() + 60
        while time.time() < deadline:
            if not backlog(srv.services.db, srv.services.spool):
                break
            time.sleep(0.1)
        assert resp is not None
        return resp

    return act


def _latest(srv: Any) -> int:
    with srv.services.db.session() as s:
        return int(s.scalar(select(Incident.id).where(Incident.source == "alertmanager")
                            .order_by(Incident.id.desc()).limit(1)) or 0)


def add_intake_steps(add: Callable[..., None], channel: str, secret: str) -> None:
    """Alertmanager storm -> one card; ack; a note in the card's thread."""
    add("alertmanager", f"[{STORM_SIZE} HighErrorRate alerts for payments-api from 6 pods in 1 group]", _storm(secret))
    add("alice", "/incident ack <the storm's incident>",
        lambda d, srv, st: d.command("/incident", f"ack {_latest(srv)}", user="U0ALICE", channel=channel))
    add("alice", "/incident status <the storm's incident>",
        lambda d, srv, st: d.command("/incident", f"status {_latest(srv)}", user="U0ALICE", channel=channel))
    add("alice", "@warroom escalate #<the storm's incident>   (one level up; the next people to call are named)",
        lambda d, srv, st: d.mention(f"escalate #{_latest(srv)}", user="U0ALICE", channel=channel))
    add("bob", "@warroom note #<the storm's incident>: pool exhausted on postgres-main, failing over   (a key "
        "moment)", lambda d, srv, st: d.mention(f"note #{_latest(srv)}: pool exhausted on postgres-main, failing over",
                                                user="U0BOB", channel=channel))
    add("carla", "@warroom I'll do comms for #<the storm's incident>   (incident roles: on the card; the update "
        "reminders ask her first)", lambda d, srv, st: d.mention(f"I'll do comms for #{_latest(srv)}", user="U0CARLA",
                                                                 channel=channel))
    add("iris", "/incident new postgres-main at max_connections, replicas lagging sev2   (payments-api depends on "
        "it: its card names the storm's incident as related)",
        lambda d, srv, st: d.command("/incident", "new postgres-main at max_connections, replicas lagging sev2",
                                     user="U0IRIS", channel=channel))
