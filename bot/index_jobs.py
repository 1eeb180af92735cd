"""Bot-side work of the knowledge index: the ``index.sync`` job.

Anyone who changes incidents, postmortems or runbooks may submit ``index.sync`` (payload ``{}``;
``{"rebuild": true}`` re-embeds everything). The replica that runs it brings its own index in step
and persists it; other replicas catch up on their next search (a search re-checks the database
when its copy is older than ``knowledge.search.AUTO_SYNC_S``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from knowledge.search import sync_index

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["register"]

log = logging.getLogger("warroom.index")


def register(services: Services) -> None:
    """Register the ``index.sync`` handler."""

    def index_sync(payload: dict[str, Any]) -> None:
        report = sync_index(services.ctx, rebuild=bool((payload or {}).get("rebuild")))
        log.info("index.sync: %s", report)

    services.runner.register("index.sync", index_sync)
