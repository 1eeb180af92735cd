"""Evaluate the routing classifier on a labelled ticket CSV, next to the TF-IDF + LinearSVC baseline.

Protocol (docs/evaluation.md, routing): keep classes with at least ``min_class`` rows, stratified
80/20 split with ``random_state``, text = the given columns joined with spaces. Both models are
trained on the same training rows and scored on the same test rows in the same run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.routing_classifier import RoutingClassifier, baseline_pipeline, top_k_accuracy

__all__ = ["EvalInputError", "load_ticket_csv", "split_tickets", "evaluate_routing"]


class EvalInputError(ValueError):
    """The CSV or its columns cannot be used; the message is one line for a person."""


def load_ticket_csv(path: Path, text_cols: Sequence[str], label: str, min_class: int
                    ) -> tuple[list[str], list[str], dict[str, Any]]:
    """Texts, labels and a description of the filtering applied."""
    import pandas as pd

    from knowledge.csvfile import file_delimiter

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, sep=file_delimiter(path))
    except FileNotFoundError:
        raise EvalInputError(f"no such file: {path}") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise EvalInputError(f"cannot read {path.name} as CSV: {str(exc).splitlines()[0][:160]}") from None
    missing = [c for c in [*text_cols, label] if c not in df.columns]
    if missing:
        raise EvalInputError(f"{path.name}: no column(s) {', '.join(missing)}; columns are {', '.join(df.columns)}")
    df = df[df[label].str.strip() != ""]
    counts = df[label].value_counts()
    keep = counts[counts >= min_class].index
    kept = df[df[label].isin(keep)]
    if len(keep) < 2:
        raise EvalInputError(f"{path.name}: fewer than 2 classes with >= {min_class} rows in '{label}'")
    texts = kept[list(text_cols)].agg(" ".join, axis=1).str.strip().tolist()
    info = {"rows_total": int(len(df)), "rows_used": int(len(kept)), "classes": int(len(keep)),
            "min_class": min_class}
    return texts, kept[label].astype(str).tolist(), info


def _scores(y_true: Sequence[str], pred: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": round(float(accuracy_score(y_true, pred)), 4),
            "macro_f1": round(float(f1_score(y_true, pred, average="macro", zero_division=0)), 4),
            "top3_accuracy": round(top_k_accuracy(scores, classes, y_true, 3), 4)}


def split_tickets(texts: Sequence[str], labels: Sequence[str], *, test_size: float = 0.2,
                  random_state: int = 0) -> list[list[str]]:
    """The protocol's stratified split: [train texts, test texts, train labels, test labels]."""
    from sklearn.model_selection import train_test_split

    # Stratify on the labels as pandas would read them (numbers as numbers), so the split is the
    # one anyone gets from ``pd.read_csv`` + ``train_test_split`` with the same random_state.
    key: list[Any] = [int(v) for v in labels] if all(v.lstrip("-").isdigit() for v in labels) else list(labels)
    return train_test_split(list(texts), list(labels), test_size=test_size, stratify=key,  # type: ignore[no-any-return]
                            random_state=random_state)


def evaluate_routing(texts: Sequence[str], labels: Sequence[str], *, test_size: float = 0.2,
                     random_state: int = 0, **params: Any) -> tuple[dict[str, Any], RoutingClassifier]:
    """Metrics of our model and of the baseline (keys prefixed ``baseline_``), and our fitted model."""
    x_tr, x_te, y_tr, y_te = split_tickets(texts, labels, test_size=test_size, random_state=random_state)
    t0 = time.perf_counter()
    base = baseline_pipeline().fit(x_tr, y_tr)
    b_scores = np.asarray(base.decision_function(x_te))
    base_m = _scores(y_te, base.predict(x_te), b_scores, base.classes_)
    t1 = time.perf_counter()
    model = RoutingClassifier(**params).fit(x_tr, y_tr)
    t2 = time.perf_counter()
    proba = model.predict_proba(x_te)
    ours = _scores(y_te, model.classes_[proba.argmax(axis=1)], proba, model.classes_)
    t3 = time.perf_counter()
    out: dict[str, Any] = dict(ours)
    out.update({f"baseline_{k}": v for k, v in base_m.items()})
    out.update({"n_train": len(x_tr), "n_test": len(x_te), "model": "calibrated LinearSVC, word 1-2 + char_wb 2-5 "
                "TF-IDF", "baseline": "TfidfVectorizer + LinearSVC (defaults)", "params": model.get_params(),
                "seconds_baseline": round(t1 - t0, 2), "seconds_fit": round(t2 - t1, 2),
                "ms_per_ticket_predict": round(1000 * (t3 - t2) / max(1, len(x_te)), 3)})
    return out, model
