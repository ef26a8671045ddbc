"""The ground-truth browser (issue 15 point 5): the project's references paged from the store, their provenance,
the history of the selected task's reference, a re-decision shown as the new current reference, Enter opens the
task in Review."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.services.decisions import DecisionRequest, DecisionService
from app.services.groundtruth import GroundTruthService
from app.services.projects import ProjectService
from tests.gui.helpers import shown_window, wait_for


def test_browser_lists_references_shows_history_and_opens_the_task(qtbot, demo_store, shots_dir) -> None:
    store, pid = demo_store
    w = shown_window(qtbot, store, pid)
    gt = w.ground_truth
    w.tabs.setCurrentWidget(gt)
    wait_for(lambda: not gt.loading, 30)  # the index is read in a worker
    expected = GroundTruthService(store).count(pid)
    assert expected > 0 and gt.model.rowCount() == expected
    assert gt.model.page_loads <= 2  # a page at a time, not every reference
    assert f"<b>{expected:,}</b> of 320 tasks have a reference" in gt.summary.text()
    first = gt.model.reference(0)
    assert first is not None
    assert gt.model.data(gt.model.index(0, 2)) == "server flag"
    assert gt.model.data(gt.model.index(0, 3)) == first.provenance.reviewer
    assert "current" in gt.history.toPlainText()

    # a fix by this reviewer replaces the reference: the row shows it, the old one stays in the history
    detail = ProjectService(store).task_detail(first.task_id)
    ann = detail.annotations[0]
    fixed = [dict(i) for i in ann.result]
    rec = DecisionService(store).record(pid, [DecisionRequest(first.task_id, "fix", annotation_id=ann.id,
                                                              result=fixed)], reviewer="me@example.com")
    w.apply(rec.changes)
    assert gt.loading  # re-read off the UI thread; the table keeps the last index meanwhile
    wait_for(lambda: not gt.loading, 30)
    assert gt.current_task() == first.task_id  # the selection stays on the task
    row = gt.view.currentIndex().row()
    assert gt.model.data(gt.model.index(row, 2)) == "fix (decision)"
    assert gt.model.data(gt.model.index(row, 3)) == "me@example.com"
    assert gt.model.data(gt.model.index(row, 5)) == "2"
    text = gt.history.toPlainText()
    assert text.index("current") < text.index("replaced") and "fix by me@example.com" in text
    w.grab().save(str(shots_dir / "ground-truth-browser.png"))

    # keyboard: Down moves, Enter opens the task in Review
    gt.view.setFocus()
    gt.view.setCurrentIndex(gt.model.index(0, 0))
    qtbot.keyClick(gt.view, Qt.Key.Key_Down)
    second = gt.current_task()
    assert second is not None and second != first.task_id or expected == 1
    qtbot.keyClick(gt.view, Qt.Key.Key_Return)
    assert w.tabs.currentWidget() is w.review
    assert w.review.session is not None and w.review.session.current is not None
    assert w.review.session.current.id == second
