"""bench/routing_finetune.py: the fine-tuning core learns a trivially separable split, and the evaluation
split is the one `warroom eval routing` uses."""

from __future__ import annotations

import random

import numpy as np

from bench.routing_finetune import split_like_eval, train_finetune


def _tickets(n: int) -> tuple[list[str], list[str]]:
    rng = random.Random(0)
    pay = ["card payment declined", "refund not received", "invoice charged twice", "checkout payment failed"]
    net = ["vpn tunnel down", "dns lookup timeout", "router packet loss", "firewall blocks port"]
    texts, labels = [], []
    for i in range(n):
        label = ("payments", "network")[i % 2]
        words = rng.choice(pay if label == "payments" else net)
        texts.append(f"{words} for customer {rng.randint(1, 999)}")
        labels.append(label)
    return texts, labels


def test_finetune_learns_a_separable_split() -> None:
    import torch

    texts, labels = _tickets(60)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the bench trains: two threads are several times slower on a loaded machine
    try:
        model = train_finetune(texts, labels, epochs=1, max_length=16, batch_size=8)
        proba = model.predict_proba(texts)
    finally:
        torch.set_num_threads(threads)
    assert proba.shape == (60, 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert list(model.classes_) == ["network", "payments"]
    accuracy = float(np.mean(model.classes_[proba.argmax(axis=1)] == np.array(labels)))
    assert accuracy >= 0.9


def test_split_matches_routing_eval() -> None:
    from sklearn.model_selection import train_test_split

    labels = [str(i % 3 + 1) for i in range(30)]
    texts = [f"t{i}" for i in range(30)]
    ours = split_like_eval(texts, labels, random_state=0)
    # models/routing_eval.py stratifies numeric labels as numbers
    ref = train_test_split(texts, labels, test_size=0.2, stratify=[int(v) for v in labels], random_state=0)
    assert ours == ref
