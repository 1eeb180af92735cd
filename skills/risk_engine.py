"""The failure-risk engine shared by every door (Slack, triage, REST API, CLI).

It validates inputs against the metric ranges (a bad value is refused with a message that names it,
never clipped or defaulted into a confident number), runs the calibrated model, picks the factors
of this prediction and turns them into recommendations, and runs the per-series detector over a
window for the chart and the early warnings.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.risk_artifact import LoadedRiskModel, load_or_train
from models.risk_detector import SeriesDetector
from models.risk_features import ALIASES, BY_NAME, METRICS, canonical_name, fill_snapshot, window_vector
from models.risk_model import band
from skills.base import SkillError

__all__ = ["RiskInputError", "MetricWindow", "Factor", "Assessment", "RiskEngine", "validate_snapshot",
           "validate_window", "RECOMMENDATIONS", "WARN_LEVELS", "MIN_METRICS", "get_engine"]

MIN_METRICS = 2
MAX_WINDOW_POINTS = 10_000

#: Levels at which an input alone deserves attention (used by the chart and the factor wording).
WARN_LEVELS: dict[str, float] = {"cpu_usage": 85.0, "memory_usage": 85.0, "disk_usage": 85.0,
                                 "network_latency_ms": 200.0, "error_count": 20.0, "response_time_ms": 1000.0,
                                 "active_connections": 1000.0}

RECOMMENDATIONS: dict[str, str] = {
    "cpu_usage": "CPU: scale out or shed load; look for a runaway job or hot loop (profile the top process).",
    "memory_usage": "Memory: check heap growth since the last deploy (leak); restart the worst instance as a "
                    "stopgap and raise limits only after finding the cause.",
    "disk_usage": "Disk: free space now (old logs, temp files, core dumps), check log rotation, extend the "
                  "volume before it fills.",
    "network_latency_ms": "Network latency: check the slow dependency and the network path; make sure "
                          "timeouts and circuit breakers stop the slowness from cascading.",
    "error_count": "Errors: read the newest error logs; if they started with a deploy, roll it back.",
    "response_time_ms": "Response time: find the saturated resource or slow query; add capacity or "
                        "shed non-critical traffic.",
    "active_connections": "Connections: the pool is near its limit; look for leaked or stuck connections, "
                          "then raise the pool size or add replicas.",
}


class RiskInputError(SkillError):
    """An input a person can fix; the message names the field and says what is allowed."""


@dataclass(frozen=True)
class MetricWindow:
    """Samples of one or more core metrics over the same times (oldest first)."""

    minutes: tuple[float, ...]
    series: dict[str, tuple[float, ...]]

    def last(self) -> dict[str, float]:
        return {k: v[-1] for k, v in self.series.items()}


@dataclass(frozen=True)
class Factor:
    """One input's contribution to this prediction."""

    metric: str
    label: str
    value: float
    unit: str
    contribution: float
    recommendation: str


@dataclass(frozen=True)
class Assessment:
    """The engine's answer for one input."""

    probability: float
    band: str
    factors: tuple[Factor, ...]
    model_version: str
    inputs: dict[str, float]
    missing: tuple[str, ...] = ()
    early_warnings: tuple[str, ...] = ()
    anomalies: tuple[str, ...] = ()
    panels: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def top_factors(self) -> tuple[Factor, ...]:
        """Factors that raise the risk, largest first (at most three)."""
        return tuple(f for f in self.factors if f.contribution > 0.005)[:3]

    def as_dict(self) -> dict[str, object]:
        return {"probability": round(self.probability, 4), "band": self.band, "model_version": self.model_version,
                "factors": [{"metric": f.metric, "value": f.value, "unit": f.unit,
                             "contribution": round(f.contribution, 4)} for f in self.factors],
                "recommendations": [f.recommendation for f in self.top_factors],
                "missing_inputs": list(self.missing), "early_warnings": list(self.early_warnings),
                "anomalies": list(self.anomalies)}


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RiskInputError(f"{name}: expected a number, got {type(value).__name__}")
    try:
        x = float(value)
    except ValueError:
        raise RiskInputError(f"{name}={str(value)[:40]!r} is not a number") from None
    if not math.isfinite(x):
        raise RiskInputError(f"{name}={value} is not a finite number")
    return x


def _check_range(name: str, x: float) -> float:
    m = BY_NAME[name]
    if not m.low <= x <= m.high:
        raise RiskInputError(f"{name}={x:g} is out of range: {m.label} must be between {m.low:g} and "
                             f"{m.high:g} {m.unit}")
    return x


def validate_snapshot(values: Mapping[str, object], *, min_metrics: int = MIN_METRICS) -> dict[str, float]:
    """Core metrics from user input (aliases accepted); unknown names and bad values are refused."""
    out: dict[str, float] = {}
    for key, raw in values.items():
        name = canonical_name(key)
        if name is None:
            raise RiskInputError(f"unknown metric {key!r}; known: {', '.join(m.name for m in METRICS)} "
                                 f"(short names: {', '.join(sorted(set(ALIASES) - set(BY_NAME)))})")
        if raw is None:
            continue
        out[name] = _check_range(name, _number(key, raw))
    if len(out) < min_metrics:
        raise RiskInputError(f"give at least {min_metrics} metrics (got {len(out)}), e.g. cpu=85 mem=90; "
                             f"known: {', '.join(m.name for m in METRICS)}")
    return out


