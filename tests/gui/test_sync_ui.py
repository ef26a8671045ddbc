"""The Sync menu, login dialog, status area, background sync with cancel, and the conflict view
(against an in-memory Label Studio behind a fake transport: no network)."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from PySide6.QtWidgets import QMainWindow
from sqlalchemy import select

from app.models.schema import Annotation, Task
from app.services.changes import Changes
from app.services.decisions import DecisionRequest, DecisionService
from app.services.sync import SyncService
from app.views.sync_ui import attach_sync
from tests.memkeyring import MemoryKeyring
from tests.unit.sync.fakels import TOKEN, URL, FakeLS, client_for


@pytest.fixture
def mem_keyring():
    old = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(old)


@pytest.fixture
def fake() -> FakeLS:
    f = FakeLS()
    for i in range(8):
        f.add_task(f"ticket {i}")
    return f


@pytest.fixture
def ui(qtbot, store, fake, mem_keyring):
    win = QMainWindow()
    qtbot.addWidget(win)
    seen: list[Changes] = []
    svc = SyncService(store, client_factory=lambda url, tok, ca: client_for(fake, token=tok or ""))
    ctl = attach_sync(win, store, seen.append, service=svc)
    ctl.ask_login_on_auth = False
    win.show()
    return win, ctl, seen


def _login(qtbot, ctl, token=TOKEN):
    dlg = ctl.login_dialog()
    dlg.url.setText(URL)
    dlg.token.setText(token)
    dlg.submit()
    qtbot.waitUntil(lambda: dlg.result() != 0 or (dlg.buttons.isEnabled() and dlg.error.text() != "Checking…"),
                    timeout=5000)
    return dlg


def test_menu_login_pull_push_and_status(qtbot, ui, store, fake, shots_dir: Path):
    win, ctl, seen = ui
    names = [a.objectName() for a in ctl.menu.actions()]
    assert {"syncLogin", "syncNow", "syncPush", "syncPull", "syncConflicts", "syncCancel"} <= set(names)
    assert ctl.widget.online.text() == "○ no server"

    bad = _login(qtbot, ctl, token="wrong-token-99")
    assert "refused" in bad.error.text() and "wrong-token-99" not in bad.error.text()
    dlg = _login(qtbot, ctl)
    assert dlg.result() == 1 and dlg.token.text() == ""
    assert ctl.widget.online.text() == "● online"

    with qtbot.waitSignal(ctl.finished, timeout=10_000):
        job = ctl.pull_project(URL, 7)
        assert job is not None, ctl.last_message
    assert any(c.tasks for c in seen)
    with store.session() as s:
        pid = s.scalar(select(Task.project_id).limit(1))
        tid, aid = s.execute(select(Task.id, Annotation.id).join(Annotation).order_by(Task.id).limit(1)).one()
    DecisionService(store).record(pid, [DecisionRequest(task_id=tid, verdict="accept", annotation_id=aid)],
                                  reviewer="rev@example.com")
    ctl.refresh_status()
    assert ctl.widget.pending.text() == "1 pending"
    with qtbot.waitSignal(ctl.finished, timeout=10_000):
        ctl.push_now()
    assert ctl.widget.pending.text() == "0 pending"
    assert ctl.widget.last.text() == "last sync: just now"
    win.grab().save(str(shots_dir / "sync_status.png"))


def test_conflict_view_keep_mine_and_discard(qtbot, ui, store, fake, shots_dir: Path):
    win, ctl, _seen = ui
    _login(qtbot, ctl)
    with qtbot.waitSignal(ctl.finished, timeout=10_000):
        ctl.pull_project(URL, 7)
    with store.session() as s:
        pid = s.scalar(select(Task.project_id).limit(1))
        rows = s.execute(select(Task.id, Task.server_id, Annotation.id).join(Annotation).order_by(Task.id)).all()
    uuids = []
    for tid, sid, aid in (rows[0], rows[2]):
        uuids.append(DecisionService(store).record(
            pid, [DecisionRequest(task_id=tid, verdict="reject", annotation_id=aid, reason="Wrong label")],
            reviewer="rev@example.com").decisions[0].uuid)
        ann = fake.tasks[sid]["annotations"][0]
        ann["result"] = [{"from_name": "c", "to_name": "text", "type": "choices", "value": {"choices": ["b"]}}]
        ann["updated_at"] = fake.tick()
    with qtbot.waitSignal(ctl.finished, timeout=10_000):
        ctl.push_now()
    assert ctl.widget.conflicts.text() == "2 conflicts"
    dlg = ctl.show_conflicts()
    assert dlg.items.count() == 2
    assert "reject" in dlg.mine.toPlainText() and "c: a" in dlg.mine.toPlainText()
    assert "changed on the server" in dlg.theirs.toPlainText()
    dlg.grab().save(str(shots_dir / "sync_conflicts.png"))
    dlg.keep_btn.click()
    assert dlg.items.count() == 1
    dlg.discard_btn.click()
    assert dlg.items.count() == 0
    assert ctl.widget.conflicts.text() == "0 conflicts" and ctl.widget.pending.text() == "1 pending"


def test_background_sync_can_be_cancelled_and_auth_failure_asks_to_log_in(qtbot, ui, store, fake):
    win, ctl, _seen = ui
    _login(qtbot, ctl)
    gate = {"slow": True}
    import time

    def slow(method, path):
        if gate["slow"] and path == "/api/tasks":
            time.sleep(0.3)
        return None

    fake.fail.append(slow)
    for i in range(40):
        fake.add_task(f"more {i}")
    ctl.service.pull = _with_page_size(ctl.service.pull, 5)
    with qtbot.waitSignal(ctl.finished, timeout=20_000):
        ctl.pull_project(URL, 7)
        qtbot.wait(400)
        assert ctl.widget.cancel.isVisible()
        ctl.widget.cancel.click()
    assert "cancelled" in ctl.last_message
    assert not ctl.widget.cancel.isVisible()
    gate["slow"] = False
    # an expired/revoked token: the controller asks to log in again; nothing queued is lost
    fake.token = "rotated-token-456"
    with qtbot.waitSignal(ctl.auth_required, timeout=10_000), qtbot.waitSignal(ctl.finished, timeout=10_000):
        ctl.sync_now()


def _with_page_size(fn, n):
    def call(*a, **kw):
        kw["page_size"] = n
        return fn(*a, **kw)

    return call


def test_login_fields_are_not_clipped(qtbot, ui, shots_dir: Path):
    """13.11: each login field is wide enough for its hint (the token hint was cut at "Account & Settings →")."""
    _win, ctl, _seen = ui
    dlg = ctl.login_dialog()
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    for edit in (dlg.url, dlg.token, dlg.ca):
        need = edit.fontMetrics().horizontalAdvance(edit.placeholderText())
        # the text area inside the frame and margins must hold the whole hint
        assert edit.width() - 12 >= need, (edit.objectName(), edit.width(), need)
    dlg.grab().save(str(shots_dir / "13-11-login.png"))
    dlg.reject()
