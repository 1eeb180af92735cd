"""Changes (deploys, config pushes, flags, rollbacks): reported by CI/CD through ``POST /api/v1/changes`` or
``warroom changes add``, shown on the card of an incident that opens after one on its service or on a service it
depends on, and answered in Slack ("what changed before #113?", "what changed?" under the card, "any deploys on
payments-api in the last 2h?"). Nothing of this existed: "what changed before #113?" went to the knowledge base."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.render import blocks_to_text
from bot.settings import Settings
from knowledge.models import ChangeEvent, utcnow
from tests.conftest import Live, console, make_settings, open_incidents

TOKEN = "changes-api-token-0123456789"


@pytest.fixture
def settings(tmp_path: Path, standin: Any) -> Settings:
    return make_settings(tmp_path, standin, kb_token=TOKEN, warm_models=False)


def _post(live: Live, body: Any, *, token: str | None = TOKEN, raw: bytes | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    return httpx.post(f"{live.url}/api/v1/changes", content=raw if raw is not None else json.dumps(body),
                      headers=headers, timeout=30)


def _say(live: Live, text: str, *, channel: str = "C0OPS", thread: str | None = None) -> str:
    before = len(live.standin.messages(channel))
    ts = f"{time.time():.6f}"
    event = {"type": "app_mention", "user": "U0BOB", "ts": ts, "event_ts": ts, "text": f"<@UWARROOM> {text}",
             "channel": channel, **({"thread_ts": thread} if thread else {})}
    assert live.driver.event(event).status_code == 200
    live.drain(due_within_s=60)
    return " || ".join(blocks_to_text(m.get("blocks") or []) or m.get("text", "")
                       for m in live.standin.messages(channel)[before:])


def _count(live: Live) -> int:
    with live.db.session() as s:
        return s.scalar(select(func.count()).select_from(ChangeEvent)) or 0


def test_a_deploy_before_an_incident_is_on_its_card_and_answered_in_slack(live: Live) -> None:
    ago = (utcnow() - dt.timedelta(minutes=20)).replace(microsecond=0)
    r = _post(live, {"service": "payments-api", "summary": "v1.4.2: connection pool 20 -> 50", "version": "v1.4.2",
                     "author": "alice", "url": "https://ci.example.com/runs/881", "at": ago.isoformat() + "Z",
                     "id": "run-881", "source": "github-actions"})
    assert r.status_code == 201 and r.json()["created"] and r.json()["known_service"], r.text
    again = _post(live, {"service": "payments-api", "summary": "v1.4.2: connection pool 20 -> 50", "id": "run-881",
                         "source": "github-actions"})
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"] and not again.json()["created"]
    # a dependency changed too (payments-api depends on postgres-main); an unrelated service did not
    assert _post(live, {"service": "postgres-main", "kind": "config", "summary": "max_connections 200 -> 100",
                        "at": (ago + dt.timedelta(minutes=5)).isoformat() + "Z"}).status_code == 201
    assert _post(live, {"service": "ingest", "summary": "v9 consumers"}).status_code == 201
    assert _count(live) == 3
    (inc,) = open_incidents(live, "payments-api 503 errors at checkout sev2")
    card = [c for c in live.standin.calls_to("chat.postMessage") if c.args.get("channel") == inc.channel_id][-1]
    text = blocks_to_text(json.loads(card.args["blocks"]) if isinstance(card.args["blocks"], str)
                          else card.args["blocks"])
    assert "*Changes* (its service and what it depends on" in text, text
    assert "*deploy* payments-api v1.4.2 by alice: v1.4.2: connection pool 20 -> 50 · 20 min before it opened" in text
    assert "*config* postgres-main (a dependency: payments-api → postgres-main)" in text and "ingest" not in text
    # the runbook that rolls back comes first, saying which change it undoes (its confidence untouched: no auto-run)
    live.drain(due_within_s=60)
    card = [c for c in (*live.standin.calls_to("chat.postMessage"), *live.standin.calls_to("chat.update"))
            if c.args.get("channel") == inc.channel_id and "Suggested runbooks" in json.dumps(c.args)][-1]
    suggested = blocks_to_text(json.loads(card.args["blocks"]) if isinstance(card.args["blocks"], str)
                               else card.args["blocks"]).split("Suggested runbooks")[1]
    assert suggested.index("rollback-deploy") < min(suggested.index(x) for x in ("restart-service",
                                                                                 "check-service-health")
                                                     if x in suggested), suggested
    assert "undoes the deploy of payments-api v1.4.2 20 min before it opened by alice" in suggested
    said = _say(live, f"what changed before #{inc.id}?")
    assert f"Changes near incident #{inc.id}" in said and "2 change(s) on payments-api" in said, said
    assert "<https://ci.example.com/runs/881|link>" in said
    said = _say(live, f"who should take #{inc.id}?")  # the deploy's author (alice: Alice Moreau) knows what changed
    assert "made the deploy of payments-api v1.4.2 20 min before" in said, said
    said = _say(live, "what changed?", channel=inc.channel_id, thread=inc.card_ts)  # under the card: that incident
    assert f"Changes near incident #{inc.id}" in said, said
    said = _say(live, "any deploys on ingest in the last 2h?")
    assert "2 change(s) on ingest and what it depends on in the last 2 hours" in said and "v9 consumers" in said
    assert "payments-api" not in said and "(a dependency: ingest → postgres-main)" in said, said
    assert "3 change(s) in the last 24 hours" in _say(live, "recent changes")
    assert f"Changes near incident #{inc.id}" in _say(live, f"was anything deployed before #{inc.id}?")
    said = _say(live, "when was payments-api last deployed?")
    assert "in the last 90 days" in said and "*deploy* payments-api v1.4.2 by alice" in said, said
    assert "*deploy* ingest" in _say(live, "who deployed last?")
    assert "No change recorded on checkout-web" not in _say(live, "what changed on checkout-web today?")  # deps
    # a rollback during the incident refreshes its card
    assert _post(live, {"service": "payments-api", "kind": "rollback", "summary": "back to v1.4.1"}).status_code == 201
    live.drain(due_within_s=60)
    last = [c for c in live.standin.calls_to("chat.update") if c.args.get("channel") == inc.channel_id]
    assert last and "back to v1.4.1" in json.dumps(last[-1].args), "the card was not refreshed"
    told = [m["text"] for m in live.standin.messages(inc.channel_id) if m.get("thread_ts") == inc.card_ts]
    assert any(":rocket: rollback of payments-api, during this incident: back to v1.4.1" in x for x in told), told
    with live.db.session() as s:
        from knowledge.models import TimelineEvent

        kinds = [e.text for e in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id,
                                                                       TimelineEvent.kind == "change"))]
    assert kinds == ["rollback of payments-api: back to v1.4.1"], kinds
    live.driver.command("/incident", f"changes {inc.id}", user="U0BOB", channel="C0OPS")
    live.drain()
    assert "3 change(s) on payments-api" in blocks_to_text(live.standin.messages("C0OPS")[-1].get("blocks") or [])
    # the postmortem's timeline starts with what changed (the trigger, often), with who made it and its link
    _say(live, f"resolve #{inc.id}: rolled back to v1.4.1")
    live.driver.command("/postmortem", f"draft {inc.id}", user="U0BOB", channel="C0OPS")
    live.drain(due_within_s=60)
    from knowledge.models import Postmortem

    with live.db.session() as s:
        md = s.scalars(select(Postmortem.markdown).where(Postmortem.incident_id == inc.id)).first() or ""
    timeline = md.split("## Timeline")[1]
    assert "· deploy · [payments-api v1.4.2: v1.4.2: connection pool 20 -> 50](https://ci.example.com/runs/881)" \
        " — alice" in timeline, timeline
    assert timeline.index("· deploy ·") < timeline.index("· created ·")  # before it opened
    said = _say(live, "handover for the last 2h")  # the next person on call hears what was changed
    assert "Changes in the last 2 hours" in said and "rollback payments-api 0 min ago: back to v1.4.1" in said, said
    assert "deploy payments-api v1.4.2 20 min ago" in said


@pytest.mark.parametrize("body, status, said", [
    ({"service": "payments-api"}, 422, "summary"),
    ({"service": "payments-api", "summary": "x", "kind": "nuke"}, 422, "kind"),
    ({"service": "payments-api", "summary": "x", "url": "javascript:alert(1)"}, 422, "http(s) link"),
    ({"service": "payments-api", "summary": "x", "at": "2999-01-01T00:00:00Z"}, 422, "from now"),
    ({"service": "payments-api", "summary": "x", "at": 1700000000}, 422, "ISO 8601"),
    ({"service": "pay ments; rm -rf /", "summary": "x"}, 422, "service"),
    ({"service": "payments-api", "summary": "x", "extra": 1}, 422, "extra"),
    ({"service": "payments-api", "summary": "x" * 2001}, 422, "summary"),
    # were 500s (found by fuzzing): not a URL at all, a time before the calendar starts or after it ends
    ({"service": "payments-api", "summary": "x", "url": "http://["}, 422, "http(s) link"),
    ({"service": "payments-api", "summary": "x", "at": "0001-01-01T00:00:00+05:00"}, 422, "`at`"),
    ({"service": "payments-api", "summary": "x", "at": "9999-12-31T23:59:59-05:00"}, 422, "`at`"),
])
def test_bad_changes_get_a_clear_4xx_and_store_nothing(live: Live, body: Any, status: int, said: str) -> None:
    r = _post(live, body)
    assert r.status_code == status and said in r.text, r.text
    assert _count(live) == 0


def test_the_changes_door_wants_the_token_and_json(live: Live) -> None:
    body = {"service": "payments-api", "summary": "v2"}
    assert _post(live, body, token=None).status_code == 401
    assert _post(live, body, token="wrong").status_code == 401
    assert _post(live, None, raw=b"{not json").status_code in (400, 422)
    assert _post(live, None, raw=b"\xff\xfe").status_code in (400, 422)
    assert _count(live) == 0
    # a token in the summary is masked before it is kept
    r = _post(live, {"service": "payments-api", "summary": "rotated password=hunter2hunter2 on the pool"})
    assert r.status_code == 201 and "hunter2" not in r.json()["summary"], r.text


def test_changes_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str], db: Any) -> None:
    url = db.url
    run = console(["changes", "add", "payments-api", "v1.5.0 rolled out", "--version", "v1.5.0", "--id", "p-1"],
                  monkeypatch, capsys, url, tmp_path)
    assert run.returncode == 0 and json.loads(run.stdout)["created"] is True, run
    run = console(["changes", "add", "payments-api", "v1.5.0 rolled out", "--id", "p-1"], monkeypatch, capsys, url,
                  tmp_path)
    assert run.returncode == 0 and json.loads(run.stdout)["created"] is False
    run = console(["changes", "add", "payments-api", "x", "--at", "yesterday"], monkeypatch, capsys, url, tmp_path)
    assert run.returncode == 1 and "not an ISO 8601 time" in run.stderr and "Traceback" not in run.stderr
    run = console(["changes", "add", "payments-api", "x", "--kind", "nuke"], monkeypatch, capsys, url, tmp_path)
    assert run.returncode == 1 and "kind is one of deploy" in run.stderr
    run = console(["changes", "add", "paymnts-api", "typo"], monkeypatch, capsys, url, tmp_path)
    assert run.returncode == 0 and "not in the service catalogue" in run.stderr
    run = console(["changes", "list", "--service", "payments-api"], monkeypatch, capsys, url, tmp_path)
    rows = [json.loads(x) for x in run.stdout.splitlines()]
    assert run.returncode == 0 and [r["summary"] for r in rows] == ["v1.5.0 rolled out"], run


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_retried_report_is_one_change_on_both_databases(kind: str, tmp_path: Path, standin: Any) -> None:
    """The same id sent by two pipeline retries at once: one row (the unique (source, external_id) settles a race),
    both answered 2xx; a NUL in the text is stored (PostgreSQL refuses it raw); a lone surrogate is a 422 (it was a
    500 on every REST door but /risk: the 422 echoing it could not be written as UTF-8)."""
    import concurrent.futures

    from tests.conftest import live_on

    with live_on(kind, tmp_path, standin, kb_token=TOKEN, warm_models=False) as live:
        bad = _post(live, None, raw=json.dumps({"service": "payments-api", "summary": "v3 \udcff"}).encode())
        assert bad.status_code == 422 and "summary" in bad.text, bad.text
        body = {"service": "payments-api", "summary": "v3 \u0000 with a NUL", "id": "run-7", "source": "ci"}
        raw = json.dumps(body).encode()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: _post(live, None, raw=raw), range(4)))
        assert sorted(r.status_code for r in answers) == [200, 200, 200, 201], [r.text for r in answers]
        assert len({r.json()["id"] for r in answers}) == 1
        assert _count(live) == 1


@pytest.mark.parametrize("path, body", [
    ("similar", {"text": "kafka disk full \udcff"}),
    ("changes", {"service": "payments-api", "summary": "v3 \udcff"}),
    ("risk", {"service": "api \udcff", "metrics": {"cpu_usage": 90, "memory_usage": 90}}),
])
def test_a_lone_surrogate_is_a_422_on_every_rest_door(live: Live, path: str, body: Any) -> None:
    """A lone surrogate cannot be UTF-8: the 422 that echoed it could not be written, and /similar answered 500."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    r = httpx.post(f"{live.url}/api/v1/{path}", content=json.dumps(body), headers=headers, timeout=30)
    assert r.status_code == 422 and r.json()["detail"], (r.status_code, r.text[:300])


