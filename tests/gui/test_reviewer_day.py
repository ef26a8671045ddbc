"""Issue 13 (a reviewer's day) and the review items of issue 12: what the reviewer sees on screen.

Each test asserts the state shown to the reviewer (chip text, card rows, header, banner, status bar), not
only the rows in the store, and saves a screenshot of the state it checks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import select

from app.models.schema import Decision
from app.services.decisions import DecisionRequest, DecisionService
from app.views.main_window import MainWindow
from tests.gui.helpers import reviewed
from tests.gui.helpers import wait_for as _wait


@pytest.fixture
def window(qtbot, demo_store):
    store, pid = demo_store
    w = MainWindow(store, project_id=pid)
    qtbot.addWidget(w)
    w.resize(1400, 860)
    w.show()
    qtbot.waitExposed(w)
    w.review.setFocus()
    return w


def press(qtbot, w: MainWindow, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(w.review, key, modifier)
    qtbot.waitUntil(lambda: not w.review.busy(), timeout=10000)


def chip_text(w: MainWindow, annotation_id: int) -> str:
    chip = next(c for c in w.review.task_view.chips if c.key == f"a:{annotation_id}")
    return chip.text()


def card_rows(w: MainWindow, control: str) -> str:
    return w.review.task_view.cards[control].rows.text()


def multi_annotation_task(w: MainWindow, n: int = 3) -> None:
    """Go to the first task with at least ``n`` annotations."""
    s = w.review.session
    for tid in s.task_ids:
        if len(w.review.projects.task_detail(tid).annotations) >= n:
            w.review.open_task(tid)
            return
    pytest.skip(f"no demo task with {n} annotations")


def test_status_on_chips_cards_header_and_focus_first_undecided(qtbot, window: MainWindow, shots_dir: Path) -> None:
    """13.1: ✓/✗ on each chip and card row after each verdict and after undo; "k of n decided"; going back
    to a task focuses its first undecided annotation."""
    w = window
    multi_annotation_task(w, 3)
    s = w.review.session
    task = s.current
    anns = task.annotations
    n = len(anns)
    assert f"0 of {n} annotations decided" in w.review.header.text()
    assert all(chip_text(w, a.id).endswith("○") for a in anns)
    w.review.auto_advance = s.auto_advance = False
    first = s.focused_annotation().id
    press(qtbot, w, Qt.Key.Key_A)
    assert "✓ accepted" in chip_text(w, first)
    assert f"1 of {n} annotations decided" in w.review.header.text()
    assert "✓ accepted" in card_rows(w, "category")
    second = s.focused_annotation().id
    assert second != first  # the focus moved on to an undecided annotation
    w.review.dialog_factory = lambda kind, *a: ("Wrong label", None) if kind == "reject" else None
    press(qtbot, w, Qt.Key.Key_R)
    assert "✗ rejected" in chip_text(w, second)
    assert f"2 of {n} annotations decided" in w.review.header.text()
    w.grab().save(str(shots_dir / "13-1-status-on-chips.png"))
    # undo: the chip is undecided again and the header counts one less
    press(qtbot, w, Qt.Key.Key_Backspace)
    assert chip_text(w, second).endswith("○") and "✗" not in chip_text(w, second)
    assert f"1 of {n} annotations decided" in w.review.header.text()
    # away and back: the focus lands on the first undecided annotation, not the accepted first one
    w.review._nav(lambda x: x.next())
    w.review._nav(lambda x: x.previous())
    assert s.current.id == task.id
    assert s.focused_annotation().id != first
    assert w.review.task_view.focused_annotation_id() == s.focused_annotation().id


def test_decision_of_another_reviewer_shows_their_name(qtbot, window: MainWindow) -> None:
    """13.1: a decision recorded by someone else (e.g. pulled) shows its reviewer's name on the chip."""
    w = window
    s = w.review.session
    a = s.focused_annotation()
    DecisionService(w.store).record(s.project_id, [DecisionRequest(task_id=s.current.id, verdict="accept",
                                                                   annotation_id=a.id)], reviewer="priya@lab.org")
    w.review._reload()
    reviewed(w)  # read in a worker, installed when it arrives
    assert "✓ accepted by priya@lab.org" in chip_text(w, a.id)


