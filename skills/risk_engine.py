"""The failure-risk engine shared by every door (Slack, triage, REST API, CLI).

It validates inputs against the metric ranges (a bad value is refused with a message that names it,
never clipped or defaulted into a confident number), runs the calibrated model, picks the factors
of this prediction and turns them into recommendations, and runs the per-series detector over a
window for the chart and the early warnings.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from models.risk_artifact import LoadedRiskModel, load_or_train
from models.risk_detector import SeriesDetector
from models.risk_features import (
    ALIASES,
    BY_NAME,
    METRICS,
    NO_WINDOW,
    canonical_name,
    snapshot_matrix,
    window_vector,
)
from models.risk_model import BANDS, RiskModel, band
from skills.base import SkillError

log = logging.getLogger(__name__)

__all__ = [
    "RiskInputError",
    "MetricWindow",
    "Factor",
    "Assessment",
    "RiskEngine",
    "validate_snapshot",
    "validate_window",
    "RECOMMENDATIONS",
    "WARN_LEVELS",
    "MIN_METRICS",
    "get_engine",
]

MIN_METRICS = 2
MAX_WINDOW_POINTS = 10_000

#: Levels at which an input alone deserves attention (used by the chart and the factor wording).
WARN_LEVELS: dict[str, float] = {
    "cpu_usage": 85.0,
    "memory_usage": 85.0,
    "disk_usage": 85.0,
    "network_latency_ms": 200.0,
    "error_count": 20.0,
    "response_time_ms": 1000.0,
    "active_connections": 1000.0,
}

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


class Factor(NamedTuple):
    """One input's contribution to this prediction (a named tuple: a batch builds thousands)."""

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
        return {
            "probability": round(self.probability, 4),
            "band": self.band,
            "model_version": self.model_version,
            "factors": [
                {"metric": f.metric, "value": f.value, "unit": f.unit, "contribution": round(f.contribution, 4)}
                for f in self.factors
            ],
            "recommendations": [f.recommendation for f in self.top_factors],
            "missing_inputs": list(self.missing),
            "early_warnings": list(self.early_warnings),
            "anomalies": list(self.anomalies),
        }


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
        raise RiskInputError(
            f"{name}={x:g} is out of range: {m.label} must be between {m.low:g} and {m.high:g} {m.unit}"
        )
    return x


def validate_snapshot(values: Mapping[str, object], *, min_metrics: int = MIN_METRICS) -> dict[str, float]:
    """Core metrics from user input (aliases accepted); unknown names and bad values are refused."""
    out: dict[str, float] = {}
    for key, raw in values.items():
        name = canonical_name(key)
        if name is None:
            raise RiskInputError(
                f"unknown metric {key!r}; known: {', '.join(m.name for m in METRICS)} "
                f"(short names: {', '.join(sorted(set(ALIASES) - set(BY_NAME)))})"
            )
        if raw is None:
            continue
        out[name] = _check_range(name, _number(key, raw))
    if len(out) < min_metrics:
        raise RiskInputError(
            f"give at least {min_metrics} metrics (got {len(out)}), e.g. cpu=85 mem=90; "
            f"known: {', '.join(m.name for m in METRICS)}"
        )
    return out


