"""``dashboard.drift_series`` buckets each evaluator's rolling accuracy with one ``reduceat`` per column; it must
give what the plain loop of ``nanmean`` / ``any`` per bucket gives (the loop it replaced, kept here as the
reference), NaN rows and all-NaN buckets included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.services.dashboard import drift_series


def _reference(drift: pd.DataFrame, points: int) -> dict[str, tuple[tuple[float, ...], tuple[bool, ...]]]:
    out = {}
    for ev, g in drift.groupby("evaluator", sort=False):
        vals = g["rolling_accuracy"].to_numpy(dtype=float)
        alarms = g["alarm"].to_numpy(dtype=bool)
        if len(vals) > points:
            edges = np.linspace(0, len(vals), points + 1).astype(int)
            vals = np.array([np.nanmean(vals[a:b]) if not np.isnan(vals[a:b]).all() else np.nan
                             for a, b in zip(edges[:-1], edges[1:], strict=True)])
            alarms = np.array([alarms[a:b].any() for a, b in zip(edges[:-1], edges[1:], strict=True)])
        out[str(ev)] = (tuple(float(v) for v in vals), tuple(bool(a) for a in alarms))
    return out


@pytest.mark.parametrize("points", [1, 7, 40])
def test_buckets_equal_the_loop_of_nanmean(points: int) -> None:
    rng = np.random.default_rng(5)
    rows = []
    for k, n in enumerate([3, 40, 41, 157, 1000]):  # fewer rows than points, equal, just over, many
        acc = rng.random(n)
        acc[rng.random(n) < 0.2] = np.nan
        if n == 157:
            acc[10:40] = np.nan  # whole buckets without a value
        rows.append(pd.DataFrame({"evaluator": f"e{k}", "rolling_accuracy": acc, "alarm": rng.random(n) < 0.05,
                                  "t": np.cumsum(rng.random(n))}))
    # evaluators interleaved in time order, each one's rows still in its own order
    drift = pd.concat(rows, ignore_index=True).sort_values("t", kind="stable").drop(columns="t")
    got, want = drift_series(drift, points), _reference(drift, points)
    assert got.keys() == want.keys()
    for ev in want:
        assert got[ev][1] == want[ev][1]
        np.testing.assert_allclose(got[ev][0], want[ev][0], rtol=1e-12, equal_nan=True)
    if points == 40:  # the run of NaN rows leaves buckets without a value: NaN, as the loop gives
        assert np.isnan(got["e3"][0]).any()
