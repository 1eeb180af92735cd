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


def test_round3_is_pythons_round() -> None:
    from skills.risk_engine import round3

    rng = np.random.default_rng(11)
    k = np.arange(-3000, 3000)
    halves = (k + 0.5) / 1000  # decimal halves: the product's rounding decides these
    xs = np.concatenate(
        [
            rng.uniform(0, 100, 5000),
            rng.uniform(0, 1e7, 5000),
            np.round(rng.uniform(0, 1e4, 2000), 1),
            halves,
            np.nextafter(halves, np.inf),
            np.nextafter(halves, -np.inf),
            [0.0, -0.0, 0.0625, 2.675, 1.0005, 1e-9, 5e11, 2e12, 1e15, 1e300, np.inf, -np.inf],
        ]
    )
    got = round3(xs)
    want = [round(float(x), 3) for x in xs]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g == w and np.signbit(g) == np.signbit(w)
    assert np.isnan(round3(np.array([np.nan]))[0])


def _factors_item_by_item(S: np.ndarray, D: np.ndarray, missing: list[tuple[str, ...]]) -> list[tuple]:  # type: ignore[type-arg]
    """The engine's factors as first written: per input, a stable sort of the given inputs by contribution."""
    from models.risk_features import METRICS
    from skills.risk_engine import RECOMMENDATIONS, Factor

    out = []
    for values, delta, miss in zip(S.tolist(), D.tolist(), missing, strict=True):
        given = [j for j, m in enumerate(METRICS) if m.name not in miss]
        out.append(
            tuple(
                Factor(m.name, m.label, round(values[j], 3), m.unit, delta[j], RECOMMENDATIONS[m.name])
                for j in sorted(given, key=delta.__getitem__, reverse=True)
                for m in [METRICS[j]]
            )
        )
    return out


@pytest.mark.parametrize("n", [1, 5, 15, 16, 400])
def test_factors_built_column_wise_equal_the_item_by_item_ones(n: int) -> None:
    from models.risk_features import METRICS
    from skills.risk_engine import _factors

    rng = np.random.default_rng(n)
    S = rng.uniform(0, 5000, (n, 7))
    # Ties (equal contributions, zeros, -0.0) must keep the METRICS order, as a stable sort does.
    D = rng.choice([-0.25, -0.0, 0.0, 0.1, 0.1, 0.3], size=(n, 7)) + (rng.random((n, 7)) < 0.5) * rng.normal(
        0, 0.1, (n, 7)
    )
    names = [m.name for m in METRICS]
    missing = [tuple(x for x in names if rng.random() < 0.3) if i % 3 else () for i in range(n)]
    assert _factors(S, D, missing) == _factors_item_by_item(S, D, missing)


def _line_inputs(engine: RiskEngine) -> tuple[list[dict[str, float]], list]:  # type: ignore[type-arg]
    """Inputs that sit exactly on, and just below, the lookup tables' flip points and at the range ends,
    with one, two and all seven inputs given, some with windows."""
    from models.risk_features import METRICS

    assert engine._lines is not None
    rng = np.random.default_rng(5)
    snaps: list[dict[str, float]] = []
    for j, m in enumerate(METRICS):
        edges = engine._lines.edges[j]
        for x in [m.low, m.high, m.reference, *edges[:: max(1, edges.size // 60)]]:
            for v in (float(x), float(max(np.nextafter(x, -np.inf), m.low))):
                snaps.append({m.name: v})
                other = METRICS[(j + 1) % 7]
                snaps.append({m.name: v, other.name: float(rng.uniform(other.low, min(other.high, 3000)))})
                snaps.append({o.name: (v if o is m else float(rng.uniform(o.low, min(o.high, 3000)))) for o in METRICS})
    wins = [
        validate_window({"cpu_usage": list(rng.uniform(10, 90, 30)), "memory_usage": list(40 + np.arange(30.0))})
        if i % 7 == 0
        else None
        for i in range(len(snaps))
    ]
    return snaps, wins


def _scores_with_and_without_tables(engine: RiskEngine, snaps: list, wins: list) -> None:  # type: ignore[type-arg]
    from models.risk_features import fill_snapshot, window_vector

    fulls = [fill_snapshot({**s, **(w.last() if w else {})})[0] for s, w in zip(snaps, wins, strict=True)]
    vecs = [window_vector(w.series, w.minutes) if w else None for w in wins]
    lines = engine._lines
    p1, d1 = engine._scores(fulls, vecs)
    engine._lines = None
    try:
        p0, d0 = engine._scores(fulls, vecs)
    finally:
        engine._lines = lines
    # The same model rows, looked up or scored: the very same numbers, not merely close ones.
    assert np.array_equal(p1, p0) and np.array_equal(d1, d0)


def test_lookup_tables_give_exactly_the_scores_of_the_model_rows(loaded: LoadedRiskModel) -> None:
    engine = RiskEngine(loaded)
    assert engine.fast and engine._lines is not None
    assert sorted(engine._lines.edges) == list(range(7)), "every input of a forest has its table"
    snaps, wins = _line_inputs(engine)
    assert len(snaps) > 64
    _scores_with_and_without_tables(engine, snaps, wins)
    _same(engine.assess_many(snaps, wins), RiskEngine(loaded, fast=False).assess_many(snaps, wins))


def test_lookup_tables_for_gradient_boosting_members(loaded: LoadedRiskModel) -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    from models.risk_artifact import episodes_dataset
    from models.risk_synth import generate

    X, y = episodes_dataset(generate(400, seed=2))
    gbm = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0).fit(X, y)
    other = RiskModel.__new__(RiskModel)
    other.__dict__.update(loaded.model.__dict__, members_=[gbm], fast_members_=[gbm])
    with_gbm = LoadedRiskModel(model=other, version=loaded.version, record={})
    engine = RiskEngine(with_gbm)
    assert engine.fast and engine._lines is not None and engine._lines.edges
    snaps, wins = _line_inputs(engine) if len(engine._lines.edges) == 7 else _inputs(300)
    _scores_with_and_without_tables(engine, snaps, wins)
    _same(engine.assess_many(snaps, wins), RiskEngine(with_gbm, fast=False).assess_many(snaps, wins))


def test_a_batch_with_all_seven_inputs_gives_the_models_answers(loaded: LoadedRiskModel) -> None:
    rng = np.random.default_rng(9)
    from models.risk_features import METRICS

    snaps = [{m.name: float(rng.uniform(m.low, min(m.high, 5000))) for m in METRICS} for _ in range(300)]
    snaps += [{k: float(round(v)) for k, v in s.items()} for s in snaps[:100]]
    wins = [None] * len(snaps)
    _same(RiskEngine(loaded).assess_many(snaps, wins), RiskEngine(loaded, fast=False).assess_many(snaps, wins))
