"""Dawid-Skene at its defaults is the published method: Dawid & Skene (1979) and crowd-kit's own tests.

Sources
-------
* A. P. Dawid and A. M. Skene (1979), "Maximum likelihood estimation of observer error-rates using the EM
  algorithm", Applied Statistics 28(1), 20-28 (doi:10.2307/2346806). Table 1: 45 patients, 5
  anaesthetists (clinician 1 rated every patient three times), 4 classes. The data below are transcribed
  from ``generate_sample_data()`` of github.com/dallascard/dawid_skene (dawid_skene.py) and agree row by row
  with a second transcription, ``RAW_DATA`` of the Java ``DawidSkeneAlgorithmTest`` (author "LinX", a
  public truth-inference repository), and with the ``anesthesia`` data of the R package
  github.com/jeffreypullin/rater (315 ratings).
* The published estimates (2 decimals): class probabilities, individual error rates (one ``true x
  observed`` table per clinician) and the patient-class probabilities, as transcribed in the same Java
  test (``getExpectedErrorRates``, ``expectedClassProbabilities``, ``expectedClassEstimatinos``).
* The maximum log-likelihood -192.89 (issue 12; an independent loop implementation of eqs. 2.3-2.7,
  ``_naive_dawid_skene`` below, reaches the same value).
* crowd-kit (github.com/Toloka/crowd-kit, tests/aggregation/test_ds_aggregation.py and tests/conftest.py,
  commit 35f06615): ``test_dawid_skene_step_by_step``, ``test_dawid_skene_overlap``,
  ``test_aggregate_ds_on_toy_ysda``, ``test_aggregate_ds_gold_on_toy_ysda``,
  ``test_ds_gold_probas_correction_with_iters``, ``test_aggregate_ds_on_simple``, ``test_ds_on_bool_labels``,
  ``test_dawid_skene_on_empty_input``. crowd-kit's ``errors_`` is ``(worker, observed) x true``; ours is
  ``(worker, true) x observed``, hence the transposes. crowd-kit's ``DawidSkene(n)`` runs ``n`` E-steps
  after the majority-vote M-step, as ``dawid_skene(frame, n_iter=n, tol=0)``.

Before the fix the default ``smoothing=0.01`` missed the published error rates by up to 0.0099 and the
log-likelihood (-193.27), so every test here using the defaults failed against it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.metrics import dawid_skene

# Dawid & Skene (1979) Table 1: per patient, clinician 1's three ratings, then clinicians 2..5.
DS1979 = [
    ([1, 1, 1], 1, 1, 1, 1), ([3, 3, 3], 4, 3, 3, 4), ([1, 1, 2], 2, 1, 2, 2), ([2, 2, 2], 3, 1, 2, 1),
    ([2, 2, 2], 3, 2, 2, 2), ([2, 2, 2], 3, 3, 2, 2), ([1, 2, 2], 2, 1, 1, 1), ([3, 3, 3], 3, 4, 3, 3),
    ([2, 2, 2], 2, 2, 2, 3), ([2, 3, 2], 2, 2, 2, 3), ([4, 4, 4], 4, 4, 4, 4), ([2, 2, 2], 3, 3, 4, 3),
    ([1, 1, 1], 1, 1, 1, 1), ([2, 2, 2], 3, 2, 1, 2), ([1, 2, 1], 1, 1, 1, 1), ([1, 1, 1], 2, 1, 1, 1),
    ([1, 1, 1], 1, 1, 1, 1), ([1, 1, 1], 1, 1, 1, 1), ([2, 2, 2], 2, 2, 2, 1), ([2, 2, 2], 1, 3, 2, 2),
    ([2, 2, 2], 2, 2, 2, 2), ([2, 2, 2], 2, 2, 2, 1), ([2, 2, 2], 3, 2, 2, 2), ([2, 2, 1], 2, 2, 2, 2),
    ([1, 1, 1], 1, 1, 1, 1), ([1, 1, 1], 1, 1, 1, 1), ([2, 3, 2], 2, 2, 2, 2), ([1, 1, 1], 1, 1, 1, 1),
    ([1, 1, 1], 1, 1, 1, 1), ([1, 1, 2], 1, 1, 2, 1), ([1, 1, 1], 1, 1, 1, 1), ([3, 3, 3], 3, 2, 3, 3),
    ([1, 1, 1], 1, 1, 1, 1), ([2, 2, 2], 2, 2, 2, 2), ([2, 2, 2], 3, 2, 3, 2), ([4, 3, 3], 4, 3, 4, 3),
    ([2, 2, 1], 2, 2, 3, 2), ([2, 3, 2], 3, 2, 3, 3), ([3, 3, 3], 3, 4, 3, 2), ([1, 1, 1], 1, 1, 1, 1),
    ([1, 1, 1], 1, 1, 1, 1), ([1, 2, 1], 2, 1, 1, 1), ([2, 3, 2], 2, 2, 2, 2), ([1, 2, 1], 1, 1, 1, 1),
    ([2, 2, 2], 2, 2, 2, 2),
]  # fmt: skip

# Published class probabilities and error rates pi[clinician][true class] = P(observed 1..4)
PUBLISHED_PRIORS = [0.40, 0.42, 0.11, 0.07]
# fmt: off
PUBLISHED_ERROR_RATES = {
    1: [[0.89, 0.11, 0.00, 0.00], [0.07, 0.88, 0.05, 0.00], [0.00, 0.34, 0.66, 0.00], [0.00, 0.00, 0.56, 0.44]],
    2: [[0.83, 0.17, 0.00, 0.00], [0.05, 0.63, 0.31, 0.00], [0.00, 0.00, 1.00, 0.00], [0.00, 0.00, 0.00, 1.00]],
    3: [[1.00, 0.00, 0.00, 0.00], [0.11, 0.79, 0.11, 0.00], [0.00, 0.40, 0.20, 0.40], [0.00, 0.00, 0.67, 0.33]],
    4: [[0.94, 0.06, 0.00, 0.00], [0.05, 0.84, 0.10, 0.00], [0.00, 0.00, 0.80, 0.20], [0.00, 0.00, 0.33, 0.67]],
    5: [[1.00, 0.00, 0.00, 0.00], [0.16, 0.73, 0.11, 0.00], [0.00, 0.21, 0.79, 0.00], [0.00, 0.00, 0.33, 0.67]],
}
# fmt: on
# Published patient classes: one-hot except three patients with a split posterior
PUBLISHED_CLASS = "1 4 2 2 2 2 1 3 2 2 4 3 1 2 1 1 1 1 2 2 2 2 2 2 1 1 2 1 1 1 1 3 1 2 2 4 2 3 3 1 1 1 2 1 2"
PUBLISHED_SPLIT = {7: [0.98, 0.02, 0.00, 0.00], 35: [0.00, 0.95, 0.05, 0.00], 38: [0.00, 0.02, 0.98, 0.00]}
PUBLISHED_LOG_LIKELIHOOD = -192.89

HALF_CENT = 0.005 + 1e-9  # a 2-decimal table: |ours - published| <= half a unit in the last place


def ds1979_frame() -> pd.DataFrame:
    rows = []
    for patient, (first, *others) in enumerate(DS1979, start=1):
        rows += [(patient, 1, v) for v in first]
        rows += [(patient, clinician, v) for clinician, v in enumerate(others, start=2)]
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


def test_ds1979_data_shape():
    frame = ds1979_frame()
    assert len(frame) == 315  # 45 patients x (3 + 4) ratings
    assert frame.groupby("worker").size().to_dict() == {1: 135, 2: 45, 3: 45, 4: 45, 5: 45}


def test_defaults_reproduce_published_error_rates():
    res = dawid_skene(ds1979_frame())
    assert res.converged
    for clinician, table in PUBLISHED_ERROR_RATES.items():
        ours = res.confusion.loc[clinician].to_numpy()
        np.testing.assert_allclose(ours, table, atol=HALF_CENT, rtol=0, err_msg=f"clinician {clinician}")


def test_defaults_reproduce_published_class_probabilities():
    res = dawid_skene(ds1979_frame())
    np.testing.assert_allclose(res.priors.to_numpy(), PUBLISHED_PRIORS, atol=HALF_CENT, rtol=0)


def test_defaults_reproduce_published_log_likelihood():
    res = dawid_skene(ds1979_frame())
    assert res.log_likelihood == pytest.approx(PUBLISHED_LOG_LIKELIHOOD, abs=0.005)


def test_defaults_reproduce_published_patient_classes():
    res = dawid_skene(ds1979_frame())
    assert res.labels.tolist() == [int(c) for c in PUBLISHED_CLASS.split()]
    expected = np.eye(4)[[int(c) - 1 for c in PUBLISHED_CLASS.split()]]
    for patient, row in PUBLISHED_SPLIT.items():
        expected[patient - 1] = row
    np.testing.assert_allclose(res.posteriors.to_numpy(), expected, atol=HALF_CENT, rtol=0)


def test_smoothing_is_opt_in_and_moves_away_from_the_published_values():
    frame = ds1979_frame()
    assert dawid_skene(frame).log_likelihood == dawid_skene(frame, smoothing=0.0).log_likelihood
    smoothed = dawid_skene(frame, smoothing=0.01)
    assert smoothed.log_likelihood == pytest.approx(-193.27, abs=0.005)  # the old default, as in issue 12
    # clinician 2 answers classes 3 and 4 perfectly: smoothing pulls 1.00 below the published value
    assert smoothed.confusion.loc[(2, 3), 3] < 0.995
    assert np.isfinite(smoothed.posteriors.to_numpy()).all()
    with pytest.raises(ValueError, match="smoothing"):
        dawid_skene(frame, smoothing=-0.1)


def _naive_dawid_skene(frame: pd.DataFrame, n_iter: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Loop-per-cell EM after Dawid & Skene's eqs. 2.3-2.5 (and dallascard/dawid_skene): an independent
    expectation, only for designs where every worker answers every task."""
    tasks, workers = sorted(frame["task"].unique()), sorted(frame["worker"].unique())
    classes = sorted(frame["label"].unique())
    n = np.zeros((len(tasks), len(workers), len(classes)))
    for t, w, lab in frame.itertuples(index=False):
        n[tasks.index(t), workers.index(w), classes.index(lab)] += 1
    T = n.sum(axis=1) / n.sum(axis=(1, 2))[:, None]
    for _ in range(n_iter + 1):
        p = T.sum(axis=0) / len(tasks)
        pi = np.zeros((len(workers), len(classes), len(classes)))
        for k in range(len(workers)):
            for j in range(len(classes)):
                for m in range(len(classes)):
                    pi[k, j, m] = sum(T[i, j] * n[i, k, m] for i in range(len(tasks)))
                pi[k, j] /= pi[k, j].sum()
        if _ == n_iter:
            break
        like = np.array(
            [[p[j] * np.prod(pi[:, j, :] ** n[i]) for j in range(len(classes))] for i in range(len(tasks))]
        )
        T = like / like.sum(axis=1, keepdims=True)
    return T, p, pi


