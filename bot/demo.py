"""``warroom demo``: the main job on embedded defaults, end to end, offline.

Seeds the sample world into a fresh SQLite knowledge base, starts the real server on loopback
against the local Slack stand-in, plays a scripted scenario through signed HTTP requests, and
prints the conversation as a reader of the channel would see it.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bot.render import blocks_to_text
from bot.settings import Settings
from bot.standin.driver import SlackDriver
from bot.standin.harness import LiveServer
from bot.standin.server import SlackStandIn

__all__ = ["run_demo", "Scenario", "Step"]

CHANNEL = "C0INCIDENTS"
USERS = {"U0ALICE": "alice", "U0BOB": "bob", "U0CARLA": "carla", "U0ERIN": "erin", "U0IRIS": "iris"}


@dataclass
class Step:
    """One thing a person (or a tool) does, as shown in the transcript."""

    who: str
    shown: str
    act: Callable[[SlackDriver, LiveServer, SlackStandIn], Any]
    http_reply: bool = False  # a tool's request whose answer is the HTTP response, not a Slack message


@dataclass
class Scenario:
    steps: list[Step] = field(default_factory=list)

    def add(self, who: str, shown: str, act: Callable[[SlackDriver, LiveServer, SlackStandIn], Any],
            http_reply: bool = False) -> None:
        self.steps.append(Step(who, shown, act, http_reply))


def _expect_2xx(resp: httpx.Response) -> httpx.Response:
    if resp.status_code >= 300:
        raise RuntimeError(f"the app answered {resp.status_code}: {resp.text[:200]}")
    return resp


DEMO_API_TOKEN = "demo-api-token-0123456789"


def _storm_incident(srv: LiveServer) -> int:
    from bot.intake_demo import _latest

    return _latest(srv)


def build_scenario() -> Scenario:
    """The scripted conversation. Each skill adds its part here."""
    sc = Scenario()
    sc.add("alice", "@warroom what can you do?",
           lambda d, srv, st: _expect_2xx(d.mention("what can you do?", user="U0ALICE", channel=CHANNEL)))
    sc.add("bob", "/warroom status",
           lambda d, srv, st: _expect_2xx(d.command("/warroom", "status", user="U0BOB", channel=CHANNEL)))
    # changes: the deploy pipeline reports a release of payments-api, minutes before its alerts start
    deploy = {"service": "payments-api", "summary": "v1.4.2: connection pool size 20 -> 5", "version": "v1.4.2",
              "author": "dan", "url": "https://ci.example.com/runs/881", "id": "run-881", "source": "ci"}
    sc.add("ci", "POST /api/v1/changes payments-api v1.4.2 (connection pool 20 -> 5)   (a pipeline's last step)",
           lambda d, srv, st: _expect_2xx(httpx.post(f"{srv.url}/api/v1/changes", json=deploy, timeout=30,
                                                     headers={"Authorization": f"Bearer {DEMO_API_TOKEN}"})),
           http_reply=True)
    # incident intake (issue 3): an alert storm ends as one card, then the lifecycle
    __import__("bot.intake_demo").intake_demo.add_intake_steps(sc.add, CHANNEL, "demo-alertmanager-secret")
    # end intake (issue 3)
    sc.add("alice", "@warroom what changed before #<the storm's incident>?   (the deploy, also on its card)",
           lambda d, srv, st: _expect_2xx(d.mention(f"what changed before #{_storm_incident(srv)}?", user="U0ALICE",
                                                    channel=CHANNEL)))
    # risk (issue 5)
    risk_text = "service=payments-api cpu=94 mem=91 errors=120 rt=2400 conns=900"
    sc.add("carla", f"/risk {risk_text}",
           lambda d, srv, st: _expect_2xx(d.command("/risk", risk_text, user="U0CARLA", channel=CHANNEL)))
    # end risk (issue 5)
    # logs (issue 4): someone pastes a few log lines
    log_paste = ("```\n2026-11-23 14:02:11 ERROR payments-api pq: remaining connection slots are reserved\n"
                 "2026-11-23 14:02:12 ERROR payments-api pq: remaining connection slots are reserved\n"
                 "2026-11-23 14:02:12 WARN  payments-api retrying checkout 8812 in 2s (attempt 3)\n"
                 "2026-11-23 14:02:13 INFO  payments-api GET /healthz 200 3ms\n"
                 "2026-11-23 14:02:14 INFO  payments-api GET /healthz 200 2ms\n```")
    sc.add("bob", "/logs <pastes 5 log lines from payments-api>",
           lambda d, srv, st: _expect_2xx(d.command("/logs", log_paste, user="U0BOB", channel=CHANNEL)))
    # end logs (issue 4)
    # routing (issue 7): who is on call, a routed ticket, the card's Assign and Wrong owner buttons
    __import__("bot.routing_demo").routing_demo.add_routing_steps(sc.add, CHANNEL)
    # end routing (issue 7)
    # postmortem (issue 9): a resolved incident's history is replayed into the knowledge base, then drafted
    pm: dict[str, int] = {}

    def pm_draft(d: SlackDriver, srv: LiveServer, st: SlackStandIn) -> httpx.Response:
        from knowledge.incident_history import load_history
        from skills.postmortem_eval import expand, load_scenarios

        with srv.services.db.session() as s:
            pm["id"] = load_history(s, expand(load_scenarios()[0]), channel=CHANNEL)
        return _expect_2xx(d.command("/postmortem", f"draft {pm['id']}", user="U0ALICE", channel=CHANNEL))

    sc.add("alice", "/postmortem draft <the replayed payments-api incident>", pm_draft)
    sc.add("bob", "[clicks Mark root cause confirmed]", lambda d, srv, st: _expect_2xx(
        d.click("postmortem:confirm_root_cause", str(pm.get("id", 0)), user="U0BOB", channel=CHANNEL)))
    sc.add("alice", "[clicks Publish]", lambda d, srv, st: _expect_2xx(
        d.click("postmortem:publish", str(pm.get("id", 0)), user="U0ALICE", channel=CHANNEL)))
    # end postmortem (issue 9)
    # similar incidents and questions (issue 6)
    sim_text = "checkout failing, postgres says remaining connection slots are reserved"
    sc.add("erin", f"/similar {sim_text}",
           lambda d, srv, st: _expect_2xx(d.command("/similar", sim_text, user="U0ERIN", channel=CHANNEL)))
    sc.add("iris", "@warroom have we seen kafka brokers running out of disk before? what fixed it?",
           lambda d, srv, st: _expect_2xx(d.mention("have we seen kafka brokers running out of disk before? "
                                                    "what fixed it?", user="U0IRIS", channel=CHANNEL)))
    sc.add("erin", "@warroom how do I restart ingest?",  # a how-to: the runbook first, with its preview command
           lambda d, srv, st: _expect_2xx(d.mention("how do I restart ingest?", user="U0ERIN", channel=CHANNEL)))
    # end similar (issue 6)
    # runbooks (issue 8): a dry run, a request, a refused self-approval and an approval by the storage team
    __import__("bot.runbook_demo").runbook_demo.add_runbook_steps(sc.add, CHANNEL)
    # end runbooks (issue 8)
    sc.add("carla", "@warroom what did I miss? (the next person on call, at the shift change)",
           lambda d, srv, st: _expect_2xx(d.mention("what did I miss?", user="U0CARLA", channel=CHANNEL)))
    return sc


def _print_new(standin: SlackStandIn, seen: int, out: Callable[[str], None]) -> int:
    msgs = standin.messages()
    for m in msgs[seen:]:
        text = blocks_to_text(m.get("blocks") or []) or m.get("text", "")
        where = "(only you can see this) " if m.get("ephemeral") else ""
        thread = "  ↳ " if m.get("thread_ts") else ""
        body = text.replace("\n", "\n" + " " * 14)
        out(f"{thread}  [warroom] {where}{body}")
    for c in standin.calls_to("files.completeUploadExternal")[getattr(standin, "_demo_files_seen", 0):]:
        for f in c.response.get("files", []):
            out(f"    [warroom uploaded a file: {f.get('title') or f.get('name')}]")
    standin._demo_files_seen = len(standin.calls_to("files.completeUploadExternal"))  # type: ignore[attr-defined]
    return len(msgs)


def _train_routing(db: Any, settings: Settings) -> str:
    """What ``warroom train routing`` does, on the seeded incidents, so the cards show the classifier's vote."""
    from models.routing_artifact import train_from_knowledge_base

    with db.session() as s:
        try:
            _path, rows, teams = train_from_knowledge_base(s, settings.models_path)
        except ValueError as exc:
            return f"routing classifier not trained: {exc}"
    return f"trained the routing classifier on {rows} past incidents ({teams} teams)"


