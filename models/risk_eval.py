"""Evaluation of the failure-risk parts (see docs/evaluation.md, "Failure risk").

``eval_series``: NAB-format univariate series. Per series a chronological 50/50 split; everything is
fitted on the first half only. The per-series detector (fitted on the first half) scores the second
half. Each detector feature becomes a percentile against the same feature on the part the detector
learned from (scale-free, so series can be pooled), and the score is the mean percentile of the
features that separate best on the training rows, smoothed over 0, 1 or 3 hours, all chosen on the
first halves only (there the detector learns the first quarter and scores the second: the same
"learn on the past, score what follows" shape). Labels: ``in_anomaly_window`` (detection) and
``0 < minutes_to_next_window_start <= 60`` (one hour ahead). Pooled ROC-AUC and PR-AUC over all
second halves, next to the rolling z-score baseline and the detector's own score.

``eval_snapshot``: the snapshot model on held-out synthetic scenario types (leave one failure type
out): ROC-AUC, precision, recall at 0.5, Brier score and expected calibration error, and for
comparison the same fitted models under each calibration of their validation rows (the model's own
calibration, Platt scaling on out-of-type scores since the training rows' scenarios are passed, is
the headline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.metrics import average_precision_score, brier_score_loss, precision_score, recall_score, roc_auc_score

from models.risk_detector import DETECTOR_FEATURES, SeriesDetector, rolling_zscore

__all__ = ["NabColumns", "eval_series", "eval_snapshot", "expected_calibration_error", "series_features"]

F = NDArray[np.float64]


@dataclass(frozen=True)
class NabColumns:
    series: str = "series"
    timestamp: str = "timestamp"
    value: str = "value"
    window: str = "in_anomaly_window"
    lead: str = "minutes_to_next_window_start"
    point: str = "is_anomaly_point"  # optional: only for the causal ceiling figure


_FEATURE_NAMES: tuple[str, ...] = DETECTOR_FEATURES + tuple(
    f"{c}_{agg}{w}" for c in ("level_extremity", "volatility_ratio", "trend_z", "change_z", "local_z")
    for w in ("6h", "24h") for agg in ("max", "mean"))


def series_features(det: SeriesDetector, x: F, t: pd.DatetimeIndex) -> F:
    """Detector features of the points ``x`` plus their trailing 6 h / 24 h maxima and means."""
    out = det.score(x, t)
    df = pd.DataFrame(np.abs(out.features), columns=DETECTOR_FEATURES)
    for c in ("level_extremity", "volatility_ratio", "trend_z", "change_z", "local_z"):
        for w in ("6h", "24h"):
            roll = df[c].rolling(det.win_[w], min_periods=1)
            df[f"{c}_max{w}"] = roll.max()
            df[f"{c}_mean{w}"] = roll.mean()
    return np.log1p(df.to_numpy())


def _auc(y: NDArray[np.int_], s: F) -> tuple[float, float]:
    if y.min() == y.max():
        return float("nan"), float("nan")
    return float(roc_auc_score(y, s)), float(average_precision_score(y, s))


def _percentiles(ref: F, X: F) -> F:
    """Each column of ``X`` as the share of the same column of ``ref`` at or below it."""
    out = np.empty_like(X)
    for j in range(X.shape[1]):
        r = np.sort(ref[:, j])
        out[:, j] = np.searchsorted(r, X[:, j], side="right") / max(len(r), 1)
    return out


def _combine(parts: list[F], cols: NDArray[np.intp], smooth: list[int]) -> F:
    """Per series: the mean percentile of the chosen features, a trailing mean over ``smooth`` points."""
    return np.concatenate([pd.Series(P[:, cols].mean(axis=1)).rolling(w, min_periods=1).mean().to_numpy()
                           for P, w in zip(parts, smooth, strict=True)])


def _causal_oracle(window: NDArray[np.int_], point: NDArray[np.int_]) -> F:
    """1 from a labelled anomaly point to the end of its window, 0 elsewhere: the best any causal
    detector can do without precursors (the part of a window before its anomaly is unknowable)."""
    out = np.zeros(window.size)
    seen = 0.0
    for i in range(window.size):
        seen = 0.0 if not window[i] else max(seen, float(point[i]))
        out[i] = seen
    return out


def _centred(parts: list[F], hours: float, steps: list[float]) -> list[F]:
    """Retrospective view: each point gets the largest score within +- ``hours`` (needs the future)."""
    out = []
    for P, step in zip(parts, steps, strict=True):
        w = 2 * max(0, int(round(hours / step))) + 1
        out.append(pd.Series(P).rolling(w, center=True, min_periods=1).max().to_numpy())
    return out


def _choose(parts: list[F], y: NDArray[np.int_], hours: list[float]) -> tuple[NDArray[np.intp], float]:
    """On the training rows only: rank features by ROC-AUC, then pick how many to average and how
    long to smooth by the ROC-AUC of the combination."""
    P = np.vstack(parts)
    auc = np.array([roc_auc_score(y, P[:, j]) for j in range(P.shape[1])])
    order = np.argsort(-auc)
    best: tuple[float, NDArray[np.intp], float] = (-1.0, order[:1], 0.0)
    for k in (1, 2, 3, 5, 8, 12, P.shape[1]):
        for h in (0.0, 1.0, 3.0):
            smooth = [max(1, int(round(h / step))) for step in hours]
            score = float(roc_auc_score(y, _combine(parts, order[:k], smooth)))
            if score > best[0]:
                best = (score, order[:k], h)
    return best[1], best[2]


def eval_series(df: pd.DataFrame, cols: NabColumns = NabColumns(), horizon: float = 60.0,
                min_points: int = 50) -> dict[str, object]:
    """Pooled detection and early-warning figures on NAB-format series (see the module docstring)."""
    for c in (cols.series, cols.timestamp, cols.value, cols.window, cols.lead):
        if c not in df.columns:
            raise ValueError(f"column {c!r} is missing; columns are {', '.join(map(str, df.columns))}")
    tr_p, tr_w, tr_h, te_p, te_w, te_h, te_base, te_det, steps = [], [], [], [], [], [], [], [], []
    tr_steps, te_oracle = [], []
    for _, g in df.groupby(cols.series, sort=False):
        g = g.sort_values(cols.timestamp)
        x = g[cols.value].to_numpy(float)
        if x.size < min_points or not np.all(np.isfinite(x)):
            continue
        t = pd.DatetimeIndex(pd.to_datetime(g[cols.timestamp]))
        w = g[cols.window].to_numpy(int)
        lead = g[cols.lead].to_numpy(float)
        h60 = ((lead > 0) & (lead <= horizon)).astype(int)
        n = x.size
        half, quarter = n // 2, n // 4
        # Training rows: the detector learns the first quarter and scores the second; test rows: it
        # learns the whole first half and scores the second half. Percentiles are taken against the
        # detector's features on the part it learned from.
        d_q = SeriesDetector().fit(x[:quarter], t[:quarter])
        tr_p.append(_percentiles(series_features(d_q, x[:quarter], t[:quarter]),
                                 series_features(d_q, x[quarter:half], t[quarter:half])))
        tr_w.append(w[quarter:half])
        tr_h.append(h60[quarter:half])
        tr_steps.append(d_q.step_minutes_ / 60.0)
        d_h = SeriesDetector().fit(x[:half], t[:half])
        te_p.append(_percentiles(series_features(d_h, x[:half], t[:half]), series_features(d_h, x[half:], t[half:])))
        te_det.append(d_h.score(x[half:], t[half:]).score)
        te_w.append(w[half:])
        te_h.append(h60[half:])
        te_base.append(rolling_zscore(x)[half:])
        if cols.point in g.columns:
            te_oracle.append(_causal_oracle(w, g[cols.point].to_numpy(int))[half:])
        steps.append(d_h.step_minutes_ / 60.0)
    if not te_p:
        raise ValueError(f"no series with at least {min_points} finite points")
    yte_w, yte_h = np.concatenate(te_w), np.concatenate(te_h)
    base, det = np.concatenate(te_base), np.concatenate(te_det)
    res: dict[str, object] = {"series": len(te_p), "test_points": int(len(yte_w)),
                              "in_window_share": round(float(yte_w.mean()), 4),
                              "horizon60_positives": int(yte_h.sum())}
    for key, ytr, yte in (("in_window", np.concatenate(tr_w), yte_w), ("horizon60", np.concatenate(tr_h), yte_h)):
        if ytr.min() == ytr.max():
            p, chosen, hrs = det, np.array([], dtype=np.intp), 0.0
        else:
            chosen, hrs = _choose(tr_p, ytr, steps)
            p = _combine(te_p, chosen, [max(1, int(round(hrs / s))) for s in steps])
        res[f"{key}_roc_auc"], res[f"{key}_pr_auc"] = _auc(yte, p)
        res[f"{key}_features"] = [_FEATURE_NAMES[j] for j in chosen]
        res[f"{key}_smoothing_hours"] = hrs
        if key == "in_window" and ytr.min() != ytr.max():
            # Retrospective (not live): the largest score within +- H hours, H chosen on the first
            # halves. A separate figure; the causal one above is what the live detector does.
            sm_tr = [max(1, int(round(hrs / st))) for st in tr_steps]
            tr_parts = np.split(_combine(tr_p, chosen, sm_tr), np.cumsum([len(a) for a in tr_p])[:-1])
            te_parts = np.split(p, np.cumsum([len(a) for a in te_p])[:-1])
            retro_h = max((0.0, 1.0, 3.0, 6.0, 12.0, 24.0),
                          key=lambda hh: roc_auc_score(ytr, np.concatenate(_centred(tr_parts, hh, tr_steps))))
            res["retro_in_window_roc_auc"], res["retro_in_window_pr_auc"] = _auc(
                yte, np.concatenate(_centred(te_parts, retro_h, steps)))
            res["retro_in_window_hours"] = retro_h
        if key == "in_window" and len(te_oracle) == len(te_p):
            res["in_window_causal_ceiling_roc_auc"] = _auc(yte, np.concatenate(te_oracle))[0]
        res[f"detector_{key}_roc_auc"], res[f"detector_{key}_pr_auc"] = _auc(yte, det)
        res[f"baseline_{key}_roc_auc"], res[f"baseline_{key}_pr_auc"] = _auc(yte, base)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}


def expected_calibration_error(y: NDArray[np.int_], p: F, bins: int = 10) -> float:
    """ECE: the share-weighted gap between mean predicted probability and the observed rate, per bin."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(float(p[m].mean()) - float(y[m].mean()))
    return total


