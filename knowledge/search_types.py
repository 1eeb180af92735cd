"""Result types of the knowledge-base search (re-exported by :mod:`knowledge.search`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Hit", "SearchError", "SyncReport"]


class SearchError(ValueError):
    """The query cannot be searched (empty, or only punctuation); the message is for a person."""


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        kind: "incident", "postmortem" or "runbook".
        id: the row's id as text (incident id, postmortem id, runbook slug).
        key: ``"<kind>:<id>"``, unique in the index.
        title: the document's title.
        score: fused relevance in 0..1 (higher is better).
        why: a short human reason it matched.
        link: where to read it (``incident #101``, ``postmortem #7``, ``runbook restart-service``).
        resolution: what fixed it (incidents and postmortems), or the runbook's first step.
        resolved_by: who or what resolved it (runbook slug or assignee), when known.
        incident_id: the incident it belongs to, if any.
        postmortem_id: the published postmortem of that incident, if any.
        service: the service it concerns.
        severity: 1 (worst) .. 4, incidents and postmortems only.
        status: the incident status or "published"/"active".
        passage: the best-matching passage of the document (for cited answers).
        dense: cosine similarity of query and document (0..1).
        keyword: BM25 score relative to the best keyword match of this query (0..1).
        created_at: when the document was created or published (ISO 8601, UTC).
    """

    kind: str
    id: str
    key: str
    title: str
    score: float
    why: str
    link: str
    resolution: str = ""
    resolved_by: str | None = None
    incident_id: int | None = None
    postmortem_id: int | None = None
    service: str | None = None
    severity: int | None = None
    status: str = ""
    passage: str = ""
    dense: float = 0.0
    keyword: float = 0.0
    created_at: str | None = None


@dataclass(frozen=True)
class SyncReport:
    """What :func:`sync_index` did."""

    encoder: str
    total: int
    added: int
    updated: int
    removed: int
    rebuilt: bool
    reason: str = ""
    seconds: float = 0.0
