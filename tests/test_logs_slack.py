"""Scenario tests: /logs, the message shortcut and file uploads through the real app and Slack stand-in."""

from __future__ import annotations

import io
import json

from sqlalchemy import select

from bot.render import blocks_to_text
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


def test_a_pasted_stack_trace_is_its_exception_not_one_template_per_frame(live) -> None:  # type: ignore[no-untyped-def]
    """A Java exception pasted with its frames was 12 ERROR templates, one per `at ...` line, pushing what the paste
    says (the exception, its cause, the next lines) out of the summary. Python and Go frames likewise."""
    java = ('2026-12-03 10:00:00 ERROR [main] Request failed\njava.lang.IllegalStateException: pool exhausted\n'
            + "".join(f"\tat com.shop.db.Pool.get{i}(Pool.java:{i})\n" for i in range(10))
            + "Caused by: java.net.SocketTimeoutException: connect timed out\n\t... 10 more\n"
            + 'Traceback (most recent call last):\n  File "/app/worker.py", line 88, in run\n    charge(order)\n'
            + "KeyError: 'customer_id'\n2026-12-03 10:00:05 INFO retry scheduled")
    live.driver.command("/logs", java, user="U0BOB", channel="C0OPS")
    live.drain()
    body = json.dumps(live.standin.messages("C0OPS")[-1]["blocks"])
    assert "6 line(s)" in body and "13 stack-frame line(s) were read as part of the exception line above" in body
    assert "Pool.java" not in body and "Caused by" in body and "KeyError" in body


def test_a_question_before_a_paste_classifies_the_lines_and_says_what_was_seen_before(live) -> None:  # type: ignore[no-untyped-def]
    """"What does this mean? ```<line>```" (a one-line code block, as Slack keeps it) went to the knowledge base and the
    line was never classified; `/logs` read that block as no lines at all; "classify this log: ERROR ..." made the
    words part of the template; "is this bad? kernel: ..." got a runbook. Now: the lines, classified, and the past
    incidents and postmortems they resemble, with the fix that worked (a single shared word is not a resemblance)."""
    line = ("2026-12-04 10:01:02 ERROR [pool-3] o.h.e.j.s.SqlExceptionHelper - FATAL: remaining connection slots are "
            "reserved for non-replication superuser connections")
    for i, text in enumerate((f"what does this mean? ```{line}```", f"is this bad? {line}",
                              f"classify this log: {line}", f"should I worry about this?\n```\n{line}\n```")):
        live.driver.mention(text, user="U0BOB", channel=f"C0Q{i}")
    live.driver.command("/logs", f"```{line}```", user="U0BOB", channel="C0Q9")
    live.drain()
    for channel in ("C0Q0", "C0Q1", "C0Q2", "C0Q3", "C0Q9"):
        (msg,) = live.standin.messages(channel)
        body = blocks_to_text(msg["blocks"])
        assert "Log classification" in body and "1 line(s) in 1 template(s): 1 ERROR" in body, (channel, body)
        assert "remaining connection slots" in body and "classify this log" not in body.lower(), body
        assert "*Seen before?*" in body and "payments-api 5xx spike: connection pool exhausted on postgres-main" in \
            body and "fix that worked: Scaled payments-api back down" in body, body
    live.driver.mention("is this bad? kernel: EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: comm "
                        "systemd: reading directory lblock 0", user="U0BOB", channel="C0Q5")
    live.drain()
    body = blocks_to_text(live.standin.messages("C0Q5")[-1]["blocks"])
    assert "Log classification" in body and "nothing close in the knowledge base" in body, body


def test_empty_paste_gets_a_clear_ephemeral_answer(live) -> None:  # type: ignore[no-untyped-def]
    live.driver.command("/logs", "   ", user="U0BOB", channel="C0OPS")
    live.drain()
    (msg,) = live.standin.messages("C0OPS")
    assert msg["ephemeral"] and "no log lines" in json.dumps(msg["blocks"])
    live.driver.command("/logs", "\x1b[31m\n\x1b[0m", user="U0BOB", channel="C0OPS")  # colour codes alone
    live.drain()
    msg = live.standin.messages("C0OPS")[-1]
    assert msg["ephemeral"] and "no log lines" in json.dumps(msg["blocks"]), msg


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
    assert "Seen before?" in body and "warehouse-loader nightly job failed: out of memory" in body  # #110


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


# --- downloads as Slack's file host really answers them ---------------------------------------------------------
def _file_event(live, fid: str, channel: str, user: str = "U0ALICE") -> None:  # type: ignore[no-untyped-def]
    resp = live.driver.event({"type": "file_shared", "file_id": fid, "user_id": user, "channel_id": channel,
                              "file": {"id": fid}})
    assert resp.status_code == 200
    live.drain()