def validate_window(series: Mapping[str, Sequence[object]], minutes: Sequence[float] | None = None) -> MetricWindow:
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
        panels[name] = {
            "x": x,
            "value": list(y),
            "lower": list(out.lower),
            "upper": list(out.upper),
            "flagged": [float(a) for a in out.anomaly],
            "warning": [float(w) for w in out.warning],
        }
        if out.anomaly[-max(1, y.size // 10) :].any():
            anomalies.append(name)
        elif out.warning[-max(1, y.size // 10) :].any():
            warnings.append(name)
    return panels, warnings, anomalies


def _forest_p1(forest: Any) -> Callable[[NDArray[np.float32]], NDArray[np.float64]]:
    """A random forest's P(class 1): scikit-learn's own sum over the trees, in its order, without its
    per-call overhead (input checks and a joblib dispatch, milliseconds on a busy machine).

    A tree's ``predict_proba`` is the class column of ``tree_.value`` at the leaf ``tree_.apply`` finds;
    the column is taken once here, so a call is one compiled ``apply`` and one lookup per tree."""
    trees = [(est.tree_, np.ascontiguousarray(est.tree_.value[:, 0, 1])) for est in forest.estimators_]

    def p1(X32: NDArray[np.float32]) -> NDArray[np.float64]:
        acc = np.zeros(X32.shape[0])
        for tree, leaf_p1 in trees:
            acc += leaf_p1[tree.apply(X32)]
        acc /= len(trees)
        return acc

    return p1


Predict = Callable[[NDArray[np.float64]], NDArray[np.float64]]


def _fast_predict(model: RiskModel) -> Predict | None:
    """``P(failure)`` per feature row, as ``model.predict_proba(X)[:, 1]`` computes it, minus its overhead.

    Random-forest members are walked tree by tree through scikit-learn's compiled ``tree_.apply``
    (summed in the forest's own order, for any number of rows), and an isotonic calibration is applied
    as the piecewise-linear interpolation it is (``np.interp`` between its thresholds, clipped at the
    ends: ``out_of_bounds="clip"``). Other members and calibrators are called as they are. None for a
    model of another shape; ``RiskEngine`` also checks the answers against the model's own before
    using it.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.isotonic import IsotonicRegression

    members = getattr(model, "members_", None)
    cal = getattr(model, "calibrator_", None)
    if not members or not callable(getattr(cal, "predict", None)):
        return None
    calibrate: Predict = cal.predict  # type: ignore[union-attr]
    if type(cal) is IsotonicRegression and cal.out_of_bounds == "clip":
        xs, ys = np.asarray(cal.X_thresholds_, dtype=float), np.asarray(cal.y_thresholds_, dtype=float)
        lo, hi = float(cal.X_min_), float(cal.X_max_)

        def interp(raw: NDArray[np.float64]) -> NDArray[np.float64]:
            return np.interp(np.clip(raw, lo, hi), xs, ys) if xs.size > 1 else np.full(raw.shape, ys[0])

        calibrate = interp

    forests = {
        id(m): _forest_p1(m)
        for m in members
        if type(m) is RandomForestClassifier and list(m.classes_) == [0, 1] and m.n_outputs_ == 1
    }

    def member_p1(m: Any, X: NDArray[np.float64], X32: NDArray[np.float32]) -> NDArray[np.float64]:
        walk = forests.get(id(m))
        return walk(X32) if walk is not None else np.asarray(m.predict_proba(X)[:, 1], dtype=float)

    def predict(X: NDArray[np.float64]) -> NDArray[np.float64]:
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        return np.asarray(calibrate(np.mean([member_p1(m, X, X32) for m in members], axis=0)), dtype=float)

    return predict


_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)
_REF = np.array([m.reference for m in METRICS])
_NO_WINDOW = np.asarray(NO_WINDOW, dtype=float)
_REFS: tuple[float, ...] = tuple(m.reference for m in METRICS)
_LABELS = tuple(m.label for m in METRICS)
_UNITS = tuple(m.unit for m in METRICS)
_RECS = tuple(RECOMMENDATIONS[m.name] for m in METRICS)


def _band(p: float) -> str:
    """``band(p)`` without the generator (a thousand calls per batch)."""
    for edge, name in BANDS:
        if p > edge:
            return name
    return band(p)


def _vectorised(
    predict: Predict, S: NDArray[np.float64], W: NDArray[np.float64], windowed: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Probabilities (n,) and contributions (n, k) by the formula of ``RiskModel.assess_many``, evaluating
    each distinct model row once.

    The model scores, per input x, x itself; x with input j set back to its healthy reference; the
    reference with only input j taken from x; and the reference itself, and averages the two orderings.
    Where x_j already is the reference (an input not given) the first two rows are x and the reference
    themselves, and every input without a window shares one reference row; the model is row-wise, so
    leaving the repeats out changes no number, only the work (16 rows per input become 1 + 2 per given
    input, plus one shared row).
    """
    n, k = S.shape
    ii, jj = np.nonzero(S != _REF)
    drop = S[ii]
    drop[np.arange(ii.size), jj] = _REF[jj]
    add = np.repeat(_REF[None, :], ii.size, axis=0)
    add[np.arange(ii.size), jj] = S[ii, jj]
    win_items = np.flatnonzero(windowed)
    ref_rows = np.repeat(_REF[None, :], 1 + win_items.size, axis=0)
    snap_rows = np.vstack([S, drop, add, ref_rows])
    win_rows = np.vstack([W, W[ii], W[ii], _NO_WINDOW[None, :], W[win_items]])
    p = predict(np.hstack([snapshot_matrix(snap_rows), win_rows]))
    base = p[:n]
    p_ref = np.full(n, p[n + 2 * ii.size])
    p_ref[win_items] = p[n + 2 * ii.size + 1 :]
    p_drop = np.repeat(base[:, None], k, axis=1)
    p_drop[ii, jj] = p[n : n + ii.size]
    p_add = np.repeat(p_ref[:, None], k, axis=1)
    p_add[ii, jj] = p[n + ii.size : n + 2 * ii.size]
    return base, 0.5 * ((base[:, None] - p_drop) + (p_add - p_ref[:, None]))


def _check_inputs(n: int = 300) -> tuple[list[dict[str, float]], list[list[float] | None]]:
    """Random full snapshots (some inputs at their reference, as when not given) and windows."""
    rng = np.random.default_rng(0)
    snaps = [
        {
            m.name: (
                m.reference if rng.random() < 0.3 else float(rng.uniform(m.low, min(m.high, 5 * m.reference + 100)))
            )
            for m in METRICS
        }
        for _ in range(n)
    ]
    t = np.arange(24) * 5.0
    wins: list[list[float] | None] = [
        window_vector({"cpu_usage": list(rng.uniform(0, 100, 24)), "memory_usage": list(40 + 0.5 * t)}, list(t))
        if i % 3 == 0
        else None
        for i in range(n)
    ]
    return snaps, wins


class RiskEngine:
    """A loaded model plus the logic around it. Thread-safe for predictions.

    Predictions go through a vectorised path (``_fast_predict`` and ``_vectorised``) when it gives the
    model's own answers (within 1e-9) on a few hundred random inputs, checked once at load; otherwise,
    or with ``fast=False``, through ``RiskModel.assess_many`` itself.
    """

    def __init__(self, loaded: LoadedRiskModel, fast: bool = True) -> None:
        self.loaded = loaded
        self._predict = _fast_predict(loaded.model) if fast else None
        if self._predict is not None and not self._agrees_with_model():
            log.warning("risk: the vectorised path differs from the model's own answers; using the model")
            self._predict = None

    @property
    def version(self) -> str:
        return self.loaded.version

    @property
    def fast(self) -> bool:
        """Whether predictions take the vectorised path."""
        return self._predict is not None

    def _scores(
        self, fulls: Sequence[Mapping[str, float]], wins: Sequence[list[float] | None]
    ) -> tuple[list[float], list[list[float]]]:
        """Probability and per-input contributions (in ``METRICS`` order) of full snapshots."""
        if self._predict is None:
            found = self.loaded.model.assess_many(list(fulls), list(wins))
            return [p for p, _ in found], [[c.delta for c in cs] for _, cs in found]
        S = np.array([[f[name] for name in _NAMES] for f in fulls], dtype=float).reshape(-1, len(_NAMES))
        windowed = np.array([w is not None for w in wins], dtype=bool)
        W = np.array([w if w is not None else NO_WINDOW for w in wins], dtype=float).reshape(len(S), -1)
        p, delta = _vectorised(self._predict, S, W, windowed)
        return p.tolist(), delta.tolist()

    def _agrees_with_model(self) -> bool:
        snaps, wins = _check_inputs()
        try:
            cases = [(snaps, wins)] + [([s], [w]) for s, w in zip(snaps[:6], wins[:6], strict=True)]
            for ss, ws in cases:
                want = self.loaded.model.assess_many(ss, ws)
                got_p, got_d = self._scores(ss, ws)
                for (p0, cs), p1, d1 in zip(want, got_p, got_d, strict=True):
                    if (
                        abs(p0 - p1) > 1e-9
                        or [c.metric for c in cs] != list(_NAMES)
                        or max(abs(c.delta - d) for c, d in zip(cs, d1, strict=True)) > 1e-9
                    ):
                        return False
        except Exception:  # noqa: BLE001 - a model shape the vectorised path does not know: use the model
            log.exception("risk: the vectorised path failed its check")
            return False
        return True

    def assess(
        self, snapshot: Mapping[str, float], window: MetricWindow | None = None, detail: bool = True
    ) -> Assessment:
        """Assess one validated snapshot (and window: its last samples override the snapshot)."""
        return self.assess_many([snapshot], [window], detail=detail)[0]

    def assess_many(
        self, snapshots: Sequence[Mapping[str, float]], windows: Sequence[MetricWindow | None], detail: bool = False
    ) -> list[Assessment]:
        """Assess many inputs in one model call; ``detail`` adds the detector panels for charts."""
        fulls, wins, missing = [], [], []
        for snap, win in zip(snapshots, windows, strict=True):
            given = {**snap, **win.last()} if win else snap
            # The full snapshot: inputs not given at their healthy reference (``fill_snapshot``).
            fulls.append({n: float(given[n]) if n in given else r for n, r in zip(_NAMES, _REFS, strict=True)})
            missing.append(tuple(n for n in _NAMES if n not in given))
            wins.append(window_vector(win.series, win.minutes) if win else None)
        probs, deltas = self._scores(fulls, wins)
        out = []
        version, k = self.version, len(_NAMES)
        for p, delta, full, miss, win in zip(probs, deltas, fulls, missing, windows, strict=True):
            given_j = [j for j in range(k) if _NAMES[j] not in miss] if miss else range(k)
            # Largest contribution first; ties keep the METRICS order (a stable sort).
            factors = tuple(
                Factor(_NAMES[j], _LABELS[j], round(full[_NAMES[j]], 3), _UNITS[j], delta[j], _RECS[j])
                for j in sorted(given_j, key=delta.__getitem__, reverse=True)
            )
            panels, warns, anoms = _panels(win) if (win is not None and detail) else ({}, [], [])
            out.append(
                Assessment(
                    probability=p,
                    band=_band(p),
                    factors=factors,
                    model_version=version,
                    inputs={n: full[n] for n in _NAMES if n not in miss} if miss else full,
                    missing=miss,
                    early_warnings=tuple(warns),
                    anomalies=tuple(anoms),
                    panels=panels,
                )
            )
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
