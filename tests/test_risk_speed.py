"""The engine's vectorised path gives the model's own answers, and falls back to the model when it would not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.risk_artifact import LoadedRiskModel, load_risk_model
from models.risk_model import RiskModel
from skills.risk_engine import RiskEngine, validate_window
from tests.risk_support import risk_model_dir  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def loaded(risk_model_dir: Path) -> LoadedRiskModel:  # noqa: F811
    found = load_risk_model(risk_model_dir)
    assert found is not None
    return found


def _inputs(n: int) -> tuple[list[dict[str, float]], list]:  # type: ignore[type-arg]
    rng = np.random.default_rng(7)
    names = (
        "cpu_usage",
        "memory_usage",
        "disk_usage",
        "network_latency_ms",
        "error_count",
        "response_time_ms",
        "active_connections",
    )
    snaps = []
    for _ in range(n):
        given = rng.choice(names, size=int(rng.integers(2, 8)), replace=False)
        snaps.append({k: float(rng.uniform(0, 100) if k.endswith("usage") else rng.uniform(0, 5000)) for k in given})
    wins = [
        validate_window(
            {"memory_usage": list(40 + np.arange(30) * rng.uniform(0, 2)), "cpu_usage": list(rng.uniform(10, 90, 30))}
        )
        if i % 4 == 0
        else None
        for i in range(n)
    ]
    return snaps, wins


def _same(a: list, b: list) -> None:  # type: ignore[type-arg]
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.probability == pytest.approx(y.probability, abs=1e-9) and x.band == y.band
        assert [f.metric for f in x.factors] == [f.metric for f in y.factors]
        assert [f.contribution for f in x.factors] == pytest.approx([f.contribution for f in y.factors], abs=1e-9)
        assert x.inputs == y.inputs and x.missing == y.missing and x.as_dict() == y.as_dict()


def test_vectorised_path_gives_the_models_answers(loaded: LoadedRiskModel) -> None:
    fast, slow = RiskEngine(loaded), RiskEngine(loaded, fast=False)
    assert fast.fast and not slow.fast
    snaps, wins = _inputs(400)  # large batch: the model takes scikit-learn's path; one at a time: its own forest walk
    _same(fast.assess_many(snaps, wins), slow.assess_many(snaps, wins))
    for s, w in zip(snaps[:12], wins[:12], strict=True):
        _same([fast.assess(s, w)], [slow.assess(s, w)])
    # Inputs not given are reported missing and do not appear among the factors.
    a = fast.assess({"cpu_usage": 97.0, "memory_usage": 95.0})
    assert {f.metric for f in a.factors} == {"cpu_usage", "memory_usage"} and "disk_usage" in a.missing


class _Halved(RiskModel):
    """A model whose probabilities the vectorised path would not reproduce (it bypasses predict_proba)."""

    def predict_proba(self, X):  # type: ignore[no-untyped-def]
        p = super().predict_proba(X)[:, 1] * 0.5
        return np.column_stack([1 - p, p])


def test_a_model_the_fast_path_does_not_reproduce_is_used_as_it_is(loaded: LoadedRiskModel) -> None:
    other = _Halved.__new__(_Halved)
    other.__dict__.update(loaded.model.__dict__)
    engine = RiskEngine(LoadedRiskModel(model=other, version=loaded.version, record=loaded.record))
    assert not engine.fast
    snaps, wins = _inputs(20)
    got = engine.assess_many(snaps, wins)
    as_it_is = RiskEngine(LoadedRiskModel(model=other, version=loaded.version, record={}), fast=False)
    _same(got, as_it_is.assess_many(snaps, wins))
    assert all(a.probability <= 0.5 for a in got)


def test_random_forest_members_walked_tree_by_tree_give_the_forests_answers(loaded: LoadedRiskModel) -> None:
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(3)
    X = rng.uniform(0, 100, (600, loaded.model.n_features_in_))
    y = (X[:, 0] + X[:, 1] + rng.normal(0, 20, 600) > 110).astype(int)
    forest = RandomForestClassifier(n_estimators=25, max_depth=10, min_samples_leaf=3, random_state=0).fit(X, y)
    other = RiskModel.__new__(RiskModel)
    other.__dict__.update(loaded.model.__dict__, members_=[forest], fast_members_=[forest])
    with_forest = LoadedRiskModel(model=other, version=loaded.version, record={})
    fast = RiskEngine(with_forest)
    assert fast.fast
    snaps, wins = _inputs(300)
    _same(fast.assess_many(snaps, wins), RiskEngine(with_forest, fast=False).assess_many(snaps, wins))
