"""Training data, training, saving and loading of the failure-risk model.

The artifact lives under ``<model_dir>/risk/``: ``risk-model.joblib`` and ``risk-model.json`` (the
origin record: library versions, data hash, artifact hash, validation metrics, date, version). A
model is loaded only from that directory and only when the artifact's SHA-256 matches its record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.risk_features import FEATURE_NAMES, METRICS, feature_matrix, fill_snapshot, window_vector
from models.risk_model import RiskModel
from models.risk_synth import Episode, generate

__all__ = ["LoadedRiskModel", "episodes_dataset", "train_risk_model", "load_risk_model", "load_or_train",
           "MODEL_SUBDIR"]

MODEL_SUBDIR = "risk"
_ARTIFACT, _RECORD = "risk-model.joblib", "risk-model.json"


@dataclass(frozen=True)
class LoadedRiskModel:
    """A fitted model with its origin record."""

    model: RiskModel
    version: str
    record: dict[str, Any]


def episodes_dataset(episodes: Sequence[Episode], with_snapshots: bool = True
                     ) -> tuple[NDArray[np.float64], NDArray[np.int_]]:
    """Rows in time order: each episode as a window row and (optionally) as a snapshot-only row."""
    snaps: list[dict[str, float]] = []
    wins: list[list[float] | None] = []
    labels: list[int] = []
    for ep in episodes:
        snap = ep.snapshot()
        snaps.append(snap)
        wins.append(window_vector(ep.series, ep.minutes))
        labels.append(ep.label)
        if with_snapshots:
            snaps.append(snap)
            wins.append(None)
            labels.append(ep.label)
    return feature_matrix(snaps, wins), np.asarray(labels, dtype=int)


def csv_dataset(rows: Sequence[Mapping[str, float]], labels: Sequence[int]
                ) -> tuple[NDArray[np.float64], NDArray[np.int_]]:
    """Snapshot rows from a user's CSV (already validated), with their labels."""
    snaps = [fill_snapshot(r)[0] for r in rows]
    return feature_matrix(snaps, None), np.asarray(labels, dtype=int)


def _versions() -> dict[str, str]:
    import joblib
    import sklearn

    return {"python": platform.python_version(), "numpy": np.__version__, "sklearn": sklearn.__version__,
            "joblib": joblib.__version__}


def train_risk_model(model_dir: Path, *, n_episodes: int = 3000, seed: int = 0,
                     extra: tuple[NDArray[np.float64], NDArray[np.int_]] | None = None,
                     extra_source: str = "") -> LoadedRiskModel:
    """Train on the synthetic scenarios (plus ``extra`` rows from a CSV, appended as the newest) and save."""
    episodes = generate(n_episodes, seed=seed)
    X, y = episodes_dataset(episodes)
    groups = np.repeat([ep.scenario for ep in episodes], 2)  # a window row and a snapshot row per episode
    if extra is not None and len(extra[0]):
        X, y = np.vstack([X, extra[0]]), np.concatenate([y, extra[1]])
        groups = np.concatenate([groups, np.full(len(extra[1]), "csv")])  # the user's rows: one more source
    # The scenarios let the model calibrate on failure types it has not seen (models.risk_model).
    model = RiskModel(random_state=seed).fit(X, y, groups=groups)
    data_hash = hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()
    now = dt.datetime.now(dt.UTC)
    version = f"risk-{model.chosen_.replace('_', '-')}-{now:%Y%m%d%H%M}-{data_hash[:8]}"
    out = Path(model_dir) / MODEL_SUBDIR
    out.mkdir(parents=True, exist_ok=True)
    from models.artifact_io import dump_atomic, write_text_atomic

    digest = dump_atomic(model, out / _ARTIFACT)
    record = {
        "version": version, "created_at": now.isoformat(timespec="seconds"), "chosen": model.chosen_,
        "validation": model.validation_,
        "calibration": {"method": model.calibration_, "fitted_on": model.calibrated_on_,
                        "cross_fitted_log_loss": model.calibration_log_loss_},
        "features": list(FEATURE_NAMES), "inputs": [m.name for m in METRICS],
        "data": {"synthetic_episodes": n_episodes, "seed": seed, "rows": int(len(y)),
                 "positives": int(y.sum()), "extra_source": extra_source, "sha256": data_hash},
        "libraries": _versions(), "artifact_sha256": digest,
    }
    write_text_atomic(out / _RECORD, json.dumps(record, indent=2))
    return LoadedRiskModel(model=model, version=version, record=record)


def load_risk_model(model_dir: Path) -> LoadedRiskModel | None:
    """The saved model, or None when there is none or it does not match its origin record (or an older
    feature layout wrote it)."""
    from models.artifact_io import load_with_record

    loaded = load_with_record(Path(model_dir) / MODEL_SUBDIR, _ARTIFACT, _RECORD, RiskModel,
                              accept=lambda r: r.get("features") == list(FEATURE_NAMES))
    if loaded is None:
        return None
    model, record = loaded
    return LoadedRiskModel(model=model, version=str(record["version"]), record=record)


def load_or_train(model_dir: Path, n_episodes: int = 1500) -> LoadedRiskModel:
    """The saved model, trained first (about ten seconds, on fewer episodes than ``warroom train risk``)
    when none exists yet."""
    return load_risk_model(model_dir) or train_risk_model(model_dir, n_episodes=n_episodes)
