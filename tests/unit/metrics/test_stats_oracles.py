"""Statistics against reference implementations (test-only oracles) and published examples."""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from app.metrics import (
    UndefinedStatisticError,
    cohen_kappa,
    cohen_kappa_matrix,
    fleiss_kappa,
    krippendorff_alpha,
    majority_vote,
    pairwise_agreement_matrix,
    pairwise_confusion,
    percent_agreement,
)

# sklearn/statsmodels warn on degenerate random inputs (one label only); those cases are asserted as nan
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
]

NAN = np.nan
# Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011), section C: 4 observers x 12 units.
KRIPPENDORFF_EXAMPLE = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
)
LEVELS = ["nominal", "ordinal", "interval", "ratio"]


def test_krippendorff_published_example_nominal():
    assert krippendorff_alpha(KRIPPENDORFF_EXAMPLE, "nominal") == pytest.approx(0.743, abs=5e-4)


@pytest.mark.parametrize(("level", "published"), [("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)])
def test_krippendorff_published_example_other_levels(level, published):
    ours = krippendorff_alpha(KRIPPENDORFF_EXAMPLE, level)
    assert ours == pytest.approx(published, abs=5e-4)
    assert ours == pytest.approx(
        krippendorff.alpha(KRIPPENDORFF_EXAMPLE, level_of_measurement=level), abs=1e-12
    )


def _random_reliability(rng: np.random.Generator) -> np.ndarray:
    n_eval = int(rng.integers(2, 8))
    n_units = int(rng.integers(3, 60))
    n_values = int(rng.integers(2, 9))
    offset = float(rng.choice([0.0, 1.0, 10.0]))
    data = rng.integers(0, n_values, (n_eval, n_units)).astype(float) + offset
    data[rng.random(data.shape) < rng.uniform(0.0, 0.5)] = NAN
    return data


@pytest.mark.parametrize("level", LEVELS)
def test_krippendorff_matches_package_on_random_data_with_missing(level):
    rng = np.random.default_rng(1234 + LEVELS.index(level))
    checked = 0
    for _ in range(300):
        data = _random_reliability(rng)
        try:
            expected = krippendorff.alpha(data, level_of_measurement=level)
        except ValueError:
            # the package refuses degenerate inputs (one value only, no pairable unit): so do we
            with pytest.raises(UndefinedStatisticError):
                krippendorff_alpha(data, level)
            continue
        if np.isnan(expected):  # the package's silent nan (no variation among pairable values)
            with pytest.raises(UndefinedStatisticError):
                krippendorff_alpha(data, level)
            continue
        assert krippendorff_alpha(data, level) == pytest.approx(expected, abs=1e-9), data
        checked += 1
    assert checked > 250


def test_krippendorff_non_integer_values_and_strings():
    rng = np.random.default_rng(7)
    data = rng.normal(size=(4, 30)).round(2)
    data[rng.random(data.shape) < 0.2] = NAN
    assert krippendorff_alpha(data, "interval") == pytest.approx(
        krippendorff.alpha(data, level_of_measurement="interval"), abs=1e-9
    )
    labels = np.array([["a", "b", None, "a"], ["a", "b", "b", None], ["a", "c", "b", "a"]], dtype=object)
    codes = np.array([[0, 1, NAN, 0], [0, 1, 1, NAN], [0, 2, 1, 0]])
    assert krippendorff_alpha(labels, "nominal") == pytest.approx(krippendorff_alpha(codes, "nominal"))


def test_krippendorff_degenerate_inputs_raise():
    # undefined alpha is a clear error, never a silent nan (edge cases one by one: test_stats_edge_cases.py)
    with pytest.raises(UndefinedStatisticError, match="no unit was rated by two"):
        krippendorff_alpha(np.array([[1.0, NAN], [NAN, 2.0]]))
    with pytest.raises(UndefinedStatisticError, match="no variation"):
        krippendorff_alpha(np.array([[1.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="unknown level"):
        krippendorff_alpha(np.array([[1.0, 2.0]]), "bogus")


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_kappa_matches_sklearn_and_statsmodels(weights):
    rng = np.random.default_rng(99)
    for _ in range(300):
        n = int(rng.integers(5, 80))
        k = int(rng.integers(2, 7))
        a = rng.integers(0, k, n).astype(float)
        b = np.where(rng.random(n) < 0.6, a, rng.integers(0, k, n)).astype(float)
        a[rng.random(n) < 0.1] = NAN
        b[rng.random(n) < 0.1] = NAN
        keep = ~np.isnan(a) & ~np.isnan(b)
        expected = cohen_kappa_score(a[keep], b[keep], weights=weights)
        if np.isnan(expected):  # sklearn: nan with a warning; ours: a clear error
            with pytest.raises(UndefinedStatisticError):
                cohen_kappa(a, b, weights=weights)
            continue
        ours = cohen_kappa(a, b, weights=weights)
        assert ours == pytest.approx(expected, abs=1e-10)
        # statsmodels on the contingency table over the same sorted categories
        cats = np.unique(np.r_[a[keep], b[keep]])
        table = pd.crosstab(
            pd.Categorical(a[keep], categories=cats), pd.Categorical(b[keep], categories=cats), dropna=False
        ).to_numpy()
        wt = {None: None, "linear": "linear", "quadratic": "quadratic"}[weights]
        sm = sm_cohens_kappa(table, wt=wt, return_results=False)
        assert ours == pytest.approx(sm, abs=1e-10)


def test_cohen_kappa_string_labels_and_explicit_order():
    a = ["lo", "mid", "hi", "hi", None, "mid"]
    b = ["lo", "hi", "hi", "mid", "lo", "mid"]
    keep = [0, 1, 2, 3, 5]
    order = ["lo", "mid", "hi"]
    exp = cohen_kappa_score([a[i] for i in keep], [b[i] for i in keep], labels=order, weights="linear")
    assert cohen_kappa(a, b, weights="linear", labels=order) == pytest.approx(exp)
    assert np.isnan(cohen_kappa_score([1, 1], [1, 1]))  # sklearn: undefined -> nan (with a warning)
    with pytest.raises(UndefinedStatisticError, match="only 1"):
        cohen_kappa([1, 1], [1, 1])


def test_fleiss_matches_statsmodels():
    rng = np.random.default_rng(5)
    for _ in range(300):
        units, cats, raters = int(rng.integers(2, 50)), int(rng.integers(2, 6)), int(rng.integers(2, 9))
        p = rng.dirichlet(np.ones(cats) * rng.uniform(0.3, 3.0))
        table = np.stack([rng.multinomial(raters, p) for _ in range(units)])
        expected = sm_fleiss_kappa(table, method="fleiss")
        if np.isnan(expected) or np.isinf(expected):  # statsmodels: nan with a RuntimeWarning
            with pytest.raises(UndefinedStatisticError):
                fleiss_kappa(table)
        else:
            assert fleiss_kappa(table) == pytest.approx(expected, abs=1e-10)


def test_fleiss_wikipedia_example():
    # Fleiss' kappa worked example (14 raters, 10 subjects, 5 categories): kappa = 0.210
    table = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)


def test_percent_agreement_forms():
    assert percent_agreement([1, 2, 3, None], [1, 2, 4, 4]) == pytest.approx(2 / 3)
    data = np.array([[1, 1, 2, NAN], [1, 2, 2, 3], [1, 2, NAN, NAN]])
    # unit 0: all agree (1); unit 1: values 1,2,2 -> 2 of 6 ordered pairs agree; unit 2: 2,2 -> 1; unit 3 unpairable
    assert percent_agreement(data) == pytest.approx((1 + 2 / 6 + 1) / 3)


def test_majority_vote_frame_and_array():
    frame = pd.DataFrame(
        {
            "task": [1, 1, 1, 2, 2, 3],
            "worker": ["a", "b", "c", "a", "b", "a"],
            "label": ["x", "y", "y", "y", "x", "z"],
        }
    )
    mv = majority_vote(frame)
    assert mv.loc[1, "label"] == "y" and mv.loc[1, "votes"] == 2 and not mv.loc[1, "tie"]
    assert mv.loc[2, "label"] == "x" and mv.loc[2, "tie"]  # tie broken by sort order
    assert mv.loc[3, "support"] == 1.0
    arr = np.array([[1, 2, NAN], [1, 3, NAN], [2, 3, NAN]])
    out = majority_vote(arr)
    assert out[0] == 1 and out[1] == 3 and np.isnan(out[2])


def _random_codes(rng: np.random.Generator, n_tasks: int, n_eval: int, n_labels: int, max_per_task: int):
    rows = []
    for t in range(n_tasks):
        k = int(rng.integers(1, max_per_task + 1))
        evs = rng.choice(n_eval, size=min(k, n_eval), replace=False)
        truth = rng.integers(0, n_labels)
        for e in evs:
            lab = truth if rng.random() < 0.6 else rng.integers(0, n_labels)
            rows.append((t, e, lab))
    arr = np.array(rows)
    perm = rng.permutation(len(arr))  # unsorted input must work too
    return arr[perm, 0], arr[perm, 1], arr[perm, 2]


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_kappa_matrix_equals_sklearn_per_pair(weights):
    rng = np.random.default_rng(42)
    for trial in range(12):
        E, K = int(rng.integers(2, 7)), int(rng.integers(2, 6))
        task, ev, lab = _random_codes(rng, int(rng.integers(5, 80)), E, K, max_per_task=E if trial % 2 else 3)
        kappa, counts = cohen_kappa_matrix(task, ev, lab, weights=weights, n_evaluators=E, n_labels=K)
        agree, counts2 = pairwise_agreement_matrix(task, ev, lab, n_evaluators=E, n_labels=K)
        assert np.array_equal(counts, counts2)
        frame = pd.DataFrame({"t": task, "e": ev, "l": lab}).pivot(index="t", columns="e", values="l")
        for i in range(E):
            assert np.isnan(kappa[i, i]) and np.isnan(agree[i, i])
            for j in range(E):
                if i == j:
                    continue
                if i not in frame or j not in frame:
                    assert counts[i, j] == 0
                    continue
                both = frame[[i, j]].dropna()
                assert counts[i, j] == len(both)
                if len(both) == 0:
                    assert np.isnan(kappa[i, j]) and np.isnan(agree[i, j])
                    continue
                assert agree[i, j] == pytest.approx(float((both[i] == both[j]).mean()))
                exp = cohen_kappa_score(both[i], both[j], labels=list(range(K)), weights=weights)
                if np.isnan(exp):
                    assert np.isnan(kappa[i, j])
                else:
                    assert kappa[i, j] == pytest.approx(exp, abs=1e-10)


def test_pairwise_confusion_dense_path_equals_bincount_path():
    # many evaluators per task forces the dense one-hot BLAS path; compare with a naive loop
    rng = np.random.default_rng(3)
    E, K, T = 40, 3, 30
    task = np.repeat(np.arange(T), E)
    ev = np.tile(np.arange(E), T)
    lab = rng.integers(0, K, T * E)
    C = pairwise_confusion(task, ev, lab, E, K)
    L = lab.reshape(T, E)
    ref = np.zeros((E, E, K, K), np.int64)
    for t in range(T):
        for i in range(E):
            for j in range(E):
                if i != j:
                    ref[i, j, L[t, i], L[t, j]] += 1
    assert np.array_equal(C, ref)
