"""Edge cases of the statistics (issue 12): the right number or a clear ValueError naming the problem.

One test per edge case, each checked against a test-only oracle (``krippendorff`` 0.9, scikit-learn,
statsmodels) or a published worked example: the oracle's number where it gives one, and where it refuses
the input (or returns a silent ``nan``) a ``ValueError`` from us whose message names the problem.
Each edge-case test failed against the code before the fix (a silent ``nan``, a category ``'nan'``,
``0.0`` for ``1`` vs ``"1"``, no ``value_domain``, a refused ``Int64`` frame at interval/ratio level,
accepted negative counts, a bare ``TypeError``, ...); the few that did not (numbers of several Python
types, ``Int64`` at nominal/ordinal level) pin behaviour that must stay.

Published example: K. Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C
(4 observers x 12 units, values 1..5; ordinal alpha 0.815), also in the ``krippendorff`` package's
docstring with the values written as words ("very low" .. "very high").
"""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from app.metrics import (
    UndefinedStatisticError,
    cohen_kappa,
    dawid_skene,
    fleiss_kappa,
    krippendorff_alpha,
    majority_vote,
    percent_agreement,
)

NAN = np.nan
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),  # sklearn's UndefinedMetricWarning on degenerate input
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),  # statsmodels/krippendorff dividing 0 by 0
]

KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]
WORDS = ["very low", "low", "mid", "high", "very high"]


def _words(table):
    return [[NAN if v != v else WORDS[int(v) - 1] for v in row] for row in table]


# --------------------------------------------------------------------------------------------------
# Krippendorff's alpha: undefined inputs


def test_alpha_all_missing_raises_like_krippendorff():
    data = np.full((3, 4), NAN)
    with pytest.raises(ValueError, match="more than one value"):
        krippendorff.alpha(data, level_of_measurement="nominal")
    with pytest.raises(UndefinedStatisticError, match="every rating is missing"):
        krippendorff_alpha(data)


def test_alpha_single_coder_raises_like_krippendorff():
    data = [[1, 2, 3, 2]]
    with pytest.raises(ValueError, match="at least two coders"):
        krippendorff.alpha(data, level_of_measurement="nominal")
    with pytest.raises(UndefinedStatisticError, match="single coder"):
        krippendorff_alpha(data)


def test_alpha_constant_ratings_raise_like_krippendorff():
    data = [[3, 3, 3], [3, 3, NAN]]
    with pytest.raises(ValueError, match="more than one value"):
        krippendorff.alpha(data, level_of_measurement="interval")
    for level in ("nominal", "ordinal", "interval", "ratio"):
        with pytest.raises(UndefinedStatisticError, match="every pairable rating is 3"):
            krippendorff_alpha(data, level)


def test_alpha_constant_pairable_ratings_raise_where_krippendorff_returns_nan():
    # the unpaired 2 gives the package a two-value domain and a silent nan (0/0)
    data = [[1, 1, 2], [1, 1, NAN]]
    assert np.isnan(krippendorff.alpha(data, level_of_measurement="nominal"))
    with pytest.raises(UndefinedStatisticError, match="no variation"):
        krippendorff_alpha(data)


def test_alpha_no_unit_with_two_coders_raises_like_krippendorff():
    data = [[1, NAN, NAN], [NAN, 2, NAN], [NAN, NAN, 3]]
    with pytest.raises(ValueError, match="at least one unit with values assigned by at least two coders"):
        krippendorff.alpha(data, level_of_measurement="nominal")
    with pytest.raises(UndefinedStatisticError, match="no unit was rated by two or more coders"):
        krippendorff_alpha(data)


def test_undefined_statistic_error_is_a_value_error():
    assert issubclass(UndefinedStatisticError, ValueError)


# --------------------------------------------------------------------------------------------------
# Krippendorff's alpha: value types


def test_alpha_nan_in_nested_string_lists_is_missing_not_a_category():
    # unit 3 has 'c' and two nan: were nan the category 'nan' it would be pairable and change alpha
    data = [["a", "b", NAN, "a"], ["a", "b", "c", NAN], ["a", "c", NAN, "a"]]
    expected = krippendorff.alpha(data, level_of_measurement="nominal")  # the package drops 'nan'
    assert krippendorff_alpha(data) == pytest.approx(expected, abs=1e-12)
    with_none = [[None if v is NAN else v for v in row] for row in data]
    assert krippendorff_alpha(np.array(with_none, dtype=object)) == pytest.approx(expected, abs=1e-12)
    # a numpy string array (np.nan already coerced to 'nan') reads the same, as in the package
    assert krippendorff_alpha(np.array(data, dtype=str)) == pytest.approx(expected, abs=1e-12)
    assert majority_vote(data).tolist() == ["a", "b", "c", "a"]


