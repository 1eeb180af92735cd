"""Throughput of log mining and classification, next to drain3 and a Naive Bayes baseline (same run).

Usage:
    python bench/logs_bench.py --data ../shared/data/loghub_2k [--repeat 5] [--stream-mb 200]

Lines come from every ``*_2k.log_structured.csv`` under ``--data`` (24,000 real lines), repeated
``--repeat`` times. ``--stream-mb`` also writes a file of that size (the same lines, numbers varied)
and streams it through ``warroom logs classify --no-remember`` in a subprocess, reporting its peak
memory. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import logging
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _lines(data: Path) -> list[str]:
    out: list[str] = []
    for path in sorted(data.glob("*_2k.log_structured.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            out += [r["Content"] for r in csv.DictReader(fh)]
    if not out:
        raise SystemExit(f"no *_2k.log_structured.csv under {data}")
    return out


def _rate(n: int, fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t0)


def _classify_file(path: Path, env: dict[str, str]) -> tuple[int, float]:
    """``warroom logs classify PATH --no-remember --json`` in a subprocess: lines read, wall seconds."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-c", "from bot.cli import main; main()", "logs", "classify", str(path),
           "--no-remember", "--json"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"stream run failed: {proc.stderr[-500:]}")
    return int(json.loads(proc.stdout.strip().splitlines()[-1])["n_lines"]), wall


def _stream(lines: list[str], mb: int, gz: bool = False) -> dict[str, float]:
    rnd = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.log"
        target, written = mb * 2**20, 0
        with path.open("w", encoding="utf-8") as fh:
            while written < target:
                chunk = "\n".join(f"2026-11-23 10:{rnd.randrange(60):02d}:{rnd.randrange(60):02d} {ln}"
                                  for ln in rnd.sample(lines, 2000)) + "\n"
                fh.write(chunk)
                written += len(chunk)
        env = dict(os.environ, WARROOM_DATA_DIR=tmp, WARROOM_DATABASE_URL=f"sqlite:///{tmp}/b.db",
                   WARROOM_MODE="demo")
        n, wall = _classify_file(path, env)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        out = {"stream_mb": round(written / 2**20), "stream_lines": n, "stream_seconds": round(wall, 1),
               "stream_lines_per_second": round(n / wall), "stream_peak_rss_mb": round(peak_mb)}
        if gz:  # the same file gzipped, as a rotated log comes: read through the decompressing stream
            packed = path.with_suffix(".log.gz")
            with path.open("rb") as src, gzip.open(packed, "wb", compresslevel=6) as dst:
                shutil.copyfileobj(src, dst, 2**20)
            n_gz, wall_gz = _classify_file(packed, env)
            if n_gz != n:
                raise SystemExit(f"gzip run read {n_gz} lines, the plain one {n}")
            out.update(stream_gzip_mb=round(packed.stat().st_size / 2**20, 1), stream_gzip_seconds=round(wall_gz, 1),
                       stream_gzip_lines_per_second=round(n / wall_gz),
                       stream_peak_rss_mb_both=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--stream-mb", type=int, default=0)
    ap.add_argument("--stream-gzip", action="store_true", help="also stream the same file gzipped")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline

    from models.log_classifier import LogClassifier
    from models.log_data import load_examples
    from models.log_eval import _drain3
    from models.log_miner import LogMiner, masked_tokens

    logging.getLogger("drain3").setLevel(logging.WARNING)
    base = _lines(args.data)
    stream = base * args.repeat
    ex = load_examples()
    model = LogClassifier().fit([e.text for e in ex], [e.severity for e in ex], [e.category for e in ex])
    nb = make_pipeline(CountVectorizer(), MultinomialNB()).fit([e.text for e in ex], [e.severity for e in ex])

    def ours() -> None:
        miner, keys = LogMiner(), []
        for line in stream:
            tokens = masked_tokens(line)
            miner.add_tokens(tokens, line)
            keys.append(" ".join(tokens))
        model.predict_masked(keys)

    out: dict[str, object] = {
        "lines": len(stream),
        "ours_mine_and_classify_lines_per_second": round(_rate(len(stream), ours)),
        "ours_mine_lines_per_second": round(_rate(len(stream), lambda: LogMiner().fit(stream))),
        "drain3_default_lines_per_second": round(_rate(len(stream), lambda: _drain3(stream))),
        "baseline_nb_classify_lines_per_second": round(_rate(len(stream), lambda: nb.predict(stream))),
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    if args.stream_mb:
        out.update(_stream(base, args.stream_mb, args.stream_gzip))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
