"""Runbook runs through the real app: signed slash commands and button clicks in, assertions on what
the Slack stand-in received and on the database (executions and the append-only audit log)."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.settings import Settings
from knowledge.models import AuditRecord, Incident, RunbookExecution, utcnow
from knowledge.runbook_store import import_dir

CH = "C0INCIDENTS"
COMMANDS = ["df", "du", "find", "env", "sleep", "kubectl", "redis-cli"]


@pytest.fixture
def settings(tmp_path: Path, standin: Any) -> Settings:
    """Test settings with a small command allow-list (kubectl is allowed but not installed here)."""
    from tests.conftest import make_settings  # type: ignore[import-not-found]

    return make_settings(tmp_path, standin, runbook_commands=COMMANDS, runbook_http_hosts=["127.0.0.1"],
                         warm_models=False)  # other skills' warm-up is slow; ours builds lazily


def _buttons(msg: dict[str, Any]) -> dict[str, str]:
    out = {}
    for b in msg.get("blocks") or []:
        if b.get("type") == "actions":
            for e in b["elements"]:
                out[e["action_id"]] = e["value"]
    return out


def _text(msg: dict[str, Any]) -> str:
    from bot.render import blocks_to_text

    return blocks_to_text(msg.get("blocks") or []) or msg.get("text", "")


def _last(live: Any, contains: str, channel: str = CH) -> dict[str, Any]:
    for m in reversed(live.standin.messages(channel)):
        if contains in _text(m):
            return m
    seen = [_text(m)[:80] for m in live.standin.messages(channel)]
    raise AssertionError(f"no message containing {contains!r}; got {seen}")


def _cmd(live: Any, text: str, user: str) -> None:
    assert live.driver.command("/runbook", text, user=user, channel=CH).status_code == 200
    live.drain()


def _click(live: Any, action: str, value: str, user: str, ts: str | None = None) -> None:
    assert live.driver.click(action, value, user=user, channel=CH, message_ts=ts).status_code == 200
    live.drain()


def _audit(live: Any, execution_id: int | None = None) -> list[AuditRecord]:
    with live.db.session() as s:
        q = select(AuditRecord).order_by(AuditRecord.id)
        if execution_id is not None:
            q = q.where(AuditRecord.execution_id == execution_id)
        return list(s.scalars(q))


def _exec(live: Any, eid: int) -> RunbookExecution:
    with live.db.session() as s:
        row = s.get(RunbookExecution, eid)
        assert row is not None
        return row


def _wait_status(live: Any, eid: int, states: tuple[str, ...], timeout: float = 20) -> RunbookExecution:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = _exec(live, eid)
        if row.status in states:
            return row
        time.sleep(0.05)
    raise AssertionError(f"run {eid} stayed {_exec(live, eid).status}")


def test_dry_run_then_request_confirm_and_approval_by_another_user(live: Any, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    old, new = logs / "app.1.gz", logs / "app.2.gz"
    old.write_bytes(b"x" * 1000)
    new.write_bytes(b"y" * 1000)
    os.utime(old, (time.time() - 10 * 86400, time.time() - 10 * 86400))

    _cmd(live, f"run clear-disk-space path={logs} days=3 --dry-run", "U0ALICE")
    preview = _last(live, "Dry run: clear-disk-space")
    assert preview["ephemeral"] is True
    assert f"find {logs} -xdev -type f -name '*.gz' -mtime +3 -print -delete" in _text(preview)
    assert old.exists(), "a dry run must not run anything"

    _cmd(live, f"run clear-disk-space path={logs} days=3", "U0ALICE")
    ask = _last(live, "Run clear-disk-space v1?")
    assert f"du -xh --max-depth=1 {logs}" in _text(ask)
    value = _buttons(ask)["runbooks:confirm"]
    eid = int(value.split(":")[0])
    assert _exec(live, eid).status == "pending"

    _click(live, "runbooks:confirm", value, "U0ALICE", ask["ts"])
    approval = _last(live, "Approval needed: clear-disk-space")
    assert _exec(live, eid).status == "awaiting_approval"
    approve_value = _buttons(approval)["runbooks:approve"]

    # Alice (payments) is not in the approver group (storage, platform): refused.
    _click(live, "runbooks:approve", approve_value, "U0ALICE", ask["ts"])
    assert "only storage, platform can approve" in _text(_last(live, "Refused"))
    assert _exec(live, eid).status == "awaiting_approval"

    _click(live, "runbooks:approve", approve_value, "U0IRIS", ask["ts"])
    row = _wait_status(live, eid, ("succeeded", "failed"))
    assert row.status == "succeeded", row.output
    assert row.approved_by == "U0IRIS" and row.requested_by == "U0ALICE"
    assert not old.exists() and new.exists()
    thread = [m for m in live.standin.messages(CH) if m.get("thread_ts") == ask["ts"]]
    assert any(str(old) in _text(m) for m in thread), "the step output streams into the thread"
    assert any("succeeded" in _text(m) for m in thread)
    actions = [a.action for a in _audit(live, eid)]
    for want in ("runbook.requested", "runbook.confirmed", "runbook.refused", "runbook.approved",
                 "runbook.started", "runbook.step", "runbook.succeeded"):
        assert want in actions, actions
    steps = [a for a in _audit(live, eid) if a.action == "runbook.step"]
    assert len(steps) == 5 and steps[2].detail["argv"][0] == "find"
    assert steps[2].detail["status"] == "ok"

    _cmd(live, "history", "U0BOB")
    assert f"#{eid} `clear-disk-space` v1 *succeeded*" in _text(_last(live, "Runbook history"))
    _cmd(live, f"history #{eid}", "U0BOB")
    assert "runbook.approved by U0IRIS" in _text(_last(live, f"Audit of run #{eid}"))
    # the runs of one runbook; a name it does not know was ignored (every runbook's last runs, as if none was given)
    _cmd(live, "run flush-cache instance=redis-cache-pages --dry-run", "U0HUGO")
    _cmd(live, "history clear-disk-space", "U0BOB")
    said = _text(_last(live, "Runbook history: clear-disk-space"))
    assert f"#{eid} `clear-disk-space`" in said and "flush-cache" not in said
    _cmd(live, "history flush-cache", "U0BOB")
    assert "clear-disk-space" not in _text(_last(live, "Runbook history: flush-cache"))
    _cmd(live, "history clear-disk-spcae", "U0BOB")
    assert "There is no runbook, run or service `clear-disk-spcae`" in _text(live.standin.messages(CH)[-1])


def test_smart_punctuation_of_a_slack_client_is_read_as_typed(live: Any) -> None:
    """macOS Slack turns `--dry-run` into `\u2014dry-run` and quotes into curly ones: the dry run was refused
    ("I do not understand"), and `/similar \u2014service payments-api` searched for the words "\u2014service
    payments-api" with no filter. A dash inside a sentence is left as written."""
    _cmd(live, "run flush-cache instance=\u201credis-cache-pages\u201d \u2014dry-run", "U0HUGO")
    preview = _last(live, "Dry run: flush-cache")
    assert preview["ephemeral"] is True and "redis-cache-pages" in _text(preview)
    with live.db.session() as s:
        (row,) = s.scalars(select(RunbookExecution)).all()
        assert row.dry_run is True and row.status == "previewed"
    assert live.driver.command("/similar", "\u2013service payments-api connection pool exhausted", user="U0BOB",
                               channel=CH).status_code == 200
    live.drain()
    said = _text(live.standin.messages(CH)[-1])
    assert "service payments-api" in said and "\u2013service" not in said, said
    assert live.driver.command("/incident", "new checkout down \u2014 503s at the edge", user="U0BOB",
                               channel=CH).status_code == 200
    live.drain()
    with live.db.session() as s:
        title = s.scalar(select(Incident.title).where(Incident.source == "slack"))
    assert title == "checkout down \u2014 503s at the edge"


