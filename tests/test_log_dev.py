"""The development protocol: inner template-disjoint folds inside each split's training lines."""

from __future__ import annotations

import numpy as np

from models.log_classifier import LogClassifier, SeverityPrior, build_alert_pipeline
from models.log_dev import SeverityCandidate, _inner, _outer, nested_alerts, nested_severity
from models.log_eval import LevelData

_TEMPLATES = [
    ("INFO", "Server started on port {n}"),
    ("INFO", "Request {n} served in {n} ms"),
    ("INFO", "Connected to replica {n}"),
    ("INFO", "Job {n} finished successfully"),
    ("ERROR", "Connection refused by host {n}"),
    ("ERROR", "Failed to open file /data/{n}: no such file"),
    ("ERROR", "Exception in worker {n}: null pointer"),
    ("ERROR", "Query {n} failed: deadlock detected"),
    ("WARNING", "Disk usage high on volume {n}, will retry"),
    ("WARNING", "Slow response from upstream {n}"),
    ("WARNING", "Retrying request {n} after timeout"),
    ("WARNING", "Deprecated option {n} ignored"),
]


def _data() -> LevelData:
    text, label, group = [], [], []
    for t, (level, pattern) in enumerate(_TEMPLATES):
        for i in range(6):
            text.append(pattern.format(n=100 + 7 * i + t))
            label.append(level)
            group.append(f"E{t}")
    return LevelData(text, label, group, ["sys"] * len(text))


def test_inner_folds_stay_inside_the_training_lines_and_are_template_disjoint() -> None:
    data = _data()
    g = np.array(data.group)
    x = np.array(data.text, dtype=object)
    tr, te = _outer(x, g, 0)
    assert not set(g[tr]) & set(g[te])
    folds = _inner(tr, g, 3)
    assert len(folds) == 3
    for a, b in folds:
        assert set(a) | set(b) == set(tr) and not set(a) & set(b)
        assert not set(g[a]) & set(g[b]), "an inner fold never shares a template with its inner training"


def test_nested_severity_reports_inner_and_test_scores_and_a_choice_per_split() -> None:
    cands = (
        SeverityCandidate("C=1", lambda: LogClassifier(C=1.0)),
        SeverityCandidate("C=0.01", lambda: LogClassifier(C=0.01)),
    )
    out = nested_severity(_data(), cands, n_splits=2, inner_folds=3)
    assert set(out["candidates"]) == {"C=1", "C=0.01"}
    for scores in out["candidates"].values():
        assert 0.0 <= scores["inner_macro_f1"] <= 1.0 and 0.0 <= scores["test_macro_f1"] <= 1.0
    assert len(out["chosen_per_split"]) == 2 and set(out["chosen_per_split"]) <= {"C=1", "C=0.01"}
    test = {n: s["test_macro_f1"] for n, s in out["candidates"].items()}
    assert min(test.values()) - 1e-4 <= out["nested_test_macro_f1"] <= max(test.values()) + 1e-4


def test_nested_alerts_choose_c_and_threshold_on_inner_folds() -> None:
    rows = []
    for t in range(10):
        alert = t < 4
        word = [
            "panic halted",
            "machine check fatal",
            "kernel terminated",
            "lustre mount FAILED",
            "cache parity corrected",
            "job started",
            "link up",
            "ciod message",
            "node ready",
            "torus ok",
        ][t]
        for i in range(5):
            rows.append(
                {"content": f"{word} node {i * 13 + t}", "is_alert": "1" if alert else "0", "event_id": f"E{t}"}
            )
    out = nested_alerts(rows, (0.3, 3.0), n_splits=3, inner_folds=3)
    assert set(out["candidates"]) == {"0.3", "3.0"}
    assert 0.0 <= out["nested_test_f1_pooled"] <= 1.0
    for choice in out["chosen_per_split"]:
        assert choice["C"] in (0.3, 3.0) and 0.1 <= choice["threshold"] <= 0.9


def test_alert_pipeline_can_read_the_bundled_severity_prior() -> None:
    prior = SeverityPrior(weight=2.0).fit(["lines being fitted do not train the prior"])
    out = prior.transform(["Kernel panic - not syncing: Fatal exception", "Server started on port 9090"])
    classes = list(prior.model_.classes_)
    assert out.shape == (2, 5) and np.allclose(out.sum(axis=1), 2.0)
    assert out[0].argmax() == classes.index("FATAL") and out[1].argmax() == classes.index("INFO")
    with_prior = build_alert_pipeline(prior_weight=3.0)
    assert "prior" in dict(with_prior.named_steps["features"].transformer_list)
    assert "prior" not in dict(build_alert_pipeline(prior_weight=0).named_steps["features"].transformer_list)
    x = [f"rts panic! node {i}" for i in range(5)] + [f"job {i} started" for i in range(5)]
    y = ["1"] * 5 + ["0"] * 5
    assert list(with_prior.fit(x, y).predict(["rts panic! node 99", "job 77 started"])) == ["1", "0"]
