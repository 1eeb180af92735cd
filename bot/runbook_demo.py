"""The runbook part of ``warroom demo``: a dry run, a request, and an approval by another person.

The demo cleans a throw-away log directory under /tmp (one old rotated log to delete, one fresh
one to keep), so the run really executes ``df``, ``du`` and ``find`` through the approval flow.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bot.standin.driver import SlackDriver
from bot.standin.harness import LiveServer
from bot.standin.server import SlackStandIn

__all__ = ["add_runbook_steps"]

Act = Callable[[SlackDriver, LiveServer, SlackStandIn], Any]


def _logs_dir() -> Path:
    d = Path(tempfile.mkdtemp(prefix="warroom-demo-logs-", dir="/tmp"))
    old, new = d / "payments-api.log.3.gz", d / "payments-api.log.1.gz"
    old.write_bytes(b"\x1f\x8b" + os.urandom(4096))
    new.write_bytes(b"\x1f\x8b" + os.urandom(1024))
    month_ago = time.time() - 30 * 86400
    os.utime(old, (month_ago, month_ago))
    return d


def _button(st: SlackStandIn, channel: str, action_id: str) -> tuple[str, str]:
    for m in reversed(st.messages(channel)):
        for b in m.get("blocks") or []:
            for e in b.get("elements", []) if b.get("type") == "actions" else []:
                if e.get("action_id") == action_id:
                    return str(e["value"]), str(m["ts"])
    raise RuntimeError(f"no {action_id} button was posted")


def _ok(resp: httpx.Response) -> httpx.Response:
    if resp.status_code >= 300:
        raise RuntimeError(f"the app answered {resp.status_code}: {resp.text[:200]}")
    return resp


def add_runbook_steps(add: Callable[[str, str, Act], None], channel: str) -> None:
    """Append the runbook steps to a demo scenario (``add`` is ``Scenario.add``)."""
    state: dict[str, Path] = {}

    def path() -> Path:
        if "dir" not in state:
            state["dir"] = _logs_dir()
        return state["dir"]

    def click(action: str, user: str) -> Act:
        def act(d: SlackDriver, srv: LiveServer, st: SlackStandIn) -> httpx.Response:
            value, ts = _button(st, channel, action)
            return _ok(d.click(action, value, user=user, channel=channel, message_ts=ts))
        return act

    add("iris", "/runbook list postgres-main", lambda d, srv, st: _ok(
        d.command("/runbook", "list postgres-main", user="U0IRIS", channel=channel)))
    add("alice", "/runbook run clear-disk-space path=/tmp/warroom-demo-logs-… days=7 --dry-run",
        lambda d, srv, st: _ok(d.command("/runbook", f"run clear-disk-space path={path()} days=7 --dry-run",
                                         user="U0ALICE", channel=channel)))
    add("alice", "/runbook run clear-disk-space path=/tmp/warroom-demo-logs-… days=7",
        lambda d, srv, st: _ok(d.command("/runbook", f"run clear-disk-space path={path()} days=7",
                                         user="U0ALICE", channel=channel)))
    add("alice", "[clicks Confirm run]", click("runbooks:confirm", "U0ALICE"))
    add("alice", "[clicks Approve on her own request: she is not in storage/platform]",
        click("runbooks:approve", "U0ALICE"))
    add("iris", "[clicks Approve] (storage team)", click("runbooks:approve", "U0IRIS"))
    add("bob", "/runbook history", lambda d, srv, st: _ok(
        d.command("/runbook", "history", user="U0BOB", channel=channel)))
