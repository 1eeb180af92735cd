"""Shared helpers of the failure-risk tests: one small model trained once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.risk_artifact import train_risk_model


@pytest.fixture(scope="session")
def risk_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory holding a small risk model (trained in a few seconds)."""
    d = tmp_path_factory.mktemp("risk-models")
    train_risk_model(d, n_episodes=600, seed=3)
    return d
