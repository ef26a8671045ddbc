"""Drift times built once per distinct time (``quality._times``) equal ``Series.to_numpy()`` element for
element: the same ``Timestamp`` values and time zone, ``NaT`` where the time is missing or unparsable."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.metrics.quality import _times


def test_times_equal_to_numpy_with_missing_and_naive_times() -> None:
    raw = ["2026-10-01T10:00:00Z", None, "2026-10-02T10:00:00+02:00", "bad", "2026-10-01T10:00:00Z"] * 3
    aware = pd.to_datetime(pd.Series(raw), utc=True, errors="coerce", format="ISO8601")
    naive = pd.to_datetime(pd.Series(["2026-10-01", None, "2026-10-03"]))
    for t in (aware, naive, aware.iloc[:0]):
        ref, got = t.to_numpy(), _times(t)
        assert got.dtype == ref.dtype and len(got) == len(ref)
        for x, y in zip(ref.tolist(), got.tolist(), strict=True):
            if pd.isna(x):
                assert pd.isna(y)
            else:
                assert x == y and type(x) is type(y) and getattr(x, "tz", None) == getattr(y, "tz", None)
    assert np.array_equal(pd.isna(_times(aware)), pd.isna(aware.to_numpy()))
