"""Changes to services (deploys, config pushes, feature flags, rollbacks): recorded once, and found near an incident.

A change on an incident's own service, or on a service it depends on (``knowledge/service_graph.py``, a few hops),
in the hours before it opened is the first suspect. ``near`` finds them for any span; ``for_incident`` for the span
of one incident: from ``BEFORE`` before it opened to its resolution (or now).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from knowledge.models import ChangeEvent, Incident, utcnow
from knowledge.service_graph import dependency_paths, graph

__all__ = ["KINDS", "BEFORE", "Near", "record", "near", "for_incident"]

KINDS = ("deploy", "config", "flag", "rollback", "infra", "other")
BEFORE = dt.timedelta(hours=6)


@dataclass(frozen=True)
class Near:
    """A change, and the dependency path from the service asked about to the one it changed (one name: itself)."""

    change: ChangeEvent
    path: tuple[str, ...]


def record(s: Session, *, service: str, summary: str, kind: str = "deploy", version: str | None = None,
           author: str | None = None, url: str | None = None, at: dt.datetime | None = None, source: str = "api",
           external_id: str | None = None) -> tuple[ChangeEvent, bool]:
    """Keep one change; with ``external_id``, a second report of it (a retried pipeline step) returns the first
    and False. Times are naive UTC."""
    if external_id:
        same = s.scalar(select(ChangeEvent).where(ChangeEvent.source == source, ChangeEvent.external_id == external_id))
        if same is not None:
            return same, False
    row = ChangeEvent(service=service.strip().lower(), kind=kind, summary=summary, version=version or None,
                      author=author or None, url=url or None, source=source, external_id=external_id or None,
                      at=at or utcnow().replace(microsecond=0), recorded_at=utcnow())
    try:
        with s.begin_nested():
            s.add(row)
    except IntegrityError:  # the same id reported at the same moment by another request: that one stands
        same = s.scalar(select(ChangeEvent).where(ChangeEvent.source == source, ChangeEvent.external_id == external_id))
        if same is None:
            raise
        return same, False
    return row, True


def near(s: Session, service: str | None, start: dt.datetime, end: dt.datetime, *, limit: int = 10) -> list[Near]:
    """The changes between ``start`` and ``end``, newest first: on ``service`` and on the services it depends on
    (None: on every service)."""
    q = select(ChangeEvent).where(ChangeEvent.at >= start, ChangeEvent.at <= end)
    paths: dict[str, tuple[str, ...]] = {}
    if service:
        name = service.strip().lower()
        paths = {name: (name,), **dependency_paths(graph(s), name)}
        q = q.where(ChangeEvent.service.in_(list(paths)))
    rows = s.scalars(q.order_by(ChangeEvent.at.desc(), ChangeEvent.id.desc()).limit(limit)).all()
    return [Near(r, paths.get(r.service, (r.service,))) for r in rows]


def for_incident(s: Session, inc: Incident, *, limit: int = 5) -> list[Near]:
    """The changes on the incident's service and its dependencies from ``BEFORE`` before it opened until it was
    resolved (or now)."""
    if not inc.service_name:
        return []
    return near(s, inc.service_name, inc.created_at - BEFORE, inc.resolved_at or utcnow(), limit=limit)
