"""Training, saving and loading the routing classifier with a JSON record of its origin.

The artifact lives under ``<model_dir>/routing/``: ``routing-model.joblib`` and ``routing-model.json``
(library versions, data hash, artifact SHA-256, metrics, date). A model is loaded only from that
directory and only when the artifact's SHA-256 matches its record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.artifact_io import load_with_record, save_with_record, text_data_hash
from models.routing_classifier import RoutingClassifier

__all__ = ["LoadedRoutingModel", "train_routing_model", "save_routing_model", "load_routing_model",
           "train_from_knowledge_base", "MODEL_SUBDIR"]

MODEL_SUBDIR = "routing"
_ARTIFACT, _RECORD = "routing-model.joblib", "routing-model.json"


@dataclass(frozen=True)
class LoadedRoutingModel:
    """A fitted classifier with its origin record."""

    model: RoutingClassifier
    record: dict[str, Any]


def train_routing_model(texts: Sequence[str], labels: Sequence[str], **params: Any) -> RoutingClassifier:
    """Fit a :class:`RoutingClassifier` (small data sets use every character n-gram)."""
    return RoutingClassifier(**params).fit(list(texts), list(labels))


def save_routing_model(model: RoutingClassifier, model_dir: Path, *, texts: Sequence[str],
                       labels: Sequence[str], source: str, metrics: dict[str, Any] | None = None) -> Path:
    """Write the artifact and its origin record; returns the record's path."""
    record = {"model": "RoutingClassifier", "params": model.get_params(), "classes": [str(c) for c in model.classes_],
              "n_train": len(texts), "source": source, "data_sha256": text_data_hash(texts, labels),
              "metrics": metrics or {}}
    return save_with_record(model, Path(model_dir) / MODEL_SUBDIR, _ARTIFACT, _RECORD, record)


def load_routing_model(model_dir: Path) -> LoadedRoutingModel | None:
    """The saved model, or None when there is none or its artifact does not match its record."""
    loaded = load_with_record(Path(model_dir) / MODEL_SUBDIR, _ARTIFACT, _RECORD, RoutingClassifier)
    return LoadedRoutingModel(model=loaded[0], record=loaded[1]) if loaded else None


def train_from_knowledge_base(session: Any, model_dir: Path) -> tuple[Path, int, int]:
    """Train on the knowledge base's past incidents and "wrong owner" feedback and save; returns (record path,
    rows, teams). ValueError (a message for a person) when fewer than 2 teams have examples."""
    from knowledge.routing_history import routing_examples

    pairs = routing_examples(session=session)
    texts, labels = [t for t, _ in pairs], [y for _, y in pairs]
    teams = len(set(labels))
    if teams < 2:
        raise ValueError(f"need examples of at least 2 teams to train routing (have {len(texts)} rows, "
                         f"{teams} team(s)): seed incidents or pass --csv")
    model = train_routing_model(texts, labels)
    path = save_routing_model(model, model_dir, texts=texts, labels=labels, source="knowledge-base",
                              metrics={"rows_used": len(texts), "classes": teams, "feedback_included": True})
    return path, len(texts), teams
