"""Runbook suggestion: the top runbooks for an incident or alert, each with a confidence and a why.

Three kinds of evidence are combined:

1. exact matches: the alert name is one the runbook lists, the service is one it covers;
2. hybrid text similarity between the incident text and the runbook text: BM25 keyword scores and
   cosine similarity from the shared embedder (``knowledge.embedder``), each standardised over the
   runbooks (z-scores) and summed with equal weights, then turned into a share by a softmax. BM25 sees
   Snowball (Porter 2) English stems, and identifiers are split as well as kept whole
   (``KubePodCrashLooping`` -> ``kubepodcrashlooping kube pod crash loop``, ``kube_pod_status`` ->
   ``kube pod status``), so an alert's prose meets the runbook's identifiers and inflections;
3. what resolved similar past incidents (``incidents.findings["resolved_by_runbook"]``): the
   past incidents closest to this one (same embedder) vote for their runbook.

The confidence is a weighted sum of the three (alert 0.40, service 0.15, text 0.25, past 0.20),
so only a runbook that matches on every kind of evidence reaches the 0.95 needed to run on its own.
``HybridTextIndex`` alone is what ``warroom eval runbooks`` measures (the alert name is hidden there).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import snowballstemmer
from rank_bm25 import BM25Okapi

from knowledge.embedder import Encoder
from knowledge.runbooks import RunbookSpec

__all__ = ["HybridTextIndex", "Suggestion", "RunbookSuggester", "tokenize", "strip_templates", "WEIGHTS"]

WEIGHTS = {"alert": 0.40, "service": 0.15, "text": 0.25, "past": 0.20}
_WORD = re.compile(r"[A-Za-z0-9]+")
# Parts of an identifier: an acronym before a capitalised word (``API`` in ``APIServer``), a word with an
# optional capital, an all-capitals run, a number.
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_TEMPLATE = re.compile(r"\{\{.*?\}\}", re.S)
_STEMMER = snowballstemmer.stemmer("english")
_STEMS: dict[str, str] = {}
_STEM_LOCK = threading.Lock()  # a Snowball stemmer object is not safe to share between threads


def _stem(word: str) -> str:
    stem = _STEMS.get(word)
    if stem is None:
        with _STEM_LOCK:
            stem = _STEMMER.stemWord(word)
            if len(_STEMS) < 200_000:
                _STEMS[word] = stem
    return stem


def _words(text: str) -> list[str]:
    """Lower-case words; an identifier with several parts (camelCase) is kept whole and its parts added."""
    out: list[str] = []
    for w in _WORD.findall(text):
        low = w.lower()
        out.append(low)
        parts = _PART.findall(w)
        if len(parts) > 1:
            out.extend(p.lower() for p in parts)
    return out


def tokenize(text: str) -> list[str]:
    """BM25's view of a text: lower-case words and identifier parts, Snowball-stemmed."""
    return [_stem(w) for w in _words(text)]


def strip_templates(text: str) -> str:
    """Remove ``{{ ... }}`` template expressions (alert annotations carry them)."""
    return _TEMPLATE.sub(" ", text)


def _z(v: np.ndarray) -> np.ndarray:
    sd = float(v.std())
    return (v - v.mean()) / sd if sd > 1e-9 else np.zeros_like(v)


