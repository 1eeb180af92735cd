"""Scale-out backlog: what the replicas' sweepers add to a Celery queue that is merely behind.

Needs a PostgreSQL and a Redis (`eval "$(bash scripts/services.sh)"` starts both and exports
WARROOM_TEST_POSTGRES_URL / WARROOM_TEST_REDIS_URL; the database and Redis are wiped).

N jobs are queued at once through replica A (a storm's work) and one Celery worker (threads, `--concurrency`)
runs them, each taking `--work-ms`. Two replicas (A, B) run their sweepers as `warroom serve` does. Two runs:

- baseline: the sweeper without the broker's count (``pending=None``, what it does when Redis cannot say, and
  what it always did before 2026-12-03): every job queued and due for 5 s is sent again, at most every 15 s,
  whether or not the broker still holds it (the replicas share that 15 s through ``jobs.resent_at``; before
  migration 0007 each replica kept its own, see docs/benchmarks.md);
- product: the sweeper asks the broker how many messages wait (``bot.celery_app.celery_pending``) and sends only
  as many of the oldest as the broker cannot be holding.

Then, in the same run, the loss case: Redis is flushed with the product sweeper on, and every job must still finish.
Prints JSON: per run the drain time, messages the sweepers sent again, deliveries the worker dropped during the
drain (the job was already done or running: a copy), and the copies still queued when the last job finished
(each costs the worker a claim against the database before it reaches the work queued after the storm).

Run: `python bench/sweeper_bench.py [--jobs 3000] [--work-ms 40] [--concurrency 4]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from celery import Celery  # noqa: E402

from bot.celery_app import QUEUES, celery_dispatcher, celery_pending, make_celery  # noqa: E402
from bot.worker import JobRunner  # noqa: E402
from knowledge.db import Database  # noqa: E402

KIND = "bench.work"
DROPPED = "bench:dropped"


def _worker_app() -> Celery:
    """The worker process's app: the product's Celery settings, a runner with one handler that sleeps."""
    import redis

    redis_url = os.environ["WARROOM_TEST_REDIS_URL"]
    r = redis.Redis.from_url(redis_url)
    runner = JobRunner(Database(os.environ["WARROOM_TEST_POSTGRES_URL"]), n_threads=1, lease_s=120)
    work_s = float(os.environ.get("BENCH_WORK_MS", "40")) / 1000
    runner.register(KIND, lambda payload: time.sleep(work_s))
    def run_job(job_id: int) -> bool:
        ran = runner.run_job(job_id)
        if not ran:
            r.incr(DROPPED)
        return ran

    return make_celery(redis_url, run=run_job)


celery_app = _worker_app() if os.environ.get("BENCH_SWEEPER_WORKER") else None


def _open_jobs(db: Database) -> int:
    from sqlalchemy import func, select

    from knowledge.models import Job

    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Job).where(Job.status.in_(("queued", "running"))))
                   or 0)


def one_run(pg: str, redis_url: str, n: int, work_ms: float, concurrency: int, ask_broker: bool,
            flush_at: int | None = None) -> dict[str, Any]:
    import redis

    from knowledge import jobs

    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    db = Database(pg)
    db.reset_postgres_schema()
    db.upgrade()
    app = make_celery(redis_url)
    sent = {"n": 0}
    base = celery_dispatcher(app)

    def dispatch(job_id: int, delay_s: float, kind: str = "") -> None:
        sent["n"] += 1
        base(job_id, delay_s, kind)

    pending = celery_pending(app) if ask_broker else None
    replicas = [JobRunner(db, n_threads=1, dispatch=dispatch, pending=pending) for _ in range(2)]
    for rep in replicas:
        rep.register(KIND, lambda payload: None)
    env = {**os.environ, "BENCH_SWEEPER_WORKER": "1", "BENCH_WORK_MS": str(work_ms),
           "WARROOM_TEST_POSTGRES_URL": pg, "WARROOM_TEST_REDIS_URL": redis_url}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench.sweeper_bench:celery_app", "worker", "--pool=threads",
         f"--concurrency={concurrency}", f"--queues={','.join(QUEUES)}", "--loglevel=WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=Path(__file__).resolve().parent.parent, env=env, stdout=subprocess.DEVNULL)  # its warnings go to stderr
    try:
        t0 = time.perf_counter()
        with db.session() as s:
            refs = jobs.enqueue_many(s, [(KIND, {"i": i}, None) for i in range(n)])
        replicas[0].handoff([(ref.id, 0.0, KIND) for ref in refs])
        first_sent = sent["n"]
        for rep in replicas:
            rep.start()
        flushed = False
        peak_queue = 0
        while True:
            open_ = _open_jobs(db)
            peak_queue = max(peak_queue, int(r.llen(QUEUES[1])))
            if flush_at is not None and not flushed and n - open_ >= flush_at:
                r.delete(*QUEUES)  # Redis restarted without persistence: every waiting message is gone
                flushed = True
            if open_ == 0:
                break
            if time.perf_counter() - t0 > 600:
                raise RuntimeError(f"not drained after 600 s: {open_} open")
            time.sleep(0.2)
        drain_s = time.perf_counter() - t0
        left = sum(int(r.llen(q)) for q in QUEUES)  # copies the worker has yet to claim and drop
    finally:
        for rep in replicas:
            rep.stop()
        worker.terminate()
        worker.wait(30)
    time.sleep(1.0)
    dropped = int(r.get(DROPPED) or 0)
    db.engine.dispose()
    return {"ask_broker": ask_broker, "jobs": n, "drain_s": round(drain_s, 2), "jobs_per_s": round(n / drain_s, 1),
            "sent_first": first_sent, "sweeper_resent": sent["n"] - first_sent, "worker_dropped_copies": dropped,
            "peak_queue_len": peak_queue, "copies_left_in_queue_at_drain": left, "redis_flushed": flushed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=3000)
    ap.add_argument("--work-ms", type=float, default=40.0)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()
    pg, redis_url = os.environ.get("WARROOM_TEST_POSTGRES_URL"), os.environ.get("WARROOM_TEST_REDIS_URL")
    if not pg or not redis_url:
        sys.exit('needs WARROOM_TEST_POSTGRES_URL and WARROOM_TEST_REDIS_URL: eval "$(bash scripts/services.sh)"')
    from bench._harness import load_line

    out: dict[str, Any] = {"load_before": load_line(), "work_ms": args.work_ms, "concurrency": args.concurrency}
    out["baseline"] = one_run(pg, redis_url, args.jobs, args.work_ms, args.concurrency, ask_broker=False)
    out["product"] = one_run(pg, redis_url, args.jobs, args.work_ms, args.concurrency, ask_broker=True)
    out["product_redis_flushed_at_1_3"] = one_run(pg, redis_url, args.jobs, args.work_ms, args.concurrency,
                                                  ask_broker=True, flush_at=args.jobs // 3)
    out["load_after"] = load_line()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