def eval_snapshot(n_train: int = 2000, n_test: int = 800, seed: int = 0,
                  failures: Sequence[str] | None = None) -> dict[str, object]:
    """Leave-one-failure-type-out figures of the snapshot model (pooled over the held-out types)."""
    from models.risk_artifact import episodes_dataset
    from models.risk_model import RiskModel
    from models.risk_synth import FAILURES, SCENARIOS, generate

    per_type: dict[str, float] = {}
    chosen: dict[str, str] = {}
    ys, ps = [], []
    alt: dict[str, list[F]] = {"sigmoid": [], "isotonic": []}
    for i, held in enumerate(failures or FAILURES):
        train = generate(n_train, seed=seed + 100 * i, scenarios=tuple(s for s in SCENARIOS if s != held))
        test = generate(n_test, seed=seed + 100 * i + 1, scenarios=("normal", held))
        Xtr, ytr = episodes_dataset(train)
        Xte, yte = episodes_dataset(test)
        Xte, yte = Xte[1::2], yte[1::2]  # snapshot rows only: the last sample, no window
        groups = np.repeat([ep.scenario for ep in train], 2)  # as train_risk_model: calibrated by type
        model = RiskModel(random_state=seed).fit(Xtr, ytr, groups=groups)
        p = model.predict_proba(Xte)[:, 1]
        per_type[held] = round(float(roc_auc_score(yte, p)), 4)
        chosen[held] = f"{model.chosen_}+{model.calibration_} on {model.calibrated_on_.replace('_', '-')} scores"
        ys.append(yte)
        ps.append(p)
        # The same fitted model under the other calibrations (for comparison, not chosen here).
        raw = model._raw(Xte)
        for name in alt:
            alt[name].append(model.calibrators_[name].predict(raw))
    y, p = np.concatenate(ys), np.concatenate(ps)
    res: dict[str, object] = {
        "snapshot_roc_auc": round(float(roc_auc_score(y, p)), 4),
        "snapshot_pr_auc": round(float(average_precision_score(y, p)), 4),
        "snapshot_precision": round(float(precision_score(y, p > 0.5, zero_division=0)), 4),
        "snapshot_recall": round(float(recall_score(y, p > 0.5)), 4),
        "snapshot_brier": round(float(brier_score_loss(y, p)), 4),
        "snapshot_ece": round(expected_calibration_error(y, p), 4),
        "snapshot_roc_auc_by_held_out_type": per_type,
        "snapshot_model_by_held_out_type": chosen}
    for name, parts in alt.items():
        q = np.concatenate(parts)
        res[f"snapshot_{name}_calibration_roc_auc"] = round(float(roc_auc_score(y, q)), 4)
        res[f"snapshot_{name}_calibration_ece"] = round(expected_calibration_error(y, q), 4)
    return res
