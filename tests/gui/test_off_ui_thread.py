"""Work moved off the UI thread (issue 14.2): what a worker reads and the UI thread installs is what the
synchronous path gives, the screen keeps its last state while the worker reads, and a stale worker result
(a newer one was asked for, or the session moved on meanwhile) is never shown.

Workers are held at a gate (a ``threading.Event``) instead of timed waits, so the order is deterministic."""

from __future__ import annotations

import threading
from typing import Any

import app.views.review_panel as review_panel_module
from app.services.projects import ProjectService
from app.services.review import ReviewSession
from app.services.sync import PULL_CHANGES
from tests.gui.helpers import reviewed, shown_window, wait_for
from tests.gui.test_team_review import pulled


def state_of(s: ReviewSession) -> tuple[Any, ...]:
    c = s.counters()
    return (tuple(s.task_ids), s.index, s.current.id if s.current else None,
            s.focused_annotation().id if s.focused_annotation() else None, s.remaining(), dict(s._verdicts),
            {t: e.uuid for t, e in s._escalations.items()}, frozenset(s._by_others),
            (c.made, c.pending_sync, c.remaining, c.total, c.decided_by_others, c.hidden_by_others))


class Gate:
    """Stands in for ``read_session_state`` in the panel: reads for real, records, and holds the first
    ``hold`` reads until released."""

    def __init__(self, hold: int = 1) -> None:
        self.real = review_panel_module.read_session_state
        self.reads: list[Any] = []
        self.hold = hold
        self.release = threading.Event()

    def __call__(self, projects: Any, req: Any) -> Any:
        state = self.real(projects, req)
        self.reads.append(state)
        if len(self.reads) <= self.hold:
            self.release.wait(30)
        return state


def record_installs(monkeypatch, s: ReviewSession) -> list[tuple[Any, bool]]:
    installs: list[tuple[Any, bool]] = []
    real = s.install

    def install(state: Any) -> bool:
        ok = real(state)
        installs.append((state, ok))
        return ok

    monkeypatch.setattr(s, "install", install)
    return installs


def test_changes_refresh_reads_in_a_worker_and_installs_the_synchronous_state(qtbot, team_store, monkeypatch,
                                                                             shots_dir) -> None:
    store, pid = team_store
    w = shown_window(qtbot, store, pid)
    s = w.review.session
    assert s is not None
    s.go(2)
    w.review.refresh()
    ids = list(s.task_ids)
    t0 = ProjectService(store).task_detail(ids[0])
    for a in t0.annotations:  # another reviewer judged task 0: it leaves my queue
        pulled(store, pid, t0.id, a.id, "accept")
    t5 = ProjectService(store).task_detail(ids[5])
    pulled(store, pid, t5.id, t5.annotations[0].id, "escalate", reason="Guideline unclear")
    gate = Gate()
    monkeypatch.setattr(review_panel_module, "read_session_state", gate)
    before = state_of(s)
    header = w.review.header.text()
    w.apply(PULL_CHANGES)
    wait_for(lambda: gate.reads)
    # the worker has read but not delivered: the screen and the session keep their last state meanwhile
    assert w.review.reloading()
    assert state_of(s) == before and w.review.header.text() == header and f"Task {s.current.server_id or s.current.id}" in header
    w.grab().save(str(shots_dir / "off-ui-thread-review-reading.png"))
    gate.release.set()
    reviewed(w)
    after = state_of(s)
    assert after != before
    assert t0.id not in s.task_ids and s.current.id == ids[2]  # the task on screen stays on screen
    assert s.task_is_open(t5.id) is False and t5.id in s._escalations  # escalated: the experts' now
    assert "1 decided by others, hidden" in w.review.counters.text()
    assert f"of {len(s.task_ids)}" in w.review.header.text()
    s.reload()  # the synchronous path (what apply did on the UI thread before): the same state
    assert state_of(s) == after