def test_a_run_is_cancelled_by_its_number_when_its_button_is_out_of_reach(live: Any) -> None:
    """Only the *Cancel run* button cancelled a run; far up a busy thread, or in someone else's message, it could not
    be found. `/runbook cancel <run id>` does the same, under the same rule (requester, approver); a mention is
    told how (a pasted line saying "cancel run #3" must not stop a fix)."""
    _cmd(live, "run restart-service service=payments-api", "U0BOB")
    eid = int(_buttons(_last(live, "Run restart-service v1?"))["runbooks:confirm"].split(":")[0])
    for user, text, said in (("U0ERIN", f"cancel {eid}", "only the requester or an approver of `restart-service`"),
                             ("U0BOB", "cancel 99999", "There is no run #99999"),
                             ("U0BOB", "cancel soon", "Usage: `/runbook cancel <run id>`")):
        _cmd(live, text, user)
        assert said in _text(live.standin.messages(CH)[-1]), text
    assert _exec(live, eid).status == "pending"
    live.driver.mention(f"cancel run #{eid}", user="U0BOB", channel=CH)
    live.drain()
    assert f"use `/runbook cancel {eid}`" in _text(live.standin.messages(CH)[-1])
    assert _exec(live, eid).status == "pending"
    _cmd(live, f"cancel #{eid}", "U0BOB")
    assert f"Cancelled: restart-service (run #{eid})" in _text(live.standin.messages(CH)[-1])
    assert _exec(live, eid).status == "cancelled"
    assert [a.actor for a in _audit(live, eid) if a.action == "runbook.cancel_requested"] == ["U0BOB"]
    _cmd(live, f"cancel {eid}", "U0CARLA")  # an approver, too late
    assert f"run #{eid} is cancelled; nothing to cancel" in _text(live.standin.messages(CH)[-1])


