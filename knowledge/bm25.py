"""Okapi BM25 over a sparse term matrix (scores every document of a query in one sparse product).

``rank_bm25`` loops over documents in Python for every query term; this keeps the same formula in a
SciPy CSR matrix so a query over thousands of documents costs well under a millisecond.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

__all__ = ["BM25", "tokenize", "surface_tokens"]

_WORD = re.compile(r"[a-z0-9][a-z0-9_.\-]*[a-z0-9]|[a-z0-9]")
_EXTRA_STOP = frozenset({"did", "does", "have", "seen", "before", "happened", "warroom", "hi", "hey", "please"})
_STOP = frozenset(ENGLISH_STOP_WORDS) | _EXTRA_STOP


def _stem(word: str) -> str:
    """A light suffix stripper: restarted/restarting/restarts -> restart, expire/expired -> expir."""
    if len(word) <= 4 or not word.isalpha():
        return word
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not (suffix == "s" and word.endswith("ss")):
            word = word[: -len(suffix)] + repl
            break
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


def surface_tokens(text: str) -> list[tuple[str, str]]:
    """``(term, word as written)`` pairs: lower-cased, stop words dropped, light stemming;
    ``payments-api`` also yields ``payments`` and ``api``."""
    out: list[tuple[str, str]] = []
    for w in _WORD.findall(text.lower()):
        parts = re.split(r"[_.\-]", w)
        if len(parts) > 1:
            out.append((w, w))
        # Dropped: stop words, numbers but HTTP-status-like ones, and single letters ("what's" -> "s").
        out.extend((_stem(p), p) for p in parts if len(p) > 1 and p not in _STOP and not (p.isdigit() and len(p) != 3))
    return out


def tokenize(text: str) -> list[str]:
    """The terms of a text (see :func:`surface_tokens`)."""
    return [t for t, _ in surface_tokens(text)]


class BM25:
    """Okapi BM25 (k1, b) fitted on a list of texts."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b

    def fit(self, texts: Sequence[str]) -> BM25:
        """Build the weighted term matrix; returns self."""
        vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        lengths = np.zeros(len(texts), dtype=np.float32)
        for i, t in enumerate(texts):
            counts = Counter(tokenize(t))
            lengths[i] = sum(counts.values())
            for term, c in counts.items():
                rows.append(i)
                cols.append(vocab.setdefault(term, len(vocab)))
                vals.append(c)
        n = len(texts)
        tf = sparse.csr_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)), shape=(n, max(1, len(vocab))))
        df = np.bincount(np.asarray(cols, dtype=np.int64), minlength=max(1, len(vocab))).astype(np.float32)
        self.idf_ = np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        avg = float(lengths.mean()) if n else 1.0
        norm = self.k1 * (1 - self.b + self.b * lengths / max(avg, 1e-9))
        tf = tf.tocoo()
        w = tf.data * (self.k1 + 1) / (tf.data + norm[tf.row])
        self.matrix_ = sparse.csc_matrix((w, (tf.row, tf.col)), shape=tf.shape)
        self.vocab_ = vocab
        return self

    def query_terms(self, text: str) -> list[int]:
        """Distinct vocabulary ids of a query's words."""
        return list(dict.fromkeys(self.vocab_[t] for t in tokenize(text) if t in self.vocab_))

    def scores(self, text: str) -> np.ndarray:
        """BM25 score of every document for ``text``."""
        ids = self.query_terms(text)
        if not ids:
            return np.zeros(self.matrix_.shape[0], dtype=np.float32)
        return np.asarray(self.matrix_[:, ids] @ self.idf_[ids]).ravel()

    def shared_terms(self, text: str, doc: int, limit: int = 4) -> list[str]:
        """The query words found in document ``doc``, rarest first, as the query wrote them."""
        written = {}
        for term, word in surface_tokens(text):
            written.setdefault(term, word)
        present = [(t, self.vocab_[t]) for t in written if t in self.vocab_ and self.matrix_[doc, self.vocab_[t]] > 0]
        present.sort(key=lambda p: -self.idf_[p[1]])
        return [written[t] for t, _ in present[:limit]]
