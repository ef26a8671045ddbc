"""Notifications across machines on a real Label Studio server (issue 15 point 7): reviewer A escalates and
pushes; the expert pulls on another store and gets one notification for the expert-routed task (its local task
id, the reason), once; the expert's verdict closes it; A gets none for their own escalation."""

from __future__ import annotations

import pytest

from app.services.notifications import NotificationService
from app.services.projects import ProjectService
from tests.integration.helpers import decide, fixed, local_project
from tests.integration.test_team import EXPERT, REV, reviewer

pytestmark = pytest.mark.integration


def test_a_pulled_escalation_notifies_the_expert_once(ls, tmp_path, make_project):
    ls_pid = make_project(3)
    a_store, a = reviewer(ls, tmp_path / "a", REV)
    e_store, e = reviewer(ls, tmp_path / "expert", EXPERT)
    a.pull(ls.url, ls_pid)
    e.pull(ls.url, ls_pid)
    e_notes = NotificationService(e_store)
    assert e_notes.new(EXPERT, "expert") == ()
    task = ls.tasks(ls_pid)[1]
    decide(a_store, ls_pid, task["id"], "escalate", 1, reviewer=REV, reason="Ambiguous example")
    assert a.sync(ls.url).push.synced == 1
    assert NotificationService(a_store).new(REV, "expert") == ()  # my own escalation: nothing to tell me

    e.sync(ls.url)  # the expert's sync brings it
    pid_e = local_project(e_store, ls_pid)
    new = e_notes.new(EXPERT, "expert")
    assert [(n.kind, n.project_id, n.role) for n in new] == [("expert", pid_e, "expert")]
    assert new[0].task_id == ProjectService(e_store).find_task(pid_e, task["id"])
    assert f"{REV} escalated task {task['id']}" in new[0].text and "Ambiguous example" in new[0].text
    e_notes.mark_seen(new)
    e.sync(ls.url)
    assert e_notes.new(EXPERT, "expert") == ()  # once
    # the expert resolves it: no longer current anywhere
    decide(e_store, ls_pid, task["id"], "fix", 1, reviewer=EXPERT, role="expert", result=fixed("Technical"))
    assert e.sync(ls.url).push.synced == 1
    assert [n for n in e_notes.current(EXPERT, "expert") if n.kind == "expert"] == []
    a_store.close()
    e_store.close()