def test_an_approval_request_mentions_who_can_approve_now(live: Any) -> None:
    """"Someone from *platform* must approve" pinged nobody: the request waited until an approver saw it by chance,
    and expired. Now whoever is on call for the approver team (and may approve: never the requester of a high-risk
    run) is mentioned; with nobody, it says so."""
    import datetime as dt

    from sqlalchemy import delete

    from knowledge.models import Expert, OnCallShift, Rotation, Team, utcnow

    def platform_on_call(user: str) -> None:
        now = utcnow()
        with live.db.session() as s:
            team = s.scalar(select(Team.id).where(Team.name == "platform"))
            s.execute(delete(OnCallShift).where(OnCallShift.team_id == team))
            s.execute(delete(Rotation).where(Rotation.team_id == team))
            s.add(OnCallShift(team_id=team, expert_id=s.scalar(select(Expert.id).where(Expert.slack_user_id == user)),
                              starts_at=now - dt.timedelta(hours=1), ends_at=now + dt.timedelta(hours=8),
                              source="ical"))

    def ask(user: str) -> str:
        _cmd(live, "run restart-service service=payments-api", user)
        ask = _last(live, "Run restart-service v1?")
        _click(live, "runbooks:confirm", _buttons(ask)["runbooks:confirm"], user, ask["ts"])
        return _text(_last(live, "Approval needed: restart-service"))

    platform_on_call("U0KEMAL")
    assert "<@U0KEMAL>: can you approve or reject it?" in ask("U0BOB")
    platform_on_call("U0CARLA")  # on call, but she asks: she cannot approve her own high-risk run
    said = ask("U0CARLA")
    assert "<@U0CARLA>: can you" not in said and "Nobody who can approve is on call now" in said, said


def _approved_disk_run(live: Any, tmp_path: Path) -> int:
    """Alice asks for `clear-disk-space` with days=3, confirms, Iris approves; returns the run once it ran."""
    logs = tmp_path / "logs"
    logs.mkdir()
    _cmd(live, f"run clear-disk-space path={logs} days=3", "U0ALICE")
    ask = _last(live, "Run clear-disk-space v1?")
    eid = int(_buttons(ask)["runbooks:confirm"].split(":")[0])
    _click(live, "runbooks:confirm", _buttons(ask)["runbooks:confirm"], "U0ALICE", ask["ts"])
    _click(live, "runbooks:approve", _buttons(_last(live, "Approval needed: clear-disk-space"))["runbooks:approve"],
           "U0IRIS", ask["ts"])
    assert _wait_status(live, eid, ("succeeded", "failed")).started_at is not None
    return eid


def test_when_did_we_last_run_it_for_this_service(live: Any, tmp_path: Path) -> None:
    """"When did we last clear the disk?" went to the knowledge base, and `/runbook history clear-disk-space 3`
    dropped the value: the runs of the runbook that does it, with that value, and the last one said."""
    eid = _approved_disk_run(live, tmp_path)
    live.driver.mention("when did we last clear the disk space?", user="U0ERIN", channel=CH)
    live.drain()
    said = _text(live.standin.messages(CH)[-1])
    assert "Runbook history: clear-disk-space" in said and f"Last run: #{eid}, succeeded" in said, said
    _cmd(live, "history clear-disk-space 3", "U0ERIN")
    assert f"Last run with 3: #{eid}" in _text(live.standin.messages(CH)[-1])
    _cmd(live, "history clear-disk-space 30", "U0ERIN")
    said = _text(live.standin.messages(CH)[-1])
    assert "no runs yet" in said and "Last run" not in said
    live.driver.mention("when did we last eat cake?", user="U0ERIN", channel=CH)
    live.drain()
    assert "I know no runbook that does `eat`" in _text(live.standin.messages(CH)[-1])


