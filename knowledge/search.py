"""Search the knowledge base: similar past incidents, postmortems and runbooks (the public API).

Other skills (routing, runbooks, postmortems, questions) call this module; nothing here imports
``bot`` or ``skills``. Two entry points::

    from knowledge.search import search, sync_index

    hits = search(ctx, text="payments-api 503, remaining connection slots are reserved",
                  kinds=("incident", "postmortem"), service="payments-api", k=5)
    for h in hits:
        print(h.kind, h.id, h.title, round(h.score, 3), h.why, h.resolution, h.resolved_by, h.link)

    report = sync_index(ctx)   # after adding/editing/deleting incidents, postmortems or runbooks

``ctx`` is anything with ``db`` (:class:`knowledge.db.Database`), ``data_dir``, ``settings`` (its
``embedder`` field picks the encoder: "minilm" or "hash") and a ``resources`` dict, i.e. a
``skills.base.SkillContext``. The first call loads the persisted index (or rebuilds it from the
database when it is missing, corrupt or built with another encoder) and keeps it in
``ctx.resources["kb_index"]``; later calls reuse it. Every replica keeps its own copy; ``sync_index``
brings it in step with the database (it is also the consistency check: it compares a fingerprint of
every indexed document with the database and re-embeds, adds or drops what drifted). The bot
registers the job kind ``index.sync`` (payload ``{}``): submit it after changing incidents,
postmortems or runbooks.

``search`` arguments (all keyword-only after ``ctx``):

- ``text``: the query (an incident title + description, a log line, a question). Empty text raises
  :class:`SearchError`; very long text is cut to its first 8,000 characters.
- ``kinds``: which document kinds: ``"incident"``, ``"postmortem"``, ``"runbook"``.
- ``service``, ``alert_name``, ``log_lines``: structured signals; a document with the same service,
  alert name or log template ranks higher (they are *signals*, not filters).
- ``filter_service``, ``since`` (datetime), ``until`` (datetime), ``max_severity`` (1 worst .. 4;
  keeps documents at least that severe), ``resolved_only``: hard filters.
- ``exclude``: document keys to leave out (e.g. ``("incident:42",)``, the incident being triaged).
- ``incident_id``: the incident the search is for; "not similar" feedback given on that incident
  removes those documents, and feedback given elsewhere on the same wording demotes them.
- ``k``: how many hits (1..50).

Ranking is hybrid: dense cosine similarity (FAISS), BM25 keyword scores and the structured signals,
fused into one score in 0..1; every :class:`Hit` carries a short ``why`` ("same service
payments-api; words: connection, slots; meaning 0.71").
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Hit", "SearchError", "SyncReport", "KINDS"]

KINDS: tuple[str, ...] = ("incident", "postmortem", "runbook")


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
