"""Evaluation of the log skill on Loghub-format data, next to baselines measured in the same run.

Protocol (see the project's evaluation notes): severity on the systems with meaningful levels,
``GroupShuffleSplit(test_size=0.2, random_state=r)`` grouped on the template id, r = 0..9, accuracy and
macro-F1 averaged, and leave-one-system-out; BGL alerts pooled over 20 template-disjoint splits;
template grouping accuracy per system against drain3 with its default settings; throughput.
"""

from __future__ import annotations

import csv
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GroupShuffleSplit
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import Pipeline, make_pipeline

from models.log_classifier import LogClassifier, build_alert_pipeline
from models.log_data import load_examples
from models.log_miner import LogMiner, masked_tokens

__all__ = ["LevelData", "load_levels", "grouping_accuracy", "evaluate", "LEVEL_SYSTEMS", "EvalError"]

LEVEL_SYSTEMS = ("Android", "Apache", "BGL", "HDFS", "Hadoop")


class EvalError(Exception):
    """The data directory cannot be evaluated (missing or malformed files)."""


class _Classifier(Protocol):
    def fit(self, X: Sequence[str], y: Sequence[str]) -> Any: ...  # noqa: N803
    def predict(self, X: Sequence[str]) -> Any: ...  # noqa: N803


@dataclass(frozen=True)
class LevelData:
    """Lines with a level, a template group and a system."""

    text: list[str]
    label: list[str]
    group: list[str]
    system: list[str]


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EvalError(f"cannot read {path}: {exc}") from None


def load_levels(data_dir: Path, *, systems: Sequence[str] = LEVEL_SYSTEMS, text_col: str = "content",
                label_col: str = "level_norm", group_col: str = "event_id", system_col: str = "system",
                file: str = "loghub_2k_unified.csv") -> LevelData:
    """Lines of the chosen systems from the unified Loghub CSV."""
    rows = _read_csv(data_dir / file)
    if rows and not {text_col, label_col, group_col, system_col} <= set(rows[0]):
        raise EvalError(f"{file} lacks one of the columns {text_col}, {label_col}, {group_col}, {system_col}")
    keep = [r for r in rows if r[system_col] in systems and r[label_col]]
    if not keep:
        raise EvalError(f"{file} has no labelled lines for {', '.join(systems)}")
    return LevelData([r[text_col] for r in keep], [r[label_col].upper() for r in keep],
                     [r[group_col] for r in keep], [r[system_col] for r in keep])


def _nb() -> Pipeline:
    return make_pipeline(CountVectorizer(), MultinomialNB())


class _Ours:
    """LogClassifier trained on the split's training lines (optionally plus the bundled examples)."""

    def __init__(self, with_bundled: bool) -> None:
        self.with_bundled = with_bundled

    def fit(self, X: Sequence[str], y: Sequence[str]) -> _Ours:  # noqa: N803
        X, y = list(X), list(y)
        if self.with_bundled:
            ex = load_examples()
            X += [e.text for e in ex]
            y += [e.severity for e in ex]
        self.model_ = LogClassifier().fit(X, y)
        return self

    def predict(self, X: Sequence[str]) -> list[str]:  # noqa: N803
        return self.model_.predict(list(X))


def _splits(make: Callable[[], _Classifier], data: LevelData, n: int) -> dict[str, float]:
    X, y, g = np.array(data.text, dtype=object), np.array(data.label), np.array(data.group)
    accs, f1s = [], []
    for r in range(n):
        tr, te = next(GroupShuffleSplit(test_size=0.2, random_state=r).split(X, y, g))
        pred = make().fit(list(X[tr]), list(y[tr])).predict(list(X[te]))
        accs.append(accuracy_score(y[te], pred))
        f1s.append(f1_score(y[te], pred, average="macro"))
    return {"accuracy": float(np.mean(accs)), "macro_f1": float(np.mean(f1s)),
            "macro_f1_per_split": [round(float(f), 4) for f in f1s]}