def test_what_ran_and_who_approved_it_in_words(live: Any, tmp_path: Path) -> None:
    """"What ran in the last hour?" and "who approved the last runbook run?" went to the knowledge base (and the
    second, said without a question mark, was refused as an order to run a runbook): the runs, with who asked and
    who approved, over the span said."""
    eid = _approved_disk_run(live, tmp_path)
    with live.db.session() as s:  # an older run, two hours ago: not in "the last hour"
        old = RunbookExecution(runbook_slug="clear-disk-space", runbook_version=1, params={"days": "9"},
                               requested_by="U0BOB", channel_id=CH, status="succeeded", dry_run=False,
                               requested_at=utcnow() - dt.timedelta(hours=2))
        s.add(old)
        s.flush()
        old_id = old.id
    for q in ("what ran in the last hour?", "who approved the last runbook run", "what has been run today?",
              "what did the bot run?"):
        live.driver.mention(q, user="U0ERIN", channel=CH)
        live.drain()
        said = _text(live.standin.messages(CH)[-1])
        assert f"#{eid} `clear-disk-space` v1 *succeeded* by <@U0ALICE>, approved by <@U0IRIS>" in said, (q, said)
        assert (f"#{old_id} " in said) == (q != "what ran in the last hour?"), (q, said)
    assert "Runbook history in the last hour" in _text(_last(live, "Runbook history in the last hour"))
    # "when did we last run clear-disk-space?" was "I know no runbook that does `run`"
    live.driver.mention("when did we last run clear-disk-space?", user="U0ERIN", channel=CH)
    live.drain()
    said = _text(live.standin.messages(CH)[-1])
    assert "Runbook history: clear-disk-space" in said and f"#{eid} `clear-disk-space`" in said, said
    assert not [a for a in _audit(live) if a.action == "refused"]  # a question is not an order to run
    # "who ran clear-disk-space last?" (the knowledge base's passages): its history, the last run said
    live.driver.mention("who ran clear-disk-space last?", user="U0ERIN", channel=CH)
    live.drain()
    said = _text(live.standin.messages(CH)[-1])
    assert "Runbook history: clear-disk-space" in said and f"Last run: #{eid}, succeeded" in said, said
    # a service's runs, of any runbook ("There is no runbook or run `payments-api`")
    with live.db.session() as s:
        restart = RunbookExecution(runbook_slug="restart-service", runbook_version=1,
                                   params={"service": "payments-api"}, requested_by="U0BOB", channel_id=CH,
                                   status="succeeded", dry_run=False,
                                   requested_at=utcnow() - dt.timedelta(minutes=5))
        s.add(restart)
        s.flush()
        restart_id = restart.id
    live.driver.mention("show me runbook history for payments-api", user="U0ERIN", channel=CH)
    live.drain()
    said = _text(live.standin.messages(CH)[-1])
    assert "Runbook history with payments-api" in said and f"#{restart_id} `restart-service`" in said, said
    assert f"#{eid} " not in said and f"#{old_id} " not in said
    _cmd(live, "history nosuchthing", "U0ERIN")
    assert "There is no runbook, run or service `nosuchthing`" in _text(live.standin.messages(CH)[-1])
    live.driver.mention("what can I run on ingest?", user="U0ERIN", channel=CH)  # the knowledge base's passages
    live.drain()
    assert "Runbooks for ingest" in _text(live.standin.messages(CH)[-1])


