"""Failure-risk speed: one prediction in process, a batch of 1,000, and the REST endpoint's requests/s.

    python bench/risk_bench.py [--seconds 10] [--concurrency 16] [--model-dir DIR] [--no-rest]

In process: ``RiskEngine.assess`` on one snapshot (probability + per-input factors), p50/p99 over
many calls, and ``assess_many`` on 1,000 snapshots (two metrics each, as before, and all seven), in
wall-clock time and in the thread's CPU time (what the code costs, whatever else runs).

REST: the real app (``bot.app.create_app``) served by uvicorn in a child process, driven by an aiohttp
client in this process with keep-alive connections: ``POST /api/v1/risk`` against a bare ``POST``
route added to the same app, same server, same run (the baseline), and ``POST /api/v1/risk`` with
``incident_id`` (each reading stored and committed before the answer; the stored rows are counted
afterwards). Every request carries one of 512 different bodies (four metrics with varied values), the
same bodies for every route. Besides requests/s, the server's CPU time per request (user + system,
from ``/proc``): on a loaded machine the rate says how much CPU the server got, the CPU per request
what the code costs. Prints one JSON object; the machine's load average is part of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from fastapi import Request

BODY = {"service": "api", "metrics": {"cpu_usage": 85, "memory_usage": 90, "error_count": 5, "response_time_ms": 300}}


def bodies(n: int = 512, incident_id: int | None = None) -> list[bytes]:
    """``n`` request bodies shaped like ``BODY`` with varied values (seeded)."""
    rng = np.random.default_rng(1)
    out = []
    for _ in range(n):
        b: dict[str, object] = {
            "service": "api",
            "metrics": {
                "cpu_usage": round(float(rng.uniform(5, 100)), 1),
                "memory_usage": round(float(rng.uniform(10, 100)), 1),
                "error_count": int(rng.integers(0, 200)),
                "response_time_ms": round(float(rng.uniform(20, 3000))),
            },
        }
        if incident_id is not None:
            b["incident_id"] = incident_id
        out.append(json.dumps(b).encode())
    return out


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


BENCH_TOKEN = secrets.token_hex(16)
HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {BENCH_TOKEN}"}


def _settings(workdir: Path, model_dir: Path):  # type: ignore[no-untyped-def]
    from bot.settings import Settings

    return Settings(
        mode="demo",
        slack_bot_token="xoxb-bench",
        slack_signing_secret=secrets.token_hex(16),
        slack_api_url="http://127.0.0.1:9/api/",
        database_url=f"sqlite:///{workdir / 'bench.db'}",
        data_dir=workdir,
        model_dir=model_dir,
        embedder="hash",
        workers=1,
        kb_token=BENCH_TOKEN,
    )


def serve(port: int, workdir: Path, model_dir: Path) -> None:
    """Child process: the real app plus a bare route, on uvicorn."""
    import uvicorn

    from bot.app import create_app

    app = create_app(_settings(workdir, model_dir))

    @app.post("/bench/bare")
    async def bare(request: Request) -> dict[str, bool]:
        await request.body()
        return {"ok": True}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def in_process(model_dir: Path, n: int = 3000) -> dict[str, object]:
    from skills.risk_engine import get_engine

    engine = get_engine(model_dir)
    snap = {"cpu_usage": 85.0, "memory_usage": 90.0, "error_count": 5.0, "response_time_ms": 300.0}
    for _ in range(50):
        engine.assess(snap)
    ts, cts = [], []
    for _ in range(n):
        c0, t0 = time.thread_time(), time.perf_counter()
        engine.assess(snap)
        ts.append(time.perf_counter() - t0)
        cts.append(time.thread_time() - c0)
    rng = np.random.default_rng(0)
    snaps = [{"cpu_usage": float(c), "memory_usage": float(m)} for c, m in rng.uniform(0, 100, (1000, 2))]
    full = [
        {
            "cpu_usage": float(r[0]),
            "memory_usage": float(r[1]),
            "disk_usage": float(r[2]),
            "network_latency_ms": float(r[3] * 5),
            "error_count": float(r[4]),
            "response_time_ms": float(r[5] * 20),
            "active_connections": float(r[6] * 10),
        }
        for r in rng.uniform(0, 100, (1000, 7))
    ]
    out: dict[str, object] = {
        "single_p50_ms": round(float(np.percentile(ts, 50)) * 1e3, 3),
        "single_p99_ms": round(float(np.percentile(ts, 99)) * 1e3, 3),
        "single_cpu_p99_ms": round(float(np.percentile(cts, 99)) * 1e3, 3),
    }
    # The batch as before (two metrics per item), and one with all seven inputs given (the most model rows).
    for name, items in (("batch1000", snaps), ("batch1000_7metrics", full)):
        bts, bcts = [], []
        for _ in range(15):
            c0, t0 = time.thread_time(), time.perf_counter()
            engine.assess_many(items, [None] * 1000)
            bts.append(time.perf_counter() - t0)
            bcts.append(time.thread_time() - c0)
        out[f"{name}_p50_ms"] = round(float(np.percentile(bts, 50)) * 1e3, 1)
        out[f"{name}_max_ms"] = round(float(np.max(bts)) * 1e3, 1)
        out[f"{name}_cpu_p50_ms"] = round(float(np.percentile(bcts, 50)) * 1e3, 1)
    return {**out, "model_version": engine.version, "vectorised": engine.fast}


async def _load(url: str, body: bytes | list[bytes], seconds: float, concurrency: int) -> dict[str, float]:
    import aiohttp

    pool = body if isinstance(body, list) else [body]
    done, errors, lat, sent = 0, 0, [], 0
    statuses: dict[int, int] = {}
    stop = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done, errors, sent
        while time.perf_counter() < stop:
            data = pool[sent % len(pool)]
            sent += 1
            t0 = time.perf_counter()
            async with session.post(url, data=data, headers=HEADERS) as r:
                await r.read()
                if r.status == 200:
                    done += 1
                else:
                    errors += 1
                    statuses[r.status] = statuses.get(r.status, 0) + 1
            lat.append(time.perf_counter() - t0)

    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        took = time.perf_counter() - start
    return {
        "req_per_s": round(done / took, 1),
        "requests": done,
        "errors": errors,
        "error_statuses": statuses,
        "p50_ms": round(float(np.percentile(lat, 50)) * 1e3, 2),
        "p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 2),
    }


def rest(model_dir: Path, seconds: float, concurrency: int) -> dict[str, object]:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = Path(tempfile.mkdtemp(prefix="risk-bench-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--workdir", str(workdir), "--model-dir", str(model_dir)],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or child.poll() is not None:
                raise RuntimeError("the bench server did not become ready")
            time.sleep(0.2)
        incident = _incident(workdir)
        plain, stored = bodies(), bodies(incident_id=incident)
        asyncio.run(_load(f"{base}/api/v1/risk", plain, 2, concurrency))  # warm-up
        out: dict[str, object] = {}
        for name, path, pool in (
            ("bare", "/bench/bare", plain),
            ("risk", "/api/v1/risk", plain),
            ("risk_stored", "/api/v1/risk", stored),
        ):
            cpu0 = _cpu_seconds(child.pid)
            res = asyncio.run(_load(f"{base}{path}", pool, seconds, concurrency))
            res["server_cpu_ms_per_req"] = round((_cpu_seconds(child.pid) - cpu0) * 1e3 / max(res["requests"], 1), 3)
            out[name] = res
        out["stored_readings"] = _readings(workdir, incident)
    finally:
        child.terminate()
        child.wait(15)
    return {**out, "concurrency": concurrency, "seconds": seconds}


def _incident(workdir: Path) -> int:
    from knowledge.db import Database
    from knowledge.models import Incident

    with Database(f"sqlite:///{workdir / 'bench.db'}").session() as s:
        inc = Incident(title="bench", service_name="api")
        s.add(inc)
        s.flush()
        return int(inc.id)


def _readings(workdir: Path, incident: int) -> int:
    from sqlalchemy import func, select

    from knowledge.db import Database
    from knowledge.models import RiskReading

    with Database(f"sqlite:///{workdir / 'bench.db'}").session() as s:
        return int(
            s.scalar(select(func.count()).select_from(RiskReading).where(RiskReading.incident_id == incident)) or 0
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--no-rest", action="store_true", help="only the in-process figures")
    ap.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.workdir, args.model_dir)
        return
    model_dir = args.model_dir or Path(tempfile.mkdtemp(prefix="risk-bench-models-"))
    from models.risk_artifact import load_or_train

    load_or_train(model_dir)
    out: dict[str, object] = {"load_before": os.getloadavg()[0], "cpus": os.cpu_count()}
    out["in_process"] = in_process(model_dir)
    if not args.no_rest:
        out["rest"] = rest(model_dir, args.seconds, args.concurrency)
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
