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

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select

from knowledge.db import Database
from knowledge.embedder import Encoder, get_encoder
from knowledge.kb_docs import collect_documents
from knowledge.kb_index import KnowledgeIndex, Penalties, Query
from knowledge.models import Feedback, Incident, Postmortem, Runbook, utcnow
from knowledge.search_types import Hit, SearchError, SyncReport
from knowledge.vector_index import IndexUnusable, VectorIndex

__all__ = ["Hit", "SearchError", "SyncReport", "KINDS", "search", "sync_index", "open_index", "encoder_for",
           "check_index", "index_dir",
           "record_not_similar", "undo_feedback", "MAX_QUERY_CHARS", "AUTO_SYNC_S", "STAMP_CHECK_S", "db_stamp"]

KINDS: tuple[str, ...] = ("incident", "postmortem", "runbook")
MAX_QUERY_CHARS = 8000
AUTO_SYNC_S = 30.0  # a search re-checks every document when the index is older than this
STAMP_CHECK_S = 2.0  # ... and, at most this often, compares a cheap stamp of the database (other replicas' writes)
RESOURCE = "kb_index"
_OPEN_LOCK = threading.Lock()


class KBContext(Protocol):
    """What the search needs from its caller (``skills.base.SkillContext`` fits)."""

    db: Database
    data_dir: Path
    settings: Any
    resources: dict[str, Any]


def encoder_for(ctx: KBContext) -> Encoder:
    """The encoder named by ``ctx.settings.embedder`` (default "minilm")."""
    return get_encoder(getattr(ctx.settings, "embedder", None) or "minilm")


def index_dir(ctx: KBContext) -> Path:
    """Where the vector index lives: ``<data_dir>/vector_index``."""
    return Path(ctx.data_dir) / "vector_index"


def _open(ctx: KBContext) -> tuple[KnowledgeIndex, SyncReport | None]:
    enc = encoder_for(ctx)
    with _OPEN_LOCK:
        kb = ctx.resources.get(RESOURCE)
        if isinstance(kb, KnowledgeIndex) and kb.encoder.name == enc.name:
            return kb, None
        stamp = db_stamp(ctx.db)
        kb, report = KnowledgeIndex.open(db=ctx.db, directory=index_dir(ctx), encoder=enc)
        ctx.resources[RESOURCE + ".stamp"] = stamp
        ctx.resources[RESOURCE] = kb
        ctx.resources[RESOURCE + ".synced"] = time.monotonic()
        ctx.resources[RESOURCE + ".report"] = report
        return kb, report


def open_index(ctx: KBContext) -> KnowledgeIndex:
    """The process-wide index for ``ctx``: loaded (or rebuilt) once, then kept in ``ctx.resources``."""
    return _open(ctx)[0]


def db_stamp(db: Database) -> tuple[Any, ...]:
    """A cheap version stamp of what the index holds: counts, newest ids and newest state changes.

    One small aggregate query per table. Any replica that adds an incident, publishes a postmortem or
    (de)activates a runbook changes it, so every other replica notices within ``STAMP_CHECK_S`` and syncs.
    Edits that change none of these (a retitled incident) are caught by the full check every ``AUTO_SYNC_S``.
    """
    with db.session() as s:
        inc = s.execute(select(func.count(Incident.id), func.max(Incident.id), func.max(Incident.resolved_at),
                               func.max(Incident.acknowledged_at))).one()
        pm = s.execute(select(func.count(Postmortem.id), func.max(Postmortem.id), func.max(Postmortem.published_at))
                       .where(Postmortem.status.in_(("published", "withdrawn")))).one()
        rb = s.execute(select(func.count(Runbook.id), func.max(Runbook.id)).where(Runbook.active.is_(True))).one()
    return (*inc, *pm, *rb)


def _maybe_sync(ctx: KBContext) -> None:
    now = time.monotonic()
    if now - float(ctx.resources.get(RESOURCE + ".synced", 0.0)) > AUTO_SYNC_S:
        sync_index(ctx)
        return
    if now - float(ctx.resources.get(RESOURCE + ".stamp_checked", 0.0)) < STAMP_CHECK_S:
        return
    ctx.resources[RESOURCE + ".stamp_checked"] = now
    stamp = db_stamp(ctx.db)
    if stamp != ctx.resources.get(RESOURCE + ".stamp"):
        sync_index(ctx)


def sync_index(ctx: KBContext, *, dry_run: bool = False, rebuild: bool = False) -> SyncReport:
    """Bring the index in step with the database (the consistency check and repair).

    Args:
        ctx: the skill context.
        dry_run: only report the drift (documents missing, stale or deleted); change nothing.
        rebuild: re-embed every document from scratch.

    Returns:
        What was (or, with ``dry_run``, would be) added, updated and removed.
    """
    kb, opened = _open(ctx)
    if opened is not None and not dry_run and not rebuild:
        return opened  # opening just synced with the database
    stamp = db_stamp(ctx.db)  # taken before reading: a write in between makes the next check sync again
    with ctx.db.session() as s:
        docs = collect_documents(s)
    if dry_run:
        changed, gone, edited = kb.drift(docs)
        return SyncReport(encoder=f"{kb.encoder.name}/{kb.encoder.dim}", total=len(docs),
                          added=len(changed) - len(edited), updated=len(edited), removed=len(gone), rebuilt=False,
                          reason="dry run")
    report = kb.sync_docs(docs, rebuild=rebuild)
    ctx.resources[RESOURCE + ".synced"] = time.monotonic()
    ctx.resources[RESOURCE + ".stamp"] = stamp
    return report