def test_an_older_reload_result_is_dropped_when_a_newer_one_was_asked_for(qtbot, team_store, monkeypatch) -> None:
    store, pid = team_store
    w = shown_window(qtbot, store, pid)
    s = w.review.session
    assert s is not None
    installs = record_installs(monkeypatch, s)
    gate = Gate()
    monkeypatch.setattr(review_panel_module, "read_session_state", gate)
    w.apply(PULL_CHANGES)  # the first refresh reads before the second pull's rows are written
    wait_for(lambda: gate.reads)
    target = ProjectService(store).task_detail(s.task_ids[3])
    for a in target.annotations:
        pulled(store, pid, target.id, a.id, "reject", reason="Wrong label")
    w.apply(PULL_CHANGES)  # a newer refresh: the first one's result is stale
    gate.release.set()
    reviewed(w)
    assert len(gate.reads) == 2
    assert target.id in gate.reads[0].task_ids and target.id not in gate.reads[1].task_ids
    assert installs == [(gate.reads[1], True)]  # the older read was never installed
    assert target.id not in s.task_ids
    after = state_of(s)
    s.reload()
    assert state_of(s) == after


def test_a_decision_made_while_the_worker_reads_is_kept(qtbot, team_store, monkeypatch) -> None:
    """The reviewer decides while a pull's refresh is read: the read (older than the decision) is refused and
    read again; the session ends with both the pulled decision and the reviewer's own."""
    store, pid = team_store
    w = shown_window(qtbot, store, pid)
    s = w.review.session
    assert s is not None
    w.review.auto_advance = s.auto_advance = False
    installs = record_installs(monkeypatch, s)
    other = ProjectService(store).task_detail(s.task_ids[4])
    for a in other.annotations:
        pulled(store, pid, other.id, a.id, "accept")
    gate = Gate()
    monkeypatch.setattr(review_panel_module, "read_session_state", gate)
    w.apply(PULL_CHANGES)
    wait_for(lambda: gate.reads)
    mine = s.focused_annotation()
    assert mine is not None
    w.review.decide("accept")
    wait_for(lambda: not w.review.busy())
    assert s._verdicts.get(mine.id) == "accept"
    gate.release.set()
    reviewed(w)
    assert [ok for _state, ok in installs] == [False, True]  # read before the decision: refused, read again
    assert mine.id not in gate.reads[0].verdicts and gate.reads[1].verdicts.get(mine.id) == "accept"
    assert s._verdicts.get(mine.id) == "accept" and other.id not in s.task_ids
    after = state_of(s)
    s.reload()
    assert state_of(s) == after


def _cache_gate(monkeypatch) -> tuple[list[Any], threading.Event]:
    """Holds the dashboard's on-disk cache reads (in its worker) until released; records what each read."""
    import app.views.dashboard as dashboard_module

    real = dashboard_module.cached_dashboard
    reads: list[Any] = []
    release = threading.Event()

    def gated(*args: Any, **kw: Any) -> Any:
        d = real(*args, **kw)
        reads.append(d)
        release.wait(30)
        return d

    monkeypatch.setattr(dashboard_module, "cached_dashboard", gated)
    return reads, release


def test_dashboard_cache_is_read_in_a_worker_and_painted_as_before(qtbot, demo_store, monkeypatch,
                                                                     shots_dir) -> None:
    """A second window opens the Dashboard from the on-disk cache: read in a worker (the tab says so
    meanwhile), then the same numbers as the first window's, then checked as current."""
    import numpy as np

    store, pid = demo_store
    first = shown_window(qtbot, store, pid)
    first.tabs.setCurrentWidget(first.dashboard)
    wait_for(lambda: first.dashboard.data is not None and not first.dashboard.busy())
    expected = first.dashboard.data
    first.close()
    reads, release = _cache_gate(monkeypatch)
    w = shown_window(qtbot, store, pid)
    w.tabs.setCurrentWidget(w.dashboard)
    d = w.dashboard
    wait_for(lambda: reads)
    assert d.data is None and d.busy() and d.progress.isVisible()
    assert d.status.text() == "Opening the last computed numbers…"
    qtbot.wait(50)
    w.grab().save(str(shots_dir / "off-ui-thread-dashboard-reading.png"))
    release.set()
    wait_for(lambda: d.data is not None and not d.busy())
    assert reads[0] is not None and reads[0].version == expected.version
    assert d.data.version == expected.version and set(d.data.matrices) == set(expected.matrices)
    for control, m in expected.matrices.items():
        np.testing.assert_allclose(d.data.matrices[control].matrix, m.matrix, equal_nan=True)
    np.testing.assert_allclose(d.heatmap.matrix.matrix, expected.matrices[None].matrix, equal_nan=True)
    assert d.annotators.rowCount() == first.dashboard.annotators.rowCount() > 0


