"""Training as a job (``model.train``), so a worker, not the web process, spends the CPU.

Payload: ``{"model": "routing"}`` (past incidents and "wrong owner" feedback in the knowledge base),
``{"model": "risk", "episodes": 3000, "seed": 0}`` (synthetic failure scenarios) or ``{"model": "logs"}``
(the bundled labelled lines). The artifact is written under the model directory with its origin record,
exactly as ``warroom train <model>`` writes it; the skills reload a changed artifact on their next call.
Queue one with ``warroom train queue <model>``. Replicas and workers must share the model directory
(the compose file and the Kubernetes manifests mount one volume) to see what a worker trained.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.worker import PermanentJobError

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["register", "train", "MODELS"]

log = logging.getLogger("warroom.train")
MODELS = ("routing", "risk", "logs")


def train(services: Services, payload: dict[str, Any]) -> dict[str, Any]:
    """Train one model from ``payload``; returns what was saved."""
    name = str((payload or {}).get("model", ""))
    models_path = services.settings.models_path
    if name == "routing":
        from models.routing_artifact import train_from_knowledge_base

        with services.db.session() as s:
            try:
                path, rows, _teams = train_from_knowledge_base(s, models_path)
            except ValueError as exc:
                raise PermanentJobError(str(exc)) from None
        return {"model": name, "saved": str(path), "rows": rows}
    if name == "risk":
        from models.risk_artifact import train_risk_model

        episodes = int(payload.get("episodes", 3000))
        if not 200 <= episodes <= 200_000:
            raise PermanentJobError("episodes must be between 200 and 200000")
        loaded = train_risk_model(models_path, n_episodes=episodes, seed=int(payload.get("seed", 0)))
        return {"model": name, "version": loaded.version, "saved": str(models_path / "risk")}
    if name == "logs":
        from models.log_classifier import LogClassifier, save_log_model
        from models.log_data import load_examples

        examples = load_examples()
        texts, sev = [e.text for e in examples], [e.severity for e in examples]
        model = LogClassifier().fit(texts, sev, [e.category for e in examples])
        path = save_log_model(model, models_path, texts=texts, labels=sev, source="bundled examples",
                              metrics={"n_train": len(texts)})
        return {"model": name, "saved": str(path), "rows": len(texts)}
    raise PermanentJobError(f"unknown model {name!r}: use one of {', '.join(MODELS)}")


def register(services: Services) -> None:
    """Register the ``model.train`` handler."""

    def model_train(payload: dict[str, Any]) -> None:
        log.info("model.train: %s", train(services, payload))

    services.runner.register("model.train", model_train)
