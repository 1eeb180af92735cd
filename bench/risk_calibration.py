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

Besides the chosen method and each of sigmoid / isotonic forced, ``by_type`` is also calibrated by beta
calibration (``by_type_beta``: ``a * ln(s) - b * ln(1 - s) + c`` with ``a, b >= 0``; not among the
methods the log loss chooses from, so the older columns are unchanged). ``intype_*``: the same fitted and
calibrated models scored on fresh test episodes of the training types (the failures the model knows),
a check that calibrating for unseen types does not spoil calibration for the known ones.

``by_type_sigmoid`` is what ``RiskModel.fit(X, y, groups)`` now does by default (the same
``type_folds`` and ``out_of_fold``, imported from ``models.risk_model``); ``as_is`` is the fit without
groups, the calibration before.

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
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from models.risk_artifact import episodes_dataset
from models.risk_eval import expected_calibration_error
from models.risk_model import RiskModel, _isotonic, _log_loss, _Sigmoid, out_of_fold, type_folds
from models.risk_synth import FAILURES, SCENARIOS, generate

F = NDArray[np.float64]
_METHODS = {"sigmoid": _Sigmoid, "isotonic": _isotonic}


class _Beta:
    """Beta calibration (Kull, Silva Filho and Flach, 2017): ``p = sigmoid(a ln s - b ln(1 - s) + c)``
    with ``a, b >= 0``, so the map is monotone; a negative coefficient is dropped and the fit redone."""

    def fit(self, raw: F, y: NDArray[np.int_]) -> _Beta:
        A = self._features(raw)
        keep = [0, 1]
        while True:
            if not keep:
                self.coef_, self.c_ = np.zeros(2), float(np.log(y.mean() / (1 - y.mean())))
                return self
            lr = LogisticRegression(C=1e4, max_iter=1000).fit(A[:, keep], y)
            if (lr.coef_[0] >= 0).all():
                break
            keep = [k for k, c in zip(keep, lr.coef_[0], strict=True) if c > 0 and len(keep) > 1]
        self.coef_ = np.zeros(2)
        self.coef_[keep] = lr.coef_[0]
        self.c_ = float(lr.intercept_[0])
        return self

    @staticmethod
    def _features(raw: F) -> F:
        s = np.clip(np.asarray(raw, dtype=float), 1e-4, 1 - 1e-4)
        return np.column_stack([np.log(s), -np.log(1 - s)])

    def predict(self, raw: F) -> F:
        return 1.0 / (1.0 + np.exp(-(self._features(raw) @ self.coef_ + self.c_)))


def time_folds(n: int, k: int = 5) -> list[NDArray[np.intp]]:
    return np.array_split(np.arange(n), k)


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
    probs["by_type_beta"] = []
    intype: dict[str, list[F]] = {k: [] for k in probs}
    y_in = []
    ys, chosen = [], {}
    for i, held in enumerate(FAILURES):
        train = generate(n_train, seed=seed + 100 * i, scenarios=tuple(s for s in SCENARIOS if s != held))
        test = generate(n_test, seed=seed + 100 * i + 1, scenarios=("normal", held))
        known = generate(n_test, seed=seed + 100 * i + 2, scenarios=tuple(s for s in SCENARIOS if s != held))
        X, y = episodes_dataset(train)
        groups = np.repeat([ep.scenario for ep in train], 2)  # a window row and a snapshot row per episode
        Xte, yte = episodes_dataset(test)
        Xte, yte = Xte[1::2], yte[1::2]  # snapshot rows only, as eval_snapshot
        Xin, yin = episodes_dataset(known)
        Xin, yin = Xin[1::2], yin[1::2]
        model = RiskModel(random_state=seed).fit(X, y)
        raw, raw_in = model._raw(Xte), model._raw(Xin)
        ys.append(yte)
        y_in.append(yin)

        def add(key: str, calibrator: object, raw: F = raw, raw_in: F = raw_in) -> None:
            probs[key].append(calibrator.predict(raw))  # type: ignore[attr-defined]
            intype[key].append(calibrator.predict(raw_in))  # type: ignore[attr-defined]

        add("as_is_auto", model.calibrator_)
        for m in ("sigmoid", "isotonic"):
            add(f"as_is_{m}", model.calibrators_[m])
        picks = [f"{model.chosen_}: as_is {model.calibration_}"]
        for scheme, folds in (("cross_fitted", time_folds(len(y))), ("by_type", type_folds(groups))):
            oof = out_of_fold(model, X, y, folds)
            pick, fitted = calibrate(oof, y, folds)
            picks.append(f"{scheme} {pick}")
            add(f"{scheme}_auto", fitted[pick])
            for m in ("sigmoid", "isotonic"):
                add(f"{scheme}_{m}", fitted[m])
            if scheme == "by_type":
                add("by_type_beta", _Beta().fit(oof, y))
        chosen[held] = ", ".join(picks)
    y, yk = np.concatenate(ys), np.concatenate(y_in)
    res: dict[str, object] = {"seed": seed}
    for key, parts in probs.items():
        p = np.concatenate(parts)
        res[f"{key}_roc_auc"] = round(float(roc_auc_score(y, p)), 4)
        res[f"{key}_ece"] = round(expected_calibration_error(y, p), 4)
    for key, parts in intype.items():
        res[f"intype_{key}_ece"] = round(expected_calibration_error(yk, np.concatenate(parts)), 4)
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
