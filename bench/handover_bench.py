"""The shift handover over a large alert history: how long `what did I miss?` takes, with and without the
alert-time indexes of migration 0006.

    python bench/handover_bench.py [--alerts 300000] [--days 90] [--runs 20]

Builds one SQLite knowledge base (migrated, the sample world seeded) with ``--alerts`` alerts spread over
``--days`` days, then times the real handover (``skills.handover.handover``, 12 hours) ``--runs`` times with
the indexes as shipped and again after dropping them (the baseline: the code before them, same data, same
run). Prints one JSON object; the two handovers' texts must be equal, or it exits 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import load_line, percentile
from knowledge.db import Database
from knowledge.models import Alert, utcnow
from knowledge.seed import seed
from skills.handover import handover

ALERT_TIME_INDEXES = ("ix_alerts_received_at", "ix_alerts_last_seen_at")


def fill(db: Database, n: int, days: int, seed_: int = 0) -> None:
    rng, now = random.Random(seed_), utcnow()
    names = [f"Alert{i}" for i in range(200)]
    services = ["payments-api", "checkout-web", "ingest", "postgres-main", "kafka", "search"]
    batch = []
    with db.session() as s:
        for i in range(n):
            at = now - dt.timedelta(seconds=rng.uniform(0, days * 86400))
            batch.append(dict(source="alertmanager", fingerprint=f"fp-{i}", name=rng.choice(names),
                              service_name=rng.choice(services), status="resolved", occurrences=1, summary="",
                              labels={}, annotations={}, received_at=at,
                              last_seen_at=at + dt.timedelta(minutes=rng.uniform(0, 120))))
            if len(batch) == 10_000:
                s.execute(insert(Alert), batch)
                batch = []
        if batch:
            s.execute(insert(Alert), batch)
        s.commit()


def timed(db: Database, runs: int, now: dt.datetime) -> tuple[list[float], str]:
    ms, out = [], ""
    with db.session() as s:
        handover(s, 12, now=now)  # warm the page cache and the statement cache
        for _ in range(runs):
            t0 = time.perf_counter()
            result = handover(s, 12, now=now)
            ms.append((time.perf_counter() - t0) * 1000)
            out = result.summary + "\n" + "\n".join("\n".join(sec.lines) for sec in result.sections)
    return ms, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--alerts", type=int, default=300_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="warroom-handover-"))
    db = Database(f"sqlite:///{tmp / 'kb.db'}")
    db.upgrade()
    with db.session() as s:
        seed(s)
    load_before = load_line()
    t0 = time.perf_counter()
    fill(db, args.alerts, args.days)
    fill_s = time.perf_counter() - t0
    now = utcnow()
    with_idx, text_a = timed(db, args.runs, now)
    with db.engine.begin() as conn:
        for name in ALERT_TIME_INDEXES:
            conn.execute(text(f"DROP INDEX {name}"))
    without, text_b = timed(db, args.runs, now)
    result = {
        "alerts": args.alerts, "days": args.days, "runs": args.runs, "fill_s": round(fill_s, 1),
        "handover_ms_p50": round(percentile(with_idx, 50), 2), "handover_ms_max": round(max(with_idx), 2),
        "baseline_no_index_ms_p50": round(percentile(without, 50), 2),
        "baseline_no_index_ms_max": round(max(without), 2),
        "same_answer": text_a == text_b, "load_before": load_before, "load_after": load_line(),
    }
    print(json.dumps(result))
    return 0 if result["same_answer"] else 1


if __name__ == "__main__":
    sys.exit(main())
