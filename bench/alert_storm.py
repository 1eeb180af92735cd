"""Issue 3: alert storm and crash test against `warroom serve` on SQLite.

A load generator (a separate process) sends N Alertmanager webhook deliveries (one alert each) over 50
fingerprints of 50 unrelated services to a `warroom serve` process on loopback, then waits for the
inbox and the job queue to drain and reads the database. With --crash, the server is killed with
SIGKILL half-way and restarted, and every delivery that got a 2xx must be in the database, processed
exactly once. A bare Starlette endpoint under the same load is the baseline.

Run: `python bench/alert_storm.py [--alerts 10000] [--concurrency 32] [--crash] [--background thread]`;
prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._harness import ServerProcess, free_port, load_line, percentile  # noqa: E402
from bench.ack_latency import BARE  # noqa: E402
from bot.standin.server import SlackStandIn  # noqa: E402

SECRET = "bench-alertmanager-secret"


def payload(i: int) -> bytes:
    n = i % 50
    return json.dumps({
        "version": "4", "groupKey": f"{{}}:{{alertname=\"Storm{n}\"}}", "status": "firing", "receiver": "warroom",
        "alerts": [{"status": "firing", "labels": {"alertname": f"Storm{n}", "service": f"svc-{n:02d}",
                                                   "severity": "warning", "replica": str(i % 7)},
                    "annotations": {"summary": f"svc-{n:02d} is unhappy"}, "startsAt": "2026-11-23T10:00:00Z",
                    "fingerprint": f"fp-{n:02d}"}]}).encode()


async def send(url: str, indices: list[int], concurrency: int, results: dict[int, tuple[int, float]],
               stop_after: int | None = None) -> None:
    """`concurrency` connections, one delivery at a time each (aiohttp: httpx's client overhead at this rate
    would be measured instead of the server)."""
    import aiohttp

    queue = list(indices)
    headers = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=10)) as client:
        async def worker() -> None:
            while queue:
                if stop_after is not None and len(results) >= stop_after:
                    return
                i = queue.pop(0)
                t0 = time.perf_counter()
                try:
                    async with client.post(url + "/webhooks/alertmanager", data=payload(i), headers=headers) as r:
                        await r.read()
                        status = r.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                results[i] = (status, (time.perf_counter() - t0) * 1000)
        await asyncio.gather(*(worker() for _ in range(concurrency)))


def _sender(url: str, indices: list[int], concurrency: int, stop_after: int | None, out: Any) -> None:
    results: dict[int, tuple[int, float]] = {}
    t0 = time.perf_counter()
    asyncio.run(send(url, indices, concurrency, results, stop_after))
    out.put((results, time.perf_counter() - t0))


def send_from_process(url: str, indices: list[int], concurrency: int, results: dict[int, tuple[int, float]],
                      stop_after: int | None = None) -> float:
    """Run :func:`send` in a separate load-generator process (not beside the Slack stand-in, whose threads
    answer the server's Slack calls in this process); fills ``results``, returns the sending time in s."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_sender, args=(url, indices, concurrency, stop_after, out))
    proc.start()
    got, elapsed = out.get()
    proc.join()
    results.update(got)
    return elapsed


def cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by a process and, separately, by its children (Linux /proc).
    Load-independent where wall-clock rates are not: what a delivery costs the server, whoever else runs."""
    tick = os.sysconf("SC_CLK_TCK")

    def one(p: int) -> float:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / tick

    try:
        kids = [int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        kids = []
    return {"web": one(pid), "background": sum(one(k) for k in kids)}


def db_counts(db: Path) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        return {"inbox_rows": q("SELECT COUNT(*) FROM webhook_inbox"),
                "inbox_pending": q("SELECT COUNT(*) FROM webhook_inbox WHERE status='pending'"),
                "inbox_processed": q("SELECT COUNT(*) FROM webhook_inbox WHERE status='processed'"),
                "incidents": q("SELECT COUNT(*) FROM incidents WHERE source='alertmanager'"),
                "alert_occurrences": q("SELECT COALESCE(SUM(occurrences),0) FROM alerts"),
                "jobs_open": q("SELECT COUNT(*) FROM jobs WHERE status IN ('queued','running')"),
                "jobs_failed": q("SELECT COUNT(*) FROM jobs WHERE status='failed'")}
    finally:
        con.close()


def spooled(db: Path) -> int:
    """Deliveries still waiting in the door's spool file (bot.inbox_spool), not yet in webhook_inbox."""
    from bot.inbox_spool import InboxSpool
    from knowledge.db import Database

    main = Database(f"sqlite:///{db}")
    spool = InboxSpool.for_database(main)
    try:
        return spool.waiting() if spool is not None and spool.path.exists() else 0
    finally:
        main.engine.dispose()
        if spool is not None:
            spool.db.engine.dispose()


def wait_drained(db: Path, timeout: float) -> dict[str, int]:
    deadline = time.time() + timeout
    c = db_counts(db)
    while time.time() < deadline and (spooled(db) or c["inbox_pending"] or c["jobs_open"]):
        time.sleep(0.5)
        c = db_counts(db)
    return c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--crash", action="store_true", help="SIGKILL the server half-way and restart it")
    ap.add_argument("--drain-timeout", type=float, default=300)
    ap.add_argument("--background", choices=("thread", "process"), default="process",
                    help="WARROOM_BACKGROUND: inbox processing and jobs in the web process or in a child")
    ap.add_argument("--env", action="append", default=[], help="extra NAME=VALUE for the server (repeatable)")
    args = ap.parse_args()
    out: dict[str, object] = {"alerts": args.alerts, "concurrency": args.concurrency, "crash": args.crash,
                              "background": args.background,
                              "load_before": load_line()}
    with tempfile.TemporaryDirectory() as tmp, SlackStandIn() as standin:
        work = Path(tmp)
        srv = ServerProcess(work, standin.api_url, WARROOM_WARM_MODELS="false", WARROOM_BACKGROUND=args.background,
                            **dict(kv.split("=", 1) for kv in args.env))
        srv.start()
        results: dict[int, tuple[int, float]] = {}
        if args.crash:
            half = args.alerts // 2
            elapsed = send_from_process(srv.url, list(range(args.alerts)), args.concurrency, results,
                                        stop_after=half)
            srv.kill()
            out["killed_after_sent"] = len(results)
            out["restart_to_ready_s"] = round(srv.start(), 2)
            rest = [i for i in range(args.alerts) if i not in results]
            elapsed += send_from_process(srv.url, rest, args.concurrency, results)
        else:
            cpu0 = cpu_s(srv.proc.pid)
            elapsed = send_from_process(srv.url, list(range(args.alerts)), args.concurrency, results)
            cpu1 = cpu_s(srv.proc.pid)
        acked = [i for i, (st, _) in results.items() if 200 <= st < 300]
        lat = [ms for st, ms in results.values() if 200 <= st < 300]
        statuses: dict[str, int] = {}
        for st, _ in results.values():
            statuses[str(st)] = statuses.get(str(st), 0) + 1
        out.update(accepted=len(acked), refused_or_failed=len(results) - len(acked), statuses=statuses,
                   accepted_per_s=round(len(acked) / elapsed, 1),
                   webhook_ms={"p50": round(percentile(lat, 50), 2), "p90": round(percentile(lat, 90), 2),
                               "p99": round(percentile(lat, 99), 2), "max": round(max(lat, default=0.0), 2)})
        t1 = time.perf_counter()
        counts = wait_drained(work / "warroom.db", args.drain_timeout)
        out["processing_drained_s"] = round(time.perf_counter() - t1, 1)
        if not args.crash:
            cpu2 = cpu_s(srv.proc.pid)
            per = lambda a, b, k: round((b[k] - a[k]) * 1000 / max(1, len(acked)), 3)  # noqa: E731
            out["server_cpu_ms_per_alert"] = {
                "during_storm": {k: per(cpu0, cpu1, k) for k in cpu0},
                "storm_and_drain": {k: per(cpu0, cpu2, k) for k in cpu0}}
        srv.stop()
        out["db"] = counts
        out["incidents_opened"] = counts["incidents"]
        out["slack_calls"] = {m: len(standin.calls_to(m)) for m in ("chat.postMessage", "chat.update")}
        # Every acknowledged delivery is in the inbox and was applied exactly once (one alert each).
        out["alerts_lost"] = max(0, len(acked) - counts["inbox_processed"])
        out["applied_exactly_once"] = counts["alert_occurrences"] == counts["inbox_processed"]
    port = free_port()
    bare = subprocess.Popen([sys.executable, "-c", BARE.format(port=port).replace('"/slack/events"',
                                                                                  '"/webhooks/alertmanager"')])
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        base: dict[int, tuple[int, float]] = {}
        bcpu0 = cpu_s(bare.pid)["web"]
        el = send_from_process(url, list(range(args.alerts)), args.concurrency, base)
        blat = [ms for _, ms in base.values()]
        out["baseline_bare_starlette"] = {"per_s": round(len(base) / el, 1), "p50": round(percentile(blat, 50), 2),
                                          "p99": round(percentile(blat, 99), 2),
                                          "cpu_ms_per_request": round((cpu_s(bare.pid)["web"] - bcpu0) * 1000
                                                                      / max(1, len(base)), 3)}
    finally:
        bare.terminate()
        bare.wait()
    out["load_after"] = load_line()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