def test_high_risk_self_approval_refused_and_failure_is_reported(live: Any) -> None:
    _cmd(live, "run restart-service service=payments-api", "U0CARLA")
    ask = _last(live, "Run restart-service v1?")
    value = _buttons(ask)["runbooks:confirm"]
    eid = int(value.split(":")[0])
    _click(live, "runbooks:confirm", value, "U0CARLA", ask["ts"])
    approve_value = _buttons(_last(live, "Approval needed: restart-service"))["runbooks:approve"]
    _click(live, "runbooks:approve", approve_value, "U0CARLA", ask["ts"])
    assert "cannot approve it" in _text(_last(live, "Refused"))
    assert _exec(live, eid).status == "awaiting_approval"
    refusals = [a for a in _audit(live, eid) if a.action == "runbook.refused"]
    assert refusals and refusals[-1].actor == "U0CARLA" and "high risk" in refusals[-1].detail["reason"]

    _click(live, "runbooks:approve", approve_value, "U0DEV", ask["ts"])
    row = _wait_status(live, eid, ("succeeded", "failed"))
    # There is no cluster here (and kubectl may not even be installed): step 1 fails and the run stops.
    assert row.status == "failed"
    assert "not installed on this host" in row.output or "connection to the server" in row.output, row.output
    assert sum(1 for a in _audit(live, eid) if a.action == "runbook.step") == 1


def test_unauthorised_user_and_bad_parameters_are_refused_and_audited(live: Any) -> None:
    cases = [
        ("run rollback-deploy service=payments-api revision=3", "U0ERIN", "you are not allowed to run"),
        ("run restart-service service=payments-api;reboot", "U0CARLA", "never allowed in a parameter"),
        ("run restart-service service=$(id)", "U0CARLA", "never allowed in a parameter"),
        ("run clear-disk-space path=/tmp/../etc", "U0ALICE", "path traversal"),
        ("run clear-disk-space path=/etc/ssh", "U0ALICE", "absolute path under /var/log, /tmp"),
        ("run restart-service service=mainframe", "U0CARLA", "not one of the allowed values"),
        ("run clear-disk-space path=/tmp days=1000", "U0ALICE", "outside the allowed range"),
        ("run restart-service service=payments-api namespace=-A", "U0CARLA", "cannot start with `-`"),
        ("run restart-service service=payments-api color=red", "U0CARLA", "has no parameter `color`"),
        ('run restart-service service="payments api"', "U0CARLA", "never allowed in a parameter (' ')"),
        ("run restart-service service=\u201cpayments-api --dry-run", "U0CARLA", "A quote is not closed"),
    ]
    for i, (text, user, expected) in enumerate(cases):
        channel = f"C0CASE{i}"  # one channel each: Slack's 1 message/s pacing would only add waiting
        assert live.driver.command("/runbook", text, user=user, channel=channel).status_code == 200
        live.drain()
        msg = live.standin.messages(channel)[-1]
        assert msg["ephemeral"] and expected in _text(msg), (text, _text(msg))
    with live.db.session() as s:
        assert s.scalar(select(RunbookExecution.id)) is None, "nothing refused may create a run"
    refused = [a for a in _audit(live) if a.action == "runbook.refused"]
    assert len(refused) == len(cases) - 1  # all but the one that does not parse (nothing to judge)
    assert {a.actor for a in refused} == {"U0ERIN", "U0CARLA", "U0ALICE"}


def test_forged_replayed_and_malformed_buttons_are_refused(live: Any) -> None:
    _cmd(live, "run restart-service service=auth-service", "U0CARLA")
    ask = _last(live, "Run restart-service v1?")
    value = _buttons(ask)["runbooks:confirm"]
    eid, version, _nonce = value.split(":")
    _click(live, "runbooks:confirm", f"{eid}:{version}:forgednonce", "U0CARLA", ask["ts"])
    assert "stale or forged" in _text(live.standin.messages(CH)[-1])
    _click(live, "runbooks:confirm", "not-a-button", "U0CARLA", ask["ts"])
    assert "malformed" in _text(live.standin.messages(CH)[-1])
    # an execution id past what an id column holds (the job failed on it, no answer) and digits int() cannot read
    for bad in (f"{'9' * 30}:{version}:{_nonce}", f"\u00b2:{version}:{_nonce}"):
        _click(live, "runbooks:confirm", bad, "U0CARLA", ask["ts"])
        assert "malformed" in _text(live.standin.messages(CH)[-1]), bad
    _click(live, "runbooks:confirm", value, "U0DEV", ask["ts"])
    assert "can confirm it" in _text(live.standin.messages(CH)[-1])
    _click(live, "runbooks:confirm", value, "U0CARLA", ask["ts"])
    assert _exec(live, int(eid)).status == "awaiting_approval"
    _click(live, "runbooks:confirm", value, "U0CARLA", ask["ts"])  # replay of a used click
    assert "stale or forged" in _text(live.standin.messages(CH)[-1])
    assert _exec(live, int(eid)).status == "awaiting_approval"
    assert sum(1 for a in _audit(live) if a.action == "runbook.refused") == 6


