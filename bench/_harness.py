"""Shared parts of the benchmarks (the process helpers live in bot/standin/procs.py)."""

from __future__ import annotations

from pathlib import Path

from bot.standin.procs import ServerProcess, WorkerProcess, base_env, free_port

__all__ = ["free_port", "ServerProcess", "WorkerProcess", "base_env", "percentile", "load_line"]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


def load_line() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "n/a"
