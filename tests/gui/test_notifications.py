"""Notifications in the window (issue 15 point 7): after a sync brings another reviewer's escalation (expert-routed)
or a conflict, a bar shows it (the tray too where the platform has one: offscreen has none); clicking it, or the
"open the newest notification" key, opens the task in the right queue."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSystemTrayIcon
from sqlalchemy import select, update

from app.models.schema import Decision, DecisionSync
from app.models.store import now_iso
from app.services.decisions import DecisionRequest, DecisionService
from app.services.projects import ProjectService
from app.services.settings import Settings, save_settings
from app.services.sync import PULL_CHANGES
from tests.gui.helpers import shown_window
from tests.gui.test_team_review import pulled


def test_a_pulled_escalation_notifies_the_expert_and_a_click_opens_it(qtbot, demo_store, shots_dir) -> None:
    store, pid = demo_store
    save_settings(store.data_dir, Settings(reviewer="expert@example.com", role="expert"))
    w = shown_window(qtbot, store, pid)
    assert not w.notification_bar.isVisible()
    assert w.tray.available == QSystemTrayIcon.isSystemTrayAvailable()
    assert not w.tray.available  # offscreen: no tray, the bar alone carries them

    tasks = ProjectService(store).task_page(pid, 10, 2)
    t1, t2 = tasks[0].id, tasks[1].id
    a1 = ProjectService(store).task_detail(t1).annotations[0].id
    pulled(store, pid, t1, a1, "escalate", reviewer="priya.shah@example.com", reason="is this a refund?")
    w.apply(PULL_CHANGES)  # what SyncController does when a pull ends: the Changes, then `finished`
    w.sync.finished.emit(None)
    bar = w.notification_bar
    assert bar.isVisible() and "priya.shah@example.com escalated task" in bar.label.text()
    assert "is this a refund?" in bar.label.text()
    qtbot.wait(100)
    w.grab().save(str(shots_dir / "notification-bar.png"))
    w.sync.finished.emit(None)  # seen: not shown twice
    assert len(bar.notes) == 1

    qtbot.mouseClick(bar.label, Qt.MouseButton.LeftButton)
    assert not bar.isVisible()
    assert w.tabs.currentWidget() is w.review and w.review.role == "expert"
    assert w.review.session is not None and w.review.session.current is not None
    assert w.review.session.current.id == t1
    assert w.review.queue_bar.buttons["expert"].isChecked()  # the bar says which queue the task is in
    qtbot.wait(100)
    w.grab().save(str(shots_dir / "notification-opened.png"))

    # a conflict on one of my decisions: Ctrl+Shift+N opens the newest notification
    a2 = ProjectService(store).task_detail(t2).annotations[0].id
    uuid = DecisionService(store).record(pid, [DecisionRequest(t2, "accept", annotation_id=a2)],
                                         reviewer="expert@example.com", role="expert").decisions[0].uuid
    with store.transaction() as s:
        did = s.scalar(select(Decision.id).where(Decision.uuid == uuid))
        s.execute(update(DecisionSync).where(DecisionSync.decision_id == did).values(state="conflict",
                                                                                      updated_at=now_iso()))
    notes = w.check_notifications()
    assert [n.kind for n in notes] == ["conflict"] and bar.isVisible()
    w.tabs.setCurrentWidget(w.browse)
    w.activateWindow()
    w.tasks_tab.view.setFocus()
    qtbot.waitUntil(w.tasks_tab.view.hasFocus, timeout=5000)
    qtbot.keyClick(w.tasks_tab.view, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert not bar.isVisible()
    assert w.tabs.currentWidget() is w.review
    assert w.review.session is not None and w.review.session.current is not None
    assert w.review.session.current.id == t2


def test_the_notification_key_is_in_the_keymap_rebindable_and_conflict_checked(qtbot, demo_store) -> None:
    """Ctrl+Shift+N comes from keymap.toml (review section): rebinding it moves the window's action, and a binding
    already used by a review key is refused like any other conflict."""
    import pytest

    from app.services.keymap import KeymapError, load_keymap

    store, pid = demo_store
    km = load_keymap()
    assert km.keys("open_notification") == ("Ctrl+Shift+N",)
    w = shown_window(qtbot, store, pid)
    assert [s.toString() for s in w.notification_action.shortcuts()] == ["Ctrl+Shift+N"]
    w.keymap = km.with_override("review", "open_notification", ("Ctrl+Alt+N",))
    w._apply_window_keys()
    assert [s.toString() for s in w.notification_action.shortcuts()] == ["Ctrl+Alt+N"]
    with pytest.raises(KeymapError):
        load_keymap({"review": {"open_notification": ["A"]}})  # A accepts
