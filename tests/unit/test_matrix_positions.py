"""``matrix._positions`` (factorize the column, look up its distinct names) equals ``Index.get_indexer`` on the
column for every dtype a frame's evaluator column has, names missing from the index and missing values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.metrics.matrix import _positions


@pytest.mark.parametrize("dtype", ["object", "str"])
def test_positions_equal_get_indexer(dtype: str) -> None:
    rng = np.random.default_rng(7)
    names = np.array([f"annotator{i}@example.com" for i in range(12)] + ["model:v1", "model:v2"], dtype=object)
    index = pd.Index(sorted(names[:10]) + ["model:v1"])  # two humans and a model not in the index
    values = pd.Series(rng.choice(names, 5000), dtype=dtype)
    values.iloc[[3, 17]] = None  # missing names
    got = _positions(index, values)
    np.testing.assert_array_equal(got, index.get_indexer(values))
    assert (got == -1).any() and (got >= 0).any()
    assert _positions(index, values.iloc[:0]).shape == (0,)
    assert (_positions(index, pd.Series([None, None], dtype=dtype)) == -1).all()
