"""Team records on the fake transport: verification of synced records, others' records materialised,
disagreements on both sides, Enterprise reviews made in Label Studio's own review stream.

The real-server proof is tests/integration/test_team.py; these pin the pull-side rules one by one."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.models.schema import Decision, DecisionSync, Server
from app.services.decisions import DecisionService
from app.sync import records as rec
from app.sync.pull import pull_project
from app.sync.push import push_server
from tests.unit.sync.fakels import URL, FakeLS, client_for
from tests.unit.sync.test_engine import _decide


@pytest.fixture
def server(store) -> int:
    with store.transaction() as s:
        srv = Server(url=URL, edition="community", created_at="2026-01-01T00:00:00Z")
        s.add(srv)
        s.flush()
        return srv.id


def _rows(store) -> dict[str, tuple[str, str, dict]]:
    with store.session() as s:
        return {d.uuid: (d.origin, ds.state, ds.effect or {}) for d, ds in s.execute(
            select(Decision, DecisionSync).join(DecisionSync, DecisionSync.decision_id == Decision.id))}


def test_erased_record_is_found_by_the_pull_and_written_again(store, server):
    fake = FakeLS()
    t = fake.add_task("x")
    c = client_for(fake)
    pid = pull_project(store, c, server, 7, media=False).project_id
    u = _decide(store, pid, t["id"], "reject")
    assert push_server(store, c, server, recheck=False).synced == 1
    # another client's stale read-merge-write erases it (and bumps updated_at, as Label Studio does)
    fake.tasks[t["id"]]["meta"] = {"other": 1}
    fake.touch(t["id"])
    rep = pull_project(store, c, server, 7, media=False)
    assert rep.lost == 1 and _rows(store)[u][1] == "pending" and _rows(store)[u][2]["lost"] == 1
    assert push_server(store, c, server, recheck=False).synced == 1
    assert [r["uuid"] for r in rec.meta_records(fake.tasks[t["id"]]["meta"])] == [u]
    assert fake.tasks[t["id"]]["meta"]["other"] == 1
    assert pull_project(store, c, server, 7, media=False).lost == 0


def test_push_recheck_requeues_a_record_erased_right_after_the_read_back(store, server, monkeypatch):
    import app.sync.push as push_mod

    monkeypatch.setattr(push_mod, "RECHECK_DELAY", (0.0, 0.0))
    fake = FakeLS()
    t = fake.add_task("x")
    c = client_for(fake)
    pid = pull_project(store, c, server, 7, media=False).project_id
    u = _decide(store, pid, t["id"], "accept")
    reads = {"n": 0}
    real_task = c.task

    def task_then_erase(task_id):  # the second read (the read-back) sees it; then another writer erases it
        body = real_task(task_id)
        reads["n"] += 1
        if reads["n"] == 2:
            fake.tasks[task_id]["meta"] = {}
            fake.touch(task_id)
        return body

    monkeypatch.setattr(c, "task", task_then_erase)
    rep = push_server(store, c, server)
    assert rep.reappended == 1 and rep.synced == 1
    assert [r["uuid"] for r in rec.meta_records(fake.tasks[t["id"]]["meta"])] == [u]


def test_other_reviewers_records_become_read_only_server_decisions(store, server):
    fake = FakeLS()
    t = fake.add_task("x", n_ann=2)
    a0, a1 = (a["id"] for a in t["annotations"])
    fake.tasks[t["id"]]["meta"] = {"reviewdesk": {"v": 1, "decisions": [
        rec.build_record(uuid="u-theirs", verdict="reject", annotation=a0, prediction=None,
                         reviewer="priya@example.com", role="reviewer", at="2026-11-30T10:00:00.000000Z",
                         reason="Wrong label"),
        rec.build_record(uuid="u-esc", verdict="escalate", annotation=a1, prediction=None,
                         reviewer="priya@example.com", role="reviewer", at="2026-11-30T10:01:00.000000Z",
                         comment="unsure"),
        {"uuid": "u-theirs/kept", "verdict": "resolve", "resolves": "u-theirs"},  # not a decision
        {"verdict": "accept"},  # malformed (no uuid): ignored
    ]}}
    fake.touch(t["id"])
    c = client_for(fake)
    rep = pull_project(store, c, server, 7, media=False)
    assert rep.server_decisions == 2
    infos = {d.uuid: d for d in DecisionService(store).list_decisions(rep.project_id)}
    assert set(infos) == {"u-theirs", "u-esc"}
    assert infos["u-theirs"].origin == "server" and infos["u-theirs"].reviewer == "priya@example.com"
    assert infos["u-theirs"].annotation_server_id == a0 and infos["u-theirs"].reason == "Wrong label"
    assert [e.uuid for e in DecisionService(store).escalations(rep.project_id)] == ["u-esc"]
    # never pushed back, never twice
    assert push_server(store, c, server).attempted == 0
    fake.touch(t["id"])
    assert pull_project(store, c, server, 7, media=False).server_decisions == 0


def test_a_differing_verdict_arriving_later_makes_my_synced_decision_a_conflict(store, server):
    fake = FakeLS()
    t = fake.add_task("x")
    a0 = t["annotations"][0]["id"]
    c = client_for(fake)
    pid = pull_project(store, c, server, 7, media=False).project_id
    mine = _decide(store, pid, t["id"], "accept")
    agree = _decide(store, pid, t["id"], "reject", 1)
    push_server(store, c, server, recheck=False)
    meta = fake.tasks[t["id"]]["meta"]
    a1 = t["annotations"][1]["id"]
    meta["reviewdesk"]["decisions"] += [
        rec.build_record(uuid="t1", verdict="reject", annotation=a0, prediction=None, reviewer="b@x.org",
                         role="reviewer", at="2026-11-30T10:00:00.000000Z", contested=[mine]),
        rec.build_record(uuid="t2", verdict="reject", annotation=a1, prediction=None, reviewer="b@x.org",
                         role="reviewer", at="2026-11-30T10:00:00.000000Z")]
    fake.touch(t["id"])
    rep = pull_project(store, c, server, 7, media=False)
    rows = _rows(store)
    assert rep.conflicts == 1 and rows[mine][1] == "conflict" and rows[mine][2]["on_server"] is True
    assert rows[mine][2]["conflict"]["theirs"]["uuid"] == "t1" and rows[agree][1] == "synced"
    # they retract theirs: my side settles at the next pull (my accept was applied all along)
    meta["reviewdesk"]["decisions"].append(rec.build_record(
        uuid="t3", verdict="retract", annotation=a0, prediction=None, reviewer="b@x.org", role="reviewer",
        at="2026-11-30T10:05:00.000000Z", retracts="t1"))
    fake.touch(t["id"])
    pull_project(store, c, server, 7, media=False)
    assert _rows(store)[mine][1] == "synced" and "conflict" not in _rows(store)[mine][2]


def test_a_contested_decision_of_mine_is_applied_once_the_other_verdict_is_retracted(store, server):
    fake = FakeLS()
    t = fake.add_task("x")
    a0 = t["annotations"][0]["id"]
    fake.tasks[t["id"]]["meta"] = {"reviewdesk": {"v": 1, "decisions": [rec.build_record(
        uuid="t1", verdict="reject", annotation=a0, prediction=None, reviewer="b@x.org", role="reviewer",
        at="2026-11-30T10:00:00.000000Z")]}}
    c = client_for(fake)
    pid = pull_project(store, c, server, 7, media=False).project_id
    with store.transaction() as s:
        from app.models.schema import Project

        s.get(Project, pid).fold_ground_truth = True
    mine = _decide(store, pid, t["id"], "accept")
    rep = push_server(store, c, server, recheck=False)
    assert rep.conflicts == 1
    recs = {r["uuid"]: r for r in rec.meta_records(fake.tasks[t["id"]]["meta"])}
    assert recs[mine]["contested"] == ["t1"] and fake.tasks[t["id"]]["annotations"][0]["ground_truth"] is False
    fake.tasks[t["id"]]["meta"]["reviewdesk"]["decisions"].append(rec.build_record(
        uuid="t2", verdict="retract", annotation=a0, prediction=None, reviewer="b@x.org", role="reviewer",
        at="2026-11-30T10:05:00.000000Z", retracts="t1"))
    fake.touch(t["id"])
    pull_project(store, c, server, 7, media=False)
    assert _rows(store)[mine][1] == "pending" and _rows(store)[mine][2]["force"] is True
    assert push_server(store, c, server, recheck=False).synced == 1
    assert fake.tasks[t["id"]]["annotations"][0]["ground_truth"] is True  # applied now
    assert f"{mine}/kept" in rec.record_uuids(fake.tasks[t["id"]]["meta"])


def test_enterprise_reviews_made_in_label_studio_come_down_as_decisions(store, server):
    fake = FakeLS(enterprise=True)
    t = fake.add_task("e")
    a0, a1 = (a["id"] for a in t["annotations"])
    fixed = [{"from_name": "c", "to_name": "text", "type": "choices", "value": {"choices": ["b"]}}]
    fake.reviews += [
        {"id": 1, "annotation": a0, "accepted": False, "created_by": 3, "created_at": "2026-11-30T09:00:00Z"},
        {"id": 2, "annotation": a1, "accepted": True, "result": fixed, "created_by": 1,
         "created_at": "2026-11-30T09:01:00Z"},
        {"id": 3, "annotation": a0, "accepted": True, "created_by": 3, "comment": "[reviewdesk abc] ours",
         "created_at": "2026-11-30T09:02:00Z"},  # ReviewDesk's own: already a decision
        {"id": 4, "annotation": a0, "accepted": None, "created_by": 3},  # not decided yet
    ]
    c = client_for(fake)
    rep = pull_project(store, c, server, 7, media=False, edition="enterprise")
    assert rep.server_decisions == 2
    infos = {d.uuid: d for d in DecisionService(store).list_decisions(rep.project_id)}
    assert infos["ls-review-1"].verdict == "reject" and infos["ls-review-1"].reviewer == "rev@example.com"
    assert infos["ls-review-2"].verdict == "accept"  # same result as the annotation: an accept, not a fix
    assert all(d.origin == "server" for d in infos.values())
    assert pull_project(store, c, server, 7, media=False, edition="enterprise").server_decisions == 0
    # Community answers 404 on the review API: nothing, no error
    assert pull_project(store, client_for(FakeLS()), server, 7, media=False, edition="enterprise").server_decisions == 0


def test_annotations_are_numbered_by_server_id_whatever_order_the_server_lists_them(store, server):
    """PostgreSQL-backed servers list a task's annotations in heap order (an updated one moves to the end):
    every reviewer's store must still number them the same way."""
    from app.models.schema import Annotation, Task

    fake = FakeLS()
    t = fake.add_task("x", n_ann=3)
    t["annotations"].reverse()
    pull_project(store, client_for(fake), server, 7, media=False)
    with store.session() as s:
        tid = s.scalar(select(Task.id).where(Task.server_id == t["id"]))
        got = s.execute(select(Annotation.server_id).where(Annotation.task_id == tid)
                        .order_by(Annotation.position)).scalars().all()
    assert got == sorted(a["id"] for a in t["annotations"])
