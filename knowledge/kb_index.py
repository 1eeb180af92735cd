"""The in-memory knowledge index: documents, their vectors (FAISS) and BM25, kept in step with the DB.

:class:`KnowledgeIndex` is what :mod:`knowledge.search` holds per process. ``open`` loads the
persisted vectors (or starts empty when they are missing, corrupt or from another encoder) and
syncs with the database; ``sync`` embeds only documents whose fingerprint changed; ``query`` runs
the hybrid ranking.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from knowledge.bm25 import BM25, tokenize
from knowledge.db import Database
from knowledge.embedder import Encoder
from knowledge.kb_docs import Doc, clean_text, collect_documents, log_templates
from knowledge.search_types import Hit, SyncReport
from knowledge.vector_index import IndexUnusable, VectorIndex

__all__ = ["KnowledgeIndex", "Query", "Penalties", "WEIGHTS"]

log = logging.getLogger("warroom.knowledge")

# Fusion weights: dense meaning (cosine above the corpus's typical cosine, scaled to 0..1), BM25
# keywords (relative to the best keyword match of the query), and the structured signals, which are
# large enough that the same service + alert outranks wording alone. See docs/benchmarks.md for
# how the dense/keyword split was compared on the postmortem set.
WEIGHTS = {"dense": 0.7, "keyword": 0.3, "service": 0.12, "alert": 0.12, "template": 0.2}
_SENT = re.compile(r"(?<=[.!?])\s+")
_EMBED_BATCH = 64


@dataclass(frozen=True)
class Query:
    """A parsed search request (see :func:`knowledge.search.search`)."""

    text: str
    kinds: tuple[str, ...]
    k: int = 5
    service: str | None = None
    alert_name: str | None = None
    log_lines: tuple[str, ...] = ()
    filter_service: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    max_severity: int | None = None
    resolved_only: bool = False
    exclude: frozenset[str] = frozenset()
    detail: bool = True  # passages and shared words (off for bulk evaluation)


@dataclass(frozen=True)
class Penalties:
    """Feedback turned into ranking: keys to drop, and score to subtract per key."""

    drop: frozenset[str] = frozenset()
    demote: dict[str, float] = field(default_factory=dict)


def _doc_text(doc: Doc) -> str:
    return f"{doc.title}. {doc.text}" if doc.title else doc.text


def _parse(ts: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(ts) if ts else None


def _passage(text: str, terms: set[str], limit: int = 400) -> str:
    """The two-sentence window of ``text`` sharing most query terms (headings skipped)."""
    sents = [s for s in _SENT.split(text) if len(s.strip()) >= 20]
    if not sents:
        return text[:limit]
    best, best_i = -1.0, 0
    for i in range(len(sents)):
        window = " ".join(sents[i:i + 2])
        score = len(terms & set(tokenize(window))) - 0.001 * i
        if score > best:
            best, best_i = score, i
    out = " ".join(sents[best_i:best_i + 2])
    return out if len(out) <= limit else out[: limit - 1] + "…"


class KnowledgeIndex:
    """Documents + vectors + BM25 for one encoder, optionally persisted in ``directory``."""

    def __init__(self, encoder: Encoder, directory: Path | None = None, vindex: VectorIndex | None = None) -> None:
        self.encoder = encoder
        self.directory = directory
        self.vindex = vindex or VectorIndex(encoder.name, encoder.dim)
        self.docs: dict[str, Doc] = {}
        self._keys: list[str] = []
        self._bm25 = BM25().fit([])
        self.cos0 = 0.0  # median cosine between documents: "unrelated" for this encoder and corpus
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()  # one sync at a time; searches go on meanwhile

    # --- building -----------------------------------------------------------------------------
    @classmethod
    def open(cls, *, db: Database, directory: Path, encoder: Encoder) -> tuple[KnowledgeIndex, SyncReport]:
        """Load the persisted index (or start empty) and bring it in step with the database."""
        reason = ""
        try:
            vi = VectorIndex.load(directory, encoder.name, encoder.dim)
        except IndexUnusable as exc:
            reason = str(exc)
            log.warning("vector index unusable (%s): rebuilding from the database", reason)
            vi = None
        kb = cls(encoder, directory, vi)
        with db.session() as s:
            docs = collect_documents(s)
        report = kb.sync_docs(docs)
        if reason:
            report = SyncReport(**{**report.__dict__, "rebuilt": True, "reason": reason})
        return kb, report

    @classmethod
    def from_docs(cls, docs: Sequence[Doc], encoder: Encoder) -> KnowledgeIndex:
        """An in-memory index over given documents (evaluation, tests, benchmarks)."""
        kb = cls(encoder)
        kb.sync_docs(docs, save=False)
        return kb

    def drift(self, docs: Sequence[Doc]) -> tuple[list[Doc], list[str], list[str]]:
        """Documents to embed (new or edited), keys to drop, and which of the first are edits."""
        have = self.vindex.fingerprints()
        now = {d.key for d in docs}
        changed = [d for d in docs if have.get(d.key) != d.fingerprint()]
        edited = [d.key for d in changed if d.key in have]
        gone = [k for k in have if k not in now]
        return changed, gone, edited

    def sync_docs(self, docs: Sequence[Doc], *, save: bool = True, rebuild: bool = False) -> SyncReport:
        """Embed what changed, drop what is gone, rebuild BM25 and persist."""
        with self._sync_lock:
            return self._sync_docs(docs, save=save, rebuild=rebuild)

    def _sync_docs(self, docs: Sequence[Doc], *, save: bool, rebuild: bool) -> SyncReport:
        start = time.perf_counter()
        if rebuild:
            self.vindex = VectorIndex(self.encoder.name, self.encoder.dim)
        changed, gone, edited = self.drift(docs)
        for i in range(0, len(changed), _EMBED_BATCH):
            batch = changed[i:i + _EMBED_BATCH]
            vecs = self.encoder.encode_documents([_doc_text(d) for d in batch])
            self.vindex.upsert([d.key for d in batch], [d.fingerprint() for d in batch], vecs)
        self.vindex.remove(gone)
        keys = [d.key for d in docs]
        bm25 = BM25().fit([_doc_text(d) for d in docs])
        cos0 = self._typical_cosine(keys)
        with self._lock:
            self.docs, self._keys, self._bm25, self.cos0 = {d.key: d for d in docs}, keys, bm25, cos0
        if save and self.directory is not None and (changed or gone or rebuild
                                                    or not (self.directory / "meta.json").exists()):
            self.vindex.save(self.directory)
        return SyncReport(encoder=f"{self.encoder.name}/{self.encoder.dim}", total=len(docs),
                          added=len(changed) - len(edited), updated=len(edited), removed=len(gone),
                          rebuilt=rebuild, seconds=round(time.perf_counter() - start, 3))

    def _typical_cosine(self, keys: list[str], sample: int = 400) -> float:
        """Median cosine between documents (a sample of up to ``sample`` of them)."""
        if len(keys) < 3:
            return 0.0
        rng = np.random.default_rng(0)
        pick = [keys[i] for i in rng.choice(len(keys), size=min(sample, len(keys)), replace=False)]
        vecs = self.vindex.vectors_of(pick)
        sims = vecs @ vecs.T
        off = sims[~np.eye(len(pick), dtype=bool)]
        return float(np.clip(np.median(off), 0.0, 0.9))

    # --- querying -----------------------------------------------------------------------------
    def _allowed(self, q: Query, docs: dict[str, Doc]) -> set[str] | None:
        restrictive = (set(q.kinds) != {d.kind for d in docs.values()} or q.filter_service or q.since or q.until
                       or q.max_severity is not None or q.resolved_only or q.exclude)
        if not restrictive:
            return None
        out = set()
        for key, d in docs.items():
            if d.kind not in q.kinds or key in q.exclude:
                continue
            if q.filter_service and q.filter_service not in (d.service, *d.services):
                continue
            created = _parse(d.created_at)  # a runbook is not an event: like the severity, time keeps it
            if d.kind != "runbook" and ((q.since and (created is None or created < q.since))
                                        or (q.until and (created is None or created > q.until))):
                continue
            if q.max_severity is not None and d.kind != "runbook" and (d.severity is None
                                                                       or d.severity > q.max_severity):
                continue
            if q.resolved_only and d.kind == "incident" and d.status not in ("resolved", "closed"):
                continue
            out.add(key)
        return out

    def query(self, q: Query, penalties: Penalties | None = None) -> list[Hit]:
        """Hybrid ranking: dense + BM25 + structured signals, fused, feedback applied."""
        penalties = penalties or Penalties()
        with self._lock:
            docs, keys, bm25 = self.docs, self._keys, self._bm25
        if not docs:
            return []
        allowed = self._allowed(q, docs)
        if allowed is not None:
            allowed -= penalties.drop
        elif penalties.drop:
            allowed = set(docs) - penalties.drop
        n_cand = max(50, q.k * 10)
        qv = self.encoder.encode_queries([clean_text(q.text)])[0]
        dense = dict(self.vindex.search(qv, n_cand, allowed))
        kw = bm25.scores(q.text)
        if allowed is not None:
            mask = np.zeros(len(keys), dtype=bool)
            mask[[i for i, k in enumerate(keys) if k in allowed]] = True
            kw = np.where(mask, kw, 0.0)
        top_kw = [i for i in np.argsort(-kw)[:n_cand] if kw[i] > 0]
        kw_max = float(kw.max()) if kw.size else 0.0
        row = {k: i for i, k in enumerate(keys)}
        cands = list(dict.fromkeys([*dense, *(keys[i] for i in top_kw)]))
        missing = [c for c in cands if c not in dense]
        if missing:
            dense.update(zip(missing, self.vindex.similarity(qv, missing).tolist(), strict=True))
        q_templates = set(log_templates(q.text, q.log_lines))
        scored: list[tuple[float, str, list[str]]] = []
        for key in cands:
            d = docs.get(key)
            if d is None:
                continue
            cos = max(0.0, float(dense.get(key, 0.0)))
            kwr = float(kw[row[key]]) / kw_max if kw_max > 0 else 0.0
            cal = max(0.0, (cos - self.cos0) / (1.0 - self.cos0))
            score = WEIGHTS["dense"] * cal + WEIGHTS["keyword"] * kwr
            why: list[str] = []
            if q.service and q.service in (d.service, *d.services):
                score += WEIGHTS["service"]
                why.append(f"same service {q.service}")
            if q.alert_name and d.alert_name and q.alert_name.lower() == d.alert_name.lower():
                score += WEIGHTS["alert"]
                why.append(f"same alert {d.alert_name}")
            if q_templates and q_templates & set(d.templates):
                score += WEIGHTS["template"]
                why.append("same log message")
            demote = penalties.demote.get(key, 0.0)
            if demote:
                score -= demote
                why.append("marked not similar before")
            scored.append((score, key, why))
        scored.sort(key=lambda p: (-p[0], p[1]))
        terms = set(tokenize(q.text))
        return [self._hit(docs[key], score, why, float(dense.get(key, 0.0)),
                          float(kw[row[key]]) / kw_max if kw_max > 0 else 0.0, q, terms, row[key], bm25)
                for score, key, why in scored[: q.k]]

    def _hit(self, d: Doc, score: float, why: list[str], cos: float, kwr: float, q: Query, terms: set[str],
             row: int, bm25: BM25) -> Hit:
        cos = max(0.0, cos)
        if q.detail:
            shared = bm25.shared_terms(q.text, row, 3) if kwr > 0 else []
            why = [*why, "words: " + ", ".join(shared)] if shared else list(why)
        why = [*why, f"meaning {cos:.2f}"]
        return Hit(
            kind=d.kind, id=d.ref_id, key=d.key, title=d.title, score=round(max(0.0, min(1.0, score)), 4),
            why="; ".join(why), link=d.link, resolution=d.resolution, resolved_by=d.resolved_by,
            incident_id=d.incident_id, postmortem_id=d.postmortem_id, service=d.service, severity=d.severity,
            status=d.status, passage=_passage(d.text, terms) if q.detail else "", dense=round(cos, 4),
            keyword=round(kwr, 4), created_at=d.created_at)
