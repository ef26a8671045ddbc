"""The dashboard's metrics process (large projects) opens the store without a second quick_check and gives
the numbers the in-process computation gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.models.store import Store
from app.services import dashboard
from tests.unit.test_reference_frames import _decide_all, _export, _import


def test_the_metrics_process_gives_the_in_process_numbers(store: Store, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pid = _import(store, tmp_path, _export())
    _decide_all(store, pid)
    here = dashboard.compute_dashboard(store, pid, save=False)
    monkeypatch.setattr(dashboard, "ISOLATE_ABOVE", 0)  # every project "large": computed in a child process
    there = dashboard.compute_dashboard_isolated(store, pid)
    assert there.version == here.version
    assert set(there.matrices) == set(here.matrices)
    for c, m in here.matrices.items():
        np.testing.assert_array_equal(there.matrices[c].matrix, m.matrix)
        np.testing.assert_array_equal(there.matrices[c].counts, m.counts)
    pd.testing.assert_frame_equal(there.quality, here.quality)
    pd.testing.assert_frame_equal(there.difficulty, here.difficulty)