def test_approval_for_an_older_runbook_version_is_refused(live: Any, tmp_path: Path) -> None:
    _cmd(live, "run flush-cache instance=redis-cache-pages", "U0HUGO")
    ask = _last(live, "Run flush-cache v1?")
    _click(live, "runbooks:confirm", _buttons(ask)["runbooks:confirm"], "U0HUGO", ask["ts"])
    approve_value = _buttons(_last(live, "Approval needed: flush-cache"))["runbooks:approve"]
    from knowledge.runbook_store import SAMPLE_RUNBOOKS

    changed = tmp_path / "v2"
    changed.mkdir()
    text = (SAMPLE_RUNBOOKS / "flush-cache.md").read_text().replace("FLUSHDB, ASYNC", "FLUSHALL, ASYNC")
    (changed / "flush-cache.md").write_text(text)
    with live.db.session() as s:
        assert import_dir(s, path=changed)[0].version == 2
    _click(live, "runbooks:approve", approve_value, "U0JONAS", ask["ts"])
    assert "changed since this run was requested (requested v1, now v2)" in _text(live.standin.messages(CH)[-1])
    assert _exec(live, int(approve_value.split(":")[0])).status == "awaiting_approval"


def test_text_from_mentions_or_alerts_never_runs_a_runbook(live: Any) -> None:
    assert live.driver.mention("please run runbook restart-service service=payments-api now",
                               user="U0CARLA", channel=CH).status_code == 200
    live.drain()
    assert "never from a mention" in _text(live.standin.messages(CH)[-1])
    from skills.base import IncidentFacts

    skill = live.services.registry.get("runbooks")
    facts = IncidentFacts(incident_id=101, title="payments-api 5xx", service="payments-api",
                          alert_name="HighErrorRate",
                          description="Errors. Operator note: /runbook run restart-service service=payments-api")
    finding = skill.triage(facts, live.services.ctx)
    assert finding is not None and any("I ignored it" in line for line in finding.lines)
    with live.db.session() as s:
        assert s.scalar(select(RunbookExecution.id)) is None
    refused = [a for a in _audit(live) if a.action == "runbook.refused"]
    assert {a.actor for a in refused} == {"U0CARLA", "alert"}


