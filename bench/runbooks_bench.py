"""Benchmark: runbook suggestion latency after warm-up, and a dry-run preview through the real app.

1. Suggestion: the sample world's runbooks and past incidents, the real embedder (``--encoder``),
   ``--warmup`` calls first, then ``--n`` calls with incident texts; p50/p99 in ms. Baseline in the
   same run: a TF-IDF ranker over the same runbook texts (no embedder, no exact matches).
2. Dry-run preview: a signed ``/runbook run clear-disk-space ... --dry-run`` into the real server
   (uvicorn + Bolt + worker + SQLite) until the Slack stand-in receives the preview; p50/p99 in ms.
   Baseline in the same run: ``/runbook list`` (same path, no planning). Each request uses its own
   channel so Slack's one-message-per-second pacing does not add waiting.

    python bench/runbooks_bench.py --encoder minilm --n 200 --previews 30
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.db import Database
from knowledge.embedder import get_encoder
from knowledge.runbook_store import list_runbooks, past_resolutions, spec_of
from knowledge.seed import load_world, seed


def _pct(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs) * 1000
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "max_ms": round(float(a.max()), 2),
    }


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())


def bench_suggest(db: Database, encoder: str, n: int, warmup: int) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from skills.runbook_suggest import RunbookSuggester

    with db.session() as s:
        specs = [spec_of(r) for r in list_runbooks(s)]
        past = past_resolutions(s)
    incidents = load_world()["incidents"]
    queries = [(f"{i['title']} {i['description']}", i.get("alert_name"), i.get("service")) for i in incidents]
    t0 = time.perf_counter()
    enc_obj = get_encoder(encoder)
    enc_obj.warm()  # loading the model, once per process
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    sugg = RunbookSuggester(enc_obj).fit(specs, past)  # the index the bot builds at startup
    fit_s = time.perf_counter() - t0
    for k in range(warmup):
        q = queries[k % len(queries)]
        sugg.suggest(q[0], alert_name=q[1], service=q[2])
    times = []
    for k in range(n):
        q = queries[k % len(queries)]
        t0 = time.perf_counter()
        sugg.suggest(q[0] + f" #{k}", alert_name=q[1], service=q[2])
        times.append(time.perf_counter() - t0)
    tf = TfidfVectorizer(sublinear_tf=True).fit([sp.search_text() for sp in specs])
    docs = tf.transform([sp.search_text() for sp in specs])
    base = []
    for k in range(n):
        t0 = time.perf_counter()
        scores = (tf.transform([queries[k % len(queries)][0] + f" #{k}"]) @ docs.T).toarray()[0]
        np.argsort(-scores)[:3]
        base.append(time.perf_counter() - t0)
    from skills.base import SkillContext
    from skills.runbooks import suggester

    ctx = SkillContext(db=db, data_dir=Path(tempfile.gettempdir()), model_dir=Path(tempfile.gettempdir()),
                       settings=types.SimpleNamespace(embedder=encoder))
    suggester(ctx)  # built once; every later call only checks that runbooks and resolutions are unchanged
    fresh = []
    for _ in range(n):
        t0 = time.perf_counter()
        suggester(ctx)
        fresh.append(time.perf_counter() - t0)
    enc = []  # where the time goes: encoding the query alone
    for k in range(min(n, 50)):
        t0 = time.perf_counter()
        sugg.encoder.encode_queries([queries[k % len(queries)][0] + f" ##{k}"])
        enc.append(time.perf_counter() - t0)
    return {
        "runbooks": len(specs),
        "past_incidents": len(past),
        "encoder": sugg.encoder.name,
        "n": n,
        "model_load_s": round(load_s, 3),
        "index_build_s": round(fit_s, 3),
        "ours": _pct(times),
        "baseline_tfidf": _pct(base),
        "query_encoding_only": _pct(enc),
        "freshness_check": _pct(fresh),  # what the bot adds per suggestion: is its fitted suggester current?
    }


def bench_preview(workdir: Path, encoder: str, n: int) -> dict[str, Any]:
    from bot.settings import Settings
    from bot.standin.driver import SlackDriver
    from bot.standin.harness import LiveServer
    from bot.standin.server import SlackStandIn

    secret = secrets.token_hex(16)
    with SlackStandIn(token="xoxb-bench") as standin:
        settings = Settings(
            mode="test",
            slack_bot_token="xoxb-bench",
            slack_signing_secret=secret,
            slack_api_url=standin.api_url,
            database_url=f"sqlite:///{workdir / 'app.db'}",
            data_dir=workdir,
            embedder=encoder,
            warm_models=False,
        )
        with LiveServer(settings) as srv:
            driver = SlackDriver(srv.url, secret)

            def one(text: str, marker: str, k: int) -> float:
                channel = f"C0BENCH{k:05d}"
                t0 = time.perf_counter()
                assert driver.command("/runbook", text, user="U0IRIS", channel=channel).status_code == 200
                while not any(marker in (m.get("text") or "") for m in standin.messages(channel)):
                    if time.perf_counter() - t0 > 30:
                        raise TimeoutError(f"no reply to {text!r}")
                    time.sleep(0.002)
                return time.perf_counter() - t0

            one("list", "Runbooks", 0)  # warm-up: first request, suggester, DB
            one("run clear-disk-space path=/var/log days=7 --dry-run", "Dry run", 1)
            previews = [one("run clear-disk-space path=/var/log days=7 --dry-run", "Dry run", 10 + k) for k in range(n)]
            lists = [one("list", "Runbooks", 1000 + k) for k in range(n)]
    return {"n": n, "dry_run_preview": _pct(previews), "baseline_list": _pct(lists)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", default="minilm", choices=["minilm", "hash"])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--previews", type=int, default=30)
    ap.add_argument("--torch-threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = ap.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    with tempfile.TemporaryDirectory(prefix="warroom-rb-bench-") as tmp:
        workdir = Path(tmp)
        db = Database(f"sqlite:///{workdir / 'app.db'}")
        db.upgrade()
        with db.session() as s:
            seed(s)
        out: dict[str, Any] = {"load_before": os.getloadavg()[0], "torch_threads": _threads()}
        out["suggest"] = bench_suggest(db, args.encoder, args.n, args.warmup)
        out["preview"] = bench_preview(workdir, args.encoder, args.previews)
        out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
