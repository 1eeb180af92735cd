"""How long hostile message texts keep the bot busy, next to ordinary questions (the baseline, same run).

A message of 4,000 characters (Slack's text limit as the bot reads it) made of one character or word repeated
(spaces, tabs, dots, ``#``, ``-``, newlines, "what ", "sev1 ", ...), behind the words that steer it to one skill
("is this bad? ", "remind me in 5m ", "link ", "eta: ", ...), is where a regular expression with nested or
adjacent quantifiers goes quadratic: 4,000 spaces took 0.52 s in the incident skill's scoring alone before its
patterns were made possessive (2026-12-04). Two measures:

- ``score``: every skill's ``score()`` on each hostile text and on each ordinary question, in this process
  (what the router runs for every mention): worst and p99 per kind, and the slowest skill;
- ``slack``: signed ``app_mention`` events into the real app (a live server, the Slack stand-in), timed from the
  request to the bot's answer reaching the stand-in, for ``--mentions`` hostile and as many ordinary ones.

    python bench/hostile_text_bench.py --mentions 40
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._harness import load_line, percentile  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.standin.driver import SlackDriver  # noqa: E402
from bot.standin.harness import LiveServer  # noqa: E402
from bot.standin.server import SlackStandIn  # noqa: E402
from knowledge.db import Database  # noqa: E402
from knowledge.seed import seed  # noqa: E402
from skills.registry import default_registry  # noqa: E402

BOT_TOKEN = "xoxb-bench-0123456789"
SIGNING = "bench-signing-secret"
LIMIT = 4000
UNITS = (" ", "\t", "\n", ".", "#", "-", ":", "`", "?", "a", "1", "@", "[", "x=", "a-b ", "what ", "sev1 ",
         "18:00 ", "PAY-1 ", "http://x ", "<@U0ALICE> ", "ERROR ")
LEADS = ("", "x", "what's the ", "is this bad? ", "remind me in 5m ", "link ", "eta: ", "who is on call tomorrow ",
         "the oldest ", "declare a sev1 for ", "what ran in the last hour ", "which alerts are the noisiest ",
         "how often does ", "freeze deploys ", "swap my shift with ", "can we close ", "is there a dashboard ")
ORDINARY = ("who is on call for payments?", "what's the ETA?", "how do I restart ingest?", "is ingest healthy?",
            "which alerts are the noisiest this week?", "what changed before #101?", "have we seen this before?",
            "what ran in the last hour?", "how many sev1s this quarter?", "who's the secondary for payments?",
            "is this bad? ERROR connection refused to redis-cache:6379", "what's at risk?")


def hostile_texts() -> list[str]:
    out = []
    for lead in LEADS:
        for unit in UNITS:
            body = (unit * (LIMIT // len(unit) + 1))[: LIMIT - len(lead) - 1]
            out.append(lead + body + "!")
    return out


def _score(texts: list[str]) -> dict[str, Any]:
    reg = default_registry()
    times: list[float] = []
    worst = (0.0, "", "")
    for text in texts:
        for skill in reg.skills:
            t = time.perf_counter()
            skill.score(text)
            d = (time.perf_counter() - t) * 1000
            times.append(d)
            if d > worst[0]:
                worst = (d, skill.name, text[:30])
    return {"calls": len(times), "p50_ms": round(percentile(times, 50), 3), "p99_ms": round(percentile(times, 99), 3),
            "max_ms": round(worst[0], 2), "slowest_skill": worst[1], "slowest_text": worst[2]}


def _slack(texts: list[str], encoder: str) -> list[float]:
    tmp = Path(tempfile.mkdtemp(prefix="warroom-hostile-"))
    waits: list[float] = []
    with SlackStandIn(token=BOT_TOKEN) as standin:
        settings = Settings(mode="test", slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING,
                            slack_api_url=standin.api_url, database_url=f"sqlite:///{tmp / 'warroom.db'}",
                            data_dir=tmp, embedder=encoder, slack_incident_channel="C0INCIDENTS")
        db = Database(settings.database_url)
        db.upgrade()
        with db.session() as s:
            seed(s)
        with LiveServer(settings) as srv:
            driver = SlackDriver(srv.url, SIGNING)
            deadline = time.monotonic() + 300
            while not srv.services.warm and time.monotonic() < deadline:
                time.sleep(0.1)
            for i, text in enumerate(texts):
                channel = f"C0H{i:04d}"
                ts = f"{time.time():.6f}"
                t = time.monotonic()
                r = driver.event({"type": "app_mention", "user": "U0BOB", "ts": ts, "event_ts": ts,
                                  "text": f"<@UWARROOM> {text}", "channel": channel})
                assert r.status_code == 200, r.text
                while not standin.messages(channel) and time.monotonic() - t < 120:
                    time.sleep(0.005)
                waits.append((time.monotonic() - t) * 1000)
    return waits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mentions", type=int, default=40, help="hostile mentions through the app (and as many ordinary)")
    ap.add_argument("--encoder", default="minilm", choices=["minilm", "hash"])
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    hostile = hostile_texts()
    before = load_line()
    out: dict[str, Any] = {"load_before": before, "hostile_texts": len(hostile), "text_chars": LIMIT,
                           "score": {"hostile": _score(hostile), "ordinary (baseline)": _score(list(ORDINARY))}}
    picked = random.Random(a.seed).sample(hostile, min(a.mentions, len(hostile)))
    ordinary = [ORDINARY[i % len(ORDINARY)] for i in range(len(picked))]
    waits = _slack([x for pair in zip(ordinary, picked, strict=True) for x in pair], a.encoder)
    calm, rough = waits[0::2], waits[1::2]
    out["slack"] = {kind: {"n": len(w), "p50_ms": round(percentile(w, 50), 1), "p99_ms": round(percentile(w, 99), 1),
                           "max_ms": round(max(w), 1)} for kind, w in (("hostile", rough),
                                                                      ("ordinary (baseline)", calm))}
    out["encoder"], out["load_after"] = a.encoder, load_line()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
