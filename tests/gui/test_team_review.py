"""Team review in the GUI: other reviewers' decisions (pulled: ``origin`` = server) in the task history and
the side-by-side view, the expert queue, the conflicts view's Re-review, the "decided by others" setting.

A pull is simulated as it ends: rows inserted through the ORM, then the sync service's ``Changes`` applied
to the window (what ``SyncController`` does after a real pull)."""

from __future__ import annotations

import html
import json
import uuid as uuidlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.models.schema import Decision, DecisionSync, Project, Server
from app.models.store import Store, now_iso
from app.services.decisions import DecisionRequest, DecisionService
from app.services.projects import ProjectService
from app.services.settings import load_settings, save_settings
from app.services.sync import PULL_CHANGES
from app.views.dialogs import SettingsDialog
from app.views.main_window import MainWindow
from tests.gui.helpers import PRIYA, reviewed


def stamp(hours_ago: float = 0.0) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pulled(store: Store, pid: int, task_id: int, annotation_id: int | None, verdict: str, *, reviewer: str = PRIYA,
           role: str = "reviewer", reason: str | None = None, comment: str | None = None, hours_ago: float = 0.0,
           ) -> str:
    uid = str(uuidlib.uuid4())
    with store.transaction() as s:
        d = Decision(uuid=uid, project_id=pid, task_id=task_id, annotation_id=annotation_id, verdict=verdict,
                     reason=reason, comment=comment, reviewer=reviewer, role=role, created_at=stamp(hours_ago),
                     origin="server")
        s.add(d)
        s.flush()
        s.add(DecisionSync(decision_id=d.id, state="synced", updated_at=now_iso()))
    return uid


def open_window(qtbot, store: Store, pid: int) -> MainWindow:
    w = MainWindow(store, project_id=pid)
    qtbot.addWidget(w)
    w.resize(1400, 860)
    w.show()
    qtbot.waitExposed(w)
    w.review.setFocus()
    return w


def task_history_texts(w: MainWindow) -> list[str]:
    return [w.review.task_history.item(i).text() for i in range(w.review.task_history.count())]


def test_server_decision_shows_in_history_and_side_by_side_with_name(qtbot, team_store, shots_dir: Path) -> None:
    store, pid = team_store
    w = open_window(qtbot, store, pid)
    s = w.review.session
    assert s is not None
    s.go(2)
    w.review.refresh()
    w.review.decide("skip")  # a decision of this session: the pull must not reset the session
    qtbot.waitUntil(lambda: not w.review.busy(), timeout=5000)
    t = s.current
    width = w.width()
    ann = t.annotations[0]
    theirs = pulled(store, pid, t.id, ann.id, "reject", reason="Wrong label", comment="refund, not billing",
                    hours_ago=2)
    w.apply(PULL_CHANGES)  # what the sync controller does after a pull
    reviewed(w)  # the session's state is re-read in a worker
    assert w.review.session is s and s.current.id == t.id and len(s.history()) == 1
    texts = task_history_texts(w)
    name = s.display_name(ann.evaluator)
    assert texts[0].startswith(f"✗ Priya Shah rejected {name}'s annotation 2 h ago — Wrong label — refund")
    assert "☁ another reviewer · read-only" in texts[0]
    # the side-by-side table names them under the annotation they decided
    w.review.views.setCurrentWidget(w.review.compare)
    table = w.review.compare.toPlainText()
    assert "Priya Shah rejected 2 h ago — Wrong label" in table and "server" in table
    w.review.views.setCurrentWidget(w.review.task_view)
    # read-only: undo of their decision is refused with a clear message, nothing is written
    w.review.task_history.setCurrentRow(0)
    w.review.undo_selected.click()
    header = html.unescape(w.review.header.text())
    assert "Priya Shah's reject came from the server: read-only here — only your own decisions" in header
    assert DecisionService(store).get(theirs).retracted is False
    with store.session() as db:
        assert db.scalar(select(Decision).where(Decision.retracts == theirs)) is None
    w.review.task_history.clearSelection()
    qtbot.wait(100)  # let the layout settle before looking
    assert w.width() == width
    w.grab().save(str(shots_dir / "team_history.png"))
    w.review.views.setCurrentWidget(w.review.compare)
    qtbot.wait(100)
    w.review.grab().save(str(shots_dir / "team_side_by_side.png"))


@pytest.fixture
def server_project(team_store, monkeypatch):
    """The demo project as if pulled from a server (decisions queue for a push); never online here."""
    import keyring

    from app.services.sync import SyncService
    from tests.memkeyring import MemoryKeyring

    old = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    monkeypatch.setattr(SyncService, "check_online", lambda self, url=None: False)
    store, pid = team_store
    with store.transaction() as s:
        srv = Server(url="https://ls.example.org", edition="community", user_email="me@example.com",
                     created_at=now_iso())
        s.add(srv)
        s.flush()
        s.get(Project, pid).server_ref = srv.id
    yield store, pid
    keyring.set_keyring(old)


