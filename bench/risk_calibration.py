"""Calibration schemes of the snapshot model compared on held-out synthetic scenario types, per seed.

    python bench/risk_calibration.py [--seeds 0 1 2 ...] [--n-train 2000] [--n-test 1000]

The protocol of ``models.risk_eval.eval_snapshot`` (leave one failure type out; the CLI's figures are
seed 0): per held-out type, ``RiskModel`` is fitted on the other types exactly as the product fits it,
and the SAME fitted model (same trees) is calibrated three ways:

* ``as_is``: the model's own calibration (fitted on the validation rows' scores; sigmoid or isotonic
  chosen by log loss fitted on their older half and scored on their newer half);
* ``cross_fitted``: every training row gets an out-of-fold score from the chosen candidate refitted
  without its fold (5 contiguous time-ordered folds); sigmoid or isotonic is chosen by the log loss of
  each fold's scores under the method fitted on the other folds' scores, then fitted on all of them;
* ``by_type``: the same, but each fold holds out one failure type's rows plus an equal time-ordered
  share of the healthy rows (the shift the model meets with a failure type it never saw).

Everything is chosen inside the training rows; the held-out types only score. Prints one JSON line
per seed: pooled ROC-AUC and expected calibration error per scheme (the chosen method, and each
method forced), and the method each fold chose.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from numpy.typing import NDArray
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from models.risk_artifact import episodes_dataset
from models.risk_eval import expected_calibration_error
from models.risk_model import RiskModel, _isotonic, _log_loss, _Sigmoid
from models.risk_synth import FAILURES, SCENARIOS, generate

F = NDArray[np.float64]
_METHODS = {"sigmoid": _Sigmoid, "isotonic": _isotonic}


def time_folds(n: int, k: int = 5) -> list[NDArray[np.intp]]:
    return np.array_split(np.arange(n), k)


def type_folds(groups: NDArray[np.str_]) -> list[NDArray[np.intp]]:
    """One fold per failure type: its rows plus an equal time-ordered share of the healthy rows."""
    types = [g for g in dict.fromkeys(groups.tolist()) if g != "normal"]
    healthy = np.array_split(np.flatnonzero(groups == "normal"), len(types))
    return [np.sort(np.concatenate([np.flatnonzero(groups == t), h])) for t, h in zip(types, healthy, strict=True)]


def out_of_fold(model: RiskModel, X: F, y: NDArray[np.int_], folds: list[NDArray[np.intp]]) -> F:
    """Every row's score from the model's chosen candidate(s) refitted without the row's fold (class
    weights as in ``RiskModel.fit``)."""
    names = list(model._candidates()) if model.chosen_ == "soft_vote" else [model.chosen_]
    out = np.full(len(y), np.nan)
    for idx in folds:
        train = np.ones(len(y), dtype=bool)
        train[idx] = False
        Xt, yt = X[train], y[train]
        w = np.where(yt == 1, 0.5 / yt.mean(), 0.5 / (1 - yt.mean()))
        ps = []
        for name in names:
            step = "logisticregression__sample_weight" if name == "logistic_regression" else "sample_weight"
            ps.append(clone(model._candidates()[name]).fit(Xt, yt, **{step: w}).predict_proba(X[idx])[:, 1])
        out[idx] = np.mean(ps, axis=0)
    return out


def calibrate(raw: F, y: NDArray[np.int_], folds: list[NDArray[np.intp]]) -> tuple[str, dict[str, object]]:
    """Both methods fitted on all (score, label) pairs, and the one with the lower cross-fitted log loss."""
    loss = {}
    for name, make in _METHODS.items():
        scored, labels = [], []
        for idx in folds:
            rest = np.ones(len(y), dtype=bool)
            rest[idx] = False
            scored.append(make().fit(raw[rest], y[rest]).predict(raw[idx]))
            labels.append(y[idx])
        loss[name] = _log_loss(np.concatenate(labels), np.concatenate(scored))
    return min(loss, key=lambda k: loss[k]), {name: make().fit(raw, y) for name, make in _METHODS.items()}


def run_seed(seed: int, n_train: int, n_test: int) -> dict[str, object]:
    t0 = time.time()
    schemes = ("as_is", "cross_fitted", "by_type")
    probs: dict[str, list[F]] = {f"{s}_{m}": [] for s in schemes for m in ("auto", "sigmoid", "isotonic")}
    ys, chosen = [], {}
    for i, held in enumerate(FAILURES):
        train = generate(n_train, seed=seed + 100 * i, scenarios=tuple(s for s in SCENARIOS if s != held))
        test = generate(n_test, seed=seed + 100 * i + 1, scenarios=("normal", held))
        X, y = episodes_dataset(train)
        groups = np.repeat([ep.scenario for ep in train], 2)  # a window row and a snapshot row per episode
        Xte, yte = episodes_dataset(test)
        Xte, yte = Xte[1::2], yte[1::2]  # snapshot rows only, as eval_snapshot
        model = RiskModel(random_state=seed).fit(X, y)
        raw = model._raw(Xte)
        ys.append(yte)
        probs["as_is_auto"].append(model.calibrator_.predict(raw))
        for m in ("sigmoid", "isotonic"):
            probs[f"as_is_{m}"].append(model.calibrators_[m].predict(raw))
        picks = [f"{model.chosen_}: as_is {model.calibration_}"]
        for scheme, folds in (("cross_fitted", time_folds(len(y))), ("by_type", type_folds(groups))):
            pick, fitted = calibrate(out_of_fold(model, X, y, folds), y, folds)
            picks.append(f"{scheme} {pick}")
            probs[f"{scheme}_auto"].append(fitted[pick].predict(raw))
            for m in ("sigmoid", "isotonic"):
                probs[f"{scheme}_{m}"].append(fitted[m].predict(raw))
        chosen[held] = ", ".join(picks)
    y = np.concatenate(ys)
    res: dict[str, object] = {"seed": seed}
    for key, parts in probs.items():
        p = np.concatenate(parts)
        res[f"{key}_roc_auc"] = round(float(roc_auc_score(y, p)), 4)
        res[f"{key}_ece"] = round(expected_calibration_error(y, p), 4)
    return {**res, "chosen": chosen, "seconds": round(time.time() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-test", type=int, default=1000)
    args = ap.parse_args()
    for seed in args.seeds:
        print(json.dumps(run_seed(seed, args.n_train, args.n_test)), flush=True)


if __name__ == "__main__":
    main()
