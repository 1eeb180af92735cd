"""Service dependencies, and the open incidents they relate.

Each service lists the services it calls (``depends_on`` in the people/services YAML, ``warroom experts
import``). When payments-api depends on postgres-main, an open incident on postgres-main may be the cause of one
on payments-api, and the payments-api incident is part of its impact. Both directions are followed
transitively (checkout-web -> payments-api -> postgres-main), a few hops at most; a cycle in the declared
graph ends the walk instead of looping.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from knowledge.models import Incident, Service
from knowledge.people import OPEN_STATUSES

__all__ = ["MAX_HOPS", "Related", "related_open", "related_lines", "dependency_paths", "graph"]

MAX_HOPS = 3


@dataclass(frozen=True)
class Related:
    """An open incident on a service this one's service depends on (``cause``) or that depends on it."""

    incident_id: int
    severity: int
    status: str
    title: str
    service: str
    relation: str  # "cause": upstream of us; "impact": downstream
    path: tuple[str, ...]  # services from ours to theirs, both ends included


def graph(session: Session) -> dict[str, list[str]]:
    """service -> the services it depends on (lower-case names; only services that declare some)."""
    return {name.lower(): [str(d).lower() for d in deps or []]
            for name, deps in session.execute(select(Service.name, Service.depends_on)) if deps}


def dependency_paths(deps: dict[str, list[str]], start: str, *, reverse: bool = False,
                     max_hops: int = MAX_HOPS) -> dict[str, tuple[str, ...]]:
    """Every service reachable from ``start`` within ``max_hops`` along ``depends_on`` (or against it with
    ``reverse``: who depends on ``start``), with the shortest path to it."""
    edges = deps
    if reverse:
        edges = {}
        for svc, ups in deps.items():
            for up in ups:
                edges.setdefault(up, []).append(svc)
    start = start.lower()
    paths: dict[str, tuple[str, ...]] = {start: (start,)}
    todo = deque([start])
    while todo:
        cur = todo.popleft()
        if len(paths[cur]) > max_hops:
            continue
        for nxt in edges.get(cur, ()):
            if nxt not in paths:
                paths[nxt] = (*paths[cur], nxt)
                todo.append(nxt)
    del paths[start]
    return paths


def related_open(session: Session, inc: Incident, limit: int = 5) -> list[Related]:
    """The open incidents on the services ``inc``'s service depends on (possible causes, nearest first) and on
    those that depend on it (its impact). None when its service is unknown or declares no dependencies."""
    if not inc.service_name:
        return []
    deps = graph(session)
    if not deps:
        return []
    up = dependency_paths(deps, inc.service_name)
    down = dependency_paths(deps, inc.service_name, reverse=True)
    names = set(up) | set(down)
    if not names:
        return []
    rows = session.scalars(select(Incident).where(Incident.status.in_(OPEN_STATUSES), Incident.id != inc.id,
                                                  func.lower(Incident.service_name).in_(sorted(names)))
                           .order_by(Incident.severity, Incident.created_at).limit(200)).all()
    out = []
    for r in rows:
        name = (r.service_name or "").lower()
        if name in up:
            out.append(Related(r.id, r.severity, r.status, r.title, r.service_name or "", "cause", up[name]))
        elif name in down:
            out.append(Related(r.id, r.severity, r.status, r.title, r.service_name or "", "impact", down[name]))
    out.sort(key=lambda x: (x.relation != "cause", len(x.path), x.severity, x.incident_id))
    return out[:limit]


def related_lines(related: list[Related]) -> list[str]:
    """One line each, for people (titles as stored: the caller escapes): what it is, and why it is related.
    ``a → b`` reads "a depends on b"."""
    out = []
    for r in related:
        chain = " → ".join(r.path if r.relation == "cause" else reversed(r.path))
        why = "may be the cause" if r.relation == "cause" else "may be impact of this one"
        out.append(f"#{r.incident_id} SEV{r.severity} [{r.status}] {r.service}: {r.title[:100]} ({why}: {chain})")
    return out