@pytest.mark.parametrize("seed", range(5))
def test_matches_naive_em_loop_on_complete_designs(seed):
    rng = np.random.default_rng(seed)
    n_tasks, n_workers, k = 25, 4, 3
    truth = rng.integers(0, k, n_tasks)
    rows = [
        (t, w, int(truth[t]) if rng.random() < 0.7 else int(rng.integers(0, k)))
        for t in range(n_tasks)
        for w in range(n_workers)
    ]
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
    if frame["label"].nunique() < k:
        pytest.skip("a class went unused")
    post, priors, pi = _naive_dawid_skene(frame, n_iter=7)
    res = dawid_skene(frame, n_iter=7, tol=0)
    np.testing.assert_allclose(res.posteriors.to_numpy(), post, atol=1e-12)
    np.testing.assert_allclose(res.priors.to_numpy(), priors, atol=1e-12)
    np.testing.assert_allclose(res.confusion.to_numpy().reshape(n_workers, k, k), pi, atol=1e-12)


# ---------------------------------------------------------------------------------------------------
# crowd-kit tests/aggregation/test_ds_aggregation.py, ported (defaults = crowd-kit's unsmoothed EM)

CROWDKIT_STEP_DATA = [
    ["t1", "w1", "no"], ["t1", "w2", "yes"], ["t1", "w4", "yes"], ["t1", "w5", "no"],
    ["t2", "w1", "yes"], ["t2", "w2", "yes"], ["t2", "w3", "yes"], ["t2", "w4", "no"], ["t2", "w5", "no"],
    ["t3", "w1", "yes"], ["t3", "w2", "no"], ["t3", "w3", "no"], ["t3", "w4", "yes"], ["t3", "w5", "no"],
    ["t4", "w1", "yes"], ["t4", "w2", "yes"], ["t4", "w3", "yes"], ["t4", "w4", "yes"], ["t4", "w5", "yes"],
    ["t5", "w1", "yes"], ["t5", "w2", "no"], ["t5", "w3", "no"], ["t5", "w4", "no"], ["t5", "w5", "no"],
]  # fmt: skip
# fixtures probas_iter_N / priors_iter_N / tasks_labels_iter_N / errors_iter_N (errors: worker, observed, no, yes)
CROWDKIT_STEPS = {
    0: {
        "probas": [[0.5, 0.5], [0.4, 0.6], [0.6, 0.4], [0.0, 1.0], [0.8, 0.2]],
        "priors": [0.46, 0.54],
        "labels": ["no", "yes", "no", "yes", "no"],
        "errors": [
            ["w1", "no", 0.22, 0.19], ["w1", "yes", 0.78, 0.81], ["w2", "no", 0.61, 0.22],
            ["w2", "yes", 0.39, 0.78], ["w3", "no", 0.78, 0.27], ["w3", "yes", 0.22, 0.73],
            ["w4", "no", 0.52, 0.30], ["w4", "yes", 0.48, 0.70], ["w5", "no", 1.00, 0.63],
            ["w5", "yes", 0.00, 0.37],
        ],
    },
    1: {
        "probas": [[0.35, 0.65], [0.26, 0.74], [0.87, 0.13], [0.00, 1.00], [0.95, 0.05]],
        "priors": [0.49, 0.51],
        "labels": ["yes", "yes", "no", "yes", "no"],
        "errors": [
            ["w1", "no", 0.14, 0.25], ["w1", "yes", 0.86, 0.75], ["w2", "no", 0.75, 0.07],
            ["w2", "yes", 0.25, 0.93], ["w3", "no", 0.87, 0.09], ["w3", "yes", 0.13, 0.91],
            ["w4", "no", 0.50, 0.31], ["w4", "yes", 0.50, 0.69], ["w5", "no", 1.00, 0.61],
            ["w5", "yes", 0.00, 0.39],
        ],
    },
}  # fmt: skip


