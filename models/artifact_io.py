"""Writing model artifacts safely when several processes may write the same one at once.

Replicas (and a worker) that start on one data directory each train a missing model and save it. Every file is
written under a temporary name of its own process and thread and renamed into place, so no reader and no
other writer ever sees a half-written artifact or record.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["dump_atomic", "write_text_atomic"]


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