def _loso(make: Callable[[], _Classifier], data: LevelData) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    sys_arr = np.array(data.system)
    X, y = np.array(data.text, dtype=object), np.array(data.label)
    for s in sorted(set(data.system)):
        te, tr = sys_arr == s, sys_arr != s
        pred = make().fit(list(X[tr]), list(y[tr])).predict(list(X[te]))
        out[s] = {"accuracy": round(float(accuracy_score(y[te], pred)), 4),
                  "macro_f1": round(float(f1_score(y[te], pred, average="macro")), 4)}
    return out


class _OursBinary:
    def fit(self, X: Sequence[str], y: Sequence[str]) -> _OursBinary:  # noqa: N803
        self.pipe_ = build_alert_pipeline().fit(list(X), list(y))
        return self

    def predict(self, X: Sequence[str]) -> Any:  # noqa: N803
        return self.pipe_.predict(list(X))


def _alerts(make: Callable[[], _Classifier], rows: list[dict[str, str]], n: int = 20) -> float:
    X = np.array([r["content"] for r in rows], dtype=object)
    y = np.array([str(r["is_alert"]).strip() for r in rows])
    g = np.array([r["event_id"] for r in rows])
    truth: list[str] = []
    pred: list[str] = []
    for r in range(n):
        tr, te = next(GroupShuffleSplit(test_size=0.2, random_state=r).split(X, y, g))
        if len(set(y[tr])) < 2:
            continue
        truth += list(y[te])
        pred += list(make().fit(list(X[tr]), list(y[tr])).predict(list(X[te])))
    return float(f1_score(truth, pred, pos_label="1"))


def grouping_accuracy(pred: Sequence[Any], truth: Sequence[Any]) -> float:
    """Loghub grouping accuracy: a line is right when its predicted group equals its true group."""
    p_groups: dict[Any, list[int]] = defaultdict(list)
    t_groups: dict[Any, set[int]] = defaultdict(set)
    for i, (p, t) in enumerate(zip(pred, truth, strict=True)):
        p_groups[p].append(i)
        t_groups[t].add(i)
    ok = sum(len(idx) for idx in p_groups.values() if t_groups[truth[idx[0]]] == set(idx))
    return ok / max(1, len(pred))


def _drain3(lines: Sequence[str]) -> list[int]:
    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    cfg = TemplateMinerConfig()
    cfg.profiling_enabled = False
    miner = TemplateMiner(config=cfg)
    return [miner.add_log_message(line)["cluster_id"] for line in lines]


def _grouping(data_dir: Path) -> tuple[dict[str, float], dict[str, float], list[str], float, float]:
    ours: dict[str, float] = {}
    base: dict[str, float] = {}
    all_lines: list[str] = []
    t_ours = t_base = 0.0
    logging.getLogger("drain3").setLevel(logging.WARNING)
    for path in sorted(data_dir.glob("*_2k.log_structured.csv")):
        system = path.name.split("_", 1)[0]
        rows = _read_csv(path)
        if not rows or "Content" not in rows[0] or "EventId" not in rows[0]:
            continue
        lines, truth = [r["Content"] for r in rows], [r["EventId"] for r in rows]
        all_lines += lines
        t0 = time.perf_counter()
        ours[system] = round(grouping_accuracy(LogMiner().fit_predict(lines), truth), 4)
        t1 = time.perf_counter()
        base[system] = round(grouping_accuracy(_drain3(lines), truth), 4)
        t_ours += t1 - t0
        t_base += time.perf_counter() - t1
    return ours, base, all_lines, t_ours, t_base


def _throughput(lines: list[str], model: LogClassifier, repeat: int) -> tuple[float, float, float]:
    """Lines/s for mining + classifying (ours), mining alone, and the NB baseline classifying."""
    stream = lines * repeat
    t0 = time.perf_counter()
    miner = LogMiner()
    keys = []
    for line in stream:  # the mask is computed once and shared by the miner and the classifier
        tokens = masked_tokens(line)
        miner.add_tokens(tokens, line)
        keys.append(" ".join(tokens))
    model.predict_masked(keys, stream)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    LogMiner().fit(stream)
    t_mine = time.perf_counter() - t0
    nb = _nb().fit([e.text for e in load_examples()], [e.severity for e in load_examples()])
    t0 = time.perf_counter()
    nb.predict(stream)
    t_nb = time.perf_counter() - t0
    n = len(stream)
    return n / t_ours, n / t_mine, n / t_nb


