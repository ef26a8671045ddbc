"""Notifications (issue 15 point 7): new expert-routed escalations from others, conflicts and calibration
requests, each shown once (seen keys persisted beside the settings)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from sqlalchemy import select, update

from app.models.schema import Annotation, Decision, DecisionSync, Task
from app.models.store import Store, now_iso
from app.services.calibration import CalibrationService
from app.services.decisions import DecisionRequest, DecisionService
from app.services.notifications import NOTIFICATIONS_FILE, NotificationService
from app.services.projects import ProjectService
from tests.conftest import SMALL_CONFIG


def _pulled_escalation(store: Store, pid: int, task_id: int, ann_id: int, who: str, uuid: str) -> None:
    """What a pull leaves for another reviewer's escalation: a read-only ``origin = server`` decision."""
    with store.transaction() as s:
        d = Decision(uuid=uuid, project_id=pid, task_id=task_id, annotation_id=ann_id, verdict="escalate",
                     reason="unsure about the span", reviewer=who, role="reviewer", created_at=now_iso(),
                     origin="server")
        s.add(d)
        s.flush()
        s.add(DecisionSync(decision_id=d.id, state="synced", updated_at=now_iso(), effect={"origin": "server"}))


def test_new_notifications_once_each(store: Store, small_export: list[dict], tmp_path: Path) -> None:
    pid = ProjectService(store).import_file(io.BytesIO(json.dumps(small_export).encode()), SMALL_CONFIG,
                                            "P").summary.project_id
    with store.session() as s:
        tasks = dict(s.execute(select(Task.server_id, Task.id)).all())
        anns = dict(s.execute(select(Annotation.server_id, Annotation.id)).all())
    svc = NotificationService(store)
    assert svc.new("exp@example.com", "expert") == ()

    _pulled_escalation(store, pid, tasks[11], anns[101], "priya@example.com", "esc-1")
    # my own local escalation is no notification for me
    DecisionService(store).record(pid, [DecisionRequest(tasks[12], "escalate", annotation_id=anns[103],
                                                        reason="help")], reviewer="exp@example.com")
    new = svc.new("exp@example.com", "expert")
    assert [(n.kind, n.task_id, n.role, n.key) for n in new] == [("expert", tasks[11], "expert", "expert:esc-1")]
    assert "priya@example.com escalated task 11" in new[0].text and "unsure about the span" in new[0].text
    assert svc.new("rev@example.com", "reviewer") == ()  # a reviewer's queue has no expert tasks

    svc.mark_seen(new)
    assert svc.new("exp@example.com", "expert") == ()
    assert json.loads((store.data_dir / NOTIFICATIONS_FILE).read_text())["seen"] == ["expert:esc-1"]
    # a fresh service (a restart) still knows what was seen
    assert NotificationService(store).new("exp@example.com", "expert") == ()

    # an expert verdict closes the escalation: it stops being current
    DecisionService(store).record(pid, [DecisionRequest(tasks[11], "accept", annotation_id=anns[101])],
                                  reviewer="exp@example.com", role="expert")
    assert all(n.kind != "expert" for n in svc.current("exp@example.com", "expert"))

    # a conflict on one of my decisions
    rec = DecisionService(store).record(pid, [DecisionRequest(tasks[12], "reject", annotation_id=anns[103],
                                                              reason="Wrong label")], reviewer="exp@example.com")
    uuid = rec.decisions[0].uuid
    with store.transaction() as s:
        did = s.scalar(select(Decision.id).where(Decision.uuid == uuid))
        s.execute(update(DecisionSync).where(DecisionSync.decision_id == did).values(state="conflict",
                                                                                      updated_at=now_iso()))
    new = svc.new("exp@example.com", "expert")
    assert [(n.kind, n.task_id, n.key) for n in new] == [("conflict", tasks[12], f"conflict:{uuid}")]
    assert "task 12" in new[0].text and "reject" in new[0].text

    # a calibration request: the reviewer has not passed; a new requirement is a new notification
    CalibrationService(store).require(pid, 1, 0.8, actor="lead@example.com")
    new = svc.new("exp@example.com", "expert")
    assert [n.kind for n in new] == ["calibration", "conflict"]  # newest first
    assert new[0].task_id is None and "calibration round (1 tasks, pass at 80%)" in new[0].text
    svc.mark_seen(new)
    assert svc.new("exp@example.com", "expert") == ()
    CalibrationService(store).require(pid, 1, 0.9, actor="lead@example.com")
    assert [n.kind for n in svc.new("exp@example.com", "expert")] == ["calibration"]


def test_a_broken_seen_file_shows_everything_again(store: Store, small_export: list[dict]) -> None:
    pid = ProjectService(store).import_file(io.BytesIO(json.dumps(small_export).encode()), SMALL_CONFIG,
                                            "P").summary.project_id
    CalibrationService(store).require(pid, 1, 0.5, actor="lead")
    (store.data_dir / NOTIFICATIONS_FILE).write_text("{not json")
    assert [n.kind for n in NotificationService(store).new("r@example.com")] == ["calibration"]
