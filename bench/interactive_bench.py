"""How long a person waits for an answer while an alert storm's backlog is being worked off.

An alert storm of ``--incidents`` distinct alerts (generic webhook, one service each) opens as many incidents; each
queues its card (posted to the one incident channel, paced at Slack's one message per second there) and its triage.
While that backlog is worked off, ``--commands`` people send ``/warroom status`` in another channel, one every
``--gap`` seconds; each is timed from the signed request to the answer reaching the Slack stand-in. Run twice in
the same process on fresh databases: with the interactive lane (the first worker thread takes commands, mentions
and clicks first; the product default) and without it (the baseline: first in, first out on every thread).
Product defaults otherwise (4 workers, the bundled MiniLM, 1 s channel pacing). Prints one JSON object.

With ``--question-delay S`` an LLM is configured (the local OpenAI stand-in, answering after S seconds) and someone
asks the bot a question just before the first command: that answer holds one worker thread for S seconds, so the
commands show whether they wait behind it or behind the backlog.

    python bench/interactive_bench.py --incidents 40 --commands 8
    python bench/interactive_bench.py --incidents 40 --commands 8 --question-delay 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402

from bench._harness import load_line, percentile  # noqa: E402
from bot.inbox_spool import backlog  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.standin.driver import SlackDriver  # noqa: E402
from bot.standin.harness import LiveServer  # noqa: E402
from bot.standin.openai_api import OpenAIStandIn, Reply  # noqa: E402
from bot.standin.server import SlackStandIn  # noqa: E402
from knowledge import jobs  # noqa: E402
from knowledge.db import Database  # noqa: E402
from knowledge.seed import seed  # noqa: E402

SECRET = "generic-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-bench-0123456789"


def _run(lane: bool, n_incidents: int, n_commands: int, gap: float, encoder: str,
         question_delay: float = 0.0) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="warroom-interactive-"))
    with SlackStandIn(token=BOT_TOKEN) as standin, \
            OpenAIStandIn(lambda body: Reply("Lower the pool size [1].", delay_s=question_delay)) as llm:
        llm_settings: dict[str, Any] = dict(llm_base_url=llm.url, llm_api_key="sk-bench", llm_model="fake",
                                            llm_timeout_s=question_delay + 30) if question_delay else {}
        settings = Settings(mode="test", slack_bot_token=BOT_TOKEN, slack_signing_secret="bench-signing-secret",
                            slack_api_url=standin.api_url, database_url=f"sqlite:///{tmp / 'warroom.db'}",
                            data_dir=tmp, embedder=encoder, slack_incident_channel="C0INCIDENTS",
                            webhook_secrets={"generic": SECRET}, interactive_lane=lane, **llm_settings)
        db = Database(settings.database_url)
        db.upgrade()
        with db.session() as s:
            seed(s)
        with LiveServer(settings) as srv:
            driver = SlackDriver(srv.url, "bench-signing-secret")
            deadline = time.monotonic() + 300
            while not srv.services.warm and time.monotonic() < deadline:  # models loaded: time the queue, not that
                time.sleep(0.1)
            # The storm: one delivery per incident, each its own service and alert name
            storm_at = time.monotonic()
            for i in range(n_incidents):
                body = {"alerts": [{"name": f"StormAlert{i}", "service": f"storm-svc-{i}", "severity": "critical",
                                    "summary": f"storm-svc-{i} error ratio above 5%",
                                    "fingerprint": f"storm-{i}"}]}
                r = httpx.post(f"{srv.url}/webhooks/generic", json=body,
                               headers={"Authorization": f"Bearer {SECRET}"}, timeout=30)
                assert r.status_code == 202, r.text
            while backlog(srv.services.db, srv.services.spool) and time.monotonic() < deadline:
                srv.services.intake.notify()
                time.sleep(0.05)
            with db.session() as s:
                queued_at_start = jobs.counts(s, due_before=None).get("queued", 0)
            asked = time.time()
            if question_delay:
                assert driver.mention("have we seen remaining connection slots are reserved before?",
                                      channel="C0QUESTION").status_code == 200
                while not llm.calls and time.monotonic() < deadline:  # a worker thread now waits on the LLM
                    time.sleep(0.01)
            waits: list[float] = []
            for k in range(n_commands):
                channel = f"C0ASK{k:03d}"
                sent = time.time()
                assert driver.command("/warroom", "status", user="U0BOB", channel=channel).status_code == 200
                while time.monotonic() < deadline:
                    answered = [c for c in standin.calls_to("chat.postMessage") if c.args.get("channel") == channel]
                    if answered:
                        waits.append(answered[0].at - sent)
                        break
                    time.sleep(0.01)
                time.sleep(max(0.0, gap - (time.time() - sent)))
            t0 = time.monotonic()
            srv.drain(timeout=600)
            done_at = time.monotonic()
            question = [c.at for c in standin.calls_to("chat.postMessage") if c.args.get("channel") == "C0QUESTION"]
            cards = len([c for c in standin.calls_to("chat.postMessage") if c.args.get("channel") == "C0INCIDENTS"])
            return {"interactive_lane": lane, "answers": len(waits), "wait_p50_s": round(percentile(waits, 50), 3),
                    "wait_max_s": round(max(waits), 3) if waits else None,
                    "waits_s": [round(w, 3) for w in waits], "jobs_queued_when_asking": queued_at_start,
                    "backlog_left_after_s": round(done_at - t0, 1),
                    "storm_to_all_work_done_s": round(done_at - storm_at, 1), "incident_cards_posted": cards,
                    "question_answered_after_s": round(question[-1] - asked, 1) if question else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--incidents", type=int, default=40)
    ap.add_argument("--commands", type=int, default=8)
    ap.add_argument("--gap", type=float, default=2.0, help="seconds between two commands")
    ap.add_argument("--encoder", default="minilm", choices=["minilm", "hash"])
    ap.add_argument("--question-delay", type=float, default=0.0,
                    help="seconds the LLM takes to answer a question asked just before the commands (0: none)")
    a = ap.parse_args()
    load_before = load_line()
    lane = _run(True, a.incidents, a.commands, a.gap, a.encoder, a.question_delay)
    fifo = _run(False, a.incidents, a.commands, a.gap, a.encoder, a.question_delay)
    print(json.dumps({"incidents": a.incidents, "commands": a.commands, "gap_s": a.gap, "encoder": a.encoder,
                      "question_delay_s": a.question_delay,
                      "lane": lane, "baseline_fifo": fifo, "load_before": load_before, "load_after": load_line()}))


if __name__ == "__main__":
    main()