def test_saved_fix_is_shown_as_original_to_fixed(qtbot, window: MainWindow, shots_dir: Path) -> None:
    """13.2: after a fix the card and the side-by-side table show original → fixed."""
    w = window
    s = w.review.session
    w.review.auto_advance = s.auto_advance = False
    a = s.focused_annotation()
    before = next(i for i in a.result if i.get("from_name") == "category")["value"]["choices"][0]
    new = "Account" if before != "Account" else "Billing"
    w.review.dialog_factory = lambda kind, *args: ([{"from_name": "category", "to_name": "ticket", "type": "choices",
                                                     "value": {"choices": [new]}}] if kind == "fix" else None)
    press(qtbot, w, Qt.Key.Key_F)
    rows = card_rows(w, "category")
    assert f"{before}</s> → " in rows and new in rows
    assert "✎ fixed" in chip_text(w, a.id)
    w.grab().save(str(shots_dir / "13-2-fix-shown.png"))
    w.review.views.setCurrentWidget(w.review.compare)
    table = w.review.compare.toPlainText()
    assert f"{before} → {new}" in table


def test_shift_a_undo_takes_back_the_whole_keystroke(qtbot, window: MainWindow) -> None:
    """Issue 12: Undo after Shift+A retracts the accept AND every reject it made."""
    w = window
    multi_annotation_task(w, 3)
    s = w.review.session
    task = s.current
    press(qtbot, w, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    verdicts = DecisionService(w.store).effective_verdicts(s.project_id)
    assert all(a.id in verdicts for a in task.annotations)
    press(qtbot, w, Qt.Key.Key_Backspace)
    verdicts = DecisionService(w.store).effective_verdicts(s.project_id)
    assert not any(a.id in verdicts for a in task.annotations)
    with w.store.session() as db:
        n_retract = len(db.scalars(select(Decision).where(Decision.verdict == "retract")).all())
    assert n_retract == len(task.annotations)
    assert s.current.id == task.id
    assert all(chip_text(w, a.id).endswith("○") for a in task.annotations)
    assert w.statusBar().currentMessage().startswith("Undone: accept of ")
    assert f"and {len(task.annotations) - 1} rejects" in w.statusBar().currentMessage()
    # redo brings the whole keystroke back
    press(qtbot, w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    verdicts = DecisionService(w.store).effective_verdicts(s.project_id)
    assert sum(1 for a in task.annotations if a.id in verdicts) in (0, len(task.annotations))


def test_escalation_banner_is_plain_text(qtbot, window: MainWindow, shots_dir: Path) -> None:
    """Issue 12: the reviewer's note is shown literally, never rendered as rich text."""
    w = window
    s = w.review.session
    t = s.current.id
    note = "<b>bold</b> <a href='http://x'>link</a> & <img src=x>"
    w.review.dialog_factory = lambda kind, *a: ("Edge case", note) if kind == "escalate" else None
    press(qtbot, w, Qt.Key.Key_E)
    w.review.open_task(t)
    assert w.review.banner.textFormat() == Qt.TextFormat.PlainText
    assert note in w.review.banner.text()
    w.review.banner.grab().save(str(shots_dir / "12-escalation-banner.png"))


def test_reason_popup_says_whose_and_keeps_the_comment(qtbot, window: MainWindow, shots_dir: Path) -> None:
    """13.6: the popup names the annotator and the verdict, numbers only the existing reasons; text typed
    right after the digit (focus still where the popup put it) is the comment; Enter records."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.views.dialogs import ReasonDialog

    w = window
    s = w.review.session
    reasons = DecisionService(w.store).reject_reasons(s.project_id)
    name = s.evaluator_name(s.focused_annotation().evaluator)
    seen: dict[str, str] = {}

    def answer() -> None:
        dlg = QApplication.activeModalWidget()
        assert isinstance(dlg, ReasonDialog)
        seen["subject"] = dlg.subject.text()
        seen["help"] = dlg.help.text()
        dlg.grab().save(str(shots_dir / "13-6-reason-popup.png"))
        # typed as a reviewer types: every key goes to the widget that has the focus at that moment
        for ch in "2too loose":
            qtbot.keyClicks(QApplication.focusWidget() or dlg, ch)
        qtbot.keyClick(QApplication.focusWidget() or dlg, Qt.Key.Key_Return)

    QTimer.singleShot(200, answer)
    qtbot.keyClick(w.review, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: not w.review.busy() and bool(seen), timeout=10000)
    qtbot.waitUntil(lambda: not w.review.busy(), timeout=10000)
    with w.store.session() as db:
        d = db.scalars(select(Decision)).one()
    assert (d.verdict, d.reason, d.comment) == ("reject", reasons[1], "too loose")
    assert "Reject" in seen["subject"] and name in seen["subject"]
    assert f"<b>{len(reasons)}</b>" in seen["help"] and "9" not in seen["help"].replace(str(len(reasons)), "")


def test_shift_a_previews_who_will_be_rejected(qtbot, window: MainWindow) -> None:
    """13.6: the panel says whom Shift+A accepts and whom it rejects, following the focus."""
    w = window
    multi_annotation_task(w, 3)
    s = w.review.session
    names = [s.evaluator_name(a.evaluator) for a in s.current.annotations]
    focused = s.evaluator_name(s.focused_annotation().evaluator)
    text = w.review.preview.text()
    assert f"accept {focused}, reject " in text
    assert all(n in text for n in names)
    press(qtbot, w, Qt.Key.Key_Tab)
    assert f"accept {s.evaluator_name(s.focused_annotation().evaluator)}, reject" in w.review.preview.text()



@pytest.mark.parametrize("width", [1024, 1280])
def test_no_tab_changes_the_window_width(qtbot, demo_store, tmp_path: Path, monkeypatch, width: int,
                                         shots_dir: Path) -> None:
    """13.5: changing aggregation and dimension, exporting CSV/PNG, a drill-down, switching tabs and
    deciding never change the window's width; "Wrote …" goes to the status bar."""
    from PySide6.QtWidgets import QApplication, QFileDialog

    store, pid = demo_store
    w = MainWindow(store, project_id=pid)
    qtbot.addWidget(w)
    w.resize(width, 700)
    w.show()
    qtbot.waitExposed(w)
    d = w.dashboard
    w.tabs.setCurrentWidget(d)
    _wait(lambda: d.data is not None and not d.busy())
    QApplication.processEvents()
    assert w.width() == width
    d.mode.setCurrentIndex(1)
    _wait(lambda: d.data is not None and not d.busy())
    QApplication.processEvents()
    assert w.width() == width
    for i in range(d.dimension.count()):
        d.dimension.setCurrentIndex(i)
        QApplication.processEvents()
        assert w.width() == width
    long = tmp_path / ("a-rather-long-folder-name-for-exports-" * 3)
    long.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(long / "agreement.csv"), ""))
    d.export_csv_dialog()
    QApplication.processEvents()
    assert w.width() == width
    assert w.statusBar().currentMessage().startswith("Wrote ")
    assert "Wrote" not in d.status.text()
    d.status.setText("x" * 400)  # any caption, however long, wraps
    QApplication.processEvents()
    assert w.width() == width
    w.grab().save(str(shots_dir / f"13-5-dashboard-{width}.png"))
    for tab in range(w.tabs.count()):
        w.tabs.setCurrentIndex(tab)
        QApplication.processEvents()
        assert w.width() == width, w.tabs.tabText(tab)
    w.tabs.setCurrentWidget(w.review)
    w.review.setFocus()
    press(qtbot, w, Qt.Key.Key_A)
    QApplication.processEvents()
    assert w.width() == width


