"""Features of the failure-risk model: from a metrics snapshot (and optionally a window) to numbers.

The seven core inputs, their units and valid ranges live in ``METRICS``; every door validates
against these ranges so an absurd value (cpu=500) is refused, never clipped into a confident number.
Missing inputs are filled with the healthy reference value and reported back as missing.

Snapshot features: the raw values, log transforms of the unbounded ones, ratios (errors per
connection, response time over network latency), interactions (cpu x memory) and stress indices
(the highest utilisation, how many resources run above 80 % / 90 %, a combined stress score).
Window features (when a series of samples is given): per metric the slope per hour, the rate of
change, rolling mean and standard deviation relative to the window, and the detector's anomaly
score, flagged and early-warning shares (see ``models.risk_detector``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Metric", "METRICS", "ALIASES", "REFERENCE", "SNAPSHOT_FEATURES", "WINDOW_FEATURES", "FEATURE_NAMES",
    "canonical_name", "fill_snapshot", "snapshot_vector", "snapshot_matrix", "window_vector", "feature_matrix",
    "NO_WINDOW", "MONOTONE", "monotone_constraints",
]


@dataclass(frozen=True)
class Metric:
    """One core input: its name, unit, valid range and healthy reference value."""

    name: str
    unit: str
    low: float
    high: float
    reference: float
    label: str


METRICS: tuple[Metric, ...] = (
    Metric("cpu_usage", "%", 0.0, 100.0, 35.0, "CPU"),
    Metric("memory_usage", "%", 0.0, 100.0, 45.0, "memory"),
    Metric("disk_usage", "%", 0.0, 100.0, 40.0, "disk"),
    Metric("network_latency_ms", "ms", 0.0, 600_000.0, 20.0, "network latency"),
    Metric("error_count", "errors/min", 0.0, 10_000_000.0, 1.0, "errors"),
    Metric("response_time_ms", "ms", 0.0, 600_000.0, 150.0, "response time"),
    Metric("active_connections", "connections", 0.0, 10_000_000.0, 200.0, "connections"),
)
BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}
REFERENCE: dict[str, float] = {m.name: m.reference for m in METRICS}

ALIASES: dict[str, str] = {
    "cpu": "cpu_usage", "cpu_usage": "cpu_usage", "mem": "memory_usage", "memory": "memory_usage",
    "memory_usage": "memory_usage", "ram": "memory_usage", "disk": "disk_usage", "disk_usage": "disk_usage",
    "latency": "network_latency_ms", "network_latency": "network_latency_ms",
    "network_latency_ms": "network_latency_ms", "net": "network_latency_ms", "errors": "error_count",
    "error": "error_count", "error_count": "error_count", "err": "error_count", "rt": "response_time_ms",
    "response": "response_time_ms", "response_time": "response_time_ms", "response_time_ms": "response_time_ms",
    "p99": "response_time_ms", "conns": "active_connections", "connections": "active_connections",
    "conn": "active_connections", "active_connections": "active_connections",
}

SNAPSHOT_FEATURES: tuple[str, ...] = (
    "cpu", "mem", "disk", "log_latency", "log_errors", "log_response", "log_conns",
    "max_util", "n_over_80", "n_over_90", "cpu_x_mem", "stress", "log_err_per_conn", "log_resp_over_lat",
    "util_headroom",
)
WINDOW_FEATURES: tuple[str, ...] = (
    "has_window", "max_slope_util", "max_slope_log_other", "max_detector_score", "flagged_share",
    "warning_share", "max_volatility", "max_rate_of_change",
)
FEATURE_NAMES: tuple[str, ...] = SNAPSHOT_FEATURES + WINDOW_FEATURES

# Domain knowledge the model must respect: more pressure never lowers the risk. +1: the risk may
# only rise with the feature; -1: only fall (headroom); features not named are unconstrained
# (ratios whose direction depends on the failure, window shapes). The random forest is fitted under
# these constraints, and every candidate's compliance is audited on the validation rows
# (``models.risk_model``). Without them a model that never saw a memory leak learns "high memory is
# healthy" from big stable heaps and calls a 99 % heap safe.
MONOTONE: dict[str, int] = {
    "cpu": 1, "mem": 1, "disk": 1, "log_latency": 1, "log_errors": 1, "log_response": 1, "log_conns": 1,
    "max_util": 1, "n_over_80": 1, "n_over_90": 1, "cpu_x_mem": 1, "stress": 1, "log_err_per_conn": 1,
    "util_headroom": -1, "max_detector_score": 1, "flagged_share": 1,
}


def monotone_constraints() -> list[int]:
    """``MONOTONE`` as one sign per column of ``FEATURE_NAMES`` (0: unconstrained)."""
    return [MONOTONE.get(name, 0) for name in FEATURE_NAMES]

_UTIL = ("cpu_usage", "memory_usage", "disk_usage")


def canonical_name(key: str) -> str | None:
    """The core metric a user-facing name refers to (``mem`` -> ``memory_usage``), or None."""
    return ALIASES.get(key.strip().lower())


def fill_snapshot(values: Mapping[str, float]) -> tuple[dict[str, float], tuple[str, ...]]:
    """The full snapshot (missing inputs set to their healthy reference) and the names that were missing."""
    full = {m.name: float(values[m.name]) if m.name in values else m.reference for m in METRICS}
    missing = tuple(m.name for m in METRICS if m.name not in values)
    return full, missing


def snapshot_matrix(S: NDArray[np.float64]) -> NDArray[np.float64]:
    """Snapshot features (see ``SNAPSHOT_FEATURES``) of full snapshots, one per row, columns in
    ``METRICS`` order."""
    S = np.asarray(S, dtype=float).reshape(-1, len(METRICS))
    cpu, mem, disk, lat, err, resp, conns = S.T
    U = S[:, :3]
    max_util = U.max(axis=1)
    l_err, l_resp, l_lat = np.log1p(err), np.log1p(resp), np.log1p(lat)
    stress = (np.maximum(U - 70.0, 0.0) / 30.0).sum(axis=1) + np.maximum(l_resp - math.log1p(500.0), 0.0) \
        + np.maximum(l_err - math.log1p(10.0), 0.0)
    return np.column_stack([
        cpu, mem, disk, l_lat, l_err, l_resp, np.log1p(conns), max_util, (U > 80).sum(axis=1).astype(float),
        (U > 90).sum(axis=1).astype(float), cpu * mem / 100.0, stress, np.log1p(err / (conns + 1.0) * 1000.0),
        np.log1p(resp / (lat + 1.0)), 100.0 - max_util,
    ])


def snapshot_vector(s: Mapping[str, float]) -> list[float]:
    """Snapshot features of one full snapshot."""
    return [float(v) for v in snapshot_matrix(np.array([[s[m.name] for m in METRICS]]))[0]]


def window_vector(series: Mapping[str, Sequence[float]], minutes: Sequence[float] | None = None) -> list[float]:
    """Window features (see ``WINDOW_FEATURES``) of per-metric samples (oldest first, >= 3 points,
    all metrics the same length; metrics not given are ignored).

    Args:
        series: core metric name -> samples.
        minutes: sample times in minutes (default: one sample every 5 minutes).
    """
    names = [k for k in series if k in BY_NAME]
    if not names:
        return [1.0] + [0.0] * (len(WINDOW_FEATURES) - 1)
    Y = np.asarray([series[k] for k in names], dtype=float)
    n = Y.shape[1]
    if n < 3:
        raise ValueError("a window needs at least 3 points per metric")
    util = np.asarray([k in _UTIL for k in names])
    # Utilisations in percent; the unbounded metrics on a log scale.
    Y = np.where(util[:, None], Y, np.log1p(np.maximum(Y, 0.0)))
    t = np.asarray(minutes, dtype=float) / 60.0 if minutes is not None else np.arange(n) * (5.0 / 60.0)
    tc = t - t.mean()
    den = float(tc @ tc) or 1.0
    slopes = (Y - Y.mean(axis=1, keepdims=True)) @ tc / den
    # The detector's dynamic band, learned from the older two thirds, scores the recent third.
    h = max(2, (2 * n) // 3)
    old, new = Y[:, :h], Y[:, h:]
    med = np.median(old, axis=1)
    mad = np.median(np.abs(old - med[:, None]), axis=1) * 1.4826
    floor = np.where(util, 0.5, 0.02)
    scale = np.maximum(np.maximum(mad, old.std(axis=1) * 0.25), floor)
    score = np.abs(new - med[:, None]) / (3.5 * scale[:, None])
    sd = old.std(axis=1) + np.where(util, 1.0, 0.05)
    vol = new.std(axis=1) / sd
    roc = np.abs(Y[:, -1] - Y[:, -2]) / sd

    def top(v: NDArray[np.float64], mask: NDArray[np.bool_] | None = None) -> float:
        v = v[mask] if mask is not None else v
        return float(max(v.max(), 0.0)) if v.size else 0.0

    return [1.0, top(slopes, util), top(slopes, ~util), min(top(score.max(axis=1)), 50.0),
            top((score > 1.0).mean(axis=1)), top(((score > 0.75) & (score <= 1.0)).mean(axis=1)),
            min(top(vol), 50.0), min(top(roc), 50.0)]


NO_WINDOW: tuple[float, ...] = (0.0,) * len(WINDOW_FEATURES)


def feature_matrix(snapshots: Sequence[Mapping[str, float]],
                   windows: Sequence[list[float] | None] | None = None) -> NDArray[np.float64]:
    """Rows of ``FEATURE_NAMES`` for full snapshots, with precomputed window vectors where known."""
    S = np.array([[s[m.name] for m in METRICS] for s in snapshots], dtype=float).reshape(-1, len(METRICS))
    W = np.array([(w if w is not None else NO_WINDOW) for w in (windows or [None] * len(S))],
                 dtype=float).reshape(-1, len(WINDOW_FEATURES))
    return np.hstack([snapshot_matrix(S), W])
