"""Benchmark of the similar-incident search: vector search at scale, embedding, and /similar end to end.

Prints one JSON object per measurement and a summary JSON object as the last line::

    python bench/similar_bench.py                       # 100k and 1M synthetic vectors, MiniLM, end to end
    python bench/similar_bench.py --sizes 100000 --skip-e2e --skip-embed

Sections (each with its baseline from the same run):

- ``scale``: search p50/p99 of :class:`knowledge.vector_index.VectorIndex` (HNSW beyond its threshold)
  against exact ``IndexFlatIP`` on the same vectors, recall@10 against exact, build time, and index
  memory (serialised FAISS bytes) per million vectors. Vectors are synthetic: a mixture of 5,000
  Gaussian clusters in 384 dimensions (noise 0.6 per dimension: two points of a cluster have a cosine
  of about 0.74, like close incidents under MiniLM), normalised (uniform random vectors have no neighbourhood
  structure and make every approximate index look bad); queries are fresh draws from the mixture.
- ``threshold``: exact search p99 at growing sizes, which is how the exact/HNSW switch was chosen.
- ``real``: recall@10 of HNSW on real MiniLM embeddings of log lines (``--logs`` CSV).
- ``embed``: MiniLM documents/s batched, and single-query latency.
- ``e2e``: signed ``/similar`` through the real app (uvicorn, Bolt, job queue, worker, Slack stand-in)
  after warm-up, until the answer is posted, next to ``/warroom status`` through the same path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge.vector_index import DEFAULT_APPROX_THRESHOLD, VectorIndex  # noqa: E402

DIM = 384


def emit(obj: dict[str, Any]) -> dict[str, Any]:
    print(json.dumps(obj), flush=True)
    return obj


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values), q)), 3)


def mixture(n: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    out = np.empty((n, DIM), dtype=np.float32)
    step = 100_000
    for i in range(0, n, step):
        m = min(step, n - i)
        idx = rng.integers(0, centers.shape[0], m)
        x = centers[idx] + 0.6 * rng.standard_normal((m, DIM), dtype=np.float32)
        out[i:i + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def time_queries(fn: Any, queries: np.ndarray) -> tuple[list[float], list[Any]]:
    times, results = [], []
    for q in queries:
        t = time.perf_counter()
        results.append(fn(q))
        times.append((time.perf_counter() - t) * 1000)
    return times, results


def bench_scale(n: int, n_queries: int, threads: int) -> dict[str, Any]:
    import faiss

    faiss.omp_set_num_threads(threads)
    rng = np.random.default_rng(n)
    centers = rng.standard_normal((5000, DIM), dtype=np.float32)
    data = mixture(n, rng, centers)
    queries = mixture(n_queries, rng, centers)
    exact = faiss.IndexFlatIP(DIM)
    exact.add(data)
    faiss.omp_set_num_threads(1)  # one query at a time, as the bot searches
    ex_times, ex_res = time_queries(lambda q: exact.search(q.reshape(1, -1), 10)[1][0], queries)
    faiss.omp_set_num_threads(threads)
    vi = VectorIndex("synthetic", DIM)
    keys = [f"s:{i}" for i in range(n)]
    t0 = time.perf_counter()
    vi.upsert(keys, ["x"] * n, data)
    build_s = time.perf_counter() - t0
    faiss.omp_set_num_threads(1)
    times, res = time_queries(lambda q: [int(k[2:]) for k, _ in vi.search(q, 10)], queries)
    recall = float(np.mean([len(set(r) & set(e.tolist())) / 10 for r, e in zip(res, ex_res, strict=True)]))
    mem = faiss.serialize_index(vi._index).nbytes
    sweep = []
    for knob in ((8, 16, 48) if vi.kind == "ivf" else (16, 32, 128) if vi.kind == "hnsw" else ()):
        if vi.kind == "ivf":
            vi._index.nprobe = knob
        else:
            vi.ef_search = knob
        t_k, r_k = time_queries(lambda q: [int(k[2:]) for k, _ in vi.search(q, 10)], queries)
        rec_k = float(np.mean([len(set(r) & set(e.tolist())) / 10 for r, e in zip(r_k, ex_res, strict=True)]))
        sweep.append({"nprobe" if vi.kind == "ivf" else "ef_search": knob, "p50_ms": pct(t_k, 50),
                      "p99_ms": pct(t_k, 99), "recall_at_10": round(rec_k, 4)})
    out = {"section": "scale", "n": n, "kind": vi.kind, "queries": n_queries,
           "p50_ms": pct(times, 50), "p99_ms": pct(times, 99), "recall_at_10": round(recall, 4),
           "exact_p50_ms": pct(ex_times, 50), "exact_p99_ms": pct(ex_times, 99),
           "build_s": round(build_s, 1), "build_threads": threads, "index_bytes": mem,
           "index_mb_per_million": round(mem / n * 1e6 / 2**20, 1),
           "exact_mb_per_million": round(n * DIM * 4 / n * 1e6 / 2**20, 1), "sweep": sweep}
    return emit(out)


def bench_threshold(sizes: list[int]) -> list[dict[str, Any]]:
    import faiss

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(1)
    centers = rng.standard_normal((500, DIM), dtype=np.float32)
    out = []
    for n in sizes:
        idx = faiss.IndexFlatIP(DIM)
        idx.add(mixture(n, rng, centers))
        times, _ = time_queries(lambda q, idx=idx: idx.search(q.reshape(1, -1), 10), mixture(200, rng, centers))
        out.append(emit({"section": "threshold", "n": n, "exact_p50_ms": pct(times, 50),
                         "exact_p99_ms": pct(times, 99)}))
    return out


def _log_lines(path: Path, limit: int) -> list[str]:
    import pandas as pd

    df = pd.read_csv(path)
    col = "content" if "content" in df.columns else "Content"
    return [str(x) for x in df[col].dropna().astype(str).drop_duplicates().head(limit)]


def bench_real(path: Path, limit: int) -> dict[str, Any]:
    import faiss

    from knowledge.embedder import get_encoder

    texts = _log_lines(path, limit)
    enc = get_encoder("minilm")
    t0 = time.perf_counter()
    vecs = enc.encode_documents(texts)
    enc_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    qi = rng.choice(len(texts), size=min(200, len(texts)), replace=False)
    base_mask = np.ones(len(texts), dtype=bool)
    base_mask[qi] = False
    base = vecs[base_mask]
    exact = faiss.IndexFlatIP(DIM)
    exact.add(base)
    vi = VectorIndex("minilm", DIM, approx_threshold=1)  # force HNSW on a small real set
    vi.upsert([f"r:{i}" for i in range(base.shape[0])], ["x"] * base.shape[0], base)
    rec = []
    for q in vecs[qi]:
        ex = set(exact.search(q.reshape(1, -1), 10)[1][0].tolist())
        got = {int(k[2:]) for k, _ in vi.search(q, 10)}
        rec.append(len(ex & got) / 10)
    return emit({"section": "real", "n": int(base.shape[0]), "kind": vi.kind,
                 "recall_at_10": round(float(np.mean(rec)), 4), "encode_docs_per_s": round(len(texts) / enc_s, 1)})


def bench_embed(n: int) -> dict[str, Any]:
    from knowledge.embedder import get_encoder

    rng = np.random.default_rng(0)
    words = ("payments api returned 503 connection pool exhausted postgres kafka consumer lag disk full "
             "certificate expired dns servfail redis evictions latency deploy rollback node oom killed").split()
    texts = [" ".join(rng.choice(words, size=40)) for _ in range(n)]
    enc = get_encoder("minilm")
    enc.encode_documents(texts[:8])
    t0 = time.perf_counter()
    enc.encode_documents(texts)
    batched = n / (time.perf_counter() - t0)
    single, _ = time_queries(lambda t: enc.encode_queries([t]), np.asarray(texts[:50], dtype=object))
    return emit({"section": "embed", "encoder": enc.name, "texts": n, "words_per_text": 40,
                 "docs_per_s_batched": round(batched, 1), "query_p50_ms": pct(single, 50),
                 "query_p99_ms": pct(single, 99)})


def bench_e2e(n: int, embedder: str) -> dict[str, Any]:
    import secrets

    from bot.settings import Settings
    from bot.standin.driver import SlackDriver
    from bot.standin.harness import LiveServer
    from bot.standin.server import SlackStandIn
    from knowledge.db import Database
    from knowledge.seed import seed

    work = Path(tempfile.mkdtemp(prefix="warroom-bench-"))
    secret = secrets.token_hex(16)
    with SlackStandIn(token="xoxb-bench") as standin:
        settings = Settings(mode="test", slack_bot_token="xoxb-bench", slack_signing_secret=secret,
                            slack_api_url=standin.api_url, database_url=f"sqlite:///{work / 'w.db'}", data_dir=work,
                            embedder=embedder, workers=2)
        db = Database(settings.database_url)
        db.upgrade()
        with db.session() as s:
            seed(s)
        with LiveServer(settings) as srv:
            driver = SlackDriver(srv.url, secret)

            def round_trip(cmd: str, text: str, channel: str) -> float:
                before = len(standin.messages(channel))
                t = time.perf_counter()
                assert driver.command(cmd, text, channel=channel).status_code == 200
                while len(standin.messages(channel)) == before:
                    time.sleep(0.002)
                return (time.perf_counter() - t) * 1000

            queries = ["payments-api 503 remaining connection slots are reserved", "kafka broker disk full",
                       "certificate expired on ingress", "login latency high redis evictions",
                       "pods cannot resolve service names"]
            for i in range(3):  # warm-up
                round_trip("/similar", queries[i], f"C0WARM{i}")
            sim, status = [], []
            for i in range(n):
                # a channel per request: the poster paces posts to one channel at about one per second
                sim.append(round_trip("/similar", queries[i % len(queries)], f"C0SIM{i}"))
                status.append(round_trip("/warroom", "status", f"C0STA{i}"))
    return emit({"section": "e2e", "embedder": embedder, "requests": n, "similar_p50_ms": pct(sim, 50),
                 "similar_p99_ms": pct(sim, 99), "similar_max_ms": round(max(sim), 1),
                 "status_p50_ms": pct(status, 50), "status_p99_ms": pct(status, 99)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for building only")
    ap.add_argument("--logs", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" /
                    "loghub_2k" / "loghub_2k_unified.csv")
    ap.add_argument("--real-limit", type=int, default=3000)
    ap.add_argument("--embed-texts", type=int, default=256)
    ap.add_argument("--e2e-requests", type=int, default=30)
    ap.add_argument("--e2e-embedder", default="minilm", choices=["minilm", "hash"])
    ap.add_argument("--skip-threshold", action="store_true")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-embed", action="store_true")
    ap.add_argument("--skip-e2e", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()
    summary: dict[str, Any] = {"load_avg_1_5_15": [round(x, 2) for x in load], "cpus": os.cpu_count(),
                               "approx_threshold": DEFAULT_APPROX_THRESHOLD}
    if not args.skip_threshold:
        summary["threshold"] = bench_threshold([5_000, 10_000, 20_000, 50_000, 100_000])
    summary["scale"] = [bench_scale(int(n), args.queries, args.threads) for n in args.sizes.split(",") if n]
    if not args.skip_real and args.logs.is_file():
        summary["real"] = bench_real(args.logs, args.real_limit)
    if not args.skip_embed:
        summary["embed"] = bench_embed(args.embed_texts)
    if not args.skip_e2e:
        summary["e2e"] = bench_e2e(args.e2e_requests, args.e2e_embedder)
    summary["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
