"""Training, saving and loading the routing classifier with a JSON record of its origin.

The artifact lives under ``<model_dir>/routing/``: ``routing-model.joblib`` and ``routing-model.json``
(library versions, data hash, artifact SHA-256, metrics, date). A model is loaded only from that
directory and only when the artifact's SHA-256 matches its record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.routing_classifier import RoutingClassifier

__all__ = ["LoadedRoutingModel", "train_routing_model", "save_routing_model", "load_routing_model",
           "MODEL_SUBDIR", "data_hash"]

MODEL_SUBDIR = "routing"
_ARTIFACT, _RECORD = "routing-model.joblib", "routing-model.json"


@dataclass(frozen=True)
class LoadedRoutingModel:
    """A fitted classifier with its origin record."""

    model: RoutingClassifier
    record: dict[str, Any]


def data_hash(texts: Sequence[str], labels: Sequence[str]) -> str:
    """SHA-256 of the training data (order-sensitive)."""
    h = hashlib.sha256()
    for t, y in zip(texts, labels, strict=True):
        h.update(t.encode("utf-8", "replace") + b"\x1f" + y.encode("utf-8", "replace") + b"\x1e")
    return h.hexdigest()


def _versions() -> dict[str, str]:
    import joblib
    import numpy
    import scipy
    import sklearn

    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "joblib": joblib.__version__}


def train_routing_model(texts: Sequence[str], labels: Sequence[str], **params: Any) -> RoutingClassifier:
    """Fit a :class:`RoutingClassifier` (small data sets use every character n-gram)."""
    return RoutingClassifier(**params).fit(list(texts), list(labels))


def save_routing_model(model: RoutingClassifier, model_dir: Path, *, texts: Sequence[str],
                       labels: Sequence[str], source: str, metrics: dict[str, Any] | None = None) -> Path:
    """Write the artifact and its origin record; returns the record's path."""
    from models.artifact_io import dump_atomic, write_text_atomic

    folder = Path(model_dir) / MODEL_SUBDIR
    folder.mkdir(parents=True, exist_ok=True)
    digest = dump_atomic(model, folder / _ARTIFACT)
    record = {
        "model": "RoutingClassifier", "params": model.get_params(), "classes": [str(c) for c in model.classes_],
        "n_train": len(texts), "source": source, "data_sha256": data_hash(texts, labels),
        "artifact_sha256": digest, "metrics": metrics or {}, "versions": _versions(),
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    out = folder / _RECORD
    write_text_atomic(out, json.dumps(record, indent=2, default=str))
    return out


def load_routing_model(model_dir: Path) -> LoadedRoutingModel | None:
    """The saved model, or None when there is none or its artifact does not match its record."""
    import joblib

    folder = Path(model_dir) / MODEL_SUBDIR
    art, rec = folder / _ARTIFACT, folder / _RECORD
    if not art.is_file() or not rec.is_file():
        return None
    try:
        record = json.loads(rec.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or hashlib.sha256(art.read_bytes()).hexdigest() != record.get("artifact_sha256"):
        return None
    model = joblib.load(art)  # our own directory, hash checked against our own record
    if not isinstance(model, RoutingClassifier):
        return None
    return LoadedRoutingModel(model=model, record=record)