def test_evaluator_keeps_colour_position_and_name_across_tasks(qtbot, window: MainWindow, shots_dir: Path) -> None:
    """13.3: an evaluator has one colour and one place among the chips on every task of the project, one
    name format (display name; the e-mail on hover), and a ground-truth annotation is marked."""
    w = window
    s = w.review.session
    seen: dict[str, tuple[str, int]] = {}  # e-mail -> (chip colour, position among the annotations)
    places: dict[str, set[int]] = {}
    for tid in s.task_ids[:12]:
        w.review.open_task(tid)
        tv = w.review.task_view
        slots = sorted({s.evaluator_slot(a.completed_by) for a in s.current.annotations})
        for a in s.current.annotations:
            lv = next(lv for lv in tv.state.layers if lv.key == f"a:{a.id}")
            colour = lv.colour.name()
            if a.evaluator in seen:
                assert seen[a.evaluator][0] == colour, a.evaluator
            seen[a.evaluator] = (colour, 0)
            places.setdefault(a.evaluator, set()).add(slots.index(s.evaluator_slot(a.completed_by)))
            chip = next(c for c in tv.chips if c.key == lv.key)
            assert a.evaluator in chip.toolTip()
            assert "@" not in chip.text()
            assert chip.text().startswith("● " + s.evaluator_name(a.evaluator))
            if a.ground_truth:
                assert "★ ground truth" in chip.text()
        # chips in the project's evaluator order
        order = [s.evaluator_slot(a.completed_by) for a in s.current.annotations]
        assert order == sorted(order)
    assert len({c for c, _ in seen.values()}) == len(seen) or len(seen) > 8  # distinct colours per evaluator
    w.grab().save(str(shots_dir / "13-3-evaluator-colours.png"))


