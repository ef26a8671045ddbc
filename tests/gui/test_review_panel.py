from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication
from sqlalchemy import select

from app.models.schema import Decision
from app.services.decisions import DecisionService
from app.services.keymap import KeymapError, load_keymap
from app.views.dialogs import KeymapDialog, ReasonDialog, sanitize_instructions
from app.views.main_window import MainWindow
from tests.gui.helpers import shown_window


@pytest.fixture
def window(qtbot, demo_store):
    store, pid = demo_store
    w = shown_window(qtbot, store, pid)
    w.review.setFocus()
    return w


def press(qtbot, w: MainWindow, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(w.review, key, modifier)
    qtbot.waitUntil(lambda: not w.review.busy(), timeout=5000)


def rows(w: MainWindow) -> list[tuple[str, int | None]]:
    with w.store.session() as s:
        return [(d.verdict, d.annotation_id) for d in s.scalars(select(Decision).order_by(Decision.id))]


def test_keys_decide_and_store_rows(qtbot, window: MainWindow, shots_dir: Path) -> None:
    w = window
    s = w.review.session
    assert s is not None
    first = s.current
    a0 = s.focused_annotation().id
    press(qtbot, w, Qt.Key.Key_A)
    assert rows(w) == [("accept", a0)]
    # Tab moves the focus to the next annotation; Shift+A accepts it and rejects the rest
    press(qtbot, w, Qt.Key.Key_Tab)
    focused = s.focused_annotation().id
    press(qtbot, w, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    verdicts = DecisionService(w.store).effective_verdicts(s.project_id)
    assert verdicts[focused] == "accept"
    assert all(verdicts[a.id] == "reject" for a in first.annotations if a.id != focused)
    assert s.current.id != first.id  # auto-advanced after every annotation had a verdict
    assert "Remaining: <b>319</b>" in w.review.counters.text()
    # Backspace undoes (a retraction is appended) and brings the task back
    press(qtbot, w, Qt.Key.Key_Backspace)
    assert s.current.id == first.id
    assert rows(w)[-1][0] == "retract"
    assert "(undone)" in w.review.history.item(0).text()
    # J / K navigate
    press(qtbot, w, Qt.Key.Key_J)
    assert s.index == 1
    press(qtbot, w, Qt.Key.Key_K)
    assert s.index == 0
    w.grab().save(str(shots_dir / "review_panel.png"))


def test_key_pressed_while_writing_is_swallowed(qtbot, window: MainWindow) -> None:
    w = window
    s = w.review.session
    import threading

    # hold the durable write on the worker thread until both presses were delivered, so the second press
    # deterministically lands while the first decision is being written (issue 12: this test must be able
    # to fail -- a session that did not swallow would record two decisions here)
    gate = threading.Event()
    real_commit = s.commit

    def slow_commit(pending):
        assert gate.wait(10)
        return real_commit(pending)

    s.commit = slow_commit  # type: ignore[method-assign]
    before = len(rows(w))
    qtbot.keyClick(w.review, Qt.Key.Key_A)  # the write runs on a worker thread (held at the gate)
    assert w.review.busy()
    qtbot.keyClick(w.review, Qt.Key.Key_A)  # pressed before the commit came back
    assert s.swallowed == 1
    gate.set()
    qtbot.waitUntil(lambda: not w.review.busy(), timeout=5000)
    assert len(rows(w)) - before == 1  # exactly one decision for two presses
    assert s.swallowed == 1


def test_reject_with_real_reason_picker(qtbot, window: MainWindow) -> None:
    w = window
    s = w.review.session
    reasons = DecisionService(w.store).reject_reasons(s.project_id)

    def answer() -> None:
        dlg = QApplication.activeModalWidget()
        assert isinstance(dlg, ReasonDialog)
        qtbot.keyClick(dlg, Qt.Key.Key_3)
        qtbot.keyClicks(dlg.comment, "box too loose")
        qtbot.keyClick(dlg.comment, Qt.Key.Key_Return)

    QTimer.singleShot(200, answer)
    qtbot.keyClick(w.review, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: bool(rows(w)) and not w.review.busy(), timeout=5000)
    with w.store.session() as db:
        d = db.scalars(select(Decision)).one()
    assert (d.verdict, d.reason, d.comment) == ("reject", reasons[2], "box too loose")


def test_escalate_and_fix_through_dialog_hooks(qtbot, window: MainWindow) -> None:
    w = window
    s = w.review.session
    answers = {"escalate": ("Edge case", "two products"),
               "fix": [{"from_name": "category", "to_name": "ticket", "type": "choices",
                        "value": {"choices": ["Account"]}}]}
    w.review.dialog_factory = lambda kind, *a: answers.get(kind)
    t = s.current.id
    press(qtbot, w, Qt.Key.Key_F)
    assert rows(w)[-1][0] == "fix"
    press(qtbot, w, Qt.Key.Key_E)
    assert rows(w)[-1][0] == "escalate" and s.current.id != t
    # an invalid fix is refused with a message and nothing is written
    answers["fix"] = [{"from_name": "category", "to_name": "ticket", "type": "choices",
                       "value": {"choices": ["Nope"]}}]
    n = len(rows(w))
    press(qtbot, w, Qt.Key.Key_F)
    assert len(rows(w)) == n
    assert "not an option" in w.review.header.text()


def test_clear_demo_queue_with_keyboard_only(qtbot, window: MainWindow) -> None:
    w = window
    s = w.review.session
    presses = 0
    while s.remaining() and presses < 3000:
        press(qtbot, w, Qt.Key.Key_A)
        presses += 1
    assert s.remaining() == 0
    assert "Remaining: <b>0</b>" in w.review.counters.text()


def test_instructions_are_sanitised() -> None:
    html = sanitize_instructions('<p>Hi</p><script>alert(1)</script><img src="http://evil/x.png">'
                                 '<a href="javascript:alert(1)">x</a>')
    assert "<script" not in html and "alert(1)" not in html and "evil" not in html and "<p>Hi</p>" in html


def test_keymap_editor_refuses_conflicts(qtbot) -> None:
    km = load_keymap()
    dlg = KeymapDialog(km)
    qtbot.addWidget(dlg)
    r = next(i for i, (sec, act) in enumerate(dlg.rows) if act == "skip")
    edit = dlg.table.cellWidget(r, 1)
    from PySide6.QtGui import QKeySequence

    edit.setKeySequence(QKeySequence("A"))  # already accept
    with pytest.raises(KeymapError, match="bound to both"):
        dlg.edited_keymap()
    edit.setKeySequence(QKeySequence("N"))
    assert dlg.edited_keymap().action_for("N") == "skip"


def test_rebound_key_is_used(qtbot, window: MainWindow) -> None:
    w = window
    w.review.set_keymap(load_keymap({"review": {"accept": ["Y"]}}))
    w.review.setFocus()
    press(qtbot, w, Qt.Key.Key_A)
    assert rows(w) == []
    press(qtbot, w, Qt.Key.Key_Y)
    assert [r[0] for r in rows(w)] == ["accept"]