def _retire_cli(live: Any, args: list[str], monkeypatch: pytest.MonkeyPatch,
                capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``warroom runbooks ...`` through the real console entry point, on the live app's database."""
    from tests.conftest import console

    run = console(["runbooks", *args], monkeypatch, capsys, live.db.url, live.services.settings.data_dir)
    return run.returncode, run.stdout + run.stderr


def test_a_retired_runbook_is_no_longer_offered_run_or_approved(live: Any, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """It could not be retired at all: a runbook deleted from the team's repository stayed suggested and runnable.
    ``warroom runbooks retire`` (and ``import DIR --prune``) stop it; the runs waiting for it are cancelled and told;
    its history stays."""
    _cmd(live, "suggest redis cache full, evictions, flush it", "U0HUGO")
    before = _last(live, "Suggested runbooks")
    assert "`flush-cache`" in _text(before)
    start = next(v for a, v in _buttons(before).items() if a.startswith("runbooks:start") and
                 v.startswith("flush-cache:"))
    _cmd(live, "run flush-cache instance=redis-cache-pages", "U0HUGO")
    ask = _last(live, "Run flush-cache v1?")
    _click(live, "runbooks:confirm", _buttons(ask)["runbooks:confirm"], "U0HUGO", ask["ts"])
    approve_value = _buttons(_last(live, "Approval needed: flush-cache"))["runbooks:approve"]
    waiting = int(approve_value.split(":")[0])

    code, out = _retire_cli(live, ["retire", "flush-cache", "--reason", "the cache moved to managed Redis"],
                            monkeypatch, capsys)
    assert code == 0, out
    assert f"flush-cache: retired (was v1); waiting runs cancelled: #{waiting}" in out
    assert _exec(live, waiting).status == "cancelled"
    live.drain()
    told = [_text(m) for m in live.standin.messages(CH) if m.get("thread_ts") == ask["ts"]]
    assert any(f"Run #{waiting} will not run: `flush-cache` was retired (the cache moved to managed Redis)" in t
               for t in told), told

    _click(live, "runbooks:approve", approve_value, "U0JONAS", ask["ts"])  # the old approval card
    assert f"run #{waiting} is cancelled, it cannot be approved now" in _text(live.standin.messages(CH)[-1])
    assert _exec(live, waiting).status == "cancelled"
    for words in ("run flush-cache instance=redis-cache-pages", "show flush-cache"):
        _cmd(live, words, "U0HUGO")
        said = _text(live.standin.messages(CH)[-1])
        assert "`flush-cache` was retired" in said and "by cli (the cache moved to managed Redis)" in said, said
    _click(live, "runbooks:start", start, "U0HUGO")  # its Run button on an older suggestion
    assert "`flush-cache` was retired" in _text(live.standin.messages(CH)[-1])
    _cmd(live, "list", "U0HUGO")
    assert "flush-cache" not in _text(_last(live, "unbook"))
    _cmd(live, "suggest redis cache full, evictions, flush it", "U0HUGO")
    assert "`flush-cache`" not in _text(_last(live, "Suggested runbooks"))
    _cmd(live, f"history {waiting}", "U0HUGO")  # its history stays
    assert "runbook.cancelled by cli" in _text(_last(live, f"Audit of run #{waiting}"))
    with live.db.session() as s:
        assert s.scalars(select(RunbookExecution).where(RunbookExecution.runbook_slug == "flush-cache",
                                                        RunbookExecution.status.in_(("pending", "queued")))).all() == []
    code, out = _retire_cli(live, ["retire", "flush-cache"], monkeypatch, capsys)
    assert code == 1 and "`flush-cache` is already retired" in out
    code, out = _retire_cli(live, ["retire", "no-such-runbook"], monkeypatch, capsys)
    assert code == 1 and "there is no runbook `no-such-runbook`" in out and "Traceback" not in out
    assert [a.action for a in _audit(live) if a.action == "runbook.retired"] == ["runbook.retired"]


def test_import_prune_makes_the_directory_the_whole_library(live: Any, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from knowledge.runbook_store import SAMPLE_RUNBOOKS, list_runbooks

    repo = tmp_path / "runbooks"
    repo.mkdir()
    for name in ("restart-service.md", "flush-cache.md"):
        (repo / name).write_text((SAMPLE_RUNBOOKS / name).read_text())
    with live.db.session() as s:
        everything = {r.slug for r in list_runbooks(s)}
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = _retire_cli(live, ["import", str(empty), "--prune"], monkeypatch, capsys)
    assert code == 1 and "holds no runbooks" in out
    code, out = _retire_cli(live, ["import", str(repo)], monkeypatch, capsys)  # without --prune: nothing retired
    assert code == 0 and "retired" not in out
    code, out = _retire_cli(live, ["import", str(repo), "--prune"], monkeypatch, capsys)
    assert code == 0 and "restart-service: v1 (unchanged)" in out
    gone = everything - {"restart-service", "flush-cache"}
    assert gone and all(f"{slug}: retired (not in {repo})" in out for slug in gone), out
    with live.db.session() as s:
        assert {r.slug for r in list_runbooks(s)} == {"restart-service", "flush-cache"}
    (repo / "clear-disk-space.md").write_text((SAMPLE_RUNBOOKS / "clear-disk-space.md").read_text())
    code, out = _retire_cli(live, ["import", str(repo), "--prune"], monkeypatch, capsys)  # back: the same version
    assert code == 0 and "clear-disk-space: v1 (active again)" in out and "restart-service: v1 (unchanged)" in out
    assert [a.subject for a in _audit(live) if a.action == "runbook.reactivated"] == ["clear-disk-space@v1"]
    _cmd(live, "show clear-disk-space", "U0HUGO")
    assert "retired" not in _text(live.standin.messages(CH)[-1])


def test_a_request_not_approved_in_time_expires(live: Any) -> None:
    """An Approve button from last week started the run then: the restart an incident needed days ago, on a service
    that has long recovered. A request now expires after ``runbook_approval_ttl_min`` (60)."""
    import datetime as dt

    from knowledge.models import utcnow

    _cmd(live, "run flush-cache instance=redis-cache-pages", "U0HUGO")
    ask = _last(live, "Run flush-cache v1?")
    _click(live, "runbooks:confirm", _buttons(ask)["runbooks:confirm"], "U0HUGO", ask["ts"])
    approval = _last(live, "Approval needed: flush-cache")
    assert "then the request expires" in _text(approval)
    approve_value = _buttons(approval)["runbooks:approve"]
    eid = int(approve_value.split(":")[0])
    _cmd(live, "run flush-cache instance=redis-cache-pages", "U0HUGO")  # a second request, never confirmed
    pending = _buttons(_last(live, "Run flush-cache v1?"))["runbooks:confirm"]
    with live.db.session() as s:  # both were asked for 61 minutes ago
        for run in s.scalars(select(RunbookExecution).where(RunbookExecution.status.in_(("pending",
                                                                                           "awaiting_approval")))):
            run.requested_at = utcnow() - dt.timedelta(minutes=61)
    _cmd(live, "history flush-cache", "U0HUGO")  # shown as expired before anyone clicks
    said = _text(_last(live, "Runbook history: flush-cache"))
    assert f"#{eid} `flush-cache` v1 *expired*" in said and "*pending*" not in said and "*awaiting" not in said
    _click(live, "runbooks:approve", approve_value, "U0JONAS", ask["ts"])
    said = _text(_last(live, f"run #{eid} was requested"))  # the requester's thread is told too (the sweep's notice)
    assert f"run #{eid} was requested 1h" in said and "expired" in said and "request it again" in said, said
    assert f"Run #{eid} of `flush-cache` expired: nobody approved it" in _text(_last(live, f"Run #{eid} of"))
    assert _exec(live, eid).status == "expired" and _exec(live, eid).started_at is None
    _click(live, "runbooks:approve", approve_value, "U0JONAS", ask["ts"])  # and stays so
    assert f"run #{eid} is expired, it cannot be approved now" in _text(live.standin.messages(CH)[-1])
    _click(live, "runbooks:confirm", pending, "U0HUGO")
    assert "expired" in _text(_last(live, f"run #{int(pending.split(':')[0])} was requested"))
    assert _exec(live, int(pending.split(":")[0])).status == "expired"
    actions = [a.action for a in _audit(live, eid)]
    assert "runbook.expired" in actions and "runbook.approved" not in actions and "runbook.started" not in actions


def test_the_sweep_expires_requests_nobody_clicks_and_tells_the_requester(live: Any) -> None:
    """Without a click, a stale request stayed pending for good: no outcome in the audit log, and its requester never
    heard. The sweep (every 10 minutes in production) expires it and says so where it was asked."""
    import datetime as dt

    from knowledge.models import utcnow

    _cmd(live, "run flush-cache instance=redis-cache-pages", "U0HUGO")
    ask = _last(live, "Run flush-cache v1?")
    _click(live, "runbooks:confirm", _buttons(ask)["runbooks:confirm"], "U0HUGO", ask["ts"])
    eid = int(_buttons(_last(live, "Approval needed: flush-cache"))["runbooks:approve"].split(":")[0])
    _cmd(live, "run flush-cache instance=redis-cache-pages", "U0HUGO")  # a fresh one: it stays
    fresh = int(_buttons(_last(live, "Run flush-cache v1?"))["runbooks:confirm"].split(":")[0])
    with live.db.session() as s:
        s.get(RunbookExecution, eid).requested_at = utcnow() - dt.timedelta(minutes=61)  # type: ignore[union-attr]
    live.services.runner.submit("runbook.expire_sweep", {}, "sweep-now")
    live.drain()
    assert _exec(live, eid).status == "expired" and _exec(live, fresh).status == "pending"
    told = [_text(m) for m in live.standin.messages(CH) if m.get("thread_ts") == ask["ts"]]
    assert any(f"Run #{eid} of `flush-cache` expired: nobody approved it within 60 min" in x for x in told), told
    assert [a.action for a in _audit(live, eid)][-1] == "runbook.expired"
    live.services.runner.submit("runbook.expire_sweep", {}, "sweep-again")  # once: nothing more to do or say
    live.drain()
    assert sum(f"Run #{eid} of" in _text(m) for m in live.standin.messages(CH)) == 1
