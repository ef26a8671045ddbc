"""Dawid-Skene recovers known worker confusion matrices on synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.metrics import dawid_skene, majority_vote


def synthetic(seed=0, n_tasks=3000, n_workers=8, k=3, per_task=4):
    rng = np.random.default_rng(seed)
    priors = np.array([0.5, 0.3, 0.2])[:k]
    truth = rng.choice(k, size=n_tasks, p=priors / priors.sum())
    conf = np.empty((n_workers, k, k))
    for w in range(n_workers):
        acc = 0.9 if w < 3 else (0.6 if w < 6 else 0.35)  # two spammy workers
        off = rng.dirichlet(np.ones(k - 1))
        for t in range(k):
            row = np.zeros(k)
            row[t] = acc
            row[np.arange(k) != t] = (1 - acc) * off
            conf[w, t] = row
    rows = []
    for t in range(n_tasks):
        for w in rng.choice(n_workers, size=per_task, replace=False):
            rows.append((t, f"w{w}", int(rng.choice(k, p=conf[w, truth[t]]))))
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
    return frame, truth, conf, priors / priors.sum()


def test_recovers_confusion_priors_and_labels():
    frame, truth, conf, priors = synthetic()
    res = dawid_skene(frame, n_iter=200, tol=1e-7)
    assert res.converged
    for w in range(conf.shape[0]):
        est = res.confusion.loc[f"w{w}"].to_numpy()
        assert np.abs(est - conf[w]).max() < 0.08, (w, est, conf[w])
        np.testing.assert_allclose(est.sum(axis=1), 1.0)
    np.testing.assert_allclose(res.priors.to_numpy(), priors, atol=0.03)
    ds_acc = (res.labels.sort_index().to_numpy() == truth).mean()
    mv = majority_vote(frame)["label"].sort_index().to_numpy()
    mv_acc = (mv == truth).mean()
    assert ds_acc > mv_acc
    assert ds_acc > 0.9
    np.testing.assert_allclose(res.posteriors.sum(axis=1), 1.0)
    acc = res.worker_accuracy()
    assert acc["w0"] > acc["w7"]


def test_gold_labels_are_clamped_and_help():
    frame, truth, conf, _ = synthetic(seed=1, n_tasks=400, per_task=3)
    gold = pd.Series(truth[:100], index=range(100))
    res = dawid_skene(frame, gold=gold)
    assert (res.labels.loc[:99].to_numpy() == truth[:100]).all()
    assert (res.posteriors.loc[:99].max(axis=1) == 1.0).all()


def test_string_labels_and_evaluator_column():
    frame = pd.DataFrame(
        {
            "task": [1, 1, 1, 2, 2, 2],
            "evaluator": ["a", "b", "c", "a", "b", "c"],
            "label": ["cat", "cat", "dog", "dog", "dog", "dog"],
        }
    )
    res = dawid_skene(frame, n_iter=50)
    assert list(res.labels) == ["cat", "dog"]
    assert set(res.confusion.index.get_level_values("worker")) == {"a", "b", "c"}
    assert res.posteriors.shape == (2, 2)
    with pytest.raises(ValueError):
        dawid_skene(frame.drop(columns=["label"]))
