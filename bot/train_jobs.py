"""Training as a job (``model.train``), so a worker, not the web process, spends the CPU.

Payload: ``{"model": "routing"}`` (past incidents and "wrong owner" feedback in the knowledge base),
``{"model": "risk", "episodes": 3000, "seed": 0}`` (synthetic failure scenarios) or ``{"model": "logs"}``
(the bundled labelled lines). The artifact is written under the model directory with its origin record,
exactly as ``warroom train <model>`` writes it; the skills reload a changed artifact on their next call.
Queue one with ``warroom train queue <model>``. ``model.refresh`` (every ``WARROOM_ROUTING_REFRESH_HOURS``, 24 by
default in production) retrains the routing classifier the same way when the knowledge base changed since.
Replicas and workers must share the model directory (the compose file and the Kubernetes manifests mount one volume)
to see what a worker trained.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.worker import PermanentJobError
from knowledge.models import utcnow

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["register", "train", "refresh_routing", "schedule_refresh", "MODELS", "REFRESH"]

log = logging.getLogger("warroom.train")
MODELS = ("routing", "risk", "logs")
REFRESH = "model.refresh"


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


def refresh_routing(services: Services) -> str:
    """Retrain the routing classifier from the knowledge base when what it would learn from (past incidents with a
    team, "wrong owner" feedback) is not what it learned from; return what was done, for the log.

    Only a model the knowledge base trained, or none: one trained from a CSV (``warroom train routing --csv``) is the
    user's, and stays until they retrain it. Without a model it is trained as soon as two teams have examples, so a
    new install routes by text without anyone knowing the command."""
    from knowledge.routing_history import routing_examples
    from models.artifact_io import text_data_hash
    from models.routing_artifact import load_routing_model, train_from_knowledge_base

    models_path = services.settings.models_path
    loaded = load_routing_model(models_path)
    if loaded is not None and loaded.record.get("source") != "knowledge-base":
        return f"kept the model trained from {loaded.record.get('source')}"
    with services.db.session() as s:
        pairs = routing_examples(session=s)
        teams = len({y for _, y in pairs})
        if teams < 2:
            return f"not trained: examples of {teams} team(s), 2 needed"
        if loaded is not None and loaded.record.get("data_sha256") == text_data_hash([t for t, _ in pairs],
                                                                                    [y for _, y in pairs]):
            return "up to date"
        _, rows, teams = train_from_knowledge_base(s, models_path)
    return f"retrained on {rows} examples of {teams} teams"


def schedule_refresh(services: Services, delay_s: float) -> None:
    """Queue the routing refresh ``delay_s`` from now, once per slot whoever asks (replicas, restarts)."""
    every = services.settings.routing_refresh_s()
    if every > 0:
        slot = int((utcnow().timestamp() + delay_s) // every)
        services.runner.submit(REFRESH, {}, f"{REFRESH}:{slot}", delay_s=delay_s)


def register(services: Services) -> None:
    """Register the ``model.train`` and ``model.refresh`` handlers."""

    def model_train(payload: dict[str, Any]) -> None:
        log.info("model.train: %s", train(services, payload))

    def model_refresh(payload: dict[str, Any]) -> None:
        try:
            log.info("%s: routing %s", REFRESH, refresh_routing(services))
        finally:
            schedule_refresh(services, services.settings.routing_refresh_s())

    services.runner.register("model.train", model_train)
    services.runner.register(REFRESH, model_refresh)
