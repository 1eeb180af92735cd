"""Scenario tests: /logs, the message shortcut and file uploads through the real app and Slack stand-in."""

from __future__ import annotations

import json

from sqlalchemy import select

from knowledge.models import Incident, LogTemplate

PASTE = """```
2026-11-23 10:00:01 ERROR db-1 connection refused to 10.0.3.12:5432 password=hunter2secret
2026-11-23 10:00:02 ERROR db-1 connection refused to 10.0.3.13:5432 password=hunter2secret
2026-11-23 10:00:03 INFO worker 3 started in 120 ms
2026-11-23 10:00:04 INFO worker 4 started in 98 ms
2026-11-23 10:00:05 WARN retrying upstream payments-api in 5 s (attempt 2)
```"""


def _texts(live, channel: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [json.dumps(m.get("blocks") or m.get("text")) for m in live.standin.messages(channel)]


def _open_incident(live, channel: str) -> int:  # type: ignore[no-untyped-def]
    with live.db.session() as s:
        inc = Incident(title="Checkout errors", status="open", channel_id=channel, severity=2)
        s.add(inc)
        s.flush()
        return int(inc.id)


def test_logs_command_summarises_and_remembers_templates(live) -> None:  # type: ignore[no-untyped-def]
    resp = live.driver.command("/logs", PASTE, user="U0ALICE", channel="C0OPS")
    assert resp.status_code == 200
    live.drain()
    (msg,) = live.standin.messages("C0OPS")
    body = json.dumps(msg["blocks"])
    assert "Log classification" in body and "5 line(s)" in body
    assert "ERROR" in body and "never seen before" in body
    assert "hunter2secret" not in body, "secrets never reach Slack"
    with live.db.session() as s:
        rows = s.scalars(select(LogTemplate)).all()
        assert len(rows) == 3
        assert all("hunter2secret" not in r.example and "hunter2secret" not in r.template for r in rows)
        assert {r.severity for r in rows} >= {"ERROR", "INFO"}
    live.driver.command("/logs", PASTE, user="U0ALICE", channel="C0OPS")
    live.drain()
    second = json.dumps(live.standin.messages("C0OPS")[-1]["blocks"])
    assert "No template is new" in second, "new means new across time, not within one paste"


def test_empty_paste_gets_a_clear_ephemeral_answer(live) -> None:  # type: ignore[no-untyped-def]
    live.driver.command("/logs", "   ", user="U0BOB", channel="C0OPS")
    live.drain()
    (msg,) = live.standin.messages("C0OPS")
    assert msg["ephemeral"] and "no log lines" in json.dumps(msg["blocks"])


def test_huge_paste_is_cut_with_a_notice(live) -> None:  # type: ignore[no-untyped-def]
    million = "\n".join(f"INFO request {i} served in {i % 50} ms" for i in range(1_000_000))
    refused = live.driver.command("/logs", million, user="U0BOB", channel="C0OPS")
    assert refused.status_code == 413, "a body far over Slack's own limits gets a clear 4xx, not a hung listener"
    text = "\n".join(f"INFO request {i} served in {i % 50} ms" for i in range(2_000))
    resp = live.driver.command("/logs", text, user="U0BOB", channel="C0OPS")
    assert resp.status_code == 200 and "cut" in resp.text
    live.drain()
    (msg,) = live.standin.messages("C0OPS")
    assert "cut by the size limit" in json.dumps(msg["blocks"])


def test_message_shortcut_classifies_the_message_and_its_file(live) -> None:  # type: ignore[no-untyped-def]
    lines = "\n".join([f"kernel: Out of memory: Killed process {p} (java)" for p in range(1, 4)]
                      + [f"GET /api/v{i} 200 12ms" for i in range(30)]
                      + [f"job {i} finished state=ok retries=0 queue={i}" for i in range(12)])
    fid = live.standin.add_file("app.log", lines.encode())
    live.driver.message_shortcut("logs:classify", "ERROR payment failed: upstream timed out after 30000 ms",
                                 channel="C0OPS", files=[{"id": fid, "name": "app.log"}])
    live.drain()
    msgs = live.standin.messages("C0OPS")
    body = json.dumps(msgs[0]["blocks"])
    assert "46 line(s)" in body and "FATAL" in body
    assert live.standin.calls_to("files.info"), "the file was read through the Web API"


def test_file_upload_in_an_incident_channel_lands_on_the_incident(live) -> None:  # type: ignore[no-untyped-def]
    incident_id = _open_incident(live, "C0INC42")
    content = "\n".join(["ERROR disk /dev/sdb1 I/O error on block 88123"] * 3
                        + [f"INFO flushed {i} pages" for i in range(10)]).encode()
    fid = live.standin.add_file("node.log", content)
    live.driver.event({"type": "file_shared", "file_id": fid, "user_id": "U0ALICE", "channel_id": "C0INC42",
                       "file": {"id": fid}})
    live.drain()
    assert any("node.log" in t for t in _texts(live, "C0INC42"))
    with live.db.session() as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None and "logs" in inc.findings
        assert inc.findings["logs"]["heading"].startswith("Logs: 13 lines")


def test_binary_upload_gets_a_clear_message(live) -> None:  # type: ignore[no-untyped-def]
    _open_incident(live, "C0INC43")
    fid = live.standin.add_file("core.log", b"\x7fELF\x00\x00\x01\x02" * 100)
    live.driver.event({"type": "file_shared", "file_id": fid, "user_id": "U0ALICE", "channel_id": "C0INC43"})
    live.drain()
    (msg,) = live.standin.messages("C0INC43")
    assert "binary" in json.dumps(msg["blocks"])


def test_uploads_outside_incident_channels_are_left_alone(live) -> None:  # type: ignore[no-untyped-def]
    fid = live.standin.add_file("x.log", b"ERROR something broke\n")
    live.driver.event({"type": "file_shared", "file_id": fid, "user_id": "U0ALICE", "channel_id": "C0RANDOM"})
    live.drain()
    assert live.standin.messages("C0RANDOM") == []


def test_triage_reads_alert_log_lines(live) -> None:  # type: ignore[no-untyped-def]
    from skills.base import IncidentFacts

    incident_id = _open_incident(live, "C0INC44")
    skill = live.services.registry.get("logs")
    facts = IncidentFacts(incident_id=incident_id, title="db down",
                          log_lines=("FATAL: database cluster is corrupted", "INFO retry scheduled"))
    finding = skill.triage(facts, live.services.ctx)
    assert finding is not None and finding.heading.startswith("Logs: 2 lines")
    assert skill.triage(IncidentFacts(incident_id=incident_id, title="x"), live.services.ctx) is None