def test_alpha_mixed_number_and_text_raises_naming_both_types():
    data = [[1, "1", 2, 2], [1, 1, 2, "2"]]
    with pytest.raises(ValueError, match=r"int \(e\.g\. 1\) and str \(e\.g\. '1'\)"):
        krippendorff_alpha(data)
    with pytest.raises(ValueError, match="mix value types"):
        percent_agreement(data)
    with pytest.raises(ValueError, match="mix value types"):
        majority_vote(data)
    # scikit-learn refuses numbers against text ...
    with pytest.raises(ValueError, match="Mix of label input types"):
        cohen_kappa_score([1, 1, 2, 2], ["1", "1", "2", "2"])
    # ... while the krippendorff package only equates them by accident: np.asarray turns every value into
    # text, so 1 and "1" agree but 2.0 and "2" do not. We refuse the mix, as scikit-learn does.
    assert krippendorff.alpha(data, level_of_measurement="nominal") == pytest.approx(1.0)
    assert krippendorff.alpha([[1, "1", 2.0, 2.0], [1, 1, "2", "2"]], level_of_measurement="nominal") < 1


def test_alpha_numbers_of_different_python_types_are_one_scale():
    data = [[1, 2.0, np.int64(3), 2], [1.0, 2, 3, np.float32(1)]]
    expected = krippendorff.alpha(np.array(data, dtype=float), level_of_measurement="interval")
    assert krippendorff_alpha(data, "interval") == pytest.approx(expected, abs=1e-12)


def test_alpha_ordinal_text_with_value_domain_reproduces_krippendorff_2011():
    words = _words(KRIPPENDORFF_2011)
    ours = krippendorff_alpha(words, "ordinal", value_domain=WORDS)
    assert ours == pytest.approx(0.815, abs=5e-4)  # Krippendorff (2011), section C
    assert ours == pytest.approx(krippendorff_alpha(KRIPPENDORFF_2011, "ordinal"), abs=1e-12)
    assert ours == pytest.approx(
        krippendorff.alpha(words, level_of_measurement="ordinal", value_domain=WORDS), abs=1e-12
    )
    # nominal needs no order: 0.743 as published
    assert krippendorff_alpha(words, "nominal") == pytest.approx(0.743, abs=5e-4)


def test_alpha_ordinal_text_without_value_domain_raises_like_krippendorff():
    words = _words(KRIPPENDORFF_2011)
    with pytest.raises(ValueError, match="ordered value_domain is required"):
        krippendorff.alpha(np.array(words, dtype=str), level_of_measurement="ordinal")
    with pytest.raises(ValueError, match="value_domain=.*alphabetically"):
        krippendorff_alpha(words, "ordinal")
    with pytest.raises(ValueError, match="interval alpha needs numeric ratings"):
        krippendorff_alpha(words, "interval", value_domain=WORDS)


def test_alpha_value_domain_gives_the_order_of_numbers_too():
    data = [[1, 2, 3, 3, 1], [2, 2, 3, 1, 1], [1, 3, 3, 1, NAN]]
    order = [3, 1, 2]  # a custom order for the ordinal distances
    expected = krippendorff.alpha(data, level_of_measurement="ordinal", value_domain=order)
    ours = krippendorff_alpha(data, "ordinal", value_domain=order)
    assert ours == pytest.approx(expected, abs=1e-12)
    assert ours != pytest.approx(krippendorff_alpha(data, "ordinal"), abs=1e-3)
    # unobserved values in the domain change nothing, as in the package
    wide = [0, 1, 2, 3, 4]
    assert krippendorff_alpha(data, "ordinal", value_domain=wide) == pytest.approx(
        krippendorff.alpha(data, level_of_measurement="ordinal", value_domain=wide), abs=1e-12
    )


