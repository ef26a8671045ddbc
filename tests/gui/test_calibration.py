"""The calibration gate in the GUI (issue 15 point 6): a project that requires calibration shows the round in the
Review tab instead of the production queue; judged with the normal keys (the reference hidden); a failed round
keeps the queue locked, a passed one unlocks it; the dashboard's Calibration tab shows the scores."""

from __future__ import annotations

import io
import json

from PySide6.QtCore import Qt
from sqlalchemy import func, select

from app.models.schema import Decision, Task
from app.services.calibration import CalibrationService
from app.services.projects import ProjectService
from tests.conftest import SMALL_CONFIG, choice
from tests.gui.helpers import shown_window, wait_for

REVIEWER = "reviewer@localhost"  # the default settings' reviewer


def _project(store, n: int = 4) -> int:
    """Every task: ann says "neg" (flagged ground truth on the server), bob says "pos" (wrong)."""
    export = [{"id": k, "data": {"text": f"Customer message number {k}"}, "annotations": [
        {"id": 100 + k, "completed_by": 2, "result": [choice("neg")], "ground_truth": True},
        {"id": 200 + k, "completed_by": 3, "result": [choice("pos")]}]} for k in range(1, n + 1)]
    return ProjectService(store).import_file(io.BytesIO(json.dumps(export).encode()), SMALL_CONFIG,
                                             "Calibration demo").summary.project_id


def test_a_calibration_round_blocks_then_unlocks_the_production_queue(qtbot, store, shots_dir) -> None:
    pid = _project(store)
    CalibrationService(store).require(pid, 3, 0.75, actor="lead@example.com")
    w = shown_window(qtbot, store, pid)
    w.activateWindow()
    cal = w.calibration
    assert w.tabs.currentWidget() is w.review and w.review.gated
    assert w.review.session is None  # the production queue is not even opened
    assert not w.review.queue_bar.isVisible()  # nothing to switch or count while gated
    with store.session() as s:
        some_task = s.scalar(select(Task.id).where(Task.project_id == pid).limit(1))
    assert w.review_task(some_task) is False and w.review.session is None
    assert "calibration round" in cal.intro.text().lower()
    assert w.notification_bar.isVisible() and "calibration round" in w.notification_bar.label.text()

    qtbot.mouseClick(cal.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(cal.hasFocus, timeout=5000)  # the round takes the keyboard
    assert cal.pages.currentIndex() == 1 and cal.round is not None and len(cal.round.items) == 3
    # the reference is hidden: one annotation shown (bob's), never marked as ground truth
    layers = cal.task_view.state.layers
    assert len(layers) == 1 and not layers[0].ground_truth and layers[0].key == f"a:{cal.round.items[0].annotation_id}"
    w.grab().save(str(shots_dir / "calibration-round.png"))
    # round 1: accept bob's wrong "pos" everywhere (the A key) -> 0% -> not passed, still locked
    for _ in range(3):
        qtbot.keyClick(cal, Qt.Key.Key_A)
    assert cal.round.judged == 3 and cal.finish_button.isEnabled()
    qtbot.mouseClick(cal.finish_button, Qt.MouseButton.LeftButton)
    assert w.review.gated and cal.pages.currentIndex() == 0
    assert "not passed" in cal.intro.text() and "0%" in cal.intro.text()
    assert w.review.session is None
    # the dashboard's Calibration tab shows the failed round
    res = w.dashboard.calibration
    assert res.model.rowCount() == 1 and res.cell(0, "Result") == "✗ not passed"
    assert res.cell(0, "sentiment") == "0% (n=3)"

    # round 2: reject two (R), fix the third to the reference (F) -> 100% -> passed: the production queue opens
    qtbot.mouseClick(cal.start_button, Qt.MouseButton.LeftButton)
    assert cal.pages.currentIndex() == 1
    qtbot.keyClick(cal, Qt.Key.Key_R)
    qtbot.keyClick(cal, Qt.Key.Key_K)  # previous: back to the first task, change nothing
    assert cal.position == 0
    qtbot.keyClick(cal, Qt.Key.Key_J)
    qtbot.keyClick(cal, Qt.Key.Key_R)
    # the last one fixed in place, as in the review loop: F, the config's hotkey 2 (neg), Ctrl+Enter saves
    assert cal.position == 2
    qtbot.keyClick(cal, Qt.Key.Key_F)
    assert cal.task_view.in_fix_mode()
    qtbot.keyClick(cal.task_view.focusWidget() or cal.task_view, Qt.Key.Key_2)
    with qtbot.waitSignal(cal.task_view.fixSaved, timeout=2000):
        qtbot.keyClick(cal.task_view.focusWidget() or cal.task_view, Qt.Key.Key_Return,
                       Qt.KeyboardModifier.ControlModifier)
    assert [i.verdict for i in cal.round.items] == ["reject", "reject", "fix"]
    qtbot.mouseClick(cal.finish_button, Qt.MouseButton.LeftButton)
    wait_for(lambda: not w.review.gated and w.review.session is not None)
    assert w.review.queue_bar.isVisible()
    assert w.review_task(some_task) is True
    assert not w.notification_bar.isVisible()  # the request is done: off the bar
    assert res.model.rowCount() == 1 and res.cell(0, "Result") == "✓ passed" and res.cell(0, "Rounds") == "2"
    assert res.cell(0, "sentiment") == "100% (n=3)"
    # calibration judgements are not decisions
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Decision)) == 0
    w.tabs.setCurrentWidget(w.dashboard)
    w.dashboard.tables.setCurrentWidget(res)
    wait_for(lambda: w.dashboard.data is not None and not w.dashboard.busy(), 30)
    qtbot.wait(100)
    w.grab().save(str(shots_dir / "calibration-dashboard.png"))
