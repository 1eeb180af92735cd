"""Failure-risk models: generator, features, detector, estimator contract, artifacts, CLI doors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from typer.testing import CliRunner

from bot.cli import app
from models.risk_artifact import MODEL_SUBDIR, episodes_dataset, load_risk_model, train_risk_model
from models.risk_detector import SeriesDetector, rolling_zscore
from models.risk_eval import _causal_oracle, eval_series, expected_calibration_error
from models.risk_features import (
    FEATURE_NAMES,
    MONOTONE,
    REFERENCE,
    feature_matrix,
    fill_snapshot,
    monotone_constraints,
    snapshot_vector,
    window_vector,
)
from models.risk_model import RiskModel, band, monotone_violations
from models.risk_synth import FAILURES, SCENARIOS, generate
from tests.risk_support import risk_model_dir  # noqa: F401 - fixture


def test_generator_covers_every_scenario_with_both_labels() -> None:
    eps = generate(400, seed=1)
    assert {e.scenario for e in eps} == set(SCENARIOS)
    assert [e.at for e in eps] == sorted(e.at for e in eps)
    pos = [e for e in eps if e.label == 1]
    assert pos and all(e.scenario in FAILURES for e in pos)
    leaks = [e for e in pos if e.scenario == "memory_leak" and e.series["memory_usage"][-1] > 85]
    assert leaks, "an imminent memory leak ends with high memory"
    for e in eps:
        assert all(0 <= v.min() and v.max() <= 100 for k, v in e.series.items() if k.endswith("_usage"))


def test_bands_follow_the_issue() -> None:
    assert [band(p) for p in (0.95, 0.7, 0.5, 0.3, 0.1, 0.8, 0.2)] == \
        ["CRITICAL", "HIGH", "MEDIUM", "LOW", "MINIMAL", "HIGH", "MINIMAL"]


def test_features_react_to_stress() -> None:
    calm, _ = fill_snapshot({"cpu_usage": 20, "memory_usage": 30})
    hot, missing = fill_snapshot({"cpu_usage": 97, "memory_usage": 95})
    assert "disk_usage" in missing
    i = FEATURE_NAMES.index("stress")
    assert snapshot_vector(hot)[i] > snapshot_vector(calm)[i]
    rising = window_vector({"memory_usage": list(np.linspace(50, 95, 36))})
    flat = window_vector({"memory_usage": [50.0 + (i % 2) for i in range(36)]})
    assert rising[FEATURE_NAMES.index("max_slope_util") - len(FEATURE_NAMES)] > 5
    assert rising[3] > flat[3]  # detector score


def test_detector_learns_daily_seasonality() -> None:
    t = pd.date_range("2026-01-01", periods=288 * 6, freq="5min")
    minute_of_day = np.asarray(t.hour * 60 + t.minute, dtype=float)
    x = 50 + 30 * np.sin(2 * np.pi * minute_of_day / 1440) + np.random.default_rng(0).normal(0, 1, t.size)
    det = SeriesDetector().fit(x[:288 * 4], t[:288 * 4])
    assert det.season_ == "day"
    test_t, test_x = t[288 * 4:], x[288 * 4:].copy()
    night = np.flatnonzero(test_t.hour == 18)[5]  # the trough, about 20
    test_x[night] = 75.0  # normal at 06:00 (the peak), anomalous at 18:00
    out = det.score(test_x, test_t)
    assert out.anomaly[night] and out.anomaly.mean() < 0.02
    assert np.abs(rolling_zscore(test_x))[night] > 0  # the baseline scores too, without seasonality


def test_detector_refuses_bad_series() -> None:
    for bad in ([], [1.0], [1.0, float("nan"), 2.0]):
        with pytest.raises(ValueError):
            SeriesDetector().fit(bad)
    with pytest.raises(NotFittedError):
        SeriesDetector().score([1.0, 2.0])


def test_model_contract_choice_and_calibration() -> None:
    X, y = episodes_dataset(generate(500, seed=2))
    m = RiskModel(n_trees=10)
    with pytest.raises(NotFittedError):
        m.predict_proba(X[:2])
    assert m.fit(X, y) is m and m.chosen_ in ("gradient_boosting", "random_forest", "logistic_regression",
                                              "soft_vote")
    Xt, yt = episodes_dataset(generate(300, seed=9))
    p = m.predict_proba(Xt)[:, 1]
    assert ((0 <= p) & (p <= 1)).all()
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(yt, p) > 0.85
    assert expected_calibration_error(yt, p) < 0.15
    with pytest.raises(ValueError):
        RiskModel().fit(X, np.zeros(len(X), dtype=int))


def test_monotone_prior_holds_for_a_failure_type_never_seen() -> None:
    X, y = episodes_dataset(generate(600, seed=3, scenarios=tuple(s for s in SCENARIOS if s != "memory_leak")))
    m = RiskModel(n_trees=10).fit(X, y)
    v = m.validation_
    assert v["random_forest"]["monotone_violations"] == 0.0  # fitted under the constraints
    assert v[m.chosen_]["monotone_violations"] == 0.0  # only candidates that never lower the risk
    # It never saw a leak, only big stable heaps among the healthy: a nearly full heap still must
    # not look safer than a big one.
    snaps = [{**REFERENCE, "memory_usage": mem} for mem in (60.0, 85.0, 92.0, 97.0, 99.5)]
    p = m.predict_proba(feature_matrix(snaps))[:, 1]
    assert np.all(np.diff(p) >= -1e-9), p
    assert len(monotone_constraints()) == len(FEATURE_NAMES) and set(MONOTONE) <= set(FEATURE_NAMES)
    signs = [1] + [0] * (X.shape[1] - 1)
    step = np.ones(X.shape[1])
    assert monotone_violations(lambda A: -A[:, 0], X[:50], signs, step) == 1.0
    assert monotone_violations(lambda A: A[:, 0], X[:50], signs, step) == 0.0


def test_calibration_method_forced_or_chosen_on_the_validation_split() -> None:
    X, y = episodes_dataset(generate(500, seed=5))
    for method in ("sigmoid", "isotonic"):
        m = RiskModel(n_trees=10, calibration=method).fit(X, y)
        assert m.calibration_ == method and m.calibrator_ is m.calibrators_[method]
    auto = RiskModel(n_trees=10).fit(X, y)
    ll = auto.calibration_log_loss_
    assert set(ll) == {"sigmoid", "isotonic"} and auto.calibration_ == min(ll, key=lambda k: ll[k])
    p = auto.calibrators_["sigmoid"].predict(np.array([0.01, 0.2, 0.5, 0.9]))
    assert np.all(np.diff(p) > 0) and ((0 < p) & (p < 1)).all()
    with pytest.raises(ValueError, match="calibration"):
        RiskModel(n_trees=10, calibration="platt").fit(X, y)


def test_artifact_has_origin_record_and_tampering_is_refused(tmp_path: Path) -> None:
    loaded = train_risk_model(tmp_path, n_episodes=300, seed=4)
    rec = json.loads((tmp_path / MODEL_SUBDIR / "risk-model.json").read_text())
    assert rec["version"] == loaded.version and rec["libraries"]["sklearn"] and rec["data"]["sha256"]
    assert rec["validation"][rec["chosen"]]["roc_auc"] > 0.5
    assert rec["calibration"]["method"] in ("sigmoid", "isotonic") and "monotone_violations" in rec["validation"][
        rec["chosen"]]
    again = load_risk_model(tmp_path)
    assert again is not None and again.version == loaded.version
    art = tmp_path / MODEL_SUBDIR / "risk-model.joblib"
    art.write_bytes(art.read_bytes() + b"x")
    assert load_risk_model(tmp_path) is None


def _nab_like(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for s in range(3):
        t = pd.date_range("2026-01-01", periods=2000, freq="5min")
        x = 10 + np.sin(np.arange(2000) / 288 * 2 * np.pi) + rng.normal(0, 0.2, 2000)
        win = np.zeros(2000, dtype=int)
        for start in (600 + s * 50, 1500 + s * 50):
            win[start:start + 60] = 1
            x[start + 30:start + 45] += 6
        starts = np.flatnonzero(np.diff(np.concatenate([[0], win])) == 1)
        lead = np.array([((starts[starts > i] - i).min() * 5.0 if (starts > i).any() else np.nan)
                         for i in range(2000)])
        rows.append(pd.DataFrame({"name": f"s{s}", "ts": t, "v": x, "inw": win, "lead": lead}))
    path = tmp_path / "series.csv"
    pd.concat(rows).to_csv(path, index=False)
    return path


def test_eval_cli_json_contract_with_custom_columns(tmp_path: Path) -> None:
    path = _nab_like(tmp_path)
    r = CliRunner().invoke(app, ["eval", "risk", "--data", str(tmp_path), "--json", "--series-col", "name",
                                 "--time-col", "ts", "--value-col", "v", "--window-col", "inw", "--lead-col", "lead",
                                 "--snapshot-episodes", "0"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output.strip().splitlines()[-1])
    for k in ("in_window_roc_auc", "in_window_pr_auc", "horizon60_roc_auc", "horizon60_pr_auc"):
        assert k in res and f"baseline_{k}" in res
    assert res["in_window_roc_auc"] > 0.6 and res["series"] == 3
    direct = eval_series(pd.read_csv(path).rename(columns={"name": "series", "ts": "timestamp", "v": "value",
                                                           "inw": "in_anomaly_window",
                                                           "lead": "minutes_to_next_window_start"}))
    assert direct["in_window_roc_auc"] == res["in_window_roc_auc"]
    bad = CliRunner().invoke(app, ["eval", "risk", "--data", str(path), "--json", "--snapshot-episodes", "0"])
    assert bad.exit_code != 0


def test_causal_ceiling_and_retrospective_figures(tmp_path: Path) -> None:
    w = np.array([0, 1, 1, 1, 1, 0, 1, 1])
    assert _causal_oracle(w, np.array([0, 0, 0, 1, 0, 0, 0, 1])).tolist() == [0, 0, 0, 1, 1, 0, 0, 1]
    df = pd.read_csv(_nab_like(tmp_path)).rename(columns={
        "name": "series", "ts": "timestamp", "v": "value", "inw": "in_anomaly_window",
        "lead": "minutes_to_next_window_start"})
    without = eval_series(df)
    assert "in_window_causal_ceiling_roc_auc" not in without and without["retro_in_window_hours"] >= 0
    # The bump starts halfway into each window: the anomaly point, as NAB centres its windows.
    starts = np.flatnonzero(np.diff(np.concatenate([[0], df["in_anomaly_window"].to_numpy()])) == 1)
    df["is_anomaly_point"] = 0
    df.loc[starts + 30, "is_anomaly_point"] = 1
    res = eval_series(df)
    # Half of every window precedes its anomaly: a perfect causal detector reaches only about 0.75.
    assert 0.7 < res["in_window_causal_ceiling_roc_auc"] < 0.8
    assert res["in_window_roc_auc"] == without["in_window_roc_auc"]
    assert res["retro_in_window_roc_auc"] >= res["in_window_roc_auc"] - 0.05


def test_predict_and_train_cli(tmp_path: Path, risk_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("WARROOM_MODE", "demo")
    monkeypatch.setenv("WARROOM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WARROOM_MODEL_DIR", str(risk_model_dir))
    runner = CliRunner()
    r = runner.invoke(app, ["risk", "predict", "service=api", "cpu=96", "mem=94", "--json", "--chart",
                            str(tmp_path / "c.png")])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output.strip().splitlines()[-1])
    assert out["band"] in ("CRITICAL", "HIGH") and (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    win = tmp_path / "w.csv"
    pd.DataFrame({"timestamp": pd.date_range("2026-01-01", periods=36, freq="5min"),
                  "disk": np.linspace(60, 98, 36)}).to_csv(win, index=False)
    r = runner.invoke(app, ["risk", "predict", "service=db", "--window", str(win), "--json"])
    assert r.exit_code == 0, r.output
    assert "disk_usage" in json.loads(r.output.strip().splitlines()[-1])["anomalies"]
    # the same window as Prometheus' query_range JSON, saved with a byte-order mark (Windows editors, PowerShell
    # 7's Out-File -Encoding utf8BOM): "Unexpected UTF-8 BOM" before
    start = 1_767_225_600
    values = [[start + 300 * i, str(60 + i * 38 / 35)] for i in range(36)]
    prom = {"status": "success",
            "data": {"resultType": "matrix", "result": [{"metric": {"__name__": "disk_usage"}, "values": values}]}}
    bom = tmp_path / "w.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(prom).encode())
    r = runner.invoke(app, ["risk", "predict", "service=db", "--window", str(bom), "--json"])
    assert r.exit_code == 0, (r.output, r.exception)
    assert "disk_usage" in json.loads(r.output.strip().splitlines()[-1])["anomalies"]
    iso = json.loads(r.output.strip().splitlines()[-1])["probability"]
    from bot.cli_risk import _window_from_file

    assert _window_from_file(win).minutes == tuple(5.0 * i for i in range(36))
    frame = pd.read_csv(win)  # Unix time, as Prometheus and Grafana export it: read as nanoseconds before, so the
    seconds = (pd.to_datetime(frame["timestamp"]) - pd.Timestamp(0)) // pd.Timedelta(seconds=1)  # 300 ns apart
    for name, stamps in (("epoch-s.csv", seconds), ("epoch-ms.csv", seconds * 1000),
                         ("offsets.csv", [t.isoformat() + ("Z" if i % 2 else "+00:00")
                                          for i, t in enumerate(pd.to_datetime(frame["timestamp"]))])):
        other = tmp_path / name
        frame.assign(timestamp=stamps).to_csv(other, index=False)
        assert _window_from_file(other).minutes == tuple(5.0 * i for i in range(36)), name
        r = runner.invoke(app, ["risk", "predict", "service=db", "--window", str(other), "--json"])
        assert r.exit_code == 0, (name, r.output, r.exception)
        assert json.loads(r.output.strip().splitlines()[-1])["probability"] == iso, name
    excel = tmp_path / "excel-fr.csv"  # semicolons and decimal commas: the same window as Excel in France saves it
    excel.write_text(win.read_text().replace(",", ";").replace(".", ","))
    r = runner.invoke(app, ["risk", "predict", "service=db", "--window", str(excel), "--json"])
    assert r.exit_code == 0, (r.output, r.exception)
    assert "disk_usage" in json.loads(r.output.strip().splitlines()[-1])["anomalies"]
    # an empty cell (a missed sample, as Grafana exports it) was "window.disk[3]=nan is not a finite number": now
    # that time is left out, said on stderr, and the rest read as if it had never been there; "NaN" is still refused
    gaps = tmp_path / "gaps.csv"
    frame.assign(cpu=30.0).to_csv(gaps, index=False)
    text = gaps.read_text().splitlines()
    text[4] = text[4][:text[4].rindex(",")] + ","  # row 3's cpu left empty
    gaps.write_text("\n".join(text) + "\n")
    r = runner.invoke(app, ["risk", "predict", "service=db", "--window", str(gaps), "--json"])
    assert r.exit_code == 0, (r.output, r.exception)
    assert "note: left out 1 of 36 row(s) with an empty cell (cpu: 1)" in r.stderr
    without = tmp_path / "without.csv"
    without.write_text("\n".join(text[:4] + text[5:]) + "\n")
    assert _window_from_file(gaps) == _window_from_file(without)
    assert json.loads(r.stdout.strip().splitlines()[-1])["probability"] == json.loads(runner.invoke(
        app, ["risk", "predict", "service=db", "--window", str(without), "--json"]).stdout.strip().splitlines()[-1]
    )["probability"]
    gaps.write_text("\n".join(text[:4] + [text[4] + "NaN"] + text[5:]) + "\n")
    r = runner.invoke(app, ["risk", "predict", "service=db", "--window", str(gaps)])
    assert r.exit_code == 1 and "window.cpu[3]=NaN is not a finite number" in r.output + str(r.exception)
    one = tmp_path / "one.csv"
    pd.DataFrame({"cpu": [50.0]}).to_csv(one, index=False)
    for args in (["cpu=500", "mem=1"], ["--window", str(one)], ["--window", str(tmp_path / "nope.csv")]):
        r = runner.invoke(app, ["risk", "predict", *args])
        assert r.exit_code != 0
    deep = tmp_path / "deep.json"  # a RecursionError traceback before
    deep.write_text("[" * 5000 + "]" * 5000)
    r = runner.invoke(app, ["risk", "predict", "service=api", "--window", str(deep)])
    assert r.exit_code == 1 and "nested too deeply" in r.output + str(r.exception), (r.output, r.exception)
    labelled = tmp_path / "mine.csv"
    pd.DataFrame({"cpu_usage": [20, 99, 30, 98] * 10, "memory_usage": [30, 97, 40, 96] * 10,
                  "label": [0, 1, 0, 1] * 10}).to_csv(labelled, index=False)
    monkeypatch.setenv("WARROOM_MODEL_DIR", str(tmp_path / "m"))
    r = runner.invoke(app, ["train", "risk", "--csv", str(labelled), "--episodes", "300"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1])["rows"] == 600 + 40
    assert load_risk_model(tmp_path / "m") is not None
    semi = tmp_path / "excel-fr.csv"  # semicolons, as Excel writes CSV where the decimal separator is a comma
    pd.read_csv(labelled).to_csv(semi, index=False, sep=";")
    r = runner.invoke(app, ["train", "risk", "--csv", str(semi), "--episodes", "300"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1])["rows"] == 600 + 40
    pd.DataFrame({"cpu_usage": [20, 900], "memory_usage": [1, 2], "label": [0, 1]}).to_csv(labelled, index=False)
    r = runner.invoke(app, ["train", "risk", "--csv", str(labelled), "--episodes", "300"])
    assert r.exit_code != 0


def test_calibration_bench_folds_hold_out_what_they_say() -> None:
    from sklearn.metrics import roc_auc_score

    from bench.risk_calibration import calibrate, out_of_fold, time_folds, type_folds

    eps = generate(300, seed=8)
    X, y = episodes_dataset(eps)
    groups = np.repeat([e.scenario for e in eps], 2)
    folds = type_folds(groups)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(y)))  # a partition of the rows
    for idx in folds:
        assert len(set(groups[idx]) - {"normal"}) == 1  # one failure type per fold, with healthy rows
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 2, len(y))  # labels unrelated to the rows: only memorising them would score
    m = RiskModel(n_trees=10).fit(X, noise)
    oof = out_of_fold(m, X, noise, time_folds(len(y)))
    assert not np.isnan(oof).any() and abs(roc_auc_score(noise, oof) - 0.5) < 0.1
    pick, fitted = calibrate(oof, noise, time_folds(len(y)))
    assert pick in ("sigmoid", "isotonic") and set(fitted) == {"sigmoid", "isotonic"}


def test_calibration_on_out_of_type_scores_when_groups_are_given() -> None:
    from models.risk_model import _Sigmoid, out_of_fold, type_folds

    eps = generate(500, seed=6)
    X, y = episodes_dataset(eps)
    groups = np.repeat([e.scenario for e in eps], 2)
    m = RiskModel(n_trees=10).fit(X, y, groups=groups)
    assert (m.calibration_, m.calibrated_on_) == ("sigmoid", "out_of_type")
    assert m.calibrator_ is m.calibrators_["by_type"]
    assert {"sigmoid", "isotonic"} <= set(m.calibrators_)  # the validation maps, kept for comparison
    # Healthy rows are the groups without a failure: every fold holds one failure type and its share.
    folds = type_folds(groups, frozenset({"normal"}))
    assert len(folds) == len(FAILURES) and sorted(np.concatenate(folds).tolist()) == list(range(len(y)))
    # The map is Platt scaling fitted on the scores of refits that never saw the row's failure type.
    ref = _Sigmoid().fit(out_of_fold(m, X, y, folds), y)
    assert (m.calibrator_.a_, m.calibrator_.b_) == pytest.approx((ref.a_, ref.b_))
    # Strictly monotone: no ties, the raw scores' order is kept.
    raw = np.sort(m._raw(X))
    p = m.calibrator_.predict(raw)
    assert m.calibrator_.a_ > 0 and np.all(np.diff(p)[np.diff(raw) > 1e-9] > 0)
    # Without groups, or with one failure type, the validation rows calibrate as before.
    plain = RiskModel(n_trees=10).fit(X, y)
    assert plain.calibrated_on_ == "validation" and plain.calibrator_ is plain.calibrators_[plain.calibration_]
    one = np.where(groups == "normal", "normal", "failure")
    assert RiskModel(n_trees=10).fit(X, y, groups=one).calibrated_on_ == "validation"
    forced = RiskModel(n_trees=10, calibration="isotonic").fit(X, y, groups=groups)
    assert forced.calibrator_ is forced.calibrators_["isotonic"] and "by_type" not in forced.calibrators_
    with pytest.raises(ValueError, match="by_type"):
        RiskModel(n_trees=10, calibration="by_type").fit(X, y)
    with pytest.raises(ValueError, match="group"):
        RiskModel(n_trees=10).fit(X, y, groups=groups[:-1])
