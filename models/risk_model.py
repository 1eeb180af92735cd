"""The failure-risk classifier: an ensemble chosen and calibrated on a time-ordered validation split.

``RiskModel.fit(X, y)`` takes rows in time order, keeps the newest ``val_share`` as validation,
fits three candidates (gradient boosting, random forest, logistic regression, all with balanced
class weights) and their soft vote, and chooses on the validation rows: first every candidate is
audited for monotonicity (``models.risk_features.MONOTONE``: raising a pressure input such as memory
or errors must not lower the risk; a candidate that does so on any audited (row, input) pair, by
more than 0.01, is set aside unless none passes), then the best validation ROC-AUC wins among
those that pass (a near-tie, within 0.002, goes to the cheaper model). The random forest is fitted
under the monotone constraints, so it always passes.

Calibration. With ``fit(X, y, groups)`` (each row's scenario) and at least two failure types among them,
``calibration="auto"`` (the default) calibrates on out-of-type scores: the chosen candidate is refitted
once per failure type without that type's rows (and an equal time-ordered share of the healthy rows),
every row gets the score of the refit that never saw its fold, and Platt scaling on the log-odds is
fitted to those scores (``calibration_ == "sigmoid"``, ``calibrated_on_ == "out_of_type"``). The
validation rows only hold the failure types the model was trained on, so a map fitted there is
overconfident on a failure type it never saw; Platt scaling is strictly monotone (no ties, the model's
ranking is kept) and has two parameters, so it does not chase a shifted calibration set. Without groups,
``"auto"`` calibrates on the validation rows: Platt scaling or isotonic regression, whichever has the
lower log loss when fitted on the older half of the validation rows and scored on the newer half
(``calibrated_on_ == "validation"``); ``"sigmoid"`` or ``"isotonic"`` force one of these (also with
groups), ``"by_type"`` requires groups. The validation calibrators are kept (``calibrators_``, with
``"by_type"`` when fitted) so their figures can be compared.
``predict_proba`` gives calibrated probabilities; ``assess`` says, per input, how much it moves
the probability of THIS prediction (not a global importance list): the average of what setting it
back to its healthy reference takes away and what it adds on its own to a healthy reference.
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

from models.risk_features import METRICS, NO_WINDOW, REFERENCE, monotone_constraints, snapshot_matrix

__all__ = ["RiskModel", "band", "BANDS", "Contribution", "out_of_fold", "type_folds"]

F = NDArray[np.float64]
_COST_ORDER = ("logistic_regression", "gradient_boosting", "random_forest", "soft_vote")
_TIE = 0.002
_MONOTONE_TOLERANCE = 0.0  # share of audited (row, input) pairs where raising the input may lower the risk
_AUDIT_ROWS = 300
_CALIBRATIONS = ("sigmoid", "isotonic", "auto", "by_type")

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


class _FastForest:
    """A fitted random forest's trees as padded arrays, walked for all trees and rows at once.

    scikit-learn's forest predicts tree by tree through joblib, which costs milliseconds per call
    on a busy machine; the same numbers come out of a dozen vectorised steps here."""

    def __init__(self, forest: RandomForestClassifier) -> None:
        trees = [e.tree_ for e in forest.estimators_]
        width = max(t.node_count for t in trees)
        n = len(trees)
        self.feature = np.zeros((n, width), dtype=np.intp)
        self.threshold = np.zeros((n, width))
        self.left = np.zeros((n, width), dtype=np.intp)
        self.right = np.zeros((n, width), dtype=np.intp)
        self.p1 = np.zeros((n, width))
        self.depth = max(e.get_depth() for e in forest.estimators_)
        for i, t in enumerate(trees):
            k = t.node_count
            leaf = t.children_left[:k] < 0
            self.feature[i, :k] = np.where(leaf, 0, t.feature[:k])
            self.threshold[i, :k] = np.where(leaf, np.inf, t.threshold[:k])
            # A leaf points to itself, so extra steps leave it where it is.
            self.left[i, :k] = np.where(leaf, np.arange(k), t.children_left[:k])
            self.right[i, :k] = np.where(leaf, np.arange(k), t.children_right[:k])
            v = t.value[:k, 0, :]
            self.p1[i, :k] = v[:, 1] / np.maximum(v.sum(axis=1), 1e-12)
        self.rows = np.arange(n)[:, None]

    def predict_proba(self, X: F) -> F:
        X = np.asarray(X, dtype=float)
        node = np.zeros((self.feature.shape[0], X.shape[0]), dtype=np.intp)
        cols = np.arange(X.shape[0])[None, :]
        for _ in range(self.depth):
            f = self.feature[self.rows, node]
            go_left = X[cols, f] <= self.threshold[self.rows, node]
            node = np.where(go_left, self.left[self.rows, node], self.right[self.rows, node])
        p = self.p1[self.rows, node].mean(axis=0)
        return np.column_stack([1 - p, p])


class _Sigmoid:
    """Platt scaling on the log-odds of the raw probability: ``p = 1 / (1 + exp(-(a * logit(raw) + b)))``.
    Two parameters, so it cannot overfit a small validation set the way isotonic steps can."""

    def fit(self, raw: F, y: NDArray[np.int_]) -> _Sigmoid:
        lr = LogisticRegression(C=1e4, max_iter=1000).fit(_logit(raw)[:, None], y)
        self.a_, self.b_ = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        return self

    def predict(self, raw: F) -> F:
        return 1.0 / (1.0 + np.exp(-(self.a_ * _logit(raw) + self.b_)))


def _logit(p: F) -> F:
    p = np.clip(np.asarray(p, dtype=float), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _isotonic() -> IsotonicRegression:
    return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)


def _log_loss(y: NDArray[np.int_], p: F) -> float:
    return float(log_loss(y, np.clip(p, 1e-3, 1 - 1e-3), labels=[0, 1]))


def type_folds(groups: NDArray[np.str_], healthy: frozenset[str] = frozenset({"normal"})
               ) -> list[NDArray[np.intp]]:
    """One fold per failure type (in order of first appearance): its rows plus an equal time-ordered
    share of the ``healthy`` groups' rows."""
    groups = np.asarray(groups)
    types = [g for g in dict.fromkeys(groups.tolist()) if g not in healthy]
    healthy_rows = np.array_split(np.flatnonzero(np.isin(groups, list(healthy))), len(types))
    return [np.sort(np.concatenate([np.flatnonzero(groups == t), h]))
            for t, h in zip(types, healthy_rows, strict=True)]


