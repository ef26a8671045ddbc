"""Dawid-Skene without smoothing never yields a nan posterior (issue 12).

Before the fix, with ``smoothing=0`` a worker with no posterior mass on some true class got the confusion
row ``0/0 = nan``; every posterior became ``nan`` and every label the first class, silently. The M-step
now gives such a row the uniform distribution (crowd-kit's behaviour: it floors error rates at 1e-10 and
normalises, which makes an all-zero row uniform).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.metrics import dawid_skene


def test_minimal_case_from_the_issue():
    # t1 = {a: x, b: x}, t2 = {b: y, c: y}: a never saw a y-task, c never an x-task
    frame = pd.DataFrame(
        {"task": ["t1", "t1", "t2", "t2"], "worker": ["a", "b", "b", "c"], "label": list("xxyy")}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "divide by zero" / "invalid value" on the way
        res = dawid_skene(frame, smoothing=0)
    assert np.isfinite(res.posteriors.to_numpy()).all()
    assert res.labels.tolist() == ["x", "y"]
    np.testing.assert_allclose(res.posteriors.to_numpy(), [[1.0, 0.0], [0.0, 1.0]])
    # rows without mass are uniform; the others are the maximum-likelihood estimates
    np.testing.assert_allclose(res.confusion.loc[("a", "y")].to_numpy(), [0.5, 0.5])
    np.testing.assert_allclose(res.confusion.loc[("c", "x")].to_numpy(), [0.5, 0.5])
    np.testing.assert_allclose(res.confusion.loc["b"].to_numpy(), np.eye(2))
    # P(t1 answers, x) + P(t2 answers, y) = 0.5 * 1 * 1 each
    assert res.log_likelihood == np.log(0.5) * 2


def test_labels_are_not_silently_the_first_class():
    # the same shape with the classes swapped: nan posteriors used to make both labels "x" (argmax of nan)
    frame = pd.DataFrame({"task": [1, 1, 2, 2, 3, 3], "worker": list("abbccd"), "label": list("yyxxyy")})
    res = dawid_skene(frame, smoothing=0)
    assert res.labels.tolist() == ["y", "x", "y"]
    assert np.isfinite(res.posteriors.to_numpy()).all()


answers = st.lists(
    st.tuples(st.integers(0, 7), st.integers(0, 4), st.sampled_from(["a", "b", "c", "d"])),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=answers,
    smoothing=st.sampled_from([0.0, 0.0, 1e-3, 1.0]),
    n_iter=st.integers(0, 60),
    gold_tasks=st.lists(st.integers(0, 7), max_size=3),
    data=st.data(),
)
def test_posteriors_are_never_nan(rows, smoothing, n_iter, gold_tasks, data):
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
    vocab = sorted(frame["label"].unique())
    gold = {t: data.draw(st.sampled_from(vocab)) for t in gold_tasks}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = dawid_skene(frame, n_iter=n_iter, tol=0, gold=gold, smoothing=smoothing)
    post = res.posteriors.to_numpy()
    assert np.isfinite(post).all()
    np.testing.assert_allclose(post.sum(axis=1), 1.0)
    assert ((post >= 0) & (post <= 1)).all()
    conf = res.confusion.to_numpy()
    assert np.isfinite(conf).all()
    np.testing.assert_allclose(conf.sum(axis=1), 1.0)
    assert np.isfinite(res.priors.to_numpy()).all()
    np.testing.assert_allclose(res.priors.sum(), 1.0)
    assert not np.isnan(res.log_likelihood)
    for task, label in gold.items():
        if task in res.labels.index:
            assert res.labels[task] == label