def test_alpha_value_outside_value_domain_raises_like_krippendorff():
    words = _words(KRIPPENDORFF_2011)
    short = WORDS[:-1]
    with pytest.raises(ValueError, match="out-of-domain values"):
        krippendorff.alpha(words, level_of_measurement="ordinal", value_domain=short)
    with pytest.raises(ValueError, match="outside value_domain: 'very high'"):
        krippendorff_alpha(words, "ordinal", value_domain=short)
    with pytest.raises(ValueError, match="value_domain holds number values but the ratings are str"):
        krippendorff_alpha(words, "ordinal", value_domain=[1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="repeats"):
        krippendorff_alpha(words, "ordinal", value_domain=[*WORDS, "low"])


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_alpha_nullable_int64_frame_is_numeric_with_na_missing(level):
    frame = pd.DataFrame(KRIPPENDORFF_2011).astype("Int64")  # coders x units, pd.NA for missing
    assert frame.isna().to_numpy().sum() == 7
    expected = krippendorff.alpha(np.array(KRIPPENDORFF_2011, dtype=float), level_of_measurement=level)
    assert krippendorff_alpha(frame, level) == pytest.approx(expected, abs=1e-12)
    # the same values as objects with pd.NA (np.asarray of such a frame) read the same way
    assert krippendorff_alpha(frame.to_numpy(), level) == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------------------------------
# Cohen's kappa


def test_cohen_kappa_number_vs_text_labels_raises_like_sklearn():
    with pytest.raises(ValueError, match="Mix of label input types"):
        cohen_kappa_score([1, 2, 1], ["1", "2", "1"])
    with pytest.raises(ValueError, match=r"int \(e\.g\. 1\) and str \(e\.g\. '1'\)"):
        cohen_kappa([1, 2, 1], ["1", "2", "1"])
    with pytest.raises(ValueError, match="mix value types"):
        percent_agreement([1, 2, 1], ["1", "2", "1"])
    # one type on both sides: the same number as scikit-learn
    assert cohen_kappa(["1", "2", "1"], ["1", "2", "2"]) == pytest.approx(
        cohen_kappa_score(["1", "2", "1"], ["1", "2", "2"])
    )


def test_cohen_kappa_undefined_raises_where_sklearn_returns_nan():
    assert np.isnan(cohen_kappa_score(["x", "x", "x"], ["x", "x", "x"]))
    with pytest.raises(UndefinedStatisticError, match="only 'x'"):
        cohen_kappa(["x", "x", "x"], ["x", "x", "x"])
    with pytest.raises(UndefinedStatisticError, match="no item has a label from both"):
        cohen_kappa(["x", None], [None, "y"])


def test_cohen_kappa_label_outside_labels_raises_where_sklearn_drops_it():
    a, b = ["lo", "hi", "mid", "hi"], ["lo", "hi", "hi", "top"]
    # scikit-learn silently leaves out the item rated 'top'
    assert cohen_kappa_score(a, b, labels=["lo", "mid", "hi"]) == pytest.approx(
        cohen_kappa_score(a[:3], b[:3], labels=["lo", "mid", "hi"])
    )
    with pytest.raises(ValueError, match="values not in labels: 'top'"):
        cohen_kappa(a, b, labels=["lo", "mid", "hi"])
    with pytest.raises(ValueError, match="labels holds number values but the rated values are str"):
        cohen_kappa(a, b, labels=[1, 2, 3, 4])


# --------------------------------------------------------------------------------------------------
# Fleiss' kappa (statsmodels gives no clear answer on any of these)


def test_fleiss_nan_cells_raise():
    table = np.array([[2, 1, 0], [NAN, 2, 1], [0, 0, 3]])
    with pytest.raises(AssertionError):  # statsmodels: a bare assertion on the raters per unit
        sm_fleiss_kappa(table)
    with pytest.raises(ValueError, match=r"missing \(nan\) cells at \(unit, category\) \(1, 0\)"):
        fleiss_kappa(table)
    with pytest.raises(ValueError, match="missing"):
        fleiss_kappa(pd.DataFrame(table).astype("Float64"))


def test_fleiss_negative_counts_raise():
    table = np.array([[3, -1], [1, 1], [0, 2]])
    assert sm_fleiss_kappa(table) > 1  # statsmodels: an impossible kappa
    with pytest.raises(ValueError, match=r"negative at \(unit, category\) \(0, 1\)"):
        fleiss_kappa(table)


def test_fleiss_fractional_counts_raise():
    table = np.array([[1.5, 0.5], [1, 1], [0, 2]])
    assert np.isfinite(sm_fleiss_kappa(table))  # statsmodels: a number from half a rating
    with pytest.raises(
        ValueError, match=r"whole numbers of ratings; fractional at \(unit, category\) \(0, 0\)"
    ):
        fleiss_kappa(table)


def test_fleiss_no_variation_raises_where_statsmodels_returns_nan():
    table = np.array([[3, 0], [3, 0]])
    assert np.isnan(sm_fleiss_kappa(table))
    with pytest.raises(UndefinedStatisticError, match="every rating is in category 0"):
        fleiss_kappa(table)
    with pytest.raises(UndefinedStatisticError, match="no unit has two or more ratings"):
        fleiss_kappa([[1, 0], [0, 1]])


# --------------------------------------------------------------------------------------------------
# Dawid-Skene input errors


def test_dawid_skene_mixed_label_types_raise_value_error_naming_them():
    frame = pd.DataFrame({"task": [1, 1, 2, 2], "worker": ["a", "b", "a", "b"], "label": [1, "1", 2, 2]})
    with pytest.raises(ValueError, match=r"int \(e\.g\. 1\) and str \(e\.g\. '1'\)"):
        dawid_skene(frame)


def test_dawid_skene_gold_label_outside_the_answers_raises():
    frame = pd.DataFrame({"task": [1, 1, 2, 2], "worker": ["a", "b", "a", "b"], "label": [1, 1, 2, 1]})
    with pytest.raises(ValueError, match=r"gold labels outside the answers' labels: 3 \(int\)"):
        dawid_skene(frame, gold={1: 3})
    with pytest.raises(ValueError, match=r"'1' \(str\); the answers use 1, 2"):
        dawid_skene(frame, gold={1: "1"})
    # a gold label among the answers is used; gold for a task nobody answered is ignored
    res = dawid_skene(frame, gold={2: 1, 99: 2})
    assert res.labels[2] == 1 and res.posteriors.loc[2, 1] == 1.0


def test_percent_agreement_without_pairs_raises():
    with pytest.raises(UndefinedStatisticError, match="no unit has two or more values"):
        percent_agreement(np.array([[1.0, NAN], [NAN, 2.0]]))