def out_of_fold(model: RiskModel, X: F, y: NDArray[np.int_], folds: list[NDArray[np.intp]]) -> F:
    """Every row's score from the model's chosen candidate(s) refitted without the row's fold (class
    weights as in ``RiskModel.fit``)."""
    names = list(model._candidates()) if model.chosen_ == "soft_vote" else [model.chosen_]
    out = np.full(len(y), np.nan)
    for idx in folds:
        train = np.ones(len(y), dtype=bool)
        train[idx] = False
        Xt, yt = X[train], y[train]
        w = np.where(yt == 1, 0.5 / yt.mean(), 0.5 / (1 - yt.mean()))
        ps = []
        for name in names:
            step = "logisticregression__sample_weight" if name == "logistic_regression" else "sample_weight"
            ps.append(clone(model._candidates()[name]).fit(Xt, yt, **{step: w}).predict_proba(X[idx])[:, 1])
        out[idx] = np.mean(ps, axis=0)
    return out


def monotone_violations(predict: object, X: F, signs: list[int], step: F) -> float:
    """Share of (row, constrained feature) pairs where moving the feature one ``step`` in its risky
    direction lowers the predicted probability by more than 0.01."""
    cols = [j for j, s in enumerate(signs) if s]
    if not cols or not len(X):
        return 0.0
    base = predict(X)  # type: ignore[operator]
    bumped = np.repeat(X, len(cols), axis=0)
    for i, j in enumerate(cols):
        bumped[i::len(cols), j] += signs[j] * step[j]
    p = predict(bumped).reshape(len(X), len(cols))  # type: ignore[operator]
    return float(np.mean(p < base[:, None] - 0.01))


