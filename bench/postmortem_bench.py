"""Benchmark: a deterministic postmortem draft for an incident with 2,000 timeline messages.

Builds a fresh SQLite knowledge base (the sample world plus one incident whose channel holds
``--messages`` messages, stored both as ``slack_messages`` and ``timeline_events`` as the intake
does, with pins, action items and secrets sprinkled in), then times, over ``--repeat`` runs:
assembling the facts from the database, masking secrets, writing the deterministic draft, and
checking its faithfulness. The baseline in the same run is the template writer (incident row only).

    python bench/postmortem_bench.py --messages 2000 --repeat 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from knowledge.db import Database
from knowledge.facts import assemble_facts
from knowledge.incident_history import load_history
from knowledge.seed import seed
from skills.postmortem_check import faithfulness
from skills.postmortem_eval import TemplateBaseline
from skills.postmortem_writers import DeterministicWriter, redact

USERS = ("U0ALICE", "U0BOB", "U0IRIS", "U0JONAS", "U0CARLA")
TEXTS = ("checking the dashboards for payments-api", "p99 is 850 ms, error rate 3%", "restarting pod 4 of 12",
         "token=abc123secretvalue rotated", "we should add a dashboard for pool usage <@U0IRIS>",
         "TODO: write down the rollback steps", "no change after the restart", "root cause might be the pool size")


def incident(n: int) -> dict[str, Any]:
    msgs = [{"at": 5 + i * 0.05, "user": USERS[i % len(USERS)], "text": f"{TEXTS[i % len(TEXTS)]} ({i})",
             "key": i % 250 == 0} for i in range(n)]
    return {"title": "payments-api 503s during the sale", "service": "payments-api", "alert_name": "HighErrorRate",
            "severity": 1, "start": "2026-07-01T09:00:00", "detected": 1, "acknowledged": 4, "mitigated": 90,
            "resolved": 120, "assignee": "U0ALICE", "resolution": "Rolled back and resized the pool.",
            "alerts": [{"name": "HighErrorRate", "at": 1, "summary": "5xx 12%"}],
            "events": [{"at": 1, "kind": "created", "text": "Incident opened"},
                       {"at": 120, "kind": "resolve", "text": "Resolved", "actor": "U0ALICE"}],
            "messages": msgs,
            "runbooks": [{"slug": "restart-service", "at": 30, "by": "U0ALICE", "approved_by": "U0BOB"}]}


def _time(fn: Any, repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="warroom-pm-bench-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        db.upgrade()
        with db.session() as s:
            seed(s)
            iid = load_history(s, incident(args.messages))

        def facts() -> Any:
            with db.session() as s:
                return assemble_facts(s, incident_id=iid)

        t_facts, raw = _time(facts, args.repeat)
        t_redact, red = _time(lambda: redact(raw), args.repeat)
        writer = DeterministicWriter()
        t_write, doc = _time(lambda: writer.write(red), args.repeat)
        t_total, _ = _time(lambda: writer.write(redact(facts())), args.repeat)
        t_check, faith = _time(lambda: faithfulness(doc.markdown, red), args.repeat)
        t_base, _ = _time(lambda: TemplateBaseline().write(redact(facts())), args.repeat)
        db.engine.dispose()
    print(json.dumps({
        "benchmark": "postmortem deterministic draft", "messages": args.messages,
        "timeline_items": len(raw.timeline), "repeat": args.repeat, "target_s": 1.0,
        "draft_total_s": round(t_total, 4), "facts_s": round(t_facts, 4), "redact_s": round(t_redact, 4),
        "write_s": round(t_write, 4), "faithfulness_check_s": round(t_check, 4),
        "faithfulness": round(faith.share, 4), "markdown_chars": len(doc.markdown),
        "action_items": len(doc.fields["action_items"]),
        "baseline_template_total_s": round(t_base, 4), "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