@pytest.mark.parametrize("n_iter", [0, 1])
def test_crowdkit_step_by_step(n_iter):
    frame = pd.DataFrame(CROWDKIT_STEP_DATA, columns=["task", "worker", "label"])
    res = dawid_skene(frame, n_iter=n_iter, tol=0)
    exp = CROWDKIT_STEPS[n_iter]
    np.testing.assert_allclose(res.posteriors.to_numpy(), exp["probas"], atol=0.005)
    np.testing.assert_allclose(res.priors.to_numpy(), exp["priors"], atol=0.005)
    assert res.labels.tolist() == exp["labels"]
    errors = pd.DataFrame(exp["errors"], columns=["worker", "observed", "no", "yes"]).set_index(
        ["worker", "observed"]
    )
    for worker in ["w1", "w2", "w3", "w4", "w5"]:
        ours = res.confusion.loc[worker]  # true x observed
        np.testing.assert_allclose(
            ours.T.to_numpy(), errors.loc[worker].to_numpy(), atol=0.005, err_msg=worker
        )


@pytest.mark.parametrize("overlap", [3, 300, 30000])
def test_crowdkit_overlap(overlap):
    frame = pd.DataFrame(
        [
            {"task": task_id, "worker": perf_id, "label": "yes" if (perf_id - task_id) % 3 else "no"}
            for perf_id in range(overlap)
            for task_id in range(3)
        ]
    )
    res = dawid_skene(frame, n_iter=20)
    np.testing.assert_allclose(res.posteriors.to_numpy(), [[1 / 3, 2 / 3]] * 3, atol=0.005)
    assert res.labels.tolist() == ["yes"] * 3
    np.testing.assert_allclose(res.priors.to_numpy(), [1 / 3, 2 / 3], atol=0.005)