def test_rereview_opens_the_task_in_the_review_tab(qtbot, server_project, shots_dir: Path) -> None:
    store, pid = server_project
    w = open_window(qtbot, store, pid)
    s = w.review.session
    target = w.projects.task_detail(s.task_ids[6])
    ann = target.annotations[0]
    mine = DecisionService(store).record(pid, [DecisionRequest(task_id=target.id, verdict="reject",
                                                               annotation_id=ann.id, reason="Wrong label")],
                                         reviewer=w.settings.reviewer).decisions[0].uuid
    theirs = pulled(store, pid, target.id, ann.id, "accept", hours_ago=1)
    with store.transaction() as db:  # the push found Priya's accept on the same annotation (as push.py records it)
        ds = db.scalar(select(DecisionSync).join(Decision, Decision.id == DecisionSync.decision_id)
                       .where(Decision.uuid == mine))
        ds.state = "conflict"
        ds.last_error = "Another reviewer decided differently on this annotation."
        ds.effect = {"on_server": True, "contest": True, "records": [mine], "conflict": {
            "kind": "other_reviewer", "found_at": now_iso(), "theirs": {
                "uuid": theirs, "verdict": "accept", "annotation": ann.server_id, "reviewer": PRIYA,
                "role": "reviewer", "at": stamp(1)}}}
    w.apply(PULL_CHANGES)
    reviewed(w)
    w.tabs.setCurrentIndex(1)  # the user is in the Tasks tab
    dlg = w.sync.show_conflicts()
    assert dlg.items.count() == 1
    assert "You: reject · Priya Shah: accept" in dlg.items.item(0).text()
    assert "you rejected the annotation, Priya Shah accepted it" in dlg.summary.text().replace(
        "<b>", "").replace("</b>", "")
    assert "accept by Priya Shah (priya.shah@example.com)" in dlg.theirs.toPlainText()
    qtbot.wait(100)
    dlg.grab().save(str(shots_dir / "team_conflicts.png"))
    dlg.rereview_btn.click()
    assert w.tabs.currentWidget() is w.review
    assert w.review.session is s and s.current.id == target.id  # decided by Priya, yet opened for me
    assert not dlg.isVisible()
    assert DecisionService(store).get(mine).retracted
    assert w.sync.widget.conflicts.text() == "0 conflicts"
    texts = task_history_texts(w)
    assert any("Priya Shah accepted" in x for x in texts) and any("You rejected" in x and "undone" in x
                                                                  for x in texts)
    qtbot.wait(100)
    w.grab().save(str(shots_dir / "team_rereview.png"))


def test_expert_queue_shows_a_pulled_escalation(qtbot, team_store, shots_dir: Path) -> None:
    store, pid = team_store
    save_settings(store.data_dir, load_settings(store.data_dir).with_(reviewer="sme@example.com", role="expert"))
    w = open_window(qtbot, store, pid)
    assert w.review.session is not None and w.review.session.task_ids == []
    assert "expert queue is empty" in w.review.compare.toPlainText()
    task_ids = [r.id for r in w.projects.task_page(pid, 0, 10)]
    t = w.projects.task_detail(task_ids[3])
    pulled(store, pid, t.id, t.annotations[0].id, "escalate", reason="Guideline unclear",
           comment="is a refund a billing issue?", hours_ago=2)
    w.apply(PULL_CHANGES)
    reviewed(w)
    s = w.review.session
    assert s.task_ids == [t.id] and s.current.id == t.id
    banner = w.review.banner.text()
    assert w.review.banner.isVisible()
    assert banner == ("⚑ Escalated by Priya Shah (another reviewer, via the server) 2 h ago: Guideline unclear — "
                      "is a refund a billing issue?")
    assert "Expert queue" in w.review.header.text()
    qtbot.wait(100)
    # the first task after an empty queue is built on screen: no control card may stay squashed
    cards = w.review.task_view.cards.values()
    assert cards and all(c.height() >= c.heightForWidth(c.width()) for c in cards)
    w.grab().save(str(shots_dir / "team_expert_queue.png"))


def test_toggle_shows_tasks_other_reviewers_decided(qtbot, team_store) -> None:
    store, pid = team_store
    first = [r.id for r in ProjectService(store).task_page(pid, 0, 3)]
    t0 = ProjectService(store).task_detail(first[0])
    for a in t0.annotations:
        pulled(store, pid, t0.id, a.id, "accept")
    w = open_window(qtbot, store, pid)
    s = w.review.session
    assert t0.id not in s.task_ids and s.current.id == first[1]
    assert "1 decided by others, hidden" in w.review.counters.text()
    qtbot.wait(50)
    assert w.review.counters.parentWidget().width() < 400  # a longer counter line never widens the side column
    assert not w.others_action.isChecked()
    w.others_action.trigger()  # Review → Show tasks other reviewers already decided
    assert w.others_action.isChecked()
    reviewed(w)
    assert w.review.session is s and s.task_ids[0] == t0.id and s.current.id == first[1]
    assert "1 decided by others" in w.review.counters.text()
    assert "hidden" not in w.review.counters.text()
    assert json.loads((store.data_dir / "settings.json").read_text())["show_decided_by_others"] is True
    dlg = SettingsDialog(w.settings, w)
    qtbot.addWidget(dlg)
    assert dlg.others.isChecked()
    dlg.others.setChecked(False)
    assert dlg.value().show_decided_by_others is False
    w.others_action.trigger()
    reviewed(w)
    assert t0.id not in s.task_ids and load_settings(store.data_dir).show_decided_by_others is False
