"""``_pairs.distinct`` is ``np.unique`` (sorted distinct values) by a sort for integers (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.metrics._pairs import distinct


@given(st.lists(st.integers(-(2**62), 2**62), max_size=200))
def test_equals_np_unique_on_integers(values: list[int]) -> None:
    a = np.array(values, dtype=np.int64)
    got = distinct(a)
    np.testing.assert_array_equal(got, np.unique(a))
    assert got.dtype == np.int64


@pytest.mark.parametrize("a", [np.array([], dtype=np.int64), np.array([3], dtype=np.int32),
                               np.array([[2, 1], [2, 5]], dtype=np.uint8), np.array([True, False, True]),
                               np.array([1.0, np.nan, np.nan, 0.5]), np.array(["b", "a", "b"])])
def test_edge_cases_and_other_dtypes(a: np.ndarray) -> None:
    np.testing.assert_array_equal(distinct(a), np.unique(a))
