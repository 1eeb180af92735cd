"""The failure-risk engine shared by every door (Slack, triage, REST API, CLI).

It validates inputs against the metric ranges (a bad value is refused with a message that names it,
never clipped or defaulted into a confident number), runs the calibrated model, picks the factors
of this prediction and turns them into recommendations, and runs the per-series detector over a
window for the chart and the early warnings.
"""

from __future__ import annotations

import logging
import math
import operator
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
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
    SNAPSHOT_FEATURES,
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


def _once(name: str, key: str, seen: dict[str, str]) -> None:
    """Refuse a metric given twice under two names (``cpu=85 cpu_usage=20``): the last one silently won."""
    if name in seen:
        raise RiskInputError(f"{seen[name]} and {key} are both {name}: give it once")
    seen[name] = key


def validate_snapshot(values: Mapping[str, object], *, min_metrics: int = MIN_METRICS) -> dict[str, float]:
    """Core metrics from user input (aliases accepted); unknown names and bad values are refused."""
    out: dict[str, float] = {}
    seen: dict[str, str] = {}
    for key, raw in values.items():
        name = canonical_name(key)
        if name is None:
            raise RiskInputError(
                f"unknown metric {key!r}; known: {', '.join(m.name for m in METRICS)} "
                f"(short names: {', '.join(sorted(set(ALIASES) - set(BY_NAME)))})"
            )
        if raw is None:
            continue
        _once(name, key, seen)
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
    seen: dict[str, str] = {}
    for key, values in series.items():
        name = canonical_name(key)
        if name is None:
            raise RiskInputError(f"unknown metric {key!r} in the window; known: {', '.join(BY_NAME)}")
        _once(name, key, seen)
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


_N_SNAP = len(SNAPSHOT_FEATURES)
#: Batches of fewer model rows are scored directly: for a few rows the forest's cost is per call, not per row.
_LOOKUP_FROM = 64
#: Batches of fewer inputs get their factors built item by item (``_factors``).
_COLUMNWISE_FROM = 16
_GET_ALL = operator.itemgetter(*_NAMES)
_ALL = frozenset(_NAMES)
_META = tuple(np.array(col, dtype=object) for col in (_NAMES, _LABELS, _UNITS, _RECS))
_new_factor = tuple.__new__


def round3(x: NDArray[np.float64]) -> list[float]:
    """``[round(v, 3) for v in x]``, exactly as Python rounds (half to even on the exact binary value, then
    the double nearest the decimal), without its per-value decimal conversion (0.8 us each).

    ``rint(x * 1000) / 1000`` is that unless the product's rounding error could move it across a half:
    the division of an exact integer by 1000 is correctly rounded, and ``rint`` rounds half to even. Values
    whose product lies within a few ulps of a half, and values too large or not finite, take ``round``."""
    x = np.asarray(x, dtype=float).ravel()
    y = x * 1000.0
    with np.errstate(invalid="ignore"):
        out = (np.rint(y) / 1000.0).tolist()
        unsure = ~(np.abs(x) < 1e12) | (np.abs(y - np.floor(y) - 0.5) <= np.maximum(np.abs(y), 1.0) * 2.0**-45)
    for i in np.flatnonzero(unsure).tolist():
        out[i] = round(float(x[i]), 3)
    return out


