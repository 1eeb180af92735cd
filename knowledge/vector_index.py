"""A persisted FAISS index of document vectors, tagged with the encoder that made them.

Vectors are L2-normalised, so inner product is cosine similarity. Each vector lives in a *slot*
(its FAISS id); a document key maps to one slot. Editing a document puts its new vector in a new
slot and retires the old one; retired slots are skipped at search time and squeezed out by
:meth:`VectorIndex.compact` when they pile up.

Exact search (``IndexFlatIP``) is used while the index is small; beyond ``approx_threshold``
(20,000) vectors the index becomes HNSW (``IndexHNSWFlat``, M=32), and beyond ``ivf_threshold``
(300,000) IVF (``IndexIVFFlat``, sqrt(n) lists, 16 probed), whose build stays affordable on two
cores where HNSW's does not. The thresholds come from ``bench/similar_bench.py`` (see
docs/benchmarks.md): exact search p50 passes 5 ms at about 20,000 vectors on this project's 2-core
machines.

On disk (``<dir>/``): ``index.faiss``, ``slots.json`` (slot -> key and fingerprint) and
``meta.json`` (format, encoder name, dimension, kind, counts and SHA-256 of the other two files,
written last). :meth:`VectorIndex.load` refuses anything that does not match exactly (missing,
corrupt, truncated, other encoder or dimension) with :class:`IndexUnusable`, and the caller rebuilds.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import faiss

__all__ = ["VectorIndex", "IndexUnusable", "FORMAT", "DEFAULT_APPROX_THRESHOLD", "DEFAULT_IVF_THRESHOLD"]

FORMAT = 1
DEFAULT_APPROX_THRESHOLD = 20_000
DEFAULT_IVF_THRESHOLD = 300_000
_EXACT_SUBSET = 50_000  # a filter that leaves fewer slots than this is searched exactly


class IndexUnusable(Exception):
    """The index on disk cannot be trusted; the message says why (rebuild it)."""


@dataclass(frozen=True)
class _Slot:
    key: str
    fingerprint: str


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class VectorIndex:
    """Document vectors in FAISS with key bookkeeping, tombstones and persistence."""

    def __init__(self, encoder: str, dim: int, *, approx_threshold: int = DEFAULT_APPROX_THRESHOLD,
                 ivf_threshold: int = DEFAULT_IVF_THRESHOLD, hnsw_m: int = 32, ef_construction: int = 80,
                 ef_search: int = 64, nprobe: int = 16) -> None:
        self.encoder = encoder
        self.dim = dim
        self.approx_threshold = approx_threshold
        self.ivf_threshold = ivf_threshold
        self.nprobe = nprobe
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self._slots: list[_Slot | None] = []
        self._by_key: dict[str, int] = {}
        self._lock = threading.RLock()
        self._index: Any = self._new_index(0)

    # --- construction -------------------------------------------------------------------------
    def _new_index(self, n: int, data: np.ndarray | None = None) -> faiss.Index:
        import faiss

        if n >= self.ivf_threshold and data is not None:
            nlist = max(16, int(np.sqrt(n)))
            idx = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            sample = data[np.random.default_rng(0).choice(data.shape[0], size=min(data.shape[0], 40 * nlist),
                                                          replace=False)]
            idx.train(np.ascontiguousarray(sample))
            idx.nprobe = self.nprobe
            idx.set_direct_map_type(faiss.DirectMap.Array)  # reconstruct(slot) for re-ranking and compaction
            return idx
        if n >= self.approx_threshold:
            idx = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            idx.hnsw.efConstruction = self.ef_construction
            idx.hnsw.efSearch = self.ef_search
            return idx
        return faiss.IndexFlatIP(self.dim)

    @property
    def kind(self) -> str:
        """``"flat"`` (exact), ``"hnsw"`` or ``"ivf"`` (approximate)."""
        if hasattr(self._index, "hnsw"):
            return "hnsw"
        return "ivf" if hasattr(self._index, "nprobe") else "flat"

    def __len__(self) -> int:
        return len(self._by_key)

    @property
    def dead(self) -> int:
        """Retired slots still held by FAISS."""
        return len(self._slots) - len(self._by_key)

    def fingerprints(self) -> dict[str, str]:
        """Key -> fingerprint of every live document."""
        with self._lock:
            return {k: self._slots[s].fingerprint for k, s in self._by_key.items()}  # type: ignore[union-attr]

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        if v.ndim != 2 or v.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape (n, {self.dim}), got {v.shape}")
        return v

    def upsert(self, keys: list[str], fingerprints: list[str], vectors: np.ndarray) -> None:
        """Add documents, or replace the vectors of keys already present."""
        v = self._check(vectors)
        if not (len(keys) == len(fingerprints) == v.shape[0]):
            raise ValueError("keys, fingerprints and vectors differ in length")
        with self._lock:
            for key in keys:
                old = self._by_key.pop(key, None)
                if old is not None:
                    self._slots[old] = None
            start = len(self._slots)
            size = len(self._by_key) + len(keys)
            if (self.kind == "flat" and size >= self.approx_threshold) or (self.kind != "ivf"
                                                                           and size >= self.ivf_threshold):
                self._rebuild(extra=v)
            else:
                self._index.add(v)
            for i, (key, fp) in enumerate(zip(keys, fingerprints, strict=True)):
                self._slots.append(_Slot(key, fp))
                self._by_key[key] = start + i
            if self.dead > 1000 and self.dead > len(self._slots) // 4:
                self.compact()

    def remove(self, keys: Iterable[str]) -> int:
        """Retire documents; returns how many were present."""
        n = 0
        with self._lock:
            for key in keys:
                slot = self._by_key.pop(key, None)
                if slot is not None:
                    self._slots[slot] = None
                    n += 1
        return n

    def _get(self, slots: Sequence[int] | np.ndarray) -> np.ndarray:
        """The vectors of these slots (a view of FAISS's storage where it allows, else reconstructed)."""
        import faiss

        ids = np.asarray(slots, dtype=np.int64)
        if ids.size == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.kind == "ivf":
            return self._index.reconstruct_batch(ids)
        flat = faiss.downcast_index(self._index.storage) if self.kind == "hnsw" else self._index
        view = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * self.dim).reshape(flat.ntotal, self.dim)
        return view[ids]

    def _rebuild(self, extra: np.ndarray | None = None) -> None:
        live = [s for s in range(len(self._slots)) if self._slots[s] is not None]
        parts = [self._get(live)] if live else []
        if extra is not None:
            parts.append(extra)
        data = np.concatenate(parts) if parts else np.zeros((0, self.dim), dtype=np.float32)
        self._slots = [self._slots[s] for s in live]
        self._by_key = {s.key: i for i, s in enumerate(self._slots) if s is not None}
        index = self._new_index(data.shape[0], data)
        if data.shape[0]:
            index.add(np.ascontiguousarray(data))
        self._index = index

    def compact(self) -> None:
        """Drop retired slots (rebuilds the FAISS index; exact or HNSW by size)."""
        with self._lock:
            self._rebuild()

    # --- search -------------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """The ``k`` nearest live documents to one query vector.

        Args:
            query: one normalised vector of the index's dimension.
            k: how many results.
            allowed: only these keys may be returned (None: any).

        Returns:
            ``(key, cosine)`` pairs, best first.
        """
        q = self._check(np.asarray(query, dtype=np.float32).reshape(1, -1))
        with self._lock:
            if not self._by_key or k <= 0:
                return []
            if allowed is not None and len(allowed) <= _EXACT_SUBSET:
                slots = np.fromiter((self._by_key[key] for key in allowed if key in self._by_key), dtype=np.int64)
                if slots.size == 0:
                    return []
                scores = self._get(slots) @ q[0]
                top = np.argsort(-scores)[:k]
                return [(self._slots[int(slots[i])].key, float(scores[i])) for i in top]  # type: ignore[union-attr]
            want = min(len(self._slots), k + self.dead + 8)
            while True:
                if self.kind == "hnsw":
                    self._index.hnsw.efSearch = max(self.ef_search, want)
                scores, ids = self._index.search(q, want)
                out: list[tuple[str, float]] = []
                for sid, sc in zip(ids[0], scores[0], strict=True):
                    slot = self._slots[int(sid)] if sid >= 0 else None
                    if slot is not None and (allowed is None or slot.key in allowed):
                        out.append((slot.key, float(sc)))
                if len(out) >= k or want >= len(self._slots):
                    return out[:k]
                want = min(len(self._slots), want * 4)

    def vectors_of(self, keys: list[str]) -> np.ndarray:
        """A copy of the vectors of these (live) keys, in order."""
        with self._lock:
            return self._get([self._by_key[k] for k in keys]).copy()

    def similarity(self, query: np.ndarray, keys: list[str]) -> np.ndarray:
        """Cosine of one query vector with the given documents (0 for keys not indexed)."""
        q = self._check(np.asarray(query, dtype=np.float32).reshape(1, -1))[0]
        with self._lock:
            slots = [self._by_key.get(k, -1) for k in keys]
            found = np.asarray([s for s in slots if s >= 0], dtype=np.int64)
            out = np.zeros(len(keys), dtype=np.float32)
            if found.size:
                sims = self._get(found) @ q
                out[np.asarray([i for i, s in enumerate(slots) if s >= 0])] = sims
            return out

    # --- persistence --------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write the index atomically enough: data files first, ``meta.json`` (with checksums) last."""
        import faiss

        directory.mkdir(parents=True, exist_ok=True)
        # Replicas that share a data directory take turns (an flock), and never share a temporary file.
        with self._lock, open(directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            tag = f"{os.getpid()}.tmp"
            tmp_index, tmp_slots = directory / f"index.faiss.{tag}", directory / f"slots.json.{tag}"
            faiss.write_index(self._index, str(tmp_index))
            tmp_slots.write_text(json.dumps([[s.key, s.fingerprint] if s else None for s in self._slots]))
            meta = {"format": FORMAT, "encoder": self.encoder, "dim": self.dim, "kind": self.kind,
                    "slots": len(self._slots), "live": len(self._by_key),
                    "index_sha256": _sha256(tmp_index), "slots_sha256": _sha256(tmp_slots)}
            (directory / "meta.json").unlink(missing_ok=True)
            os.replace(tmp_index, directory / "index.faiss")
            os.replace(tmp_slots, directory / "slots.json")
            tmp_meta = directory / f"meta.json.{tag}"
            tmp_meta.write_text(json.dumps(meta, indent=1))
            os.replace(tmp_meta, directory / "meta.json")

    @classmethod
    def load(cls, directory: Path, encoder: str, dim: int, **kwargs: Any) -> VectorIndex:
        """Read an index written by :meth:`save` for this encoder, or raise :class:`IndexUnusable`."""
        import faiss

        meta_path = directory / "meta.json"
        if not meta_path.is_file():
            raise IndexUnusable(f"no index at {directory}")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise IndexUnusable(f"unreadable meta.json: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise IndexUnusable("unknown index format")
        if meta.get("encoder") != encoder or meta.get("dim") != dim:
            raise IndexUnusable(f"built with encoder {meta.get('encoder')}/{meta.get('dim')}, "
                                f"not {encoder}/{dim}")
        index_path, slots_path = directory / "index.faiss", directory / "slots.json"
        for path, field_name in ((index_path, "index_sha256"), (slots_path, "slots_sha256")):
            if not path.is_file() or _sha256(path) != meta.get(field_name):
                raise IndexUnusable(f"{path.name} is missing or does not match its checksum")
        try:
            raw = faiss.read_index(str(index_path))
            slots_raw = json.loads(slots_path.read_text())
        except (RuntimeError, OSError, ValueError) as exc:
            raise IndexUnusable(f"cannot read the index: {exc}") from None
        if raw.d != dim or raw.ntotal != len(slots_raw) or raw.ntotal != meta.get("slots"):
            raise IndexUnusable("index and slot table disagree")
        vi = cls(encoder, dim, **kwargs)
        vi._index = raw
        vi._slots = [_Slot(str(s[0]), str(s[1])) if s else None for s in slots_raw]
        vi._by_key = {s.key: i for i, s in enumerate(vi._slots) if s is not None}
        if len(vi._by_key) != meta.get("live"):
            raise IndexUnusable("duplicate keys in the slot table")
        if vi.kind == "hnsw":
            raw.hnsw.efSearch = vi.ef_search
        elif vi.kind == "ivf":
            raw.nprobe = vi.nprobe
            raw.make_direct_map()
        return vi