def run_demo(keep: Path | None = None, real_model: bool = True, out: Callable[[str], None] = print) -> int:
    """Run the scenario; 0 when every step was accepted and answered."""
    from knowledge.db import Database
    from knowledge.seed import seed

    workdir = keep or Path(tempfile.mkdtemp(prefix="warroom-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    signing_secret = secrets.token_hex(16)
    with SlackStandIn(token="xoxb-demo-token") as standin:
        settings = Settings(
            mode="demo", slack_bot_token="xoxb-demo-token", slack_signing_secret=signing_secret,
            slack_api_url=standin.api_url, database_url=f"sqlite:///{workdir / 'warroom.db'}",
            data_dir=workdir, embedder="minilm" if real_model else "hash", slack_incident_channel=CHANNEL,
            slack_channel_interval_s=0.1,  # the stand-in has no rate limit; Slack's 1 s pacing would only add waiting
            # The storm lasts seconds: a card redrawn at most every 3 s and a re-triage every 30 s (the defaults, for
            # storms that last minutes) held the demo half a minute with nothing to show.
            card_update_interval_s=0.5, triage_interval_s=2.0,
            webhook_secrets={"alertmanager": "demo-alertmanager-secret", "generic": "demo-generic-secret"},
            kb_token=DEMO_API_TOKEN,  # the REST API (the deploy pipeline's step) and the knowledge-base pages
        )
        db = Database(settings.database_url)
        db.upgrade()
        with db.session() as s:
            counts = seed(s)
        out(f"warroom demo: seeded the sample world {counts} in {workdir}")
        out(f"warroom demo: {_train_routing(db, settings)}")
        t0 = time.perf_counter()
        with LiveServer(settings) as srv:
            out(f"warroom demo: server ready at {srv.url} in {time.perf_counter() - t0:.1f}s "
                f"(Slack stand-in at {standin.api_url})\n")
            driver = SlackDriver(srv.url, signing_secret)
            seen, failures = 0, 0
            out(f"#incidents ({CHANNEL})")
            for step in build_scenario().steps:
                out(f"  [{step.who}] {step.shown}")
                result = None
                try:
                    result = step.act(driver, srv, standin)
                except Exception as exc:  # noqa: BLE001 - a failed step is reported, the demo goes on
                    failures += 1
                    out(f"  !! step failed: {exc}")
                srv.drain(60)
                before = seen
                seen = _print_new(standin, seen, out)
                if step.http_reply and isinstance(result, httpx.Response):
                    out(f"  ↳ [HTTP {result.status_code}] {result.text[:300]}")
                elif seen == before:
                    out("  !! no reply")
                    failures += 1
            for call in standin.bad_calls():  # what real Slack would have refused (invalid_blocks)
                failures += 1
                out(f"  !! Slack would refuse this {call.method}: {call.response.get('errors') or call.response}")
            out(f"\nwarroom demo: {len(standin.calls)} Slack API calls, {failures} failed step(s)")
    if keep is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0
