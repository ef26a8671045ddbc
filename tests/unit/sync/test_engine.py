"""Sync engine against an in-memory Label Studio (fake transport): pull, push, idempotence, conflicts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.models.schema import Annotation, Decision, DecisionSync, Project, Server, Task
from app.services.decisions import DecisionRequest, DecisionService
from app.sync import records as rec
from app.sync.pull import pull_project
from app.sync.push import push_server
from tests.unit.sync.fakels import URL, FakeLS, client_for


@pytest.fixture
def fake() -> FakeLS:
    f = FakeLS()
    for i in range(12):
        f.add_task(f"text {i}")
    return f


@pytest.fixture
def server(store) -> int:
    with store.transaction() as s:
        srv = Server(url=URL, edition="community", created_at="2026-01-01T00:00:00Z")
        s.add(srv)
        s.flush()
        return srv.id


def _states(store) -> dict[str, str]:
    with store.session() as s:
        return dict(s.execute(select(Decision.uuid, DecisionSync.state).join(DecisionSync)).all())


def _decide(store, pid, task_sid, verdict, ann=0, **kw):
    with store.session() as s:
        tid = s.scalar(select(Task.id).where(Task.project_id == pid, Task.server_id == task_sid))
        aid = s.scalars(select(Annotation.id).where(Annotation.task_id == tid).order_by(Annotation.id)).all()[ann]
    if verdict in ("reject", "escalate"):
        kw.setdefault("reason", "Wrong label")
    return DecisionService(store).record(pid, [DecisionRequest(task_id=tid, verdict=verdict, annotation_id=aid,
                                                               **kw)], reviewer="rev@example.com").decisions[0].uuid


def test_pull_keyset_handles_ties_larger_than_a_page(store, server):
    fake = FakeLS()
    same = "2026-11-01T00:00:00.500000Z"
    for i in range(9):
        fake.add_task(f"tie {i}", stamp=same)
    for i in range(4):
        fake.add_task(f"later {i}")
    rep = pull_project(store, client_for(fake), server, 7, page_size=3, media=False)
    assert rep.tasks_new == 13
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Task)) == 13


def test_pull_incremental_and_deleted_annotation(store, server, fake):
    c = client_for(fake)
    first = pull_project(store, c, server, 7, page_size=5, media=False, overlap=timedelta(0))
    assert first.tasks_new == 12 and first.pages >= 3
    t = list(fake.tasks.values())[3]
    fake.clock = fake.clock.replace(year=2027)  # well past the overlap window
    t["annotations"].pop()
    fake.touch(t["id"])
    c.stats.clear()
    second = pull_project(store, c, server, 7, page_size=5, media=False, overlap=timedelta(0))
    assert second.tasks_updated == 1 and second.tasks_unchanged == 0 and second.pages == 1
    assert c.stats["GET"] <= 4  # project, users, one page (+ nothing else)


def test_push_community_verdicts_and_idempotent_retry(store, server, fake):
    c = client_for(fake)
    pid = pull_project(store, c, server, 7, media=False).project_id
    ids = list(fake.tasks)
    u_acc = _decide(store, pid, ids[0], "accept")
    u_fix = _decide(store, pid, ids[1], "fix", 1, result=[{"from_name": "c", "to_name": "text", "type": "choices",
                                                          "value": {"choices": ["a"]}}])
    u_rej = _decide(store, pid, ids[2], "reject", comment="no")
    # the server acts on the first fix POST and the first meta PATCH but the answers are lost
    lost = {"POST": 1, "PATCH-task": 1}

    def fail(method, path):
        if method == "POST" and path.endswith("/annotations/") and lost["POST"]:
            lost["POST"] -= 1
            return "after"
        if method == "PATCH" and path.startswith("/api/tasks/") and lost["PATCH-task"]:
            lost["PATCH-task"] -= 1
            return "after"
        return None

    fake.fail.append(fail)
    rep = push_server(store, c, server, concurrency=2)
    assert rep.synced == 3 and rep.failed == 0
    assert _states(store) == {u_acc: "synced", u_fix: "synced", u_rej: "synced"}
    assert fake.tasks[ids[0]]["annotations"][0]["ground_truth"] is True
    reviewer_anns = [a for a in fake.tasks[ids[1]]["annotations"] if a["completed_by"] == 3]
    assert len(reviewer_anns) == 1 and reviewer_anns[0]["ground_truth"] is True
    for tid in ids[:3]:
        assert len(rec.meta_records(fake.tasks[tid]["meta"])) == 1
    assert push_server(store, c, server).attempted == 0


def test_push_conflict_when_annotation_changed(store, server, fake):
    c = client_for(fake)
    pid = pull_project(store, c, server, 7, media=False).project_id
    tid = list(fake.tasks)[0]
    u = _decide(store, pid, tid, "accept")
    fake.tasks[tid]["annotations"][0]["result"] = []
    fake.tasks[tid]["annotations"][0]["updated_at"] = fake.tick()
    rep = push_server(store, c, server)
    assert rep.conflicts == 1 and _states(store)[u] == "conflict"
    assert rec.meta_records(fake.tasks[tid]["meta"]) == []


def test_undo_of_unsent_decision_cancels_both(store, server, fake):
    c = client_for(fake)
    pid = pull_project(store, c, server, 7, media=False).project_id
    u = _decide(store, pid, list(fake.tasks)[0], "accept")
    r = DecisionService(store).retract(u, reviewer="rev@example.com").decisions[0].uuid
    rep = push_server(store, c, server)
    assert rep.synced == 0 and _states(store) == {u: "cancelled", r: "cancelled"}
    assert not any(m == "PATCH" for m, _ in fake.log)


def test_enterprise_uses_reviews_and_comments_once(store, server):
    fake = FakeLS(enterprise=True)
    for i in range(3):
        fake.add_task(f"e {i}")
    c = client_for(fake)
    assert c.enterprise_probe() is True
    assert client_for(FakeLS()).enterprise_probe() is False
    pid = pull_project(store, c, server, 7, media=False).project_id
    ids = list(fake.tasks)
    _decide(store, pid, ids[0], "accept")
    _decide(store, pid, ids[1], "reject", comment="bad span")
    _decide(store, pid, ids[2], "escalate", comment="expert?")
    with store.transaction() as s:
        s.get(Project, pid).fold_ground_truth = True
    lost = {"n": 1}

    def fail(method, path):
        if method == "POST" and path == "/api/annotation-reviews/" and lost["n"]:
            lost["n"] -= 1
            return "after"
        return None

    fake.fail.append(fail)
    rep = push_server(store, c, server, edition="enterprise")
    assert rep.synced == 3
    assert sorted(r["accepted"] for r in fake.reviews) == [False, True]  # exactly once each, despite the lost answer
    assert any("bad span" in r["comment"] and not r["accepted"] for r in fake.reviews) and len(fake.comments) == 1
    assert all(len(rec.meta_records(fake.tasks[t]["meta"])) == 1 for t in ids)
