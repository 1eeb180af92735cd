"""From submit to run on an idle worker pool, with and without the interactive lane.

The pool's threads wait on a condition when there is nothing to do; ``submit`` wakes them. With the lane, the
first thread takes only the jobs people wait for, so waking just one thread could wake the lane thread for a
background job, which then waited for another thread's next poll (up to ``poll_s``). This submits ``--jobs`` jobs
one at a time (alternately a background kind and ``skill.run``, a pause between them so the pool is idle each
time) and prints the submit-to-start latency per kind, lane on and off, on a fresh SQLite file each. One JSON object.

    python bench/worker_wake_bench.py --threads 4 --jobs 40
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._harness import load_line, percentile  # noqa: E402
from bot.worker import JobRunner  # noqa: E402
from knowledge.db import Database  # noqa: E402


def _run(lane: bool, threads: int, n: int, pause: float) -> dict[str, dict[str, float]]:
    db = Database(f"sqlite:///{Path(tempfile.mkdtemp(prefix='warroom-wake-')) / 'w.db'}")
    db.upgrade()
    runner = JobRunner(db, n_threads=threads, interactive_lane=lane)
    started: dict[int, float] = {}
    runner.register("incident.card", lambda p: started.__setitem__(int(p["n"]), time.perf_counter()))
    runner.register("skill.run", lambda p: started.__setitem__(int(p["n"]), time.perf_counter()))
    runner.start()
    time.sleep(1.0)
    waits: dict[str, list[float]] = {"incident.card": [], "skill.run": []}
    try:
        for i in range(n):
            kind = "incident.card" if i % 2 else "skill.run"
            t = time.perf_counter()
            runner.submit(kind, {"n": i})
            while i not in started and time.perf_counter() - t < 10:
                time.sleep(0.0005)
            waits[kind].append(started[i] - t)
            time.sleep(pause)
    finally:
        runner.stop()
    return {k: {"p50_ms": round(percentile(v, 50) * 1000, 1), "max_ms": round(max(v) * 1000, 1)}
            for k, v in waits.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=40)
    ap.add_argument("--pause", type=float, default=0.6, help="seconds between jobs (the pool waits meanwhile)")
    a = ap.parse_args()
    before = load_line()
    print(json.dumps({"threads": a.threads, "jobs": a.jobs, "lane": _run(True, a.threads, a.jobs, a.pause),
                      "baseline_no_lane": _run(False, a.threads, a.jobs, a.pause),
                      "load_before": before, "load_after": load_line()}))


if __name__ == "__main__":
    main()
