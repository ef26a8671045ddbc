"""The queue bar of the review panel: switching role and queue (counts always shown), an escalation pulled from
the server arriving in the expert queue, and the queue surviving a restart of the window."""

from __future__ import annotations

import uuid as uuidlib

from PySide6.QtCore import Qt
from sqlalchemy import select

from app.models.schema import AuditEvent, Decision, DecisionSync, Member
from app.models.store import now_iso
from app.services.changes import Changes
from app.services.queues import QueueSpec, build_queue, set_expert_threshold
from app.views.main_window import MainWindow
from tests.gui.helpers import shown_window, wait_for


def focused(qtbot, w: MainWindow) -> None:
    w.activateWindow()
    w.review.setFocus()
    qtbot.waitUntil(w.review.hasFocus, timeout=5000)


def counted(w: MainWindow) -> bool:
    return all("…" not in b.text() for b in w.review.queue_bar.buttons.values())


def pick(w: MainWindow, key: str) -> None:
    combo = w.review.queue_bar.combo
    combo.setCurrentIndex(combo.findData(key))
    wait_for(lambda: not w.review.queue_building(), 30)  # the per-task scores are read in a worker first


def press(qtbot, w: MainWindow, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(w.review, key, modifier)
    wait_for(lambda: not w.review.busy(), 10)


def test_switching_queue_and_role_with_counts(qtbot, demo_store) -> None:
    store, pid = demo_store
    set_expert_threshold(store, pid, 0.6)
    expected = build_queue(store, pid, QueueSpec(order="agreement"))
    w = shown_window(qtbot, store, pid)
    focused(qtbot, w)
    bar = w.review.queue_bar
    pick(w, "order:agreement")
    s = w.review.session
    assert s.queue.spec == QueueSpec(order="agreement")
    assert s.task_ids == expected.task_ids.tolist()  # the panel walks the service's order
    assert s.current.id == expected.task_ids[0]
    assert bar.reasons.text() == "Why: in the project (no rule)"
    wait_for(lambda: bar.buttons["reviewer"].text() == "R&eviewer (311)" and bar.buttons["expert"].text() == "E&xpert (9)",
             30)
    press(qtbot, w, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert w.review.role == s.role == "expert" and bar.buttons["expert"].isChecked()
    assert len(s.task_ids) == 9
    assert bar.reasons.text().startswith("Why: agreement 0.") and "below the expert threshold 0.6" in bar.reasons.text()
    assert "Expert queue" in w.review.header.text()
    press(qtbot, w, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert s.role == "reviewer" and len(s.task_ids) == 311
    assert not w.review.full_queue.isVisible()  # a built queue is the full queue, not a drill-down
    w.review.grab().save("/tmp/q1-bar.png")


def test_an_escalation_pulled_from_the_server_arrives_in_the_expert_queue(qtbot, demo_store) -> None:
    store, pid = demo_store
    with store.transaction() as s:
        s.add(Member(project_id=pid, user_id=9001, email="priya.shah@example.com", first_name="Priya",
                     last_name="Shah"))
    w = shown_window(qtbot, store, pid)
    focused(qtbot, w)
    pick(w, "order:oldest")
    bar = w.review.queue_bar
    wait_for(lambda: counted(w))
    assert bar.buttons["expert"].text() == "E&xpert (0)"
    target = w.review.session.task_ids[5]
    with store.transaction() as s:  # what a pull writes: another reviewer's task-level escalation
        d = Decision(uuid=str(uuidlib.uuid4()), project_id=pid, task_id=target, annotation_id=None,
                     verdict="escalate", reason="Policy unclear", reviewer="priya.shah@example.com", role="reviewer",
                     created_at=now_iso(), origin="server")
        s.add(d)
        s.flush()
        s.add(DecisionSync(decision_id=d.id, state="synced", updated_at=now_iso()))
    w.apply(Changes(decisions=True, sync=True))
    wait_for(lambda: bar.buttons["expert"].text() == "E&xpert (1)")
    assert target not in w.review.session.task_ids  # out of the reviewer queue
    press(qtbot, w, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    s_ = w.review.session
    assert s_.task_ids == [target] and s_.current.id == target
    assert bar.reasons.text() == "Why: escalated by Priya Shah: Policy unclear (pulled)"
    assert w.review.banner.isVisible() and "via the server" in w.review.banner.text()
    press(qtbot, w, Qt.Key.Key_A)  # the expert's verdict settles it
    wait_for(lambda: bar.buttons["expert"].text() == "E&xpert (0)")
    assert s_.remaining() == 0


def test_the_queue_survives_a_restart(qtbot, demo_store) -> None:
    store, pid = demo_store
    w = shown_window(qtbot, store, pid)
    focused(qtbot, w)
    pick(w, "order:oldest")
    press(qtbot, w, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    press(qtbot, w, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    press(qtbot, w, Qt.Key.Key_J)
    press(qtbot, w, Qt.Key.Key_J)
    s = w.review.session
    where = s.current.id
    assert s.index == 2
    w.close()
    from app.services import queues

    queues._INPUTS.clear()  # a fresh start: the scores are read in a worker, the project order shows meanwhile
    w2 = shown_window(qtbot, store, pid)
    assert w2.review.queue_building() and w2.review.session.queue.spec is None
    wait_for(lambda: not w2.review.queue_building(), 30)
    s2 = w2.review.session
    assert w2.review.queue_bar.queue_key() == "order:oldest" and s2.queue.spec == QueueSpec(order="oldest")
    assert s2.current.id == where and s2.index == 2 and s2.role == "reviewer"
    with store.session() as ss:
        kinds = list(ss.scalars(select(AuditEvent.kind).where(AuditEvent.kind == "settings.queue")))
    assert len(kinds) == 3  # the queue, expert, reviewer -- the reading position alone is not audited


def test_coverage_table_counts_pulled_decisions(qtbot, demo_store, shots_dir) -> None:
    store, pid = demo_store
    w = shown_window(qtbot, store, pid)
    s = w.review.session
    t = s.current
    with store.transaction() as ss:  # another reviewer's accept on the first annotation, as a pull writes it
        d = Decision(uuid=str(uuidlib.uuid4()), project_id=pid, task_id=t.id, annotation_id=t.annotations[0].id,
                     verdict="accept", reviewer="priya.shah@example.com", role="reviewer", created_at=now_iso(),
                     origin="server")
        ss.add(d)
        ss.flush()
        ss.add(DecisionSync(decision_id=d.id, state="synced", updated_at=now_iso()))
    dlg = w.coverage_dialog()
    qtbot.addWidget(dlg)
    wait_for(lambda: dlg.ready, 30)
    table = dlg.table
    cells = [[table.item(r, c).text() if table.item(r, c) else "" for c in range(5)] for r in range(table.rowCount())]
    assert cells[0] == ["Overall (annotations)", "1", "1,224", "0.1%", "1"]
    assert cells[1] == ["Tasks (every annotation reviewed)", "0", "320", "0.0%", "0"]
    assert ["  Priya Shah", "1", "1,224", "0.1%", "1"] in cells  # the display name; the e-mail on hover
    row = next(r for r in range(table.rowCount()) if table.item(r, 0) and table.item(r, 0).text() == "  Priya Shah")
    assert table.item(row, 0).toolTip() == "priya.shah@example.com"
    dlg.grab().save(str(shots_dir / "coverage.png"))


def test_opening_a_task_in_the_expert_queue_switches_the_bar(qtbot, demo_store) -> None:
    """A notification's click (MainWindow.open_task with a role) goes through the queue bar's role switch: the
    session keeps its history, the bar shows the expert queue, and the task is on screen."""
    store, pid = demo_store
    set_expert_threshold(store, pid, 0.6)
    w = shown_window(qtbot, store, pid)
    focused(qtbot, w)
    pick(w, "order:agreement")
    s = w.review.session
    expert_task = build_queue(store, pid, QueueSpec(order="agreement", role="expert")).task_ids[0]
    assert w.open_task(int(expert_task), "expert")
    assert w.review.session is s  # the same session: history and undo stay
    assert w.review.role == s.role == "expert" and w.review.queue_bar.buttons["expert"].isChecked()
    assert s.current is not None and s.current.id == expert_task


def test_counts_follow_the_first_built_queue_on_a_cold_project(qtbot, demo_store) -> None:
    """The first ordering picked on a project whose per-task scores were never computed builds them in a worker;
    the counts then follow the built queue's routing (the expert threshold), not the plain queue's."""
    store, pid = demo_store
    set_expert_threshold(store, pid, 0.6)
    w = shown_window(qtbot, store, pid)  # nothing built before the window: the scores are cold
    focused(qtbot, w)
    bar = w.review.queue_bar
    wait_for(lambda: counted(w), 30)
    plain = (bar.buttons["reviewer"].text(), bar.buttons["expert"].text())
    pick(w, "order:agreement")
    expected = build_queue(store, pid, QueueSpec(order="agreement", role="expert"))
    assert len(expected) > 0 and plain[1] == "E&xpert (0)"
    wait_for(lambda: bar.buttons["expert"].text() == f"E&xpert ({len(expected)})", 30)