def _factors(
    S: NDArray[np.float64], D: NDArray[np.float64], missing: Sequence[tuple[str, ...]]
) -> list[tuple[Factor, ...]]:
    """Per input: a ``Factor`` per given input, largest contribution first (ties in ``METRICS`` order, as a
    stable ``sorted(..., reverse=True)`` leaves them), built column-wise for the whole batch."""
    n, k = D.shape
    if n < _COLUMNWISE_FROM:
        # A few inputs: plain Python costs less than the numpy calls' overhead (the same numbers).
        out = []
        for values, delta, miss in zip(S.tolist(), D.tolist(), missing, strict=True):
            given = [j for j in range(k) if _NAMES[j] not in miss] if miss else range(k)
            out.append(
                tuple(
                    _new_factor(Factor, (_NAMES[j], _LABELS[j], round(values[j], 3), _UNITS[j], delta[j], _RECS[j]))
                    for j in sorted(given, key=delta.__getitem__, reverse=True)
                )
            )
        return out
    order = np.argsort(-D, axis=1, kind="stable")
    if any(missing):
        given = np.array([[name not in miss for name in _NAMES] for miss in missing], dtype=bool).reshape(n, k)
        keep = np.take_along_axis(given, order, axis=1)
    else:
        keep = np.ones((n, k), dtype=bool)
    rows, cols = np.nonzero(keep)
    j = order[rows, cols]
    names, labels, units, recs = (m[j].tolist() for m in _META)
    flat = list(
        map(
            _new_factor,
            repeat(Factor),
            zip(names, labels, round3(S[rows, j]), units, D[rows, j].tolist(), recs, strict=True),
        )
    )
    ends = np.cumsum(keep.sum(axis=1)).tolist()
    return [tuple(flat[a:b]) for a, b in zip([0, *ends][:-1], ends, strict=True)]


def _band(p: float) -> str:
    """``band(p)`` without the generator (a thousand calls per batch)."""
    for edge, name in BANDS:
        if p > edge:
            return name
    return band(p)


def _tree_splits(model: RiskModel) -> list[tuple[NDArray[np.intp], NDArray[np.float64]]] | None:
    """Every member's tree splits (feature, threshold) when every member is a forest of scikit-learn trees
    (a piecewise-constant function of its rows); None otherwise."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    members = getattr(model, "members_", None)
    if not members or any(type(m) not in (RandomForestClassifier, GradientBoostingClassifier) for m in members):
        return None
    out = []
    for m in members:
        for est in np.ravel(m.estimators_):
            t = est.tree_
            inner = t.children_left >= 0
            out.append((t.feature[inner].astype(np.intp), t.threshold[inner].astype(float)))
    return out


def _line_rows(j: int, x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Snapshot rows: the healthy reference with input ``j`` set to each ``x``."""
    rows = np.repeat(_REF[None, :], x.size, axis=0)
    rows[:, j] = x
    return rows


