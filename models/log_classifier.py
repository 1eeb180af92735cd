"""Severity and failure-category classifiers for log lines, and their saved artifact.

Severity: word + character n-gram TF-IDF over the raw line, class-balanced logistic regression.
Category: TF-IDF word uni/bi-grams of the *masked* line (``models.log_miner.masked_text``) plus the
dense cue block of ``models.log_features``. Prediction is done once per distinct masked key (the
severity model reads the key's first raw line) and cached: a log file of a million lines holds a few
hundred keys.

The artifact lives under ``<model_dir>/logs/`` (``log-model.joblib`` + ``log-model.json`` with
library versions, data hash, artifact SHA-256, metrics, date); it is loaded only from there and only
when the artifact's SHA-256 matches its record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted

from models.artifact_io import load_with_record, save_with_record, text_data_hash
from models.log_data import load_examples
from models.log_features import CATEGORIES, SEVERITIES, cue_matrix, says_what_failed, stated_level
from models.log_miner import masked_text

__all__ = [
    "LogClassifier",
    "LinePrediction",
    "build_pipeline",
    "build_severity_pipeline",
    "build_alert_pipeline",
    "SeverityPrior",
    "save_log_model",
    "load_log_model",
    "LoadedLogModel",
    "MODEL_SUBDIR",
]

MODEL_SUBDIR = "logs"
_ARTIFACT, _RECORD = "log-model.joblib", "log-model.json"
_CACHE_MAX = 100_000
_MAX_CHARS = 2000  # the severity model reads at most this much of a line


def build_pipeline(C: float = 1.0, class_weight: str | None = "balanced") -> Pipeline:  # noqa: N803
    """Masked text in, a class out: TF-IDF words + generic cues, logistic regression."""
    features = FeatureUnion(
        [
            (
                "words",
                TfidfVectorizer(
                    sublinear_tf=True, ngram_range=(1, 2), token_pattern=r"[A-Za-z][A-Za-z_]+", max_features=50_000
                ),
            ),
            ("cues", FunctionTransformer(cue_matrix)),
        ]
    )
    return Pipeline(
        [("features", features), ("clf", LogisticRegression(C=C, class_weight=class_weight, max_iter=3000))]
    )


def build_severity_pipeline(C: float = 1.0, class_weight: str | None = "balanced") -> Pipeline:  # noqa: N803
    """Raw text in, a level out: word + character n-gram TF-IDF, logistic regression.

    On templates it never saw, the raw characters of a line (a system's own number, host and register
    formats, its punctuation) tell more about its level than the masked words: over the 10
    template-disjoint Loghub splits this scored macro-F1 0.60 against 0.53 for the masked-word model.
    It is still applied once per template: the first line of each masked key stands for the key.
    """
    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
        ]
    )
    return Pipeline(
        [("features", features), ("clf", LogisticRegression(C=C, class_weight=class_weight, max_iter=3000))]
    )


class SeverityPrior(TransformerMixin, BaseEstimator):
    """General severity knowledge as features: the bundled examples' severity model's P(level) per line.

    ``fit`` ignores the lines it is given: the prior model is trained on the bundled, self-written
    examples only (``models.log_data``), so what it knows does not come from the data being fitted.
    """

    def __init__(self, weight: float = 3.0) -> None:
        self.weight = weight

    def fit(self, X: Sequence[str], y: Any = None) -> SeverityPrior:  # noqa: N803
        ex = load_examples()
        self.model_ = build_severity_pipeline().fit([e.text[:_MAX_CHARS] for e in ex], [e.severity for e in ex])
        return self

    def transform(self, X: Sequence[str]) -> np.ndarray:  # noqa: N803
        check_is_fitted(self, "model_")
        return self.weight * self.model_.predict_proba([t[:_MAX_CHARS] for t in X])


def build_alert_pipeline(C: float = 1.0, prior_weight: float = 0.0) -> Pipeline:  # noqa: N803
    """Raw text in, alert yes/no out: word + character n-gram TF-IDF, class-balanced logistic regression.

    For a binary alert label inside one system, the raw characters (hardware ids, error codes) carry
    more than the masked text does, so this pipeline does not mask. ``prior_weight`` > 0 adds the
    bundled severity model's level probabilities (``SeverityPrior``) as features: with about a dozen
    alert templates to learn from, "panic", "terminated", "FAILED" need knowledge from elsewhere. Off by
    default: on inner template-disjoint folds weight 3 scored a mean F1 0.574 against 0.556 without it
    (better on 12 of 20 splits, worse on 7), not a clear win; see docs/benchmarks.md (issue 4).
    """
    parts: list[tuple[str, Any]] = [
        ("words", TfidfVectorizer(sublinear_tf=True)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
    ]
    if prior_weight:
        parts.append(("prior", SeverityPrior(prior_weight)))
    features = FeatureUnion(parts)
    return Pipeline([("features", features), ("clf", LogisticRegression(C=C, class_weight="balanced", max_iter=2000))])


@dataclass(frozen=True)
class LinePrediction:
    """What the classifier says about one masked key."""

    severity: str
    category: str
    confidence: float


class LogClassifier(BaseEstimator):
    """Severity (DEBUG..FATAL) and failure category for log lines.

    Args:
        C: inverse regularisation of both logistic regressions.
        class_weight: ``"balanced"`` (macro-F1 counts rare levels as much as INFO) or None.
        trust_stated_level: a level name written in capitals inside the line (``ERROR``, ``WARN``,
            ``FATAL``...) overrides the learned severity.
    """

    def __init__(
        self,
        C: float = 1.0,
        class_weight: str | None = "balanced",  # noqa: N803
        trust_stated_level: bool = True,
    ) -> None:
        self.C = C
        self.class_weight = class_weight
        self.trust_stated_level = trust_stated_level

    def fit(
        self, texts: Sequence[str], severities: Sequence[str], categories: Sequence[str | None] | None = None
    ) -> LogClassifier:
        """Fit on raw lines; ``categories`` may hold None for lines without a category label."""
        masked = [masked_text(t) for t in texts]
        sev = [s.upper() for s in severities]
        bad = sorted(set(sev) - set(SEVERITIES))
        if bad:
            raise ValueError(f"unknown severity label(s): {', '.join(bad[:5])}")
        self.severity_ = build_severity_pipeline(self.C, self.class_weight).fit([t[:_MAX_CHARS] for t in texts], sev)
        self.category_: Pipeline | None = None
        if categories is not None:
            pairs = [(m, c) for m, c in zip(masked, categories, strict=True) if c]
            if len({c for _m, c in pairs}) >= 2:
                self.category_ = build_pipeline(self.C, self.class_weight).fit(
                    [m for m, _c in pairs], [c for _m, c in pairs]
                )
        self.classes_ = np.array(sorted(set(sev)))
        self._cache: dict[str, LinePrediction] = {}
        return self

    def predict(self, texts: Sequence[str]) -> list[str]:
        """Severity of each raw line (scored once per masked key, by the key's first line)."""
        texts = list(texts)
        return [p.severity for p in self.predict_masked([masked_text(t) for t in texts], texts)]

    def predict_masked(self, masked: Sequence[str], examples: Sequence[str] | None = None) -> list[LinePrediction]:
        """Predictions for masked keys, each distinct key scored once (and cached).

        ``examples`` (aligned with ``masked``) are raw lines: the first one of each new key is what the
        severity model reads; without them it reads the masked key itself.
        """
        check_is_fitted(self, "severity_")
        cache = self.__dict__.setdefault("_cache", {})
        first: dict[str, str] = {}
        for i, m in enumerate(masked):
            if m not in cache and m not in first:
                first[m] = examples[i][:_MAX_CHARS] if examples is not None else m
        todo = sorted(first)
        if todo:
            if len(cache) + len(todo) > _CACHE_MAX:
                cache.clear()
            proba = self.severity_.predict_proba([first[m] for m in todo])
            classes = list(self.severity_.classes_)
            sev = [classes[i] for i in proba.argmax(axis=1)]
            conf = proba.max(axis=1)
            if getattr(self, "trust_stated_level", True):  # artifacts saved before the option
                # A line that states its own level in capitals ("ERROR IN CONTACTING RM") is taken at
                # its word: the learned model has only seen other templates' wording.
                stated = [stated_level(m) for m in todo]
                sev = [st or s for st, s in zip(stated, sev, strict=True)]
            cats = ["application"] * len(todo)
            if self.category_ is not None:
                vocabulary = self.category_.named_steps["features"].transformer_list[0][1].vocabulary_
                cats = [c if says_what_failed(m, vocabulary) else "application"
                        for m, c in zip(todo, self.category_.predict(todo), strict=True)]
            for m, s, c, p in zip(todo, sev, cats, conf, strict=True):
                # A category names a failure; lines classified DEBUG/INFO are "normal".
                cache[m] = LinePrediction(
                    s, "normal" if s in ("DEBUG", "INFO") else (c if c != "normal" else "application"), float(p)
                )
        return [cache[m] for m in masked]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_cache", None)
        return state


@dataclass(frozen=True)
class LoadedLogModel:
    """A fitted classifier with its origin record."""

    model: LogClassifier
    record: dict[str, Any]


def save_log_model(
    model: LogClassifier,
    model_dir: Path,
    *,
    texts: Sequence[str],
    labels: Sequence[str],
    source: str,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write the artifact and its origin record; returns the record's path."""
    record = {"model": "LogClassifier", "params": model.get_params(), "severities": list(SEVERITIES),
              "categories": list(CATEGORIES), "n_train": len(texts), "source": source,
              "data_sha256": text_data_hash(texts, labels), "metrics": metrics or {}}
    return save_with_record(model, Path(model_dir) / MODEL_SUBDIR, _ARTIFACT, _RECORD, record)


def load_log_model(model_dir: Path) -> LoadedLogModel | None:
    """The saved model, or None when there is none or its artifact does not match its record."""
    loaded = load_with_record(Path(model_dir) / MODEL_SUBDIR, _ARTIFACT, _RECORD, LogClassifier)
    return LoadedLogModel(model=loaded[0], record=loaded[1]) if loaded else None