def test_a_change_history_is_imported_once_and_a_bad_line_imports_nothing(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           capsys: pytest.CaptureFixture[str],
                                                                           db: Any) -> None:
    recent = (utcnow() - dt.timedelta(hours=3)).replace(microsecond=0).isoformat() + "Z"
    good = tmp_path / "deploys.jsonl"
    good.write_text("\n".join(json.dumps(x) for x in (
        {"service": "payments-api", "summary": "v1.4.1", "version": "v1.4.1", "at": recent, "id": "d-1"},
        {"service": "ingest", "summary": "consumers v9", "kind": "deploy", "id": "d-2", "author": "erin"},
        {"service": "ingest", "summary": "ancient", "at": "2020-01-01T00:00:00Z", "id": "d-0"})) + "\n")
    run = console(["changes", "import", str(good)], monkeypatch, capsys, db.url, tmp_path)
    assert run.returncode == 0 and json.loads(run.stdout) == {"imported": 2, "already_there": 0,
                                                              "older_than_kept": 1}, run
    run = console(["changes", "import", str(good)], monkeypatch, capsys, db.url, tmp_path)  # again: nothing new
    assert json.loads(run.stdout) == {"imported": 0, "already_there": 2, "older_than_kept": 1}, run
    csv_file = tmp_path / "deploys.csv"
    csv_file.write_text("service;summary;kind;id\npayments-api;flag checkout_v2 on;flag;f-1\n")  # Excel's ";"
    run = console(["changes", "import", str(csv_file)], monkeypatch, capsys, db.url, tmp_path)
    assert run.returncode == 0 and json.loads(run.stdout)["imported"] == 1, run
    for name, body, said in (
            ("bad.jsonl", '{"service": "a", "summary": "ok", "id": "b-1"}\n{not json\n', "bad.jsonl:2: not JSON"),
            ("kind.jsonl", '{"service": "a", "summary": "ok"}\n{"service": "a", "summary": "x", "kind": "nuke"}\n',
             "kind.jsonl line 2: kind is one of deploy"),
            ("extra.jsonl", '{"service": "a", "summary": "x", "colour": "red"}\n', "unknown field(s) colour"),
            ("nohead.csv", "svc,what\na,b\n", "the header needs service, summary")):
        (tmp_path / name).write_text(body)
        run = console(["changes", "import", str(tmp_path / name)], monkeypatch, capsys, db.url, tmp_path)
        assert run.returncode == 1 and said in run.stderr and "Traceback" not in run.stderr, (name, run)
    run = console(["changes", "import", str(tmp_path / "missing.jsonl")], monkeypatch, capsys, db.url, tmp_path)
    assert run.returncode == 1 and "no such file" in run.stderr
    with db.session() as s:
        kept = sorted((c.service, c.summary) for c in s.scalars(select(ChangeEvent)))
    assert len(kept) == 3, kept  # the bad files added nothing