def test_a_stale_dashboard_cache_read_is_dropped(qtbot, demo_store, monkeypatch) -> None:
    """The aggregation is switched while the pairwise cache is being read: the pairwise numbers never show."""
    store, pid = demo_store
    first = shown_window(qtbot, store, pid)
    first.tabs.setCurrentWidget(first.dashboard)
    wait_for(lambda: first.dashboard.data is not None and not first.dashboard.busy())
    first.close()
    reads, release = _cache_gate(monkeypatch)
    w = shown_window(qtbot, store, pid)
    d = w.dashboard
    shown: list[str] = []
    real_show = d._show
    monkeypatch.setattr(d, "_show", lambda dash: (shown.append(dash.mode), real_show(dash)))
    w.tabs.setCurrentWidget(d)
    wait_for(lambda: reads)
    assert reads[0] is not None and reads[0].mode == "pairwise"
    d.mode.setCurrentIndex(d.mode.findData("consensus"))  # a newer refresh: reads the consensus cache
    release.set()
    wait_for(lambda: d.data is not None and not d.busy())
    assert "pairwise" not in shown and d.data.mode == "consensus" and shown[-1] == "consensus"


def test_cached_numbers_are_checked_once_the_screen_is_filled(qtbot, demo_store, monkeypatch) -> None:
    """A warm open paints the cached numbers, fills the chart and tables, and only then checks them for changes
    in a worker (the check's reads beside the first paints made the longest UI gap); the panel is busy until
    the check is done, and stale numbers are then replaced by current ones."""
    from sqlalchemy import text

    from app.services.dashboard import data_version
    from app.services.decisions import DecisionRequest, DecisionService

    store, pid = demo_store
    first = shown_window(qtbot, store, pid)
    first.tabs.setCurrentWidget(first.dashboard)
    wait_for(lambda: first.dashboard.data is not None and not first.dashboard.busy())
    cached_version = first.dashboard.data.version
    first.close()
    with store.session() as s:  # a decision since: the cache on disk is stale
        tid, aid = s.execute(text("SELECT a.task_id, a.id FROM annotations a JOIN tasks t ON t.id = a.task_id "
                                  "WHERE t.project_id = :p ORDER BY a.id LIMIT 1"), {"p": pid}).one()
    DecisionService(store).record(pid, [DecisionRequest(tid, "accept", annotation_id=aid)], reviewer="qa@example.com")
    assert data_version(store, pid) != cached_version
    w = shown_window(qtbot, store, pid)
    d = w.dashboard
    checks: list[tuple[Any, bool, int]] = []

    def start(mode: str, known: Any) -> None:
        checks.append((known, getattr(d, "_filling", None) is None, d.annotators.rowCount()))
        real_recompute(mode, known)

    real_recompute = d._recompute
    monkeypatch.setattr(d, "_recompute", start)
    w.tabs.setCurrentWidget(d)
    wait_for(lambda: d.data is not None and d.data.version == cached_version)
    assert d.busy()  # painted from the cache, not checked yet
    wait_for(lambda: not d.busy())
    assert len(checks) == 1
    known, filled, rows = checks[0]
    assert known == cached_version and filled and rows > 0  # asked after the tables were filled
    assert d.data.version == data_version(store, pid) != cached_version  # and the stale numbers replaced