# tests/conftest.py toy_answers_df
CROWDKIT_TOY = [
    ["w1", "t1", "no"], ["w1", "t2", "yes"], ["w1", "t3", "yes"], ["w1", "t4", "yes"], ["w1", "t5", "yes"],
    ["w2", "t1", "yes"], ["w2", "t2", "yes"], ["w2", "t3", "no"], ["w2", "t4", "yes"], ["w2", "t5", "no"],
    ["w3", "t2", "yes"], ["w3", "t3", "no"], ["w3", "t4", "yes"], ["w3", "t5", "no"],
    ["w4", "t1", "yes"], ["w4", "t2", "no"], ["w4", "t3", "yes"], ["w4", "t4", "yes"], ["w4", "t5", "no"],
    ["w5", "t1", "no"], ["w5", "t2", "no"], ["w5", "t3", "no"], ["w5", "t4", "yes"], ["w5", "t5", "no"],
]  # fmt: skip
CROWDKIT_TOY_TRUTH = ["yes", "yes", "no", "yes", "no"]  # toy_ground_truth_df, t1..t5
CROWDKIT_TOY_GOLD = {"t1": "yes", "t2": "yes"}  # toy_gold_df


def _toy() -> pd.DataFrame:
    return pd.DataFrame(CROWDKIT_TOY, columns=["worker", "task", "label"])


@pytest.mark.parametrize(("n_iter", "tol"), [(10, 0), (100500, 1e-5)])
def test_crowdkit_toy_ysda(n_iter, tol):
    assert dawid_skene(_toy(), n_iter=n_iter, tol=tol).labels.tolist() == CROWDKIT_TOY_TRUTH