def test_what_version_a_service_runs_from_its_reported_deploys(live: Live) -> None:
    """"What version of payments-api is deployed?" went to the knowledge base (a postmortem passage). The reported
    deploys and rollbacks answer it: the newest, a deploy that did not finish said so with the last one that did."""
    now = utcnow().replace(microsecond=0)
    for i, (version, summary, minutes) in enumerate((("v1.4.1", "v1.4.1", 300), ("v1.4.2", "v1.4.2: pool 50", 60))):
        r = _post(live, {"service": "payments-api", "summary": summary, "version": version, "author": "alice",
                         "at": (now - dt.timedelta(minutes=minutes)).isoformat() + "Z", "id": f"v-{i}"})
        assert r.status_code == 201, r.text
    assert _post(live, {"service": "payments-api", "kind": "config", "summary": "pool 60", "id": "cfg"}).status_code \
        == 201  # not a version
    for asked in ("what version of payments-api is deployed?", "which version is payments-api running?",
                  "current version of payments-api", "what's the latest deploy on payments-api?"):  # the last one:
        # it was "Which incident?" (an incident's "what's the latest")
        said = _say(live, asked)
        assert "Deployed versions" in said and "Payments-api runs v1.4.2 (deploy" in said and "by alice" in said, \
            (asked, said)
        assert "v1.4.1" in said and "pool 60" not in said, said
    assert _post(live, {"service": "payments-api", "summary": "did not finish (failure): v1.5.0", "version": "v1.5.0",
                        "id": "v-2"}).status_code == 201
    said = _say(live, "what version of payments-api is deployed?")
    assert "the last deploy (v1.5.0" in said and "did not finish, so it may run a mix" in said, said
    assert "the last one that finished: v1.4.2" in said
    said = _say(live, "what version of ingest is deployed?")
    assert "No deploy of ingest recorded in the last 90 days" in said, said
    assert "Which service?" in _say(live, "what version is deployed?")
