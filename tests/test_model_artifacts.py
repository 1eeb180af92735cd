"""Model artifacts written by several writers at once (replicas training a missing model at start)."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import numpy as np

from models.artifact_io import dump_atomic, write_text_atomic


def test_concurrent_writers_never_leave_or_read_a_partial_artifact(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    objs = [np.full(200_000, i, dtype=np.float64) for i in range(8)]

    def write(i: int) -> str:
        digest = dump_atomic(objs[i], path)
        write_text_atomic(tmp_path / "record.json", f'{{"writer": {i}, "sha": "{digest}"}}')
        return digest

    with ThreadPoolExecutor(8) as pool:
        digests = list(pool.map(write, [i % 8 for i in range(40)]))  # every call returns (no FileNotFoundError)
    final = hashlib.sha256(path.read_bytes()).hexdigest()
    assert final in digests  # the file on disk is one writer's whole artifact
    loaded = joblib.load(path)
    assert loaded.shape == (200_000,) and len(set(loaded.tolist())) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.joblib", "record.json"]  # no temp files left