@pytest.mark.parametrize(("n_iter", "tol"), [(10, 0), (100500, 1e-5)])
def test_crowdkit_toy_ysda_with_gold(n_iter, tol):
    res = dawid_skene(_toy(), n_iter=n_iter, tol=tol, gold=CROWDKIT_TOY_GOLD)
    assert res.labels.tolist() == CROWDKIT_TOY_TRUTH


@pytest.mark.parametrize("n_iter", [0, 1, 2])
def test_crowdkit_gold_probas_correction_with_iters(n_iter):
    res = dawid_skene(_toy(), n_iter=n_iter, tol=0, gold=pd.Series(CROWDKIT_TOY_GOLD))
    for task, label in CROWDKIT_TOY_GOLD.items():
        assert res.posteriors.loc[task, label] == pytest.approx(1.0, abs=1e-8)
        assert res.labels[task] == label
    np.testing.assert_allclose(res.posteriors.sum(axis=1), 1.0, atol=1e-8)


# tests/conftest.py simple_answers_df ("imitates real toloka answers"); ids shortened by their common prefix
_W = {
    "g1": "bde3b214b06c1efa6cb1bc6284dc72d2", "g2": "b17c3301ad2ccbb798716fdd405d16e8",
    "g3": "a452e450f913cfa987cad58d50393718", "g4": "0f65edea0a6dc7b9acba1dea313bbb3d",
    "fraud": "0c3eb7d5fcc414db137c4180a654c06e", "careless": "e563e2fb32fce9f00123a65a1bc78c55",
}  # fmt: skip
CROWDKIT_SIMPLE = [
    ("g1", "eec", "goose"), ("g1", "efb", "parrot"), ("g1", "f03", "goose"), ("g1", "f05", "goose"),
    ("g1", "f02", "parrot"), ("g1", "f08", "parrot"),
    ("g2", "efb", "parrot"), ("g2", "ee8", "chicken"), ("g2", "f07", "parrot"), ("g2", "efd", "chicken"),
    ("g2", "ee4", "chicken"), ("g2", "f03", "goose"),
    ("g3", "ee8", "chicken"), ("g3", "eec", "goose"), ("g3", "f05", "goose"), ("g3", "f02", "parrot"),
    ("g3", "f08", "parrot"),
    ("g4", "eec", "goose"), ("g4", "ee8", "chicken"), ("g4", "f03", "goose"), ("g4", "ee4", "chicken"),
    ("fraud", "eec", "parrot"), ("fraud", "efb", "parrot"), ("fraud", "f07", "parrot"),
    ("fraud", "efd", "parrot"), ("fraud", "ee4", "parrot"), ("fraud", "f05", "parrot"),
    ("careless", "efb", "parrot"), ("careless", "ee8", "goose"), ("careless", "f02", "parrot"),
    ("careless", "f08", "parrot"), ("careless", "f07", "parrot"), ("careless", "efd", "goose"),
]  # fmt: skip
CROWDKIT_SIMPLE_TRUTH = {
    "eec": "goose", "f03": "goose", "f05": "goose", "efb": "parrot", "f02": "parrot", "f08": "parrot",
    "f07": "parrot", "ee8": "chicken", "efd": "chicken", "ee4": "chicken",
}  # fmt: skip
_TASK = "1231239876--5fac0d234ffb2f3b00893"


@pytest.mark.parametrize(("n_iter", "tol"), [(10, 0), (100500, 1e-5)])
def test_crowdkit_simple(n_iter, tol):
    frame = pd.DataFrame(
        [(_W[w], _TASK + t, lab) for w, t, lab in CROWDKIT_SIMPLE], columns=["worker", "task", "label"]
    )
    labels = dawid_skene(frame, n_iter=n_iter, tol=tol).labels
    assert labels.to_dict() == {_TASK + t: lab for t, lab in CROWDKIT_SIMPLE_TRUTH.items()}


def test_crowdkit_bool_labels():
    frame = pd.DataFrame(
        [["w1", "t1", True], ["w1", "t2", True], ["w2", "t1", True], ["w2", "t2", True], ["w3", "t1", False],
         ["w3", "t2", False]],
        columns=["worker", "task", "label"],
    )  # fmt: skip
    assert dawid_skene(frame, n_iter=20).labels.tolist() == [True, True]


def test_crowdkit_empty_input():
    res = dawid_skene(pd.DataFrame([], columns=["task", "worker", "label"]), n_iter=10)
    assert res.labels.empty and res.posteriors.empty and res.priors.empty and res.confusion.empty
