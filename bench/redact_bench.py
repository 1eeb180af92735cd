"""Secret masking: throughput on real log lines, on secret-laden lines, and time on hostile input, next to another
version of ``skills/redact.py`` (by default the one before the env/JSON/XML shapes were added) measured in the
same run, loaded from git.

    python bench/redact_bench.py --data ../shared/data/loghub_2k [--baseline-rev 9685250]

Prints one JSON object: lines per second (best of ``--repeat``), how many Loghub lines the two versions mask
differently, how many of ten secret-laden lines each masks, and milliseconds per hostile 1 MB line (runs of key
characters: a first draft of the new patterns backtracked on them, 3 s for 10,000 characters).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import load_line  # noqa: E402
from skills.redact import mask_secrets  # noqa: E402

SECRET_LINES = (
    '{"password": "hunter2", "user": "bob"}', "DB_PASSWORD=hunter2 started", "export API_TOKEN=abcd1234efgh",
    "client_secret: 7f9a8b7c6d5e", "postgres://app:hunter2@db:5432/app", "Authorization: Bearer abcdefghijklmnop",
    "posting to https://hooks.slack.com/services/T0001/B0002/abcdefghijklmnopqrstuvwx",
    "AccountName=acct;AccountKey=abc123def456ghi789==;EndpointSuffix=core.windows.net",
    "slack token xoxb-1111-2222-abcdefghijkl", "INFO request served in 12 ms",
)


HOSTILE = (("a-a-a- key", "a-" * 500_000 + " key"), ("a_b. token", "a_b." * 250_000 + " token"),
           ("x secret=", "x" * 1_000_000 + " secret=abc"), ("<password>", "<password>" * 100_000))


def _baseline(rev: str) -> Callable[[str], str]:
    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(["git", "show", f"{rev}:skills/redact.py"], cwd=root, check=True, capture_output=True,
                         text=True).stdout
    mod = types.ModuleType("redact_baseline")
    exec(compile(src, f"{rev}:skills/redact.py", "exec"), mod.__dict__)  # noqa: S102 - our own file, from git
    return mod.mask_secrets  # type: ignore[no-any-return]


def _loghub(data: Path) -> list[str]:
    import pandas as pd

    lines: list[str] = []
    for f in sorted(data.glob("*_structured.csv")):
        lines += pd.read_csv(f)["Content"].astype(str).tolist()
    return lines


def _rate(fn: Callable[[str], str], lines: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for line in lines:
            fn(line)
        best = min(best, time.perf_counter() - t)
    return round(len(lines) / best)


def _ms(fn: Callable[[str], str], text: str) -> float:
    t = time.perf_counter()
    fn(text)
    return round((time.perf_counter() - t) * 1000, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="Loghub 2k folder (*_structured.csv)")
    ap.add_argument("--baseline-rev", default="9685250", help="git revision whose skills/redact.py is the baseline")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    base = _baseline(a.baseline_rev)
    lines = _loghub(a.data)
    if not lines:
        sys.exit(f"no *_structured.csv under {a.data}")
    secrets = list(SECRET_LINES) * 2000
    load_before = load_line()
    out = {
        "loghub_lines": len(lines),
        "loghub_lines_per_s": _rate(mask_secrets, lines, a.repeat),
        "baseline_loghub_lines_per_s": _rate(base, lines, a.repeat),
        "loghub_lines_masked_differently": sum(1 for x in lines if mask_secrets(x) != base(x)),
        "secret_lines_per_s": _rate(mask_secrets, secrets, a.repeat),
        "baseline_secret_lines_per_s": _rate(base, secrets, a.repeat),
        "secret_lines_masked": sum(1 for x in SECRET_LINES if mask_secrets(x) != x),
        "baseline_secret_lines_masked": sum(1 for x in SECRET_LINES if base(x) != x),
        "hostile_1mb_ms": {name: _ms(mask_secrets, text) for name, text in HOSTILE},
        "baseline_hostile_1mb_ms": {name: _ms(base, text) for name, text in HOSTILE},
        "baseline_rev": a.baseline_rev, "load_before": load_before, "load_after": load_line(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
