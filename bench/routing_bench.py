"""Routing speed: one routing decision (ownership, on-call, classifier, history lookup, load), p50/p99.

    python bench/routing_bench.py [--calls 400] [--history 600] [--embedder hash|minilm]

Builds a SQLite knowledge base from the sample world plus ``--history`` synthetic closed incidents
(so the history lookup has something to search), trains the routing classifier on it, then times
``skills.routing_engine.route`` after a warm-up of 30 calls on varied ticket texts, with the history
from the knowledge-base search (``knowledge.search``, the default) and from the TF-IDF fallback.
Baseline, same run, same texts: the plain "page the on-call person of the owning team" lookup
(service from the text, team's current shift; no classifier, no history, no load). Prints one JSON
object, including the machine's load average, with wall-clock and thread-CPU percentiles.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

WORDS = ("timeout", "503", "latency", "disk", "memory", "oom", "restart", "deploy", "certificate", "lag",
         "connection", "pool", "queue", "retry", "dns", "login", "token", "cache", "evictions", "backup")


def _pct(xs: list[float]) -> dict[str, float]:
    a = np.array(xs) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2),
            "mean_ms": round(float(a.mean()), 2), "n": len(xs)}


def build(workdir: Path, n_history: int, embedder: str) -> Any:
    from bot.settings import Settings
    from knowledge.db import Database
    from knowledge.models import Incident
    from knowledge.routing_history import routing_examples
    from knowledge.seed import load_world, seed
    from models.routing_artifact import save_routing_model, train_routing_model
    from skills.base import SkillContext

    settings = Settings(mode="demo", slack_bot_token="xoxb-bench", slack_signing_secret=secrets.token_hex(16),
                        slack_api_url="http://127.0.0.1:9/api/", database_url=f"sqlite:///{workdir / 'bench.db'}",
                        data_dir=workdir, embedder=embedder, workers=1, slack_incident_channel="C0INCIDENTS")
    db = Database(settings.database_url)
    db.upgrade()
    world = load_world()
    rng = random.Random(0)
    with db.session() as s:
        seed(s)
        base = world["incidents"]
        start = dt.datetime(2025, 1, 1)
        for i in range(n_history):
            src = base[i % len(base)]
            extra = " ".join(rng.sample(WORDS, 4))
            at = start + dt.timedelta(hours=7 * i)
            s.add(Incident(title=f"{src['title']} ({extra})", description=src["description"], severity=src["severity"],
                           status="resolved", service_name=src["service"], alert_name=src.get("alert_name"),
                           source="import", assignee=src["assignee"], created_at=at, resolved_at=at,
                           root_cause=src.get("root_cause", ""), resolution=src.get("resolution", "")))
    with db.session() as s:
        pairs = routing_examples(session=s)
    texts, labels = [t for t, _ in pairs], [y for _, y in pairs]
    save_routing_model(train_routing_model(texts, labels), settings.models_path, texts=texts, labels=labels,
                       source="bench")
    ctx = SkillContext(db=db, data_dir=workdir, model_dir=settings.models_path, settings=settings)
    queries = []
    for i in range(200):
        src = base[(i * 7) % len(base)]
        queries.append(f"{' '.join(rng.sample(WORDS, 3))} {src['title'].split(':')[0]} {src['description'][:80]}")
    return ctx, queries


def baseline_lookup(ctx: Any, text: str) -> str | None:
    """Service named in the text -> owning team -> who is on shift now (one session)."""
    from knowledge import people

    with ctx.db.session() as s:
        named = people.services_in_text(session=s, text=text)
        svc = people.service_named(session=s, name=named[0]) if named else None
        if svc is None or svc.team_id is None:
            return None
        on = people.oncall_now(session=s, team_id=svc.team_id)
        return on[0].slack_user_id if on else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--history", type=int, default=600)
    ap.add_argument("--embedder", default="hash", choices=("hash", "minilm"))
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from skills.routing_engine import route

    with tempfile.TemporaryDirectory(prefix="warroom-routing-bench-") as tmp:
        t0 = time.perf_counter()
        ctx, queries = build(Path(tmp), args.history, args.embedder)
        setup_s = time.perf_counter() - t0
        out: dict[str, Any] = {"bench": "routing decision", "history_incidents": args.history + 12,
                               "embedder": args.embedder, "setup_s": round(setup_s, 1)}
        for name, fn in (("baseline_oncall_lookup", lambda q: baseline_lookup(ctx, q)),
                         ("route_search_history", lambda q: route(ctx, text=q)),
                         ("route_tfidf_history", lambda q: route(ctx, text=q))):
            ctx.resources["routing.history_engine"] = "tfidf" if name == "route_tfidf_history" else "search"
            for q in queries[:30]:
                fn(q)  # warm-up: index load, classifier load, caches
            times, cpu = [], []
            for i in range(args.calls):
                q = queries[i % len(queries)]
                t, c = time.perf_counter(), time.thread_time()
                fn(q)
                cpu.append(time.thread_time() - c)
                times.append(time.perf_counter() - t)
            # Wall time is what a user waits; CPU time of this thread shows the work itself on a
            # machine whose cores are shared (wall - CPU = time spent waiting for a core or I/O).
            out[name] = {**_pct(times), **{f"cpu_{k}": v for k, v in _pct(cpu).items() if k != "n"}}
        sample = route(ctx, text=queries[0])
        out["sample"] = {"text": queries[0][:100], "best": sample.best.user_id if sample.best else None,
                         "why": sample.best.why if sample.best else sample.fallback}
        out["loadavg"] = [round(x, 2) for x in os.getloadavg()]
        out["cpus"] = os.cpu_count()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
