"""Issue 10: load on 1 replica vs 2 replicas + a Celery worker, and a replica killed mid-storm.

Needs a PostgreSQL and a Redis (`eval "$(bash scripts/services.sh)"` starts both and exports
WARROOM_TEST_POSTGRES_URL / WARROOM_TEST_REDIS_URL; the database is wiped). For each topology
(1 x `warroom serve`, then 2 x `warroom serve` round-robin; both with one `warroom worker`):

- alert storm: N Generic-webhook alerts over 50 fingerprints, 32 connections: accepted/s, p50/p99;
- Slack load: signed slash commands and events (half each) open-loop at a rising rate, each step
  `--step-s` seconds, until p99 acknowledgement exceeds 1 s (or an error): the highest rate held.

Then the fault run: the storm against 2 replicas, replica A killed with SIGKILL half-way; deliveries that
failed are re-sent to replica B (as Alertmanager and PagerDuty retry); after the queue drains, every
acknowledged alert must be in the database exactly once.

Run: `python bench/scaleout.py [--alerts 4000] [--rates 25,50,100,200,400] [--step-s 5]`; prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._harness import ServerProcess, WorkerProcess, load_line, percentile  # noqa: E402
from bot.standin.server import SlackStandIn  # noqa: E402

SECRET = "bench-generic-secret"


def _alert(i: int) -> bytes:
    n = i % 50
    return json.dumps({"alerts": [{"name": f"Scale{n}", "service": f"svc-{n:02d}", "fingerprint": f"scale-{n:02d}",
                                   "summary": f"svc-{n:02d} is unhappy", "labels": {"seq": str(i)}}]}).encode()


def reset_backends(pg: str, redis_url: str) -> None:
    import redis

    from knowledge.db import Database
    from knowledge.seed import seed

    db = Database(pg)
    db.reset_postgres_schema()
    db.upgrade()
    with db.session() as s:
        seed(s)
    db.engine.dispose()
    redis.Redis.from_url(redis_url).flushdb()


def counts(pg: str) -> dict[str, int]:
    from sqlalchemy import text

    from knowledge.db import Database

    db = Database(pg)
    try:
        with db.engine.connect() as c:
            q = lambda sql: int(c.execute(text(sql)).scalar() or 0)  # noqa: E731
            return {"inbox_pending": q("SELECT COUNT(*) FROM webhook_inbox WHERE status='pending'"),
                    "inbox_processed": q("SELECT COUNT(*) FROM webhook_inbox WHERE status='processed'"),
                    "incidents": q("SELECT COUNT(*) FROM incidents WHERE source='generic'"),
                    "alert_occurrences": q("SELECT COALESCE(SUM(occurrences),0) FROM alerts"),
                    "jobs_open": q("SELECT COUNT(*) FROM jobs WHERE status IN ('queued','running')"),
                    "jobs_failed": q("SELECT COUNT(*) FROM jobs WHERE status='failed'")}
    finally:
        db.engine.dispose()


def wait_drained(pg: str, timeout: float) -> tuple[dict[str, int], float]:
    t0 = time.perf_counter()
    c = counts(pg)
    while time.perf_counter() - t0 < timeout and (c["inbox_pending"] or c["jobs_open"]):
        time.sleep(0.5)
        c = counts(pg)
    return c, round(time.perf_counter() - t0, 1)


async def storm(urls: list[str], indices: list[int], concurrency: int, results: dict[int, tuple[int, float]],
                stop_after: int | None = None) -> None:
    queue = list(indices)
    rr = itertools.cycle(urls)
    headers = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=15, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker() -> None:
            while queue:
                if stop_after is not None and len(results) >= stop_after:
                    return
                i = queue.pop(0)
                t0 = time.perf_counter()
                try:
                    r = await client.post(next(rr) + "/webhooks/generic", content=_alert(i), headers=headers)
                    status = r.status_code
                except httpx.HTTPError:
                    status = 0
                results[i] = (status, (time.perf_counter() - t0) * 1000)
        await asyncio.gather(*(worker() for _ in range(concurrency)))


def _signed(secret: str, body: str, ctype: str) -> dict[str, str]:
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig, "Content-Type": ctype}


def _slack_body(i: int) -> tuple[str, str]:
    if i % 2:
        return urllib.parse.urlencode({"command": "/warroom", "text": "status", "user_id": "U0LOAD",
                                       "channel_id": f"C0LOAD{i % 20}", "trigger_id": f"t.{time.time_ns()}.{i}",
                                       "team_id": "T0", "response_url": "http://127.0.0.1:9/r"}), \
            "application/x-www-form-urlencoded"
    ev = {"type": "app_mention", "user": "U0LOAD", "text": "<@UWARROOM> status", "channel": f"C0LOAD{i % 20}",
          "ts": f"{time.time():.6f}", "event_ts": f"{time.time():.6f}"}
    return json.dumps({"team_id": "T0", "api_app_id": "A0WARROOM", "type": "event_callback",
                       "event_id": f"Ev{time.time_ns()}{i}", "event_time": int(time.time()), "event": ev}), \
        "application/json"


async def slack_step(urls: list[str], secret: str, rate: float, seconds: float) -> dict[str, Any]:
    """Open loop: one request every 1/rate s for `seconds`, whatever the answers take."""
    lat: list[float] = []
    errors = 0
    rr = itertools.cycle(urls)
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=500)) as client:
        async def one(i: int) -> None:
            nonlocal errors
            body, ctype = _slack_body(i)
            t0 = time.perf_counter()
            try:
                r = await client.post(next(rr) + "/slack/events", content=body, headers=_signed(secret, body, ctype))
                if r.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            lat.append((time.perf_counter() - t0) * 1000)

        tasks = []
        start = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return {"rate": rate, "sent": n, "errors": errors, "p50_ms": round(percentile(lat, 50), 1),
            "p99_ms": round(percentile(lat, 99), 1)}


class Topo:
    def __init__(self, work: Path, standin: SlackStandIn, pg: str, redis_url: str, replicas: int) -> None:
        extra = {"WARROOM_DATABASE_URL": pg, "WARROOM_JOB_BACKEND": "celery", "WARROOM_REDIS_URL": redis_url,
                 "WARROOM_WARM_MODELS": "false", "WARROOM_SLACK_INCIDENT_CHANNEL": "C0INCIDENTS",
                 "WARROOM_BACKGROUND": "thread"}  # one process per replica (the figures in docs/benchmarks.md)
        first = ServerProcess(work, standin.api_url, **extra)
        self.servers = [first] + [ServerProcess(work, standin.api_url, signing_secret=first.signing_secret, **extra)
                                  for _ in range(replicas - 1)]
        self.worker = WorkerProcess(work, first.env, concurrency=4)

    def __enter__(self) -> Topo:
        self.worker.start()
        for s in self.servers:
            s.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for p in (*self.servers, self.worker):
            p.stop()

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]


def run_topology(replicas: int, args: argparse.Namespace, pg: str, redis_url: str) -> dict[str, Any]:
    reset_backends(pg, redis_url)
    out: dict[str, Any] = {"replicas": replicas, "workers": 1}
    with tempfile.TemporaryDirectory() as tmp, SlackStandIn() as standin, \
            Topo(Path(tmp), standin, pg, redis_url, replicas) as topo:
        results: dict[int, tuple[int, float]] = {}
        t0 = time.perf_counter()
        asyncio.run(storm(topo.urls, list(range(args.alerts)), 32, results))
        el = time.perf_counter() - t0
        lat = [ms for st, ms in results.values() if st == 202]
        accepted = len(lat)
        c, drained = wait_drained(pg, args.drain_timeout)
        out["storm"] = {"alerts": args.alerts, "accepted": accepted, "accepted_per_s": round(accepted / el, 1),
                        "p50_ms": round(percentile(lat, 50), 1), "p99_ms": round(percentile(lat, 99), 1),
                        "drained_s": drained, "incidents": c["incidents"],
                        "alerts_lost": accepted - c["alert_occurrences"], "jobs_failed": c["jobs_failed"]}
        steps = []
        for rate in args.rates:
            step = asyncio.run(slack_step(topo.urls, topo.servers[0].signing_secret, rate, args.step_s))
            steps.append(step)
            if step["p99_ms"] > 1000 or step["errors"]:
                break
        held = [s["rate"] for s in steps if s["p99_ms"] <= 1000 and not s["errors"]]
        out["slack"] = {"steps": steps, "max_rate_held_per_s": max(held) if held else 0}
        wait_drained(pg, args.drain_timeout)
    return out


def run_kill(args: argparse.Namespace, pg: str, redis_url: str) -> dict[str, Any]:
    reset_backends(pg, redis_url)
    with tempfile.TemporaryDirectory() as tmp, SlackStandIn() as standin, \
            Topo(Path(tmp), standin, pg, redis_url, 2) as topo:
        results: dict[int, tuple[int, float]] = {}
        half = args.alerts // 2

        async def storm_and_kill() -> None:
            task = asyncio.create_task(storm(topo.urls, list(range(args.alerts)), 32, results))
            while len(results) < half:
                await asyncio.sleep(0.01)
            topo.servers[0].kill()
            await task

        asyncio.run(storm_and_kill())
        failed = sorted(i for i, (st, _) in results.items() if st != 202)
        first_pass = len(results) - len(failed)
        retry: dict[int, tuple[int, float]] = {}
        asyncio.run(storm([topo.servers[1].url], failed, 8, retry))  # the senders' own retries, to the survivor
        accepted = first_pass + sum(1 for st, _ in retry.values() if st == 202)
        c, drained = wait_drained(pg, args.drain_timeout)
    return {"alerts": args.alerts, "killed_after": half, "failed_deliveries_resent": len(failed),
            "accepted": accepted, "in_database": c["alert_occurrences"], "inbox_processed": c["inbox_processed"],
            "alerts_lost": accepted - c["alert_occurrences"], "duplicates": max(0, c["alert_occurrences"] - accepted),
            "incidents": c["incidents"], "jobs_failed": c["jobs_failed"], "drained_s": drained}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=4000)
    ap.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], default=[25, 50, 100, 200, 400])
    ap.add_argument("--step-s", type=float, default=5.0)
    ap.add_argument("--drain-timeout", type=float, default=600)
    ap.add_argument("--skip-kill", action="store_true")
    args = ap.parse_args()
    pg, redis_url = os.environ.get("WARROOM_TEST_POSTGRES_URL"), os.environ.get("WARROOM_TEST_REDIS_URL")
    if not (pg and redis_url):
        sys.exit('needs WARROOM_TEST_POSTGRES_URL and WARROOM_TEST_REDIS_URL: eval "$(bash scripts/services.sh)"')
    out: dict[str, Any] = {"load_before": load_line(), "cores": os.cpu_count()}
    one = run_topology(1, args, pg, redis_url)
    two = run_topology(2, args, pg, redis_url)
    out.update(one_replica=one, two_replicas=two, ratio_two_over_one={
        "storm_accepted_per_s": round(two["storm"]["accepted_per_s"] / max(1e-9, one["storm"]["accepted_per_s"]), 2),
        "slack_max_rate": round(two["slack"]["max_rate_held_per_s"] / max(1e-9, one["slack"]["max_rate_held_per_s"]),
                                2)})
    if not args.skip_kill:
        out["replica_killed_mid_storm"] = run_kill(args, pg, redis_url)
    out["load_after"] = load_line()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