def validate_window(series: Mapping[str, Sequence[object]], minutes: Sequence[float] | None = None
                    ) -> MetricWindow:
    """A window from user input: at least 3 finite, in-range samples per metric, all the same length."""
    if not series:
        raise RiskInputError("the window is empty: give at least one metric with 3 or more samples")
    clean: dict[str, tuple[float, ...]] = {}
    for key, values in series.items():
        name = canonical_name(key)
        if name is None:
            raise RiskInputError(f"unknown metric {key!r} in the window; known: {', '.join(BY_NAME)}")
        if len(values) < 3:
            raise RiskInputError(f"window.{key} has {len(values)} point(s); a window needs at least 3")
        if len(values) > MAX_WINDOW_POINTS:
            raise RiskInputError(f"window.{key} has {len(values)} points; at most {MAX_WINDOW_POINTS}")
        clean[name] = tuple(_check_range(name, _number(f"window.{key}[{i}]", v)) for i, v in enumerate(values))
    lengths = {len(v) for v in clean.values()}
    if len(lengths) != 1:
        raise RiskInputError("all metrics of a window need the same number of samples")
    n = lengths.pop()
    if minutes is None:
        mins = tuple(float(i) * 5.0 for i in range(n))
    else:
        mins = tuple(_number("window.minutes", m) for m in minutes)
        if len(mins) != n:
            raise RiskInputError(f"window has {len(mins)} times but {n} samples per metric")
        if any(b <= a for a, b in zip(mins, mins[1:], strict=False)):
            raise RiskInputError("window times must be strictly increasing")
    return MetricWindow(minutes=mins, series=clean)


def _panels(window: MetricWindow) -> tuple[dict[str, dict[str, list[float]]], list[str], list[str]]:
    """Per metric: the detector's band over the recent third, its anomalies and early warnings."""
    panels: dict[str, dict[str, list[float]]] = {}
    warnings, anomalies = [], []
    t = np.asarray(window.minutes)
    x = list(t - t[-1])
    step = float(np.median(np.diff(t))) if t.size > 1 else 5.0
    for name, values in window.series.items():
        y = np.asarray(values, dtype=float)
        h = max(2, (2 * y.size) // 3)
        det = SeriesDetector(step_minutes=step).fit(y[:h])
        out = det.score(y[h:])
        panels[name] = {"x": x, "value": list(y), "lower": list(out.lower), "upper": list(out.upper),
                        "flagged": [float(a) for a in out.anomaly], "warning": [float(w) for w in out.warning]}
        if out.anomaly[-max(1, y.size // 10):].any():
            anomalies.append(name)
        elif out.warning[-max(1, y.size // 10):].any():
            warnings.append(name)
    return panels, warnings, anomalies


class RiskEngine:
    """A loaded model plus the logic around it. Thread-safe for predictions."""

    def __init__(self, loaded: LoadedRiskModel) -> None:
        self.loaded = loaded

    @property
    def version(self) -> str:
        return self.loaded.version

    def assess(self, snapshot: Mapping[str, float], window: MetricWindow | None = None,
               detail: bool = True) -> Assessment:
        """Assess one validated snapshot (and window: its last samples override the snapshot)."""
        return self.assess_many([snapshot], [window], detail=detail)[0]

    def assess_many(self, snapshots: Sequence[Mapping[str, float]], windows: Sequence[MetricWindow | None],
                    detail: bool = False) -> list[Assessment]:
        """Assess many inputs in one model call; ``detail`` adds the detector panels for charts."""
        fulls, wins, missing = [], [], []
        for snap, win in zip(snapshots, windows, strict=True):
            given = {**snap, **(win.last() if win else {})}
            full, miss = fill_snapshot(given)
            fulls.append(full)
            missing.append(miss)
            wins.append(window_vector(win.series, win.minutes) if win else None)
        results = self.loaded.model.assess_many(fulls, wins)
        out = []
        for (p, contribs), full, miss, win in zip(results, fulls, missing, windows, strict=True):
            factors = tuple(Factor(c.metric, BY_NAME[c.metric].label, round(c.value, 3), BY_NAME[c.metric].unit,
                                   c.delta, RECOMMENDATIONS[c.metric])
                            for c in sorted(contribs, key=lambda c: -c.delta) if c.metric not in miss)
            panels, warns, anoms = _panels(win) if (win is not None and detail) else ({}, [], [])
            out.append(Assessment(probability=p, band=band(p), factors=factors, model_version=self.version,
                                  inputs={k: v for k, v in full.items() if k not in miss}, missing=miss,
                                  early_warnings=tuple(warns), anomalies=tuple(anoms), panels=panels))
        return out


_LOCK = threading.Lock()
_ENGINES: dict[Path, RiskEngine] = {}


def get_engine(model_dir: Path) -> RiskEngine:
    """The engine for ``model_dir``, loading (or, the first time, training) the model once."""
    key = Path(model_dir).resolve()
    with _LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = RiskEngine(load_or_train(key))
        return _ENGINES[key]