def check_index(ctx: KBContext) -> dict[str, Any]:
    """Compare the index *on disk* with the database, changing nothing.

    Returns:
        ``on_disk`` ("ok" or why the file cannot be used), and counts of documents ``missing`` from
        the index, ``stale`` (edited since they were embedded) and ``deleted`` (gone from the database).
    """
    enc = encoder_for(ctx)
    with ctx.db.session() as s:
        docs = collect_documents(s)
    try:
        vi = VectorIndex.load(index_dir(ctx), enc.name, enc.dim)
    except IndexUnusable as exc:
        return {"on_disk": f"unusable: {exc}", "missing": len(docs), "stale": 0, "deleted": 0,
                "total": len(docs), "encoder": f"{enc.name}/{enc.dim}"}
    changed, gone, edited = KnowledgeIndex(enc, None, vi).drift(docs)
    return {"on_disk": "ok", "missing": len(changed) - len(edited), "stale": len(edited), "deleted": len(gone),
            "total": len(docs), "encoder": f"{enc.name}/{enc.dim}"}


def _norm(text: str) -> str:
    return " ".join(text.lower().split())[:500]


def record_not_similar(*, db: Database, target: str, incident_id: int | None, user_id: str | None,
                       query: str = "") -> int | None:
    """Store "not similar" feedback on a hit; return its id, or None when this user already said so."""
    with db.session() as s:
        q = select(Feedback.id).where(Feedback.kind == "not_similar", Feedback.target == target,
                                      Feedback.user_id == user_id)
        q = q.where(Feedback.incident_id == incident_id) if incident_id is not None else q.where(
            Feedback.incident_id.is_(None))
        if incident_id is None:
            for fid in s.scalars(q):
                fb = s.get(Feedback, fid)
                if fb is not None and (fb.data or {}).get("query_norm") == _norm(query):
                    return None
        elif s.scalar(q) is not None:
            return None
        fb = Feedback(kind="not_similar", incident_id=incident_id, target=target, user_id=user_id,
                      data={"query": query[:2000], "query_norm": _norm(query)})
        s.add(fb)
        s.flush()
        return fb.id


def undo_feedback(*, db: Database, feedback_id: int, kind: str, user_id: str | None) -> tuple[Feedback, bool]:
    """Take back one's own feedback of ``kind`` (a click by mistake): it becomes ``<kind>_undone``, which nothing
    learns from, and stays on record. Return the row (detached) and whether this call undid it (False: it was
    undone before).

    Raises:
        LookupError: no such feedback of that kind.
        PermissionError: someone else gave it (the message names them).
    """
    with db.session() as s:
        fb = s.get(Feedback, feedback_id)
        if fb is None or fb.kind not in (kind, f"{kind}_undone"):
            raise LookupError(f"no {kind} feedback #{feedback_id}")
        now = fb.kind == kind
        if now:
            if user_id is None or fb.user_id != user_id:
                raise PermissionError(f"only <@{fb.user_id}>, who gave it, can undo it")
            fb.kind = f"{kind}_undone"
            fb.data = {**(fb.data or {}), "undone_by": user_id,
                       "undone_at": utcnow().isoformat(timespec="seconds")}
        s.flush()
        s.expunge(fb)
    return fb, now


def _penalties(db: Database, incident_id: int | None, text: str) -> Penalties:
    norm = _norm(text)
    drop: set[str] = set()
    votes: Counter[str] = Counter()
    with db.session() as s:
        for fb in s.scalars(select(Feedback).where(Feedback.kind == "not_similar")):
            if not fb.target:
                continue
            same_incident = incident_id is not None and fb.incident_id == incident_id
            if same_incident or (norm and (fb.data or {}).get("query_norm") == norm):
                drop.add(fb.target)
            else:
                votes[fb.target] += 1
    return Penalties(drop=frozenset(drop), demote={k: min(0.2, 0.05 * v) for k, v in votes.items()})


def _clean_query(text: object) -> str:
    if not isinstance(text, str):
        raise SearchError("the query must be text")
    text = text.strip()[:MAX_QUERY_CHARS]
    if not any(ch.isalnum() for ch in text):
        raise SearchError("nothing to search for: give me a few words, an alert or a log line")
    return text


def search(ctx: KBContext, *, text: str, kinds: Iterable[str] = KINDS, service: str | None = None,
           alert_name: str | None = None, log_lines: Iterable[str] = (), filter_service: str | None = None,
           since: dt.datetime | None = None, until: dt.datetime | None = None, max_severity: int | None = None,
           resolved_only: bool = False, exclude: Iterable[str] = (), incident_id: int | None = None,
           k: int = 5) -> list[Hit]:
    """Hybrid search of the knowledge base; see the module docstring for every argument.

    Raises:
        SearchError: empty query, unknown kind, or ``k`` outside 1..50.
    """
    clean = _clean_query(text)
    kinds_t = tuple(kinds)
    unknown = [x for x in kinds_t if x not in KINDS]
    if unknown or not kinds_t:
        raise SearchError(f"unknown kind(s) {unknown}: use {', '.join(KINDS)}")
    if not 1 <= k <= 50:
        raise SearchError("k must be between 1 and 50")
    kb = open_index(ctx)
    _maybe_sync(ctx)
    q = Query(text=clean, kinds=kinds_t, k=k, service=service, alert_name=alert_name,
              log_lines=tuple(str(x) for x in log_lines), filter_service=filter_service, since=since, until=until,
              max_severity=max_severity, resolved_only=resolved_only, exclude=frozenset(exclude))
    return kb.query(q, _penalties(ctx.db, incident_id, clean))
