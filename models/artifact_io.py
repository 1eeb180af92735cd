"""Writing model artifacts safely when several processes may write the same one at once.

Replicas (and a worker) that start on one data directory each train a missing model and save it. Every file is
written under a temporary name of its own process and thread and renamed into place, so no reader and no
other writer ever sees a half-written artifact or record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["dump_atomic", "write_text_atomic", "text_data_hash", "library_versions", "save_with_record",
           "load_with_record"]

T = TypeVar("T")


def _tmp(path: Path) -> Path:
    return path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def dump_atomic(obj: Any, path: Path) -> str:
    """``joblib.dump`` ``obj`` to ``path`` atomically; returns the sha256 of the bytes written."""
    import joblib

    tmp = _tmp(path)
    try:
        joblib.dump(obj, tmp)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return digest


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    tmp = _tmp(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def text_data_hash(texts: Sequence[str], labels: Sequence[str]) -> str:
    """SHA-256 of (text, label) training pairs (order-sensitive)."""
    h = hashlib.sha256()
    for t, y in zip(texts, labels, strict=True):
        h.update(t.encode("utf-8", "replace") + b"\x1f" + y.encode("utf-8", "replace") + b"\x1e")
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    """The versions an artifact was written with (a pickle is only safe to load with the same ones)."""
    import joblib
    import numpy
    import scipy
    import sklearn

    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "joblib": joblib.__version__}


def save_with_record(model: Any, folder: Path, artifact: str, record_name: str, record: dict[str, Any]) -> Path:
    """Write ``model`` to ``folder/artifact`` and ``record`` (plus the artifact's SHA-256, the library
    versions and the time) to ``folder/record_name``, both atomically; returns the record's path."""
    folder.mkdir(parents=True, exist_ok=True)
    digest = dump_atomic(model, folder / artifact)
    full = {**record, "artifact_sha256": digest, "versions": library_versions(),
            "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    out = folder / record_name
    write_text_atomic(out, json.dumps(full, indent=2, default=str))
    return out


def load_with_record(folder: Path, artifact: str, record_name: str, cls: type[T],
                     accept: Callable[[dict[str, Any]], bool] | None = None) -> tuple[T, dict[str, Any]] | None:
    """The model saved by :func:`save_with_record` and its record, or None when either is missing, the record is
    unreadable or refused by ``accept`` (checked before unpickling), the artifact's SHA-256 is not the recorded
    one (never unpickle a file we did not write), or the object is not a ``cls``."""
    import joblib

    art, rec = folder / artifact, folder / record_name
    if not art.is_file() or not rec.is_file():
        return None
    try:
        record = json.loads(rec.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or (accept is not None and not accept(record)):
        return None
    if hashlib.sha256(art.read_bytes()).hexdigest() != record.get("artifact_sha256"):
        return None
    model = joblib.load(art)  # our own directory, hash checked against our own record
    if not isinstance(model, cls):
        return None
    return model, record