def _goes_right(j: int, x: NDArray[np.float64], f: NDArray[np.intp], t: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Per split i: whether the reference with input ``j`` at ``x[i]`` goes right at (``f[i]``, ``t[i]``),
    comparing the feature as float32 with the threshold as a tree does."""
    feats = snapshot_matrix(_line_rows(j, x)).astype(np.float32).astype(float)
    return ~(feats[np.arange(x.size), f] <= t)


class _Lines:
    """The model's probability for the healthy reference with ONE input changed (and no window), looked up.

    Along such a line a tree model is a step function of that input: its trees compare each feature
    (as float32, as scikit-learn does) with a threshold, and every snapshot feature rises or falls
    monotonically with one input while the others stay at the reference (``models.risk_features``). So
    each split flips at most once along the line; the flip point is found by bisection over the doubles
    of the input's valid range, using the features' own computation. Between consecutive flip points
    every tree takes the same path, so the model's answer there is one number, computed once here (by
    ``predict`` itself) and found later by ``searchsorted``. An input whose table disagrees with
    ``predict`` just below any flip point or halfway between two gets no table; values outside the
    valid range are never looked up.
    """

    def __init__(self, predict: Predict, splits: Sequence[tuple[NDArray[np.intp], NDArray[np.float64]]]) -> None:
        f = np.concatenate([fs for fs, _ in splits]) if splits else np.zeros(0, dtype=np.intp)
        t = np.concatenate([ts for _, ts in splits]) if splits else np.zeros(0)
        snap = f < len(SNAPSHOT_FEATURES)  # window features are constant (no window) along every line
        f, t = f[snap], t[snap]
        no_window = np.repeat(_NO_WINDOW[None, :], 1, axis=0)
        self.p_ref = float(predict(np.hstack([snapshot_matrix(_REF[None, :]), no_window]))[0])
        self.edges: dict[int, NDArray[np.float64]] = {}
        self.values: dict[int, NDArray[np.float64]] = {}
        self.low = np.array([m.low for m in METRICS])
        self.high = np.array([m.high for m in METRICS])
        for j, m in enumerate(METRICS):
            if m.low < 0 or not f.size:
                continue

            lo = np.full(f.size, np.float64(m.low)).view(np.int64)
            hi = np.full(f.size, np.float64(m.high)).view(np.int64)
            at_low = _goes_right(j, lo.view(np.float64), f, t)
            flips = at_low != _goes_right(j, hi.view(np.float64), f, t)
            lo, hi, at_low = lo[flips], hi[flips], at_low[flips]
            ff, tt = f[flips], t[flips]
            # Non-negative doubles order as their bit patterns: bisect the patterns down to adjacent doubles.
            while lo.size and (hi - lo > 1).any():
                mid = lo + (hi - lo) // 2
                same = _goes_right(j, mid.view(np.float64), ff, tt) == at_low
                lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
            edges = np.unique(hi.view(np.float64))
            xs = np.concatenate([[m.low], edges])
            values = self._direct(predict, j, xs)
            below = np.maximum(np.nextafter(edges, -np.inf), m.low)
            between = np.concatenate([(xs[:-1] + xs[1:]) / 2, [(xs[-1] + m.high) / 2]])
            if np.array_equal(self._direct(predict, j, below), values[:-1]) and np.array_equal(
                self._direct(predict, j, between), values
            ):
                self.edges[j], self.values[j] = edges, values
            else:
                log.warning("risk: no lookup table for %s (the step function did not check out)", m.name)

    @staticmethod
    def _direct(predict: Predict, j: int, x: NDArray[np.float64]) -> NDArray[np.float64]:
        rows = snapshot_matrix(_line_rows(j, x))
        return predict(np.hstack([rows, np.repeat(_NO_WINDOW[None, :], x.size, axis=0)]))

    def lookup(self, rows: NDArray[np.float64]) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
        """For snapshot rows: which are on a tabled line (at most one input off the reference, in range),
        and their probabilities (valid where the mask is true)."""
        off = rows != _REF
        n_off = off.sum(axis=1)
        j = off.argmax(axis=1)
        idx = np.arange(len(rows))
        x = rows[idx, j]
        ok = (n_off == 0) | ((n_off == 1) & (x >= self.low[j]) & (x <= self.high[j]))
        p = np.full(len(rows), self.p_ref)
        for jj in range(len(METRICS)):
            sel = ok & (n_off == 1) & (j == jj)
            if not sel.any():
                continue
            if jj not in self.edges:
                ok &= ~sel
                continue
            p[sel] = self.values[jj][np.searchsorted(self.edges[jj], x[sel], side="right")]
        return ok, p


def _vectorised(
    predict: Predict,
    S: NDArray[np.float64],
    W: NDArray[np.float64],
    windowed: NDArray[np.bool_],
    lines: _Lines | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Probabilities (n,) and contributions (n, k) by the formula of ``RiskModel.assess_many``, evaluating
    each distinct model row once.

    The model scores, per input x, x itself; x with input j set back to its healthy reference; the
    reference with only input j taken from x; and the reference itself, and averages the two orderings.
    Where x_j already is the reference (an input not given) the first two rows are x and the reference
    themselves, and every input without a window shares one reference row; the model is row-wise, so
    leaving the repeats out changes no number, only the work (16 rows per input become 1 + 2 per given
    input, plus one shared row). With ``lines``, rows without a window that differ from the reference
    in one input at most (every "reference with only input j" row, and the "x with j set back" rows of
    an input with two inputs given) are looked up instead of scored.
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
    if lines is None or len(snap_rows) < _LOOKUP_FROM:
        win_rows = np.vstack([W, W[ii], W[ii], _NO_WINDOW[None, :], W[win_items]])
        p = predict(np.hstack([snapshot_matrix(snap_rows), win_rows]))
    else:
        # Which item each row belongs to (-1: the shared reference row without a window).
        item = np.concatenate([np.arange(n), ii, ii, [-1], win_items])
        found, p = lines.lookup(snap_rows)
        found &= ~np.append(windowed, False)[item]
        rest = np.flatnonzero(~found)
        if rest.size:
            X = np.empty((rest.size, _N_SNAP + W.shape[1]))
            X[:, :_N_SNAP] = snapshot_matrix(snap_rows[rest])
            X[:, _N_SNAP:] = np.vstack([W, _NO_WINDOW[None, :]])[item[rest]]
            p[rest] = predict(X)
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
    for i in range(0, n, 5):  # one or two inputs off the reference: rows the lookup tables answer
        keep = set(rng.choice(len(METRICS), size=1 + i % 2, replace=False).tolist())
        snaps[i] = {
            m.name: (v if j in keep else m.reference)
            for j, (m, v) in enumerate(zip(METRICS, snaps[i].values(), strict=True))
        }
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

    Predictions go through a vectorised path (``_fast_predict`` and ``_vectorised``, with the lookup
    tables of ``_Lines`` for a tree model) when it gives the model's own answers (within 1e-9) on a few
    hundred random inputs, checked once at load; otherwise, or with ``fast=False``, through
    ``RiskModel.assess_many`` itself.
    """

    def __init__(self, loaded: LoadedRiskModel, fast: bool = True) -> None:
        self.loaded = loaded
        self._predict = _fast_predict(loaded.model) if fast else None
        self._lines: _Lines | None = None
        splits = _tree_splits(loaded.model) if self._predict is not None else None
        if self._predict is not None and splits is not None:
            try:
                self._lines = _Lines(self._predict, splits)
            except Exception:  # noqa: BLE001 - no tables: every row is scored
                log.exception("risk: the lookup tables could not be built")
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
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Probability (n,) and per-input contributions (n, k; ``METRICS`` order) of full snapshots."""
        if self._predict is None:
            found = self.loaded.model.assess_many(list(fulls), list(wins))
            p = np.array([p for p, _ in found], dtype=float)
            return p, np.array([[c.delta for c in cs] for _, cs in found], dtype=float).reshape(len(p), len(_NAMES))
        S = np.array(list(map(_GET_ALL, fulls)), dtype=float).reshape(-1, len(_NAMES))
        windowed = np.array([w is not None for w in wins], dtype=bool)
        W = np.array([w if w is not None else NO_WINDOW for w in wins], dtype=float).reshape(len(S), -1)
        return _vectorised(self._predict, S, W, windowed, self._lines)

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
        fulls: list[dict[str, float]] = []
        wins: list[list[float] | None] = []
        missing: list[tuple[str, ...]] = []
        for snap, win in zip(snapshots, windows, strict=True):
            given = {**snap, **win.last()} if win else snap
            if given.keys() >= _ALL:
                fulls.append(dict(zip(_NAMES, map(float, _GET_ALL(given)), strict=True)))
                missing.append(())
            else:
                # The full snapshot: inputs not given at their healthy reference (``fill_snapshot``).
                fulls.append({n: float(given[n]) if n in given else r for n, r in zip(_NAMES, _REFS, strict=True)})
                missing.append(tuple(n for n in _NAMES if n not in given))
            wins.append(window_vector(win.series, win.minutes) if win else None)
        P, D = self._scores(fulls, wins)
        factors = _factors(np.array(list(map(_GET_ALL, fulls)), dtype=float).reshape(len(fulls), -1), D, missing)
        out = []
        version = self.version
        for p, fs, full, miss, win in zip(P.tolist(), factors, fulls, missing, windows, strict=True):
            panels, warns, anoms = _panels(win) if (win is not None and detail) else ({}, [], [])
            out.append(
                Assessment(
                    probability=p,
                    band=_band(p),
                    factors=fs,
                    model_version=version,
                    inputs={n: v for n, v in full.items() if n not in miss} if miss else full,
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
