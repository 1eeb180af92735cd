"""Ticket text -> team (or any label) classifier for routing, and the baseline it is measured against.

The model is a calibrated linear SVM over word (1-2 gram) and character (2-5 gram, word-bounded)
TF-IDF features with sublinear term frequency. Calibration (Platt scaling inside cross-validation)
gives probabilities, so the router can weigh "the classifier says payments, 0.82" against the
declared owner and history, and the evaluation can report top-3 accuracy.

Example::

    clf = RoutingClassifier().fit(texts, teams)
    clf.top_k(["payments-api returns 503"], k=3)   # [[("payments", 0.81), ("storage", 0.09), ...]]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

__all__ = ["RoutingClassifier", "baseline_pipeline", "top_k_accuracy"]


def _features(char_ngrams: tuple[int, int], min_df_char: int) -> FeatureUnion:
    return FeatureUnion(
        [
            ("word", TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), lowercase=True)),
            (
                "char",
                TfidfVectorizer(
                    sublinear_tf=True, analyzer="char_wb", ngram_range=char_ngrams, min_df=min_df_char, lowercase=True
                ),
            ),
        ]
    )


def _tfidf(vec: Any, texts: list[str]) -> sp.csr_matrix:
    """``vec.transform(texts)`` for a fitted TF-IDF vectorizer, without the per-call input validation.

    Counting is the vectorizer's own; the TF-IDF weighting (sublinear tf, idf, l2 rows) is the same
    arithmetic as :class:`~sklearn.feature_extraction.text.TfidfTransformer`, which for one short text
    spends most of its time validating its input.
    """
    if not isinstance(vec, TfidfVectorizer) or vec.norm != "l2" or not vec.use_idf:
        return vec.transform(texts)
    x = CountVectorizer.transform(vec, texts).astype(np.float64).tocsr()
    if vec.sublinear_tf:
        np.log(x.data, x.data)
        x.data += 1.0
    x.data *= vec.idf_[x.indices]
    per_row = np.diff(x.indptr)
    norms = np.sqrt(np.bincount(np.repeat(np.arange(x.shape[0]), per_row), weights=x.data**2, minlength=x.shape[0]))
    norms[norms == 0.0] = 1.0
    x.data /= np.repeat(norms, per_row)
    return x


class RoutingClassifier(ClassifierMixin, BaseEstimator):
    """Calibrated linear SVM over word + char TF-IDF.

    Args:
        C: SVM regularisation (smaller = stronger).
        cv: folds for the probability calibration (reduced automatically for tiny classes).
        char_ngrams: character n-gram range.
        min_df_char: minimum document frequency of a character n-gram (1 for tiny data sets).
        class_weight: passed to LinearSVC ("balanced" or None).
    """

    def __init__(
        self,
        C: float = 0.3,
        cv: int = 5,
        char_ngrams: tuple[int, int] = (2, 5),
        min_df_char: int = 2,
        class_weight: str | None = None,
    ) -> None:
        self.C = C
        self.cv = cv
        self.char_ngrams = char_ngrams
        self.min_df_char = min_df_char
        self.class_weight = class_weight

    def fit(self, X: Sequence[str], y: Sequence[Any]) -> RoutingClassifier:
        """Fit on texts ``X`` and labels ``y``; returns self."""
        texts = [str(t) for t in X]
        labels = np.asarray([str(v) for v in y])
        if len(texts) != len(labels) or not texts:
            raise ValueError("need as many labels as texts, and at least one")
        counts = Counter(labels.tolist())
        self.classes_ = np.array(sorted(counts))
        self.n_train_ = len(texts)
        if len(self.classes_) == 1:
            self.pipeline_: Pipeline | None = None
            return self
        min_df = self.min_df_char if len(texts) >= 200 else 1
        feats = _features(self.char_ngrams, min_df)
        svc = LinearSVC(C=self.C, class_weight=self.class_weight)
        folds = min(self.cv, min(counts.values()))
        # Calibration needs at least two examples of every class; below that, softmax the margins.
        head: Any = CalibratedClassifierCV(svc, cv=folds) if folds >= 2 else svc
        self.calibrated_ = folds >= 2
        self.pipeline_ = make_pipeline(feats, head).fit(texts, labels)
        self._compile()
        return self

    def _compile(self) -> None:
        """Stack the calibrated folds into one weight matrix for quick single-ticket predictions.

        Same arithmetic as CalibratedClassifierCV (sigmoid per class and fold, normalised, averaged
        over folds) without its per-call input validation, which dominates for one short text.
        """
        self.fast_ = None
        if not self.calibrated_ or self.pipeline_ is None or len(self.classes_) < 3:
            return
        cal = self.pipeline_[-1]
        coefs, intercepts, a, b = [], [], [], []
        for cc in cal.calibrated_classifiers_:
            est = cc.estimator
            if list(est.classes_) != list(self.classes_) or len(cc.calibrators) != len(self.classes_):
                return
            coefs.append(est.coef_)
            intercepts.append(est.intercept_)
            a.append([c.a_ for c in cc.calibrators])
            b.append([c.b_ for c in cc.calibrators])
        self.fast_ = (
            np.vstack(coefs).T.copy(),
            np.concatenate(intercepts),
            np.concatenate(a),
            np.concatenate(b),
            len(coefs),
        )

    def _fast_proba(self, texts: list[str]) -> NDArray[np.float64]:
        assert self.fast_ is not None and self.pipeline_ is not None
        w, c, a, b, folds = self.fast_
        # The union's parts one by one: FeatureUnion.transform adds a joblib round per call.
        x = sp.hstack([_tfidf(t, texts) for _, t in self.pipeline_[0].transformer_list]).tocsr()
        d = np.asarray(x @ w) + c
        p = 1.0 / (1.0 + np.exp(a * d + b))
        k = len(self.classes_)
        p = p.reshape(len(texts), folds, k)
        den = p.sum(axis=2, keepdims=True)
        p = np.divide(p, den, out=np.full_like(p, 1.0 / k), where=den != 0)
        return np.asarray(p.mean(axis=1), dtype=np.float64)

    def predict_proba(self, X: Sequence[str]) -> NDArray[np.float64]:
        """Class probabilities, columns in ``classes_`` order."""
        check_is_fitted(self, "classes_")
        texts = [str(t) for t in X]
        if self.pipeline_ is None:
            return np.ones((len(texts), 1))
        if self.calibrated_:
            if getattr(self, "fast_", None) is not None:
                return self._fast_proba(texts)
            return np.asarray(self.pipeline_.predict_proba(texts), dtype=np.float64)
        margins = np.asarray(self.pipeline_.decision_function(texts), dtype=np.float64)
        if margins.ndim == 1:  # binary LinearSVC gives one margin for the second class
            margins = np.column_stack([-margins, margins])
        e = np.exp(margins - margins.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: Sequence[str]) -> NDArray[Any]:
        """The most likely label per text."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def top_k(self, X: Sequence[str], k: int = 3) -> list[list[tuple[str, float]]]:
        """The ``k`` most likely labels with their probabilities, per text."""
        proba = self.predict_proba(X)
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        return [[(str(self.classes_[j]), float(proba[i, j])) for j in row] for i, row in enumerate(order)]


def baseline_pipeline() -> Pipeline:
    """The reference baseline from docs: TF-IDF (default settings) + LinearSVC (default C)."""
    return make_pipeline(TfidfVectorizer(), LinearSVC())


def top_k_accuracy(scores: NDArray[np.float64], classes: NDArray[Any], y: Sequence[Any], k: int = 3) -> float:
    """Share of rows whose true label is among the ``k`` highest-scoring classes."""
    if len(y) == 0:
        return 0.0
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hits = sum(1 for i, label in enumerate(y) if label in set(classes[order[i]].tolist()))
    return hits / len(y)
