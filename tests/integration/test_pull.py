"""Pull from a real Label Studio: full, incremental, resumable, deletions, media, conflicts."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from app.models.schema import Annotation, MediaCache, Member, Prediction, SyncState, Task
from app.sync.errors import Cancelled
from tests.integration.helpers import decide, local_project, states

pytestmark = pytest.mark.integration


def _counts(store, pid):
    with store.session() as s:
        tasks = s.scalar(select(func.count()).select_from(Task).where(Task.project_id == pid, Task.deleted.is_(False)))
        anns = s.scalar(select(func.count()).select_from(Annotation).join(Task).where(
            Task.project_id == pid, Task.deleted.is_(False), Annotation.deleted.is_(False)))
        preds = s.scalar(select(func.count()).select_from(Prediction).join(Task).where(
            Task.project_id == pid, Task.deleted.is_(False)))
    return tasks, anns, preds


def test_full_pull_of_every_demo_dimension(ls, sync_service, rd_store):
    for dim, ls_pid in ls.projects.items():
        out = sync_service.pull(ls.url, ls_pid)
        server = ls.tasks(ls_pid)
        pid = out.report.project_id
        assert out.report.project_created and out.changes.projects
        assert _counts(rd_store, pid) == (len(server), sum(len(t["annotations"]) for t in server),
                                          sum(len(t["predictions"]) for t in server)), dim
        assert all(len(t["annotations"]) == 3 for t in server)
        with rd_store.session() as s:
            emails = set(s.scalars(select(Member.email).where(Member.project_id == pid)))
            cursor = s.get(SyncState, pid).pull_cursor
        assert {"ann1@example.com", "rev@example.com", "expert@example.com"} <= emails
        assert cursor == max(t["updated_at"] for t in server)
        # a local result equals the server's, key for key
        one = server[0]
        from app.services.projects import ProjectService

        detail = ProjectService(rd_store).task_detail(ProjectService(rd_store).find_task(pid, one["id"]))
        assert [list(a.result) for a in detail.annotations] == [a["result"] for a in one["annotations"]]
        assert detail.data == one["data"]
    # media of the image project: fetched into the content-addressed cache, with the token, from the server
    with rd_store.session() as s:
        rows = s.scalars(select(MediaCache)).all()
    assert len(rows) == 4 and all(r.url.startswith(ls.url + "/data/upload/") for r in rows)
    from app.sync.media import lookup, path_for

    for r in rows:
        assert path_for(rd_store, r.sha256).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ref = rows[0].url[len(ls.url):]
    assert lookup(rd_store, ref, [ls.url]) == path_for(rd_store, rows[0].sha256)


def test_incremental_pull_fetches_only_changes_and_reconciles_deletions(ls, sync_service, rd_store, make_project):
    ls_pid = make_project(30)
    first = sync_service.pull(ls.url, ls_pid, page_size=10).report
    assert first.tasks_new == 30 and first.pages >= 3
    server = ls.tasks(ls_pid)
    # on the server: edit one annotation, add one, delete one annotation, delete one task
    t0, t1, t2, t3 = server[0], server[1], server[2], server[3]
    ls.call("PATCH", f"/api/annotations/{t0['annotations'][0]['id']}/",
            json={"result": [{"from_name": "category", "to_name": "ticket", "type": "choices",
                              "value": {"choices": ["Shipping"]}}]})
    ls.call("POST", f"/api/tasks/{t1['id']}/annotations/",
            json={"result": [], "completed_by": ls.users["ann2@example.com"], "ground_truth": False})
    ls.call("DELETE", f"/api/annotations/{t2['annotations'][2]['id']}/")
    ls.call("DELETE", f"/api/tasks/{t3['id']}/")
    second = sync_service.pull(ls.url, ls_pid, page_size=10).report
    assert second.tasks_new == 0
    assert second.tasks_updated == 3  # t0, t1, t2 (t3 is gone); the rest is only the overlap window re-read
    assert second.tasks_unchanged <= 30
    assert second.reconciled and second.tasks_deleted == 1
    pid = local_project(rd_store, ls_pid)
    assert _counts(rd_store, pid) == (29, 30 * 3 - 3 + 1 - 1, 30 - 1)
    with rd_store.session() as s:
        res = s.scalar(select(Annotation.result).where(Annotation.server_id == t0["annotations"][0]["id"]))
        assert res[0]["value"]["choices"] == ["Shipping"]
        assert s.scalar(select(Task.deleted).where(Task.server_id == t3["id"])) is True
    # nothing changed: one small page, no work
    third = sync_service.pull(ls.url, ls_pid, page_size=10).report
    assert third.tasks_updated == 0 and third.tasks_new == 0 and not third.reconciled


def test_interrupted_pull_resumes_from_the_cursor(ls, sync_service, rd_store, make_project):
    ls_pid = make_project(25)
    cancel = threading.Event()
    pages = []

    def progress(done, total):
        pages.append(done)
        if len(pages) == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        sync_service.pull(ls.url, ls_pid, page_size=5, progress=progress, cancel=cancel)
    pid = local_project(rd_store, ls_pid)
    with rd_store.session() as s:
        applied = s.scalar(select(func.count()).select_from(Task).where(Task.project_id == pid))
        cursor = s.get(SyncState, pid).pull_cursor
    # two pages applied (keyset paging re-reads the boundary task once) and the cursor kept with them
    assert applied == 9 and cursor is not None
    rest = sync_service.pull(ls.url, ls_pid, page_size=5).report
    assert rest.tasks_new == 16
    assert _counts(rd_store, pid)[0] == 25


def test_pull_flags_a_decision_whose_annotation_changed_on_the_server(ls, sync_service, rd_store, make_project):
    ls_pid = make_project(3)
    sync_service.pull(ls.url, ls_pid)
    task = ls.tasks(ls_pid)[0]
    ann = task["annotations"][0]
    uuid_changed = decide(rd_store, ls_pid, task["id"], "accept", 0)
    uuid_deleted = decide(rd_store, ls_pid, task["id"], "reject", 1, reason="Wrong label", comment="not billing")
    uuid_fine = decide(rd_store, ls_pid, task["id"], "accept", 2)
    ls.call("PATCH", f"/api/annotations/{ann['id']}/",
            json={"result": [{"from_name": "category", "to_name": "ticket", "type": "choices",
                              "value": {"choices": ["Account"]}}]})
    ls.call("DELETE", f"/api/annotations/{task['annotations'][1]['id']}/")
    out = sync_service.pull(ls.url, ls_pid)
    assert out.report.conflicts == 2 and out.changes.decisions
    st = states(rd_store)
    assert st[uuid_changed] == "conflict" and st[uuid_deleted] == "conflict" and st[uuid_fine] == "pending"
    conflicts = {c.uuid: c for c in sync_service.conflicts()}
    c = conflicts[uuid_changed]
    assert c.kind == "changed" and c.theirs["result"][0]["value"]["choices"] == ["Account"]
    assert c.seen_result == tuple(ann["result"])  # what the reviewer judged, kept for mine-vs-theirs
    assert c.current_result[0]["value"]["choices"] == ["Account"]
    assert conflicts[uuid_deleted].kind == "deleted" and conflicts[uuid_deleted].current_result is None
    # the deleted-but-referenced annotation stays (flagged), so the decision keeps its subject
    with rd_store.session() as s:
        assert s.scalar(select(Annotation.deleted).where(Annotation.server_id == task["annotations"][1]["id"]))
