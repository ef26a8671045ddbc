"""The dashboard's metrics process (large projects) opens the store without a second quick_check and gives
the numbers the in-process computation gives."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.models.store import Store
from app.services import dashboard
from tests.unit.test_reference_frames import _decide_all, _export, _import


@pytest.fixture(autouse=True)
def _no_waiting_process() -> object:
    """A computation in a child process starts the next one ahead: stop it after each test."""
    dashboard.stop_metrics_process()
    yield
    dashboard.stop_metrics_process()


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


def test_a_process_started_ahead_computes_the_same_numbers_and_the_next_one_waits(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = _import(store, tmp_path, _export())
    _decide_all(store, pid)
    here = dashboard.compute_dashboard(store, pid, save=False)
    try:
        assert dashboard.prewarm_metrics_process(store, pid) is False  # a small project: computed in-process
        assert dashboard._WARM is None
        monkeypatch.setattr(dashboard, "ISOLATE_ABOVE", 0)
        assert dashboard.prewarm_metrics_process(store, pid) is True
        warm = dashboard._WARM
        assert warm is not None and warm.proc.is_alive()
        assert dashboard.prewarm_metrics_process() is True and dashboard._WARM is warm  # one at a time
        there = dashboard.compute_dashboard_isolated(store, pid)
        for _ in range(200):  # the next one is started once that one has ended (reaped off the caller's thread)
            if dashboard._WARM is not None:
                break
            time.sleep(0.05)
        assert warm.proc.exitcode == 0  # the process started ahead did the job and ended
        assert dashboard._WARM is not None and dashboard._WARM is not warm  # the next one is waiting
        assert there.version == here.version
        for c, m in here.matrices.items():
            np.testing.assert_array_equal(there.matrices[c].matrix, m.matrix)
        pd.testing.assert_frame_equal(there.quality, here.quality)
    finally:
        dashboard.stop_metrics_process()
    assert dashboard._WARM is None


def test_a_cancelled_computation_stops_the_process_started_ahead(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    pid = _import(store, tmp_path, _export())
    monkeypatch.setattr(dashboard, "ISOLATE_ABOVE", 0)
    try:
        dashboard.prewarm_metrics_process()
        warm = dashboard._WARM
        assert warm is not None
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(InterruptedError):
            dashboard.compute_dashboard_isolated(store, pid, cancel=cancel)
        warm.proc.join(timeout=10)
        assert not warm.proc.is_alive()
    finally:
        dashboard.stop_metrics_process()


def test_the_warm_up_opens_the_store_and_runs_the_engine(store: Store, tmp_path: Path) -> None:
    """The process started ahead pays the first-use costs before its job; its warm-up swallows errors (it is
    an optimisation), so its parts are called here directly: they must not fail silently."""
    dashboard._tiny_computation()  # raises if the engine's calls no longer fit the made-up frames
    opened = dashboard._warm_up(str(store.data_dir))
    try:
        assert opened is not None and opened.path == store.path
    finally:
        if opened is not None:
            opened.close()


def test_a_process_started_ahead_for_a_store_uses_it_and_skips_the_size_check(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = _import(store, tmp_path, _export())
    here = dashboard.compute_dashboard(store, pid, save=False)
    monkeypatch.setattr(dashboard, "ISOLATE_ABOVE", 0)
    assert dashboard.prewarm_metrics_process(store, pid) is True
    warm = dashboard._WARM
    assert warm is not None and warm.data_dir == str(store.data_dir) and warm.project_id == pid
    assert dashboard._waiting_for(store, pid) and not dashboard._waiting_for(store, pid + 1)
    counted: list[int] = []
    monkeypatch.setattr(dashboard, "_annotation_count", lambda *_a: counted.append(1) or 0)
    there = dashboard.compute_dashboard_isolated(store, pid)  # ISOLATE_ABOVE 0 and count 0: only the waiting
    assert not counted  # process sends it there; no count was needed
    for _ in range(200):  # reaped (and the next one started) off this thread
        if dashboard._WARM is not None:
            break
        time.sleep(0.05)
    assert warm.proc.exitcode == 0
    for c, m in here.matrices.items():
        np.testing.assert_array_equal(there.matrices[c].matrix, m.matrix)
    assert dashboard.cached_dashboard(store, pid, check=False) is not None  # the child saved the cache after


def test_an_error_in_the_process_started_ahead_reaches_the_caller(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process ends without the interpreter's teardown; its error report is sent before it does."""
    monkeypatch.setattr(dashboard, "ISOLATE_ABOVE", 0)
    dashboard.prewarm_metrics_process()
    with pytest.raises(RuntimeError, match="LookupError: No project 4242"):
        dashboard.compute_dashboard_isolated(store, 4242)