def test_ground_truth_annotation_is_marked(qtbot, window: MainWindow) -> None:
    w = window
    s = w.review.session
    for tid in s.task_ids:
        d = w.review.projects.task_detail(tid)
        gt = [a for a in d.annotations if a.ground_truth]
        if gt:
            w.review.open_task(tid)
            chip = next(c for c in w.review.task_view.chips if c.key == f"a:{gt[0].id}")
            assert "★ ground truth" in chip.text()
            return
    pytest.skip("no ground-truth annotation in the demo")


def test_new_task_opens_at_the_top_and_wheel_scrolls_the_pane(qtbot, window: MainWindow, shots_dir: Path) -> None:
    """13.4: after scrolling down, the next task opens scrolled to the top; the wheel over the image scrolls
    the pane instead of zooming; Ctrl+wheel zooms."""
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    from app.views.renderers.image import ImageView

    w = window
    w.resize(1024, 700)
    QApplication.processEvents()
    tv = w.review.task_view
    area = tv.areas[0]
    bar = area.verticalScrollBar()
    assert bar.maximum() > 0
    bar.setValue(bar.maximum())
    tv.areas[1].verticalScrollBar().setValue(tv.areas[1].verticalScrollBar().maximum())
    press(qtbot, w, Qt.Key.Key_J)
    QApplication.processEvents()
    assert bar.value() == 0 and tv.areas[1].verticalScrollBar().value() == 0
    view = tv.findChildren(ImageView)[0]
    scale = view.transform().m11()

    def wheel(mods: Qt.KeyboardModifier) -> None:
        vp = view.viewport()
        pos = QPointF(vp.width() / 2, vp.height() / 2)
        ev = QWheelEvent(pos, QPointF(vp.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, -120),
                         Qt.MouseButton.NoButton, mods, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(vp, ev)

    wheel(Qt.KeyboardModifier.NoModifier)
    assert bar.value() > 0  # the pane scrolled
    assert view.transform().m11() == scale  # the image did not zoom
    wheel(Qt.KeyboardModifier.ControlModifier)
    assert view.transform().m11() < scale  # Ctrl+wheel zooms (out)
    w.grab().save(str(shots_dir / "13-4-scrolled.png"))


def test_history_says_whose_annotation_and_which_control(qtbot, window: MainWindow, shots_dir: Path) -> None:
    """13.8: session history entries name the annotator and, for a fix, the controls it changed; entries
    wrap (not cut off); "Undone" in the status bar after an undo."""
    w = window
    s = w.review.session
    w.review.auto_advance = s.auto_advance = False
    a = s.focused_annotation()
    name = s.evaluator_name(a.evaluator)
    before = next(i for i in a.result if i.get("from_name") == "category")["value"]["choices"][0]
    new = "Account" if before != "Account" else "Billing"
    result = [dict(i) for i in a.result]
    for i in result:
        if i.get("from_name") == "category":
            i["value"] = {"choices": [new]}
    w.review.dialog_factory = lambda kind, *args: result if kind == "fix" else None
    press(qtbot, w, Qt.Key.Key_F)
    text = w.review.history.item(0).text()
    assert f"✎ fixed {name}'s annotation (category)" in text
    assert w.review.history.wordWrap()
    w.review.history.grab().save(str(shots_dir / "13-8-history.png"))
    press(qtbot, w, Qt.Key.Key_Backspace)
    assert w.statusBar().currentMessage().startswith(f"Undone: fix of {name}'s annotation")
    assert "(undone)" in w.review.history.item(0).text()


def test_rebound_fix_save_and_cancel_keys_are_used(qtbot, window: MainWindow) -> None:
    """Issue 12: the [fix] save/cancel bindings of the keymap are the keys fix mode obeys."""
    from app.services.keymap import load_keymap

    w = window
    s = w.review.session
    w.review.set_keymap(load_keymap({"fix": {"save": ["Ctrl+S"], "cancel": ["Ctrl+Q"]}}))
    w.review.auto_advance = s.auto_advance = False
    tv = w.review.task_view
    w.review.setFocus()
    press(qtbot, w, Qt.Key.Key_F)
    assert tv.in_fix_mode()
    assert "Ctrl+S" in tv.banner.text() and "Ctrl+Q" in tv.banner.text()
    target = tv.focusWidget() or tv
    qtbot.keyClick(target, Qt.Key.Key_Escape)
    assert tv.in_fix_mode()  # Escape is no longer bound to cancel
    qtbot.keyClick(tv.focusWidget() or tv, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert not tv.in_fix_mode()
    w.review.setFocus()
    press(qtbot, w, Qt.Key.Key_F)
    qtbot.keyClick(tv.focusWidget() or tv, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not w.review.busy(), timeout=10000)
    assert not tv.in_fix_mode()
    with w.store.session() as db:
        assert [d.verdict for d in db.scalars(select(Decision))] == ["fix"]


def test_show_model_predictions_setting_is_applied(qtbot, demo_store) -> None:
    """Issue 12: "Show model predictions" adds the task's predictions as layers (chips), and turning it off
    removes them."""
    from dataclasses import replace

    store, pid = demo_store
    w = MainWindow(store, project_id=pid)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    s = w.review.session
    tid = next(t for t in s.task_ids if w.review.projects.task_detail(t).predictions)
    w.review.open_task(tid)
    assert not any(c.key.startswith("p:") for c in w.review.task_view.chips)
    w.settings = replace(w.settings, show_predictions=True)
    w.review.show_predictions = True
    w.review.open_project(pid)
    w.review.open_task(tid)
    assert any(c.key.startswith("p:") and "◆" in c.text() for c in w.review.task_view.chips)


def test_dashboard_uses_the_review_name_format(qtbot, demo_store) -> None:
    """13.3: the heatmap's labels and the annotator table use the same display name as the review chips,
    the e-mail on hover."""
    from app.services.describe import evaluator_name
    from app.views.heatmap import short_name

    store, pid = demo_store
    w = MainWindow(store, project_id=pid)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    d = w.dashboard
    w.tabs.setCurrentWidget(d)
    _wait(lambda: d.data is not None and not d.busy())
    assert short_name("tom.becker@example.com") == "Tom Becker" == evaluator_name("tom.becker@example.com")
    first = d.annotators.item(0, 0)
    email = first.data(Qt.ItemDataRole.UserRole + 1)
    assert first.text() == short_name(email) and first.toolTip() == email


@pytest.mark.parametrize("size", [(1024, 700), (1600, 1000)])
def test_screenshots_of_every_tab(qtbot, demo_store, shots_dir: Path, size: tuple[int, int]) -> None:
    """Screenshots of the Review, Tasks and Dashboard tabs at a small and a large window; the window keeps
    its size on every tab and the review's chips stay reachable (the chip row scrolls)."""

    store, pid = demo_store
    w = MainWindow(store, project_id=pid)
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    qtbot.waitExposed(w)
    for name, tab in (("review", w.review), ("tasks", w.tabs.widget(1)), ("dashboard", w.dashboard)):
        w.tabs.setCurrentWidget(tab)
        if tab is w.dashboard:
            _wait(lambda: w.dashboard.data is not None and not w.dashboard.busy())
        qtbot.wait(100)  # let the layout settle before the picture
        assert (w.width(), w.height()) == size, name
        if name == "review":
            first_chip_widths = [c.width() for c in w.review.task_view.chips]
        w.grab().save(str(shots_dir / f"13-{name}-{size[0]}x{size[1]}.png"))
    w.tabs.setCurrentWidget(w.review)
    qtbot.wait(100)
    tv = w.review.task_view
    for chip in tv.chips:  # all chips reachable: never squeezed into "P…", the row scrolls instead
        assert chip.width() >= chip.sizeHint().width(), chip.text()
    assert first_chip_widths == [c.sizeHint().width() for c in tv.chips]  # already so in the first picture


def test_small_window_history_pane_collapses(qtbot, demo_store, shots_dir: Path) -> None:
    """13.10: at 1024×700, H hides the history pane and the task gets its width; H brings it back."""
    store, pid = demo_store
    w = MainWindow(store, project_id=pid)
    qtbot.addWidget(w)
    w.resize(1024, 700)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    w.review.setFocus()
    qtbot.waitUntil(w.review.hasFocus, timeout=5000)
    before = w.review.views.width()
    qtbot.keyClick(w.review, Qt.Key.Key_H)
    qtbot.wait(50)
    assert not w.review.side.isVisible()
    assert w.review.views.width() > before + 150
    assert w.width() == 1024
    w.grab().save(str(shots_dir / "13-10-history-collapsed-1024.png"))
    qtbot.keyClick(w.review, Qt.Key.Key_H)
    qtbot.wait(50)
    assert w.review.side.isVisible() and w.review.side.width() > 100


def test_drill_down_keeps_history_focuses_the_pair_and_goes_back(qtbot, demo_store, shots_dir: Path) -> None:
    """13.7: a heatmap drill-down keeps the session's history and counters, focuses one of the two compared
    evaluators, and offers a visible "Back to the full queue"."""
    store, pid = demo_store
    w = MainWindow(store, project_id=pid)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    w.review.setFocus()
    qtbot.waitUntil(w.review.hasFocus, timeout=5000)
    s = w.review.session
    total = len(s.task_ids)
    press(qtbot, w, Qt.Key.Key_S)  # one decision in this session
    assert w.review.history.count() == 1
    assert not w.review.full_queue.isVisible()
    d = w.dashboard
    w.tabs.setCurrentWidget(d)
    _wait(lambda: d.data is not None and not d.busy())
    d.dimension.setCurrentIndex(max(0, d.dimension.findData("category")))
    d._drill_down("diego.santos@example.com", "tom.becker@example.com")
    assert w.tabs.currentWidget() is w.review
    assert w.review.session is s  # the same session: history and undo kept
    assert w.review.history.count() == 1
    assert "Decisions: <b>1</b>" in w.review.counters.text()
    assert w.review.full_queue.isVisible()
    if s.current is not None:
        assert s.focused_annotation().evaluator in ("diego.santos@example.com", "tom.becker@example.com")
        marked = {c.key for c in w.review.task_view.chips if "⇄" in c.text()}
        pair = {f"a:{a.id}" for a in s.current.annotations
                if a.evaluator in ("diego.santos@example.com", "tom.becker@example.com")}
        assert marked == pair and pair
    w.grab().save(str(shots_dir / "13-7-drill-down.png"))
    w.review.full_queue.click()
    assert len(s.task_ids) == total or len(s.task_ids) >= total - 1
    assert not w.review.full_queue.isVisible()
    assert w.review.history.count() == 1


def test_exported_png_carries_a_title(qtbot, demo_store, tmp_path: Path, monkeypatch, shots_dir: Path) -> None:
    """13.12: the exported heatmap PNG says project, dimension, aggregation and date."""
    from datetime import date

    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QFileDialog

    store, pid = demo_store
    w = MainWindow(store, project_id=pid)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    d = w.dashboard
    w.tabs.setCurrentWidget(d)
    _wait(lambda: d.data is not None and not d.busy())
    caption = d.png_caption()
    assert "Demo" in caption and d.mode.currentText() in caption and f"{date.today():%Y-%m-%d}" in caption
    out = tmp_path / "agreement.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    d.export_png_dialog()
    img = QImage(str(out))
    assert img.height() == d.heatmap.grab().height() + 34
    img.save(str(shots_dir / "13-12-exported-heatmap.png"))
    assert w.statusBar().currentMessage() == f"Wrote {out}"


def test_text_size_keys_are_remembered(qtbot, demo_store) -> None:
    """13.13: Ctrl++ / Ctrl+− change the text size of the window, and the size is remembered."""
    from PySide6.QtGui import QKeySequence
    from PySide6.QtWidgets import QApplication

    from app.services.settings import load_settings

    store, pid = demo_store
    w = MainWindow(store, project_id=pid)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    base = QApplication.font().pointSize()
    try:
        act = next(a for m in w.menuBar().actions() if m.menu() for a in m.menu().actions()
                   if QKeySequence("Ctrl++") in a.shortcuts())
        act.trigger()
        act.trigger()
        assert QApplication.font().pointSize() == base + 2
        assert load_settings(store.data_dir).font_size == base + 2
        w2 = MainWindow(store, project_id=pid)  # a new window (next start) applies the remembered size
        qtbot.addWidget(w2)
        assert QApplication.font().pointSize() == base + 2
    finally:
        w.change_font_size(0)
    assert QApplication.font().pointSize() == base
    assert load_settings(store.data_dir).font_size == 0


def test_sync_status_is_readable_and_sync_without_server_says_so(qtbot, demo_store) -> None:
    """13.11: "Sync status" is readable lines (no JSON); errors lose "[Errno 111]"; "Sync now" without a
    server says what to do."""
    from app.services.sync import SyncStatus
    from app.views.sync_ui import plain_error, status_text

    store, pid = demo_store
    w = MainWindow(store, project_id=pid)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.sync.sync_now() is None
    assert "No server to sync with" in w.statusBar().currentMessage()
    w.sync.show_details()
    text = w.sync.status_box.text()
    assert "{" not in text and "Decisions waiting to be sent: 0" in text and "Server: none" in text
    w.sync.status_box.close()
    assert plain_error("<urlopen error [Errno 111] Connection refused>") == "Connection refused"
    st = SyncStatus((), 3, 1, 0, None, None, "Pull failed: [Errno 111] Connection refused")
    assert "Last error: Pull failed: Connection refused" in status_text(st)