class RiskModel(BaseEstimator, ClassifierMixin):  # type: ignore[misc]
    """Calibrated ensemble; see the module docstring.

    Args:
        val_share: share of the newest rows kept for choosing and calibrating.
        n_trees: trees in the random forest.
        random_state: seed of the tree models.
        calibration: ``"auto"`` (default), ``"sigmoid"``, ``"isotonic"`` or ``"by_type"`` (see the module
            docstring).
    """

    def __init__(self, val_share: float = 0.25, n_trees: int = 40, random_state: int = 0,
                 calibration: str = "auto") -> None:
        self.val_share = val_share
        self.n_trees = n_trees
        self.random_state = random_state
        self.calibration = calibration

    def _candidates(self) -> dict[str, BaseEstimator]:
        return {
            # Plain gradient boosting, not the histogram one: its OpenMP threads make a single
            # prediction 20x slower on a busy 2-core machine, and this data is small.
            "gradient_boosting": GradientBoostingClassifier(
                n_estimators=150, learning_rate=0.1, max_depth=3, subsample=0.8, random_state=self.random_state),
            "random_forest": RandomForestClassifier(
                n_estimators=self.n_trees, max_depth=12, min_samples_leaf=3,
                n_jobs=1, random_state=self.random_state, monotonic_cst=monotone_constraints()),
            "logistic_regression": make_pipeline(
                StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced")),
        }

    def fit(self, X: F, y: NDArray[np.int_], groups: NDArray[np.str_] | None = None) -> RiskModel:
        """Fit on rows in time order (oldest first); the newest ``val_share`` choose the model.

        Args:
            X: feature rows, oldest first.
            y: 1 where a failure followed.
            groups: optional scenario of each row; groups without a positive row count as healthy, the
                others as failure types, each held out once to calibrate (see the module docstring).
        """
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=int)
        if X.ndim != 2 or len(X) != len(y) or len(np.unique(y)) != 2:
            raise ValueError("need a 2-D feature matrix and labels of both classes")
        if self.calibration not in _CALIBRATIONS:
            raise ValueError(f"calibration must be one of {', '.join(_CALIBRATIONS)}")
        folds = None
        if groups is not None:
            groups = np.asarray(groups).astype(str)
            if len(groups) != len(y):
                raise ValueError("need one group per row")
            failing = set(groups[y == 1].tolist())
            if len(failing) >= 2:
                folds = type_folds(groups, frozenset(set(groups.tolist()) - failing))
        if self.calibration == "by_type" and folds is None:
            raise ValueError("by_type calibration needs groups with at least two failure types")
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
        # Monotonicity audit on (at most _AUDIT_ROWS evenly spaced) validation rows, one step = a
        # quarter of the feature's spread in the training rows.
        signs = monotone_constraints() if X.shape[1] == len(monotone_constraints()) else [0] * X.shape[1]
        step = 0.25 * np.maximum(Xt.std(axis=0), 1e-6)
        audit = Xv[np.linspace(0, len(Xv) - 1, min(len(Xv), _AUDIT_ROWS)).astype(int)]
        members = list(fitted.items())
        violations = {name: monotone_violations(lambda Z, e=est: e.predict_proba(Z)[:, 1], audit, signs, step)
                      for name, est in members}
        violations["soft_vote"] = monotone_violations(
            lambda Z: np.mean([e.predict_proba(Z)[:, 1] for _, e in members], axis=0), audit, signs, step)
        self.validation_ = {name: {"roc_auc": round(s[0], 4), "log_loss": round(-s[1], 4),
                                   "monotone_violations": round(violations[name], 4)}
                            for name, s in scores.items()}
        passing = [name for name in scores if violations[name] <= _MONOTONE_TOLERANCE] or list(scores)
        best = max(scores[name][0] for name in passing)
        # Near-ties (within TIE ROC-AUC) go to the cheaper model: a single prediction must stay fast.
        self.chosen_ = next(name for name in _COST_ORDER if name in passing and scores[name][0] >= best - _TIE)
        self.members_ = list(fitted.values()) if self.chosen_ == "soft_vote" else [fitted[self.chosen_]]
        pv = val_p[self.chosen_]
        half = len(yv) // 2
        cross = {}
        for name, make in (("sigmoid", _Sigmoid), ("isotonic", _isotonic)):
            older_ok = len(np.unique(yv[:half])) == 2 and len(np.unique(yv[half:])) == 2
            cross[name] = (_log_loss(yv[half:], make().fit(pv[:half], yv[:half]).predict(pv[half:]))
                           if older_ok else float("inf"))
        self.calibrators_ = {"sigmoid": _Sigmoid().fit(pv, yv), "isotonic": _isotonic().fit(pv, yv)}
        if folds is not None and self.calibration in ("auto", "by_type"):
            self.calibrators_["by_type"] = _Sigmoid().fit(out_of_fold(self, X, y, folds), y)
            self.calibration_, self.calibrated_on_ = "sigmoid", "out_of_type"
        else:
            self.calibration_ = (min(cross, key=lambda k: cross[k]) if self.calibration == "auto"
                                 else self.calibration)
            self.calibrated_on_ = "validation"
        self.calibration_log_loss_ = {k: round(v, 4) for k, v in cross.items()}
        self.calibrator_ = self.calibrators_["by_type" if self.calibrated_on_ == "out_of_type" else self.calibration_]
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        self.fast_members_ = [_FastForest(m) if isinstance(m, RandomForestClassifier) else m for m in self.members_]
        return self

    def _raw(self, X: F) -> F:
        fast = getattr(self, "fast_members_", None)
        # The vectorised forest wins on a few rows; scikit-learn's own loop wins on large batches.
        members = fast if fast is not None and len(X) <= 256 else self.members_
        return np.mean([m.predict_proba(X)[:, 1] for m in members], axis=0)

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
        k = len(METRICS)
        S = np.array([[snap[m.name] for m in METRICS] for snap in snapshots], dtype=float).reshape(-1, k)
        W = np.array([w if w is not None else NO_WINDOW for w in windows], dtype=float).reshape(len(S), -1)
        ref = np.array([REFERENCE[m.name] for m in METRICS])
        # Per input block of 2k + 2 rows: the input x; x with input j set back to its healthy
        # reference; the healthy reference with only input j taken from x; the reference itself.
        # A factor's contribution averages "what removing it takes away" and "what it adds alone"
        # (the first and last orderings of a Shapley value), so redundant causes (two saturated
        # resources) still both show, and a probability stuck at 1 still names its reasons.
        block = 2 * k + 2
        rows = np.repeat(S, block, axis=0)
        for j in range(k):
            rows[1 + j::block, j] = ref[j]
            rows[1 + k + j::block] = ref
            rows[1 + k + j::block, j] = S[:, j]
        rows[block - 1::block] = ref
        X = np.hstack([snapshot_matrix(rows), np.repeat(W, block, axis=0)])
        p = self.predict_proba(X)[:, 1].reshape(len(S), block)
        out = []
        for i in range(len(S)):
            base = float(p[i, 0])
            contribs = [Contribution(m.name, float(S[i, j]), float(ref[j]),
                                     0.5 * ((base - float(p[i, 1 + j])) + (float(p[i, 1 + k + j]) - float(p[i, -1]))))
                        for j, m in enumerate(METRICS)]
            out.append((base, contribs))
        return out