def evaluate(data_dir: Path, *, n_splits: int = 10, n_alert_splits: int = 20, repeat: int = 2,
             progress: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Every figure of the issue's contract, ours next to the baseline's."""
    if not data_dir.is_dir():
        raise EvalError(f"{data_dir} is not a directory")
    out: dict[str, Any] = {"data": str(data_dir)}
    if (data_dir / "loghub_2k_unified.csv").is_file():
        levels = load_levels(data_dir)
        progress("severity: template-disjoint splits")
        ours = _splits(lambda: _Ours(False), levels, n_splits)
        ours_b = _splits(lambda: _Ours(True), levels, n_splits)
        base = _splits(_nb, levels, n_splits)
        out.update(severity_accuracy=round(ours["accuracy"], 4), severity_macro_f1=round(ours["macro_f1"], 4),
                   severity_macro_f1_per_split=ours["macro_f1_per_split"],
                   severity_accuracy_with_bundled=round(ours_b["accuracy"], 4),
                   severity_macro_f1_with_bundled=round(ours_b["macro_f1"], 4),
                   baseline_severity_accuracy=round(base["accuracy"], 4),
                   baseline_severity_macro_f1=round(base["macro_f1"], 4),
                   baseline_severity_macro_f1_per_split=base["macro_f1_per_split"])
        progress("severity: leave one system out")
        out["severity_loso"] = _loso(lambda: _Ours(False), levels)
        out["baseline_severity_loso"] = _loso(_nb, levels)
        bundled = load_examples()
        zero = LogClassifier().fit([e.text for e in bundled], [e.severity for e in bundled])
        pred = zero.predict(levels.text)
        out["severity_macro_f1_bundled_only"] = round(float(f1_score(levels.label, pred, average="macro")), 4)
    else:
        out.update(severity_accuracy=None, severity_macro_f1=None, baseline_severity_accuracy=None,
                   baseline_severity_macro_f1=None)
    alerts = data_dir / "bgl_2k_alerts.csv"
    if alerts.is_file():
        progress("BGL alerts: 20 template-disjoint splits")
        rows = _read_csv(alerts)
        out["bgl_alert_f1"] = round(_alerts(_OursBinary, rows, n_alert_splits), 4)
        out["baseline_bgl_alert_f1"] = round(_alerts(_nb, rows, n_alert_splits), 4)
    else:
        out["bgl_alert_f1"] = out["baseline_bgl_alert_f1"] = None
    progress("template grouping per system")
    ga, ga_base, lines, t_ours, t_base = _grouping(data_dir)
    out["grouping_accuracy"] = ga
    out["baseline_grouping_accuracy"] = ga_base
    out["grouping_accuracy_mean"] = round(float(np.mean(list(ga.values()))), 4) if ga else None
    out["baseline_grouping_accuracy_mean"] = round(float(np.mean(list(ga_base.values()))), 4) if ga_base else None
    if lines:
        progress("throughput")
        bundled = load_examples()
        model = LogClassifier().fit([e.text for e in bundled], [e.severity for e in bundled],
                                    [e.category for e in bundled])
        lps, mine_lps, nb_lps = _throughput(lines, model, repeat)
        out["lines_per_second"] = round(lps)
        out["mining_lines_per_second"] = round(mine_lps)
        out["baseline_lines_per_second"] = round(nb_lps)
        out["grouping_lines_per_second"] = round(len(lines) / t_ours) if t_ours else None
        out["baseline_mining_lines_per_second"] = round(len(lines) / t_base) if t_base else None
    else:
        out["lines_per_second"] = out["baseline_lines_per_second"] = None
    return out