def _no_finding(live, incident_id: int) -> None:  # type: ignore[no-untyped-def]
    with live.db.session() as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None and "logs" not in (inc.findings or {})
        assert s.scalars(select(LogTemplate)).all() == []


def test_slack_sign_in_page_is_not_read_as_logs(live) -> None:  # type: ignore[no-untyped-def]
    """Without ``files:read`` Slack's file host answers 200 with its sign-in page; that page is not a log."""
    incident_id = _open_incident(live, "C0INC45")
    fid = live.standin.add_file("node.log", b"ERROR disk /dev/sdb1 I/O error on block 88123\n")
    live.standin.files_sign_in_page = True
    _file_event(live, fid, "C0INC45")
    (msg,) = live.standin.messages("C0INC45")
    body = json.dumps(msg["blocks"])
    assert "sign-in page" in body and "files:read" in body
    assert "template" not in body.lower(), "nothing was classified"
    _no_finding(live, incident_id)


def test_external_and_deleted_files_are_not_fetched(live) -> None:  # type: ignore[no-untyped-def]
    """A Google Drive link shared as a file: its URL is not Slack's, so the bot token is never sent there."""
    gdrive = live.standin.add_file("payments.log", b"", mode="external", is_external=True, external_type="gdrive",
                                   url_private="https://docs.google.com/document/d/1AbC/edit")
    live.driver.message_shortcut("logs:classify", "", channel="C0OPS", files=[{"id": gdrive, "name": "payments.log"}])
    live.drain()
    body = json.dumps(live.standin.messages("C0OPS")[-1]["blocks"])
    assert "outside Slack" in body and "payments.log" in body
    gone = live.standin.add_file("old.log", b"ERROR x\n", mode="tombstone")
    live.driver.message_shortcut("logs:classify", "", channel="C0OPS", files=[{"id": gone, "name": "old.log"}])
    live.drain()
    assert "was deleted" in json.dumps(live.standin.messages("C0OPS")[-1]["blocks"])
    assert live.standin.calls_to("files.download") == [], "nothing was downloaded"


def test_file_over_the_limit_is_refused_before_downloading(live) -> None:  # type: ignore[no-untyped-def]
    incident_id = _open_incident(live, "C0INC46")
    fid = live.standin.add_file("huge.log", b"ERROR x\n", size=3 * 2**30)  # Slack's size says 3 GB
    _file_event(live, fid, "C0INC46")
    body = json.dumps(live.standin.messages("C0INC46")[-1]["blocks"])
    assert "3,072 MB" in body and "warroom logs classify FILE" in body
    assert live.standin.calls_to("files.download") == []
    _no_finding(live, incident_id)


