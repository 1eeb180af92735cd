"""Development protocol for the log models: choose on inner template-disjoint folds, never on the test splits.

For each outer template-disjoint split of ``models.log_eval`` (the splits the figures are reported on), the
split's TRAINING lines are cut again into ``GroupKFold`` folds grouped on the template id. Every candidate is
fitted on the inner training folds and scored on the inner held-out folds; the candidate with the best inner
score is the one chosen for that split, and only then is it scored on the outer test lines. The output gives,
per candidate, the mean inner (dev) score and the outer test score, and the test score of the per-split
inner choice (the nested figure, the one that says whether choosing helps at all).

Severity candidates are ``LogClassifier`` settings (scored as the product scores: once per masked template,
by its first line, a stated level winning); alert candidates are the alert pipeline's ``C`` and a probability
threshold chosen on the pooled inner out-of-fold probabilities.

``python -m models.log_dev --data ../shared/data/loghub_2k [--splits 10] [--alert-splits 20]`` (slow: every
candidate is fitted ``inner + 1`` times per split).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupKFold, GroupShuffleSplit

from models.log_classifier import LogClassifier, build_alert_pipeline
from models.log_eval import LevelData, _read_csv, load_levels

__all__ = ["SeverityCandidate", "nested_severity", "nested_alerts", "DEFAULT_SEVERITY", "DEFAULT_ALERT_C"]


@dataclass(frozen=True)
class SeverityCandidate:
    """One setting of the severity model."""

    name: str
    make: Callable[[], LogClassifier]


DEFAULT_SEVERITY = (
    SeverityCandidate("C=1 (shipped)", lambda: LogClassifier(C=1.0)),
    SeverityCandidate("C=0.3", lambda: LogClassifier(C=0.3)),
    SeverityCandidate("C=3", lambda: LogClassifier(C=3.0)),
)
DEFAULT_ALERT_C = (0.3, 1.0, 3.0, 10.0)
_THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.1, 0.91, 0.05))


def _outer(x: np.ndarray, groups: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    return next(GroupShuffleSplit(test_size=0.2, random_state=r).split(x, groups=groups))


def _inner(train: np.ndarray, groups: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    k = min(k, len(set(groups[train])))
    return [(train[a], train[b]) for a, b in GroupKFold(n_splits=k).split(train, groups=groups[train])]


def _sev_score(cand: SeverityCandidate, x: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray) -> float:
    pred = cand.make().fit(list(x[tr]), list(y[tr])).predict(list(x[te]))
    return float(f1_score(y[te], pred, average="macro"))


def nested_severity(
    data: LevelData,
    candidates: Sequence[SeverityCandidate] = DEFAULT_SEVERITY,
    *,
    n_splits: int = 10,
    inner_folds: int = 3,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Severity macro-F1 per candidate: inner (dev) mean and outer test mean; and the nested choice's test."""
    x, y, g = np.array(data.text, dtype=object), np.array(data.label), np.array(data.group)
    inner: dict[str, list[float]] = {c.name: [] for c in candidates}
    test: dict[str, list[float]] = {c.name: [] for c in candidates}
    nested, chosen = [], []
    for r in range(n_splits):
        tr, te = _outer(x, g, r)
        folds = _inner(tr, g, inner_folds)
        split_inner = {}
        for c in candidates:
            split_inner[c.name] = float(np.mean([_sev_score(c, x, y, a, b) for a, b in folds]))
            inner[c.name].append(split_inner[c.name])
            test[c.name].append(_sev_score(c, x, y, tr, te))
        best = max(split_inner, key=lambda n: split_inner[n])
        chosen.append(best)
        nested.append(test[best][-1])
        progress(f"severity split {r}: inner choice {best}")
    return {
        "candidates": {
            n: {
                "inner_macro_f1": round(float(np.mean(inner[n])), 4),
                "test_macro_f1": round(float(np.mean(test[n])), 4),
            }
            for n in inner
        },
        "nested_test_macro_f1": round(float(np.mean(nested)), 4),
        "chosen_per_split": chosen,
    }


def _alert_proba(c: float, x: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray) -> np.ndarray:
    if len(set(y[tr])) < 2:
        return np.zeros(len(te))
    pipe = build_alert_pipeline(c).fit(list(x[tr]), list(y[tr]))
    return pipe.predict_proba(list(x[te]))[:, list(pipe.classes_).index("1")]


def nested_alerts(
    rows: list[dict[str, str]],
    c_values: Sequence[float] = DEFAULT_ALERT_C,
    *,
    n_splits: int = 20,
    inner_folds: int = 4,
    choose_threshold: bool = True,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """BGL alert F1 pooled over the outer test sets: per ``C`` at 0.5, and the nested (C, threshold) choice."""
    x = np.array([r["content"] for r in rows], dtype=object)
    y = np.array([str(r["is_alert"]).strip() for r in rows])
    g = np.array([r["event_id"] for r in rows])
    thresholds = _THRESHOLDS if choose_threshold else (0.5,)
    inner_f1: dict[float, list[float]] = {c: [] for c in c_values}
    truth: list[str] = []
    fixed: dict[float, list[bool]] = {c: [] for c in c_values}
    nested: list[bool] = []
    chosen: list[tuple[float, float]] = []
    for r in range(n_splits):
        tr, te = _outer(x, g, r)
        if len(set(y[tr])) < 2:
            continue
        folds = _inner(tr, g, inner_folds)
        y_in = np.concatenate([y[b] for _a, b in folds]) == "1"
        best, best_f = (c_values[0], 0.5), -1.0
        truth += list(y[te])
        for c in c_values:
            p_in = np.concatenate([_alert_proba(c, x, y, a, b) for a, b in folds])
            inner_f1[c].append(float(f1_score(y_in, p_in > 0.5, zero_division=0)))
            for t in thresholds:
                f = float(f1_score(y_in, p_in > t, zero_division=0))
                if f > best_f + 1e-12:
                    best, best_f = (c, t), f
            fixed[c] += list(_alert_proba(c, x, y, tr, te) > 0.5)
        c_best, t_best = best
        chosen.append(best)
        nested += list(_alert_proba(c_best, x, y, tr, te) > t_best)
        progress(f"alert split {r}: inner choice C={c_best} threshold={t_best}")
    t_arr = np.array(truth) == "1"
    return {
        "candidates": {
            str(c): {
                "inner_f1": round(float(np.mean(inner_f1[c])), 4),
                "test_f1_pooled": round(float(f1_score(t_arr, fixed[c])), 4),
            }
            for c in c_values
        },
        "nested_test_f1_pooled": round(float(f1_score(t_arr, nested)), 4),
        "chosen_per_split": [{"C": c, "threshold": t} for c, t in chosen],
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--alert-splits", type=int, default=20)
    ap.add_argument("--inner-folds", type=int, default=3)
    args = ap.parse_args(argv)
    out: dict[str, Any] = {}
    if args.splits:
        out["severity"] = nested_severity(
            load_levels(args.data), n_splits=args.splits, inner_folds=args.inner_folds, progress=print
        )
    if args.alert_splits:
        out["alerts"] = nested_alerts(
            _read_csv(args.data / "bgl_2k_alerts.csv"), n_splits=args.alert_splits, progress=print
        )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
