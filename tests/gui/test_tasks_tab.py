"""Issue 13.9: the Tasks tab -- status column, filters, search, Ctrl+G, sortable headers -- on the demo project.

What the reviewer sees is checked (the status cell's text and colour, the rows listed, the selected row, the
status bar), against statuses computed independently (``tests.unit.test_taskfilter.oracle_statuses``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QInputDialog, QMessageBox

from app.services import taskfilter as tf
from app.services.changes import Changes
from app.services.decisions import DecisionRequest, DecisionService
from app.views.main_window import MainWindow
from app.views.task_model import COLUMNS, STATUS_COLUMN, status_colour
from tests.gui.helpers import shown_window
from tests.unit.test_taskfilter import oracle_statuses


@pytest.fixture
def window(qtbot, demo_store):
    store, pid = demo_store
    w = shown_window(qtbot, store, pid)
    return w


def _history(w: MainWindow) -> None:
    """A few decisions of every kind on the first tasks (as recorded by the decision service)."""
    pid = w.current_project()
    assert pid is not None
    ds = DecisionService(w.store)
    for i, r in enumerate(w.projects.task_page(pid, 0, 16)):
        anns = w.projects.task_detail(r.id).annotations
        if i % 4 == 0:
            ds.record(pid, [DecisionRequest(r.id, "accept", annotation_id=a.id) for a in anns], reviewer="me@x.org")
        elif i % 4 == 1:
            ds.record(pid, [DecisionRequest(r.id, "accept", annotation_id=anns[0].id)], reviewer="me@x.org")
        elif i % 4 == 2 and i < 8:
            ds.record(pid, [DecisionRequest(r.id, "escalate", annotation_id=anns[0].id, reason="unsure")],
                      reviewer="me@x.org")
    w.tasks_tab.refresh()


def status_cell(w: MainWindow, row: int) -> str:
    return w.task_model.index(row, STATUS_COLUMN).data()


def listed(w: MainWindow) -> list[int]:
    m = w.task_model
    return [m.row(r).id for r in range(m.rowCount())]  # type: ignore[union-attr]


def show_tasks(w: MainWindow) -> None:
    w.tabs.setCurrentWidget(w.browse)
    QApplication.processEvents()


def test_status_column_shows_the_glyph_after_a_decision_in_review(qtbot, window: MainWindow) -> None:
    w = window
    show_tasks(w)
    first = w.task_model.row(0)
    assert first is not None and status_cell(w, 0) == "○ undecided"
    n = first.annotations
    assert n >= 2
    # decide in the Review tab, with the keys, as a reviewer does
    w.review_task(first.id)
    w.review.auto_advance = w.review.session.auto_advance = False
    w.review.setFocus()
    qtbot.keyClick(w.review, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: not w.review.busy(), timeout=10000)
    show_tasks(w)  # the list re-reads when shown (hidden, it only notes that it is stale)
    assert status_cell(w, 0) == "◐ partly decided"
    w.tabs.setCurrentWidget(w.review)
    w.review.setFocus()
    for _ in range(n - 1):
        qtbot.keyClick(w.review, Qt.Key.Key_A)
        qtbot.waitUntil(lambda: not w.review.busy(), timeout=10000)
    show_tasks(w)
    assert status_cell(w, 0) == "✓ decided"
    brush = w.task_model.index(0, STATUS_COLUMN).data(Qt.ItemDataRole.ForegroundRole)
    assert brush.color().name() == status_colour("decided")
    assert oracle_statuses(w.store, w.current_project())[first.id] == "decided"  # type: ignore[arg-type]
    # escalate another task of the project: ⚑
    second = w.task_model.row(1)
    assert second is not None
    DecisionService(w.store).record(w.current_project(), [DecisionRequest(  # type: ignore[arg-type]
        second.id, "escalate", reason="unsure")], reviewer="me@x.org")
    w.apply(Changes(decisions=True, queue=True))
    assert status_cell(w, 1) == "⚑ escalated"


def test_filter_by_status_reduces_rows_to_exactly_those(qtbot, window: MainWindow) -> None:
    w = window
    _history(w)
    show_tasks(w)
    expected = oracle_statuses(w.store, w.current_project())  # type: ignore[arg-type]
    total = w.task_model.rowCount()
    assert total == len(expected)
    combo = w.tasks_tab.status_combo
    for label, wanted in (("✓ Decided", {"decided"}), ("⚑ Escalated", {"escalated"}),
                          ("Not done (○ + ◐)", {"undecided", "partly"})):
        combo.setCurrentIndex(combo.findText(label))
        ids = listed(w)
        assert sorted(ids) == sorted(t for t, s in expected.items() if s in wanted), label
        assert 0 < len(ids) < total
        assert all(status_cell(w, r)[2:].split()[0] in {"decided", "escalated", "undecided", "partly"}
                   for r in range(len(ids)))
        assert f"{len(ids):,} of {total:,} tasks" in w.tasks_tab.count_label.text()
    w.tasks_tab.clear_filters()
    assert w.task_model.rowCount() == total


def test_annotator_and_debounced_search(qtbot, window: MainWindow) -> None:
    w = window
    show_tasks(w)
    tab = w.tasks_tab
    pid = w.current_project()
    names = [tab.annotator_combo.itemText(i) for i in range(1, tab.annotator_combo.count())]
    assert names and all("@" in n or " " in n for n in names)  # display names, not bare ids
    tab.annotator_combo.setCurrentIndex(1)
    user = tab.annotator_combo.currentData()
    with w.store.session() as s:
        from sqlalchemy import select

        from app.models.schema import Annotation, Task
        want = set(s.scalars(select(Annotation.task_id).join(Task).where(Task.project_id == pid,
                                                                         Annotation.completed_by == user)))
    assert set(listed(w)) == want
    tab.annotator_combo.setCurrentIndex(0)
    total = w.task_model.rowCount()
    qtbot.keyClicks(tab.search, "refund")
    assert w.task_model.rowCount() == total  # debounced: not on every key
    qtbot.waitUntil(lambda: w.task_model.rowCount() < total, timeout=3000)
    rows = [w.task_model.row(r) for r in range(w.task_model.rowCount())]
    details = [w.projects.task_detail(r.id) for r in rows if r is not None]
    assert details and all(any("refund" in str(v).lower() for v in d.data.values()) for d in details)
    qtbot.keyClick(tab.search, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: w.task_model.rowCount() == total, timeout=3000)


def test_disagreement_filter_runs_off_the_ui_thread(qtbot, window: MainWindow) -> None:
    w = window
    show_tasks(w)
    tab = w.tasks_tab
    pid = w.current_project()
    assert pid is not None
    tab.control_combo.setCurrentIndex(tab.control_combo.findText("category"))
    tab.disagree_check.setChecked(True)
    qtbot.waitUntil(lambda: not tab.agreement_pending() and w.task_model.filter.disagreement, timeout=60000)
    idx = tf.agreement_index(w.store, pid)
    want = set(idx.disagreeing("category").tolist())
    assert set(listed(w)) == want and 0 < len(want) < w.task_model.total


def test_ctrl_g_jumps_selects_and_offers_to_clear_filters(qtbot, window: MainWindow, monkeypatch) -> None:
    w = window
    _history(w)
    show_tasks(w)
    m = w.task_model
    target = m.row(250)
    assert target is not None and target.server_id is not None
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (str(target.server_id), True))
    w.tabs.setCurrentWidget(w.review)
    qtbot.keyClick(w, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    assert w.tabs.currentWidget() is w.browse
    assert w.task_view.currentIndex().row() == 250
    assert w.task_view.selectionModel().isRowSelected(250)
    assert f"Task {target.server_id}" in w.task_pane.toPlainText()
    # hidden by a filter: said in the status bar, and an offer to clear the filters
    decided = w.tasks_tab.status_combo.findText("✓ Decided")
    w.tasks_tab.status_combo.setCurrentIndex(decided)
    asked: list[str] = []

    def no(*a, **k):  # type: ignore[no-untyped-def]
        asked.append(a[2])
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", no)
    assert not w.go_to_task(target.server_id)
    assert "hidden by the filters" in w.statusBar().currentMessage() and asked
    assert m.filter.statuses == frozenset({"decided"})
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    assert w.go_to_task(target.server_id)
    assert not m.filter.active and w.task_view.currentIndex().row() == 250
    assert not w.go_to_task(987_654)
    assert "No task 987654" in w.statusBar().currentMessage()
    # the "Go to…" button asks the same
    other = m.row(7)
    assert other is not None
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (f"#{other.server_id}", True))
    qtbot.mouseClick(w.tasks_tab.goto_button, Qt.MouseButton.LeftButton)
    assert w.task_view.currentIndex().row() == 7


def _click_header(qtbot, w: MainWindow, column: int) -> None:
    hh = w.task_view.horizontalHeader()
    x = hh.sectionViewportPosition(column) + hh.sectionSize(column) // 2
    qtbot.mouseClick(hh.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, hh.height() // 2))


def test_header_click_sorts_in_sql(qtbot, window: MainWindow) -> None:
    w = window
    _history(w)
    show_tasks(w)
    m = w.task_model
    loads = m.page_loads
    _click_header(qtbot, w, COLUMNS.index("Task"))
    assert m.filter.sort == "task"
    asc = [m.row(r).server_id for r in range(m.rowCount())]  # type: ignore[union-attr]
    assert asc == sorted(asc)
    _click_header(qtbot, w, COLUMNS.index("Task"))
    assert m.filter.sort == "task" and m.filter.descending
    assert m.row(0).server_id == max(asc)  # type: ignore[union-attr]
    _click_header(qtbot, w, STATUS_COLUMN)
    _click_header(qtbot, w, STATUS_COLUMN)
    assert m.filter.sort == "status" and m.filter.descending
    order = [tf.STATUSES.index(m.row(r).status) for r in range(m.rowCount())]  # type: ignore[union-attr]
    assert order == sorted(order, reverse=True) and order[0] == tf.STATUSES.index("escalated")
    assert status_cell(w, 0) == "⚑ escalated"
    assert m.page_loads > loads and m.loaded_rows() <= 2 * 200  # pages, never a sort over all rows


def test_keyboard_tab_order_and_enter_opens_review(qtbot, window: MainWindow) -> None:
    w = window
    show_tasks(w)
    tab = w.tasks_tab
    tab.status_combo.setFocus()
    chain = [tab.status_combo]
    for _ in range(6):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        chain.append(QApplication.focusWidget())
    assert chain == [tab.status_combo, tab.annotator_combo, tab.control_combo, tab.disagree_check, tab.search,
                     tab.goto_button, w.task_view]  # Clear is disabled while nothing is filtered: skipped
    for widget in (tab.status_combo, tab.annotator_combo, tab.control_combo, tab.disagree_check, tab.search,
                   tab.goto_button):
        assert widget.toolTip()
    assert "Ctrl+F" in tab.search.toolTip() and "Ctrl+G" in tab.goto_button.toolTip()
    qtbot.keyClick(w.task_view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is tab.search
    tab.select_row(3)
    w.task_view.setFocus()
    row = w.task_model.row(3)
    qtbot.keyClick(w.task_view, Qt.Key.Key_Return)
    assert w.tabs.currentWidget() is w.review
    assert row is not None and w.review.session.current.id == row.id


@pytest.mark.parametrize("size", [(1024, 700), (1600, 1000)])
def test_window_width_unchanged_by_filters_and_screenshot(qtbot, window: MainWindow, shots_dir: Path,
                                                          size: tuple[int, int]) -> None:
    w = window
    _history(w)
    from sqlalchemy import select, update

    from app.models.schema import Member

    with w.store.transaction() as s:  # an annotator known by a very long e-mail address
        mid = s.scalar(select(Member.id).where(Member.project_id == w.current_project()).order_by(Member.id))
        s.execute(update(Member).where(Member.id == mid).values(
            email="a.very.long.annotator.address.from.the.field.team@regional-office.example.org"))
    w.tasks_tab.open_project(w.current_project())
    assert any(len(w.tasks_tab.annotator_combo.itemText(i)) > 60 for i in range(w.tasks_tab.annotator_combo.count()))
    w.resize(*size)
    show_tasks(w)
    qtbot.wait(50)
    assert w.width() == size[0]
    split = w.browse.sizes()  # the list and the task pane keep their widths too

    def unchanged() -> bool:
        QApplication.processEvents()
        return w.width() == size[0] and w.browse.sizes() == split

    tab = w.tasks_tab
    for i in range(tab.status_combo.count()):
        tab.status_combo.setCurrentIndex(i)
        assert unchanged(), tab.status_combo.itemText(i)
    for i in range(tab.annotator_combo.count()):
        tab.annotator_combo.setCurrentIndex(i)
        assert unchanged(), tab.annotator_combo.itemText(i)
    tab.annotator_combo.setCurrentIndex(0)
    tab.search.setText("a very long search text that goes on and on and on and on and on and on and on")
    tab.apply_filters()
    assert unchanged()
    tab.clear_filters()
    if size[0] >= 1600:  # the big one shows the filters in use
        tab.status_combo.setCurrentIndex(tab.status_combo.findText("Not done (○ + ◐)"))
        tab.search.setText("charged")
        tab.apply_filters()
    else:
        _click_header(qtbot, w, STATUS_COLUMN)
        _click_header(qtbot, w, STATUS_COLUMN)
    tab.select_row(0)
    QApplication.processEvents()
    assert w.width() == size[0] and w.height() == size[1]
    w.grab().save(str(shots_dir / f"13-tasks-{size[0]}x{size[1]}.png"))