def test_redirect_to_another_host_does_not_carry_the_token(live) -> None:  # type: ignore[no-untyped-def]
    import http.server
    import threading

    seen: list[str | None] = []

    class Elsewhere(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return

        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization"))
            body = b"ERROR disk /dev/sdc1 I/O error on block 7\nINFO flushed 3 pages\n"
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        incident_id = _open_incident(live, "C0INC47")
        # the stand-in is http://127.0.0.1:<port>; "localhost" is another host name, so another origin
        fid = live.standin.add_file("disk.log", b"", redirect=f"http://localhost:{srv.server_port}/f")
        _file_event(live, fid, "C0INC47")
    finally:
        srv.shutdown()
    (first,) = live.standin.calls_to("files.download")
    assert first.args["authorized"], "Slack's own host gets the token"
    assert seen == [None], "the redirect's host did not"
    with live.db.session() as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None and inc.findings["logs"]["heading"].startswith("Logs: 2 lines")


def test_own_csv_upload_is_not_read_back(live) -> None:  # type: ignore[no-untyped-def]
    """A long summary comes with a CSV of its templates; Slack sends ``file_shared`` for the bot's own upload
    too. Reading it back would answer with another CSV, for ever. Here auth.test fails first, so Bolt does not
    know its own user and cannot drop the event itself."""
    live.standin.fail("auth.test", 500, count=50)
    incident_id = _open_incident(live, "C0INC48")
    words = ["disk", "cache", "queue", "socket", "lease", "shard", "index", "token", "quota", "mount", "route",
             "kernel"]
    content = "\n".join(f"ERROR {words[i % 12]} {words[(i + 5) % 12]} failed after {i} retries"
                        for i in range(400)).encode()  # 12 templates, more than a summary shows
    fid = live.standin.add_file("many.log", content)
    _file_event(live, fid, "C0INC48")
    uploads = live.standin.calls_to("files.completeUploadExternal")
    assert uploads, "the long summary came with its CSV"
    csv_id = uploads[-1].response["files"][0]["id"]
    before = len(live.standin.messages("C0INC48"))
    downloads = len(live.standin.calls_to("files.download"))
    _file_event(live, csv_id, "C0INC48", user="UWARROOM")
    assert len(live.standin.messages("C0INC48")) == before
    assert len(live.standin.calls_to("files.download")) == downloads
    with live.db.session() as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None and inc.findings["logs"]["heading"].startswith("Logs: 400 lines"), \
            "the finding is still the uploaded log's, not the CSV's"


def test_rotated_compressed_log_upload_is_read(live) -> None:  # type: ignore[no-untyped-def]
    import gzip

    incident_id = _open_incident(live, "C0INC49")
    content = "\n".join(["ERROR disk /dev/sdb1 I/O error on block 88123"] * 3
                        + [f"INFO flushed {i} pages" for i in range(10)]).encode()
    fid = live.standin.add_file("kern.log.1.gz", gzip.compress(content), filetype="gzip")
    _file_event(live, fid, "C0INC49")
    body = next(t for t in _texts(live, "C0INC49") if "kern.log.1.gz" in t)
    assert "decompressed (gzip)" in body
    with live.db.session() as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None and inc.findings["logs"]["heading"].startswith("Logs: 13 lines")
    other = live.standin.add_file("backup.tar.gz", gzip.compress(b"\x00" * 512), filetype="gzip")
    before = len(live.standin.messages("C0INC49"))
    _file_event(live, other, "C0INC49")
    assert len(live.standin.messages("C0INC49")) == before, "an archive that is no log is left alone"


def test_windows_utf16_log_upload_is_read(live) -> None:  # type: ignore[no-untyped-def]
    """A log saved by Windows PowerShell (UTF-16 with a byte-order mark) was answered "binary file"."""
    incident_id = _open_incident(live, "C0INC50")
    content = "\r\n".join(["ERROR disk D: I/O error on block 88123"] * 3
                           + [f"INFO flushed {i} pages" for i in range(9)])
    fid = live.standin.add_file("app-events.log", b"\xff\xfe" + content.encode("utf-16-le"), filetype="text")
    _file_event(live, fid, "C0INC50")
    body = next(t for t in _texts(live, "C0INC50") if "app-events.log" in t)
    assert "read as UTF-16" in body and "binary" not in body, body
    with live.db.session() as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None and inc.findings["logs"]["heading"].startswith("Logs: 12 lines"), inc.findings


def test_which_hosts_get_the_bot_token() -> None:
    from bot.slack_client import _slack_file_host

    api = "https://slack.com/api/"
    for url in ("https://files.slack.com/files-pri/T1-F1/download/a.log", "https://files.slack-gov.com/f/a.log"):
        assert _slack_file_host(url, api), url
    for url in ("http://files.slack.com/f", "https://files.slack.com.evil.example/f", "https://evilslack.com/f",
                "https://docs.google.com/document/d/1", "file:///etc/passwd", ""):
        assert not _slack_file_host(url, api), url
    assert _slack_file_host("http://127.0.0.1:9000/_files/F1", "http://127.0.0.1:9000/api/")  # a stand-in, a proxy
    assert not _slack_file_host("http://127.0.0.1:9001/_files/F1", "http://127.0.0.1:9000/api/")


def test_a_missing_scope_is_found_at_start_and_named_on_readyz(live) -> None:  # type: ignore[no-untyped-def]
    """Slack lists the token's scopes in X-OAuth-Scopes on every answer: a token installed without files:read
    is found when the bot starts (logged, on /readyz, with what it breaks), not when an incident needs it."""
    import httpx

    from bot.slack_client import REQUIRED_SCOPES

    assert live.services.poster.check_scopes() == []
    assert "slack_scopes_missing" not in httpx.get(f"{live.url}/readyz", timeout=10).json()
    live.standin.scopes = sorted(set(REQUIRED_SCOPES) - {"files:read", "users:read"})
    assert live.services.poster.check_scopes() == ["files:read", "users:read"]
    ready = httpx.get(f"{live.url}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["slack_scopes_missing"] == {"files:read": "uploaded log files cannot be read",
                                                   "users:read": REQUIRED_SCOPES["users:read"]}


def test_the_uploaded_csv_keeps_hostile_lines_as_text(live) -> None:  # type: ignore[no-untyped-def]
    """A pasted line "=HYPERLINK(...)" was a formula cell in the CSV that comes with a long summary."""
    import csv as csv_module

    words = ["disk", "cache", "queue", "socket", "lease", "shard", "index", "token", "quota", "mount", "route"]
    lines = [f"ERROR {w} {words[(i + 3) % 11]} failed after {i} retries" for i, w in enumerate(words)]
    lines += ['=HYPERLINK("http://evil.example/x","open the dashboard") ERROR payment failed',
              "@SUM(1+1) ERROR totals", "+cmd|' /C calc'!A0 WARN ok"]
    live.driver.command("/logs", "\n".join(lines), user="U0ALICE", channel="C0CSV")
    live.drain()
    uploads = live.standin.calls_to("files.completeUploadExternal")
    assert uploads, "a summary of 14 templates comes with its CSV"
    content = live.standin.files[uploads[-1].response["files"][0]["id"]]["content"].decode()
    rows = list(csv_module.DictReader(io.StringIO(content)))
    cells = [r[k] for r in rows for k in ("template", "example")]
    assert any("HYPERLINK" in c for c in cells) and any("SUM(1+1)" in c for c in cells)
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")], cells


def test_asking_for_a_services_logs_says_how_to_give_them_and_where_its_links_are(live) -> None:  # type: ignore[no-untyped-def]
    """"Show me the logs for payments-api" got the help. The bot holds no log store: it says so, how to give it logs,
    and lists the log and dashboard links people put on the service's open incidents."""
    from tests.conftest import open_incidents

    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    live.driver.mention("show me the logs for payments-api", user="U0BOB", channel="C0L1")
    live.drain()
    said = blocks_to_text(live.standin.messages("C0L1")[-1]["blocks"])
    assert "Logs of payments-api" in said and "I do not read payments-api's logs myself" in said, said
    assert "links on its open incidents" not in said
    ts = "1700000000.000100"
    live.driver.event({"type": "app_mention", "user": "U0BOB", "ts": ts, "event_ts": ts, "channel": inc.channel_id,
                       "thread_ts": inc.card_ts, "text": "<@UWARROOM> logs: <https://kibana.example.com/d/pay>"})
    live.drain()
    live.driver.mention("can you get the latest logs from payments-api?", user="U0BOB", channel="C0L2")
    live.drain()
    said = blocks_to_text(live.standin.messages("C0L2")[-1]["blocks"])
    assert f"#{inc.id}: <https://kibana.example.com/d/pay|logs>" in said, said


def test_what_is_new_in_the_logs(live) -> None:  # type: ignore[no-untyped-def]
    """"What's new in the logs?", "any errors in ingest logs?" went to the knowledge base (postmortem passages): the
    templates first seen over the span, the most severe first, of a service's incidents when one is named."""
    import datetime as dt

    from knowledge.models import utcnow
    from tests.conftest import open_incidents
    from tests.test_incident_words import _say

    said = _say(live, "what's new in the logs?")
    assert "No log template first seen in the last 24 hours. I know only the logs I am given" in said, said
    ingest, api = open_incidents(live, "ingest lag sev3", "payments-api slow sev3")
    _say(live, "ERROR consumer group rebalance failed for topic orders password=hunter2\nWARN lag 5000 on partition 3",
         channel="C0INCIDENTS", thread=ingest.card_ts)
    _say(live, "FATAL payments pool exhausted after 30000 ms", channel="C0INCIDENTS", thread=api.card_ts)
    with live.db.session() as s:  # the WARN line was first seen three days ago
        old = s.scalars(select(LogTemplate).where(LogTemplate.template.like("WARN lag%"))).one()
        old.first_seen = utcnow() - dt.timedelta(days=3)
    said = _say(live, "what's new in the logs?")
    assert "2 log template(s) first seen in the last 24 hours, the most severe first" in said, said
    assert said.index("*FATAL*") < said.index("*ERROR*") and "WARN lag" not in said
    assert "password=[REDACTED]" in said and "hunter2" not in said  # as stored: masked
    assert f"first with #{ingest.id} (ingest)" in said and f"first with #{api.id} (payments-api)" in said
    said = _say(live, "any new log patterns this week?")
    assert "3 log template(s) first seen in the last 7 days" in said and "WARN lag" in said, said
    said = _say(live, "any errors in ingest logs?")  # a service's, errors only
    assert "1 log template(s) first seen in the last 24 hours on ingest at ERROR or FATAL" in said, said
    assert "FATAL" not in said.split("\n", 2)[-1] and "consumer group rebalance" in said