class HybridTextIndex:
    """BM25 + dense cosine over a fixed list of documents, fused by z-scores.

    Args:
        encoder: the shared embedder (``get_encoder("minilm")`` or ``"hash"``).
        dense_weight: weight of the dense z-score (BM25's is 1 - dense_weight).
    """

    def __init__(self, encoder: Encoder, dense_weight: float = 0.5) -> None:
        self.encoder = encoder
        self.dense_weight = dense_weight

    def fit(self, texts: Sequence[str]) -> HybridTextIndex:
        """Index ``texts``; returns self."""
        self.n_docs_ = len(texts)
        tokens = [tokenize(t) or ["_empty_"] for t in texts]
        self.bm25_ = BM25Okapi(tokens) if texts else None
        self.vectors_ = self.encoder.encode_documents(list(texts))
        return self

    def components(self, query: str, qvec: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(BM25 score, dense cosine) of every document, before fusion (the evaluation reports each alone).

        ``qvec`` is the query's embedding when the caller already has it (it is encoded once per query).
        """
        if self.n_docs_ == 0:
            return np.zeros(0), np.zeros(0)
        q = self.encoder.encode_queries([query])[0] if qvec is None else qvec
        dense = np.asarray(self.vectors_ @ q, dtype=np.float64)
        if self.bm25_ is None:
            return np.zeros(self.n_docs_), dense
        return np.asarray(self.bm25_.get_scores(tokenize(query)), dtype=np.float64), dense

    def fuse(self, sparse: np.ndarray, dense: np.ndarray) -> np.ndarray:
        """The fused score from :meth:`components` (z-scores over the documents, weighted sum)."""
        if self.n_docs_ <= 1:
            return dense
        return (1 - self.dense_weight) * _z(sparse) + self.dense_weight * _z(dense)

    def scores(self, query: str, qvec: np.ndarray | None = None) -> np.ndarray:
        """Fused score of every document (higher is better; z-score units)."""
        return self.fuse(*self.components(query, qvec))

    def shared_words(self, query: str, doc_text: str, limit: int = 3) -> list[str]:
        """Query words (as written, lower-case) whose stem the document also has (longest first), for the "why"."""
        doc = set(tokenize(doc_text))
        words = [w for w in dict.fromkeys(_words(query)) if len(w) > 3 and _stem(w) in doc]
        return sorted(words, key=len, reverse=True)[:limit]


@dataclass(frozen=True)
class Suggestion:
    """One suggested runbook."""

    slug: str
    version: int
    title: str
    confidence: float
    why: tuple[str, ...]
    auto_safe: bool = False
    risk: str = "low"


class RunbookSuggester:
    """Ranks runbooks for an incident (fitted on the runbooks and the past resolutions)."""

    def __init__(self, encoder: Encoder, temperature: float = 1.0, past_k: int = 5) -> None:
        self.encoder = encoder
        self.temperature = temperature
        self.past_k = past_k

    def fit(self, runbooks: Sequence[RunbookSpec], past: Sequence[tuple[str, str]] = ()) -> RunbookSuggester:
        """Index the runbooks' text and the past incidents (text, resolving runbook slug)."""
        self.runbooks_ = list(runbooks)
        self.texts_ = [rb.search_text() for rb in self.runbooks_]
        self.text_index_ = HybridTextIndex(self.encoder).fit(self.texts_)
        known = {rb.slug for rb in self.runbooks_}
        self.past_ = [(t, s) for t, s in past if s in known]
        self.past_vectors_ = self.encoder.encode_documents([t for t, _ in self.past_])
        return self

    def _past_votes(self, q: np.ndarray) -> tuple[dict[str, float], dict[str, int]]:
        if not self.past_:
            return {}, {}
        sims = self.past_vectors_ @ q
        top = np.argsort(-sims)[: self.past_k]
        votes: dict[str, float] = {}
        counts: dict[str, int] = {}
        total = 0.0
        for i in top:
            w = max(float(sims[i]), 0.0)
            slug = self.past_[i][1]
            votes[slug] = votes.get(slug, 0.0) + w
            counts[slug] = counts.get(slug, 0) + 1
            total += w
        return ({s: v / total for s, v in votes.items()} if total > 0 else {}), counts

    def suggest(
        self, text: str, *, alert_name: str | None = None, service: str | None = None, k: int = 3
    ) -> list[Suggestion]:
        """The top ``k`` runbooks for an incident's text, alert name and service."""
        if not self.runbooks_:
            return []
        query = strip_templates(text).strip() or (alert_name or service or "incident")
        qvec = self.encoder.encode_queries([query])[0]
        fused = self.text_index_.scores(query, qvec)
        expo = np.exp((fused - fused.max()) / self.temperature)
        text_share = expo / expo.sum()
        votes, counts = self._past_votes(qvec)
        out = []
        for i, rb in enumerate(self.runbooks_):
            why: list[str] = []
            alert_hit = bool(alert_name) and alert_name.lower() in {a.lower() for a in rb.alert_names}
            service_hit = bool(service) and service in rb.services
            if alert_hit:
                why.append(f"alert {alert_name} is listed by this runbook")
            if service_hit:
                why.append(f"covers service {service}")
            words = self.text_index_.shared_words(query, self.texts_[i])
            if words:
                why.append("text: " + ", ".join(words))
            if counts.get(rb.slug):
                why.append(f"resolved {counts[rb.slug]} similar past incident(s)")
            # Text: share relative to the best runbook, so a clear winner scores 1 whatever the corpus size.
            text_score = float(text_share[i] / text_share.max())
            conf = (
                WEIGHTS["alert"] * alert_hit
                + WEIGHTS["service"] * service_hit
                + WEIGHTS["text"] * text_score
                + WEIGHTS["past"] * votes.get(rb.slug, 0.0)
            )
            out.append(
                Suggestion(
                    slug=rb.slug,
                    version=rb.version,
                    title=rb.title,
                    confidence=round(min(conf, 1.0), 3),
                    why=tuple(why) or ("closest text",),
                    auto_safe=rb.auto_safe,
                    risk=rb.risk,
                )
            )
        out.sort(key=lambda s: (-s.confidence, s.slug))
        return out[:k]
