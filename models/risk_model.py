"""The failure-risk classifier: an ensemble chosen and calibrated on a time-ordered validation split.

``RiskModel.fit(X, y)`` takes rows in time order, keeps the newest ``val_share`` as validation,
fits three candidates (gradient boosting, random forest, logistic regression, all with balanced
class weights) and their soft vote, chooses the candidate with the best validation ROC-AUC (a
near-tie, within 0.002, goes to the cheaper model) and calibrates it with isotonic regression on
the same validation rows.
``predict_proba`` gives calibrated probabilities; ``assess`` says, per input, how much the
probability drops when that input is set back to its healthy reference (occlusion: the factors of
THIS prediction, not a global importance list).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from models.risk_features import METRICS, REFERENCE, feature_matrix

__all__ = ["RiskModel", "band", "BANDS", "Contribution"]

F = NDArray[np.float64]
_COST_ORDER = ("logistic_regression", "gradient_boosting", "random_forest", "soft_vote")
_TIE = 0.002

BANDS: tuple[tuple[float, str], ...] = ((0.8, "CRITICAL"), (0.6, "HIGH"), (0.4, "MEDIUM"), (0.2, "LOW"),
                                        (-1.0, "MINIMAL"))


def band(p: float) -> str:
    """CRITICAL (> 0.8), HIGH (0.6-0.8), MEDIUM (0.4-0.6), LOW (0.2-0.4), MINIMAL (< 0.2)."""
    return next(name for edge, name in BANDS if p > edge)


@dataclass(frozen=True)
class Contribution:
    """How much one input raises (positive) or lowers the probability of this prediction."""

    metric: str
    value: float
    reference: float
    delta: float


class RiskModel(BaseEstimator, ClassifierMixin):  # type: ignore[misc]
    """Calibrated ensemble; see the module docstring.

    Args:
        val_share: share of the newest rows kept for choosing and calibrating.
        n_trees: trees in the random forest.
        random_state: seed of the tree models.
    """

    def __init__(self, val_share: float = 0.25, n_trees: int = 40, random_state: int = 0) -> None:
        self.val_share = val_share
        self.n_trees = n_trees
        self.random_state = random_state

    def _candidates(self) -> dict[str, BaseEstimator]:
        return {
            # Plain gradient boosting, not the histogram one: its OpenMP threads make a single
            # prediction 20x slower on a busy 2-core machine, and this data is small.
            "gradient_boosting": GradientBoostingClassifier(
                n_estimators=150, learning_rate=0.1, max_depth=3, subsample=0.8, random_state=self.random_state),
            "random_forest": RandomForestClassifier(
                n_estimators=self.n_trees, max_depth=12, min_samples_leaf=3,
                n_jobs=1, random_state=self.random_state),
            "logistic_regression": make_pipeline(
                StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced")),
        }

    def fit(self, X: F, y: NDArray[np.int_]) -> RiskModel:
        """Fit on rows in time order (oldest first); the newest ``val_share`` choose and calibrate."""
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=int)
        if X.ndim != 2 or len(X) != len(y) or len(np.unique(y)) != 2:
            raise ValueError("need a 2-D feature matrix and labels of both classes")
        cut = int(len(X) * (1 - self.val_share))
        Xt, yt, Xv, yv = X[:cut], y[:cut], X[cut:], y[cut:]
        if len(np.unique(yt)) != 2 or len(np.unique(yv)) != 2:
            raise ValueError("both the training and the validation part need both classes")
        # Class weights: every candidate sees both classes with equal total weight.
        w = np.where(yt == 1, 0.5 / max(yt.mean(), 1e-9), 0.5 / max(1 - yt.mean(), 1e-9))
        fitted = {}
        for name, est in self._candidates().items():
            step = "logisticregression__sample_weight" if name == "logistic_regression" else "sample_weight"
            fitted[name] = clone(est).fit(Xt, yt, **{step: w})
        val_p = {name: est.predict_proba(Xv)[:, 1] for name, est in fitted.items()}
        val_p["soft_vote"] = np.mean(list(val_p.values()), axis=0)
        scores = {name: (float(roc_auc_score(yv, p)), -float(log_loss(yv, np.clip(p, 1e-6, 1 - 1e-6))))
                  for name, p in val_p.items()}
        self.validation_ = {name: {"roc_auc": round(s[0], 4), "log_loss": round(-s[1], 4)}
                            for name, s in scores.items()}
        best = max(s[0] for s in scores.values())
        # Near-ties (within TIE ROC-AUC) go to the cheaper model: a single prediction must stay fast.
        self.chosen_ = next(name for name in _COST_ORDER if scores[name][0] >= best - _TIE)
        self.members_ = list(fitted.values()) if self.chosen_ == "soft_vote" else [fitted[self.chosen_]]
        self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(
            val_p[self.chosen_], yv)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        return self

    def _raw(self, X: F) -> F:
        return np.mean([m.predict_proba(X)[:, 1] for m in self.members_], axis=0)

    def predict_proba(self, X: F) -> F:
        """Calibrated ``[P(no failure), P(failure)]`` per row."""
        check_is_fitted(self, "calibrator_")
        p = self.calibrator_.predict(self._raw(np.asarray(X, dtype=float)))
        return np.column_stack([1 - p, p])

    def predict(self, X: F) -> NDArray[np.int_]:
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)

    def assess(self, snapshot: dict[str, float], window: list[float] | None = None
               ) -> tuple[float, list[Contribution]]:
        """The probability for one full snapshot and each input's contribution (one batched call)."""
        return self.assess_many([snapshot], [window])[0]

    def assess_many(self, snapshots: list[dict[str, float]], windows: list[list[float] | None]
                    ) -> list[tuple[float, list[Contribution]]]:
        """``assess`` for many inputs in one model call (the batch API's path)."""
        rows: list[dict[str, float]] = []
        wins: list[list[float] | None] = []
        for snap, win in zip(snapshots, windows, strict=True):
            rows.append(snap)
            wins.append(win)
            for m in METRICS:
                rows.append({**snap, m.name: REFERENCE[m.name]})
                # With the input at its reference its window trend says nothing either.
                wins.append(win)
        p = self.predict_proba(feature_matrix(rows, wins))[:, 1]
        out = []
        stride = 1 + len(METRICS)
        for i, snap in enumerate(snapshots):
            base = float(p[i * stride])
            contribs = [Contribution(m.name, snap[m.name], REFERENCE[m.name], base - float(p[i * stride + 1 + j]))
                        for j, m in enumerate(METRICS)]
            out.append((base, contribs))
        return out
