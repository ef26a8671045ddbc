"""Push to a real Label Studio: every verdict's visible effect, idempotence, undo, conflicts, auth."""

from __future__ import annotations

import pytest

from app.services.decisions import DecisionService
from app.services.sync import SyncService
from tests.integration.helpers import decide, fixed, local_project, server_uuid_counts, states

pytestmark = pytest.mark.integration
LS_BACKENDS = ("sqlite", "postgres")  # teams run Label Studio on PostgreSQL (issue 17)


def test_every_verdict_shows_up_on_the_server_exactly_once(ls, sync_service, rd_store, make_project):
    ls_pid = make_project(6)
    sync_service.pull(ls.url, ls_pid)
    tasks = ls.tasks(ls_pid)
    t = [x["id"] for x in tasks]
    u_accept = decide(rd_store, ls_pid, t[0], "accept", 0)
    u_fix = decide(rd_store, ls_pid, t[1], "fix", 1, result=fixed("Shipping"), lead_time_ms=4200)
    u_reject = decide(rd_store, ls_pid, t[2], "reject", 2, reason="Wrong label", comment="this is about a refund")
    u_esc = decide(rd_store, ls_pid, t[3], "escalate", 0, comment="ambiguous: billing or account?")
    u_skip = decide(rd_store, ls_pid, t[4], "skip", 0)
    assert states(rd_store)[u_skip] == "local"

    out = sync_service.push()
    assert out.synced == 4 and out.failed == 0 and out.conflicts == 0
    st = states(rd_store)
    assert all(st[u] == "synced" for u in (u_accept, u_fix, u_reject, u_esc)) and st[u_skip] == "local"

    # accept: the ground-truth flag on that annotation
    after = {x["id"]: ls.task(x["id"]) for x in tasks}
    a0 = after[t[0]]["annotations"][0]
    assert a0["ground_truth"] is True
    # fix: a new annotation by the reviewer with the fixed result, ground truth
    extra = [a for a in after[t[1]]["annotations"] if a["id"] not in {x["id"] for x in tasks[1]["annotations"]}]
    assert len(extra) == 1
    assert extra[0]["result"][0]["value"]["choices"] == ["Shipping"] and extra[0]["ground_truth"] is True
    assert extra[0]["completed_by"]["id"] == ls.users["rev@example.com"]
    # every verdict: one record in task meta, with reason/comment; other meta keys kept
    rec_reject = [r for r in ls.decision_records(t[2]) if r["uuid"] == u_reject][0]
    assert rec_reject["verdict"] == "reject" and rec_reject["reason"] == "Wrong label"
    assert rec_reject["comment"] == "this is about a refund"
    assert rec_reject["annotation"] == tasks[2]["annotations"][2]["id"]
    assert after[t[2]]["meta"]["source"] == "demo"
    rec_fix = [r for r in ls.decision_records(t[1]) if r["uuid"] == u_fix][0]
    assert rec_fix["fix_annotation"] == extra[0]["id"] and rec_fix["lead_time_ms"] == 4200
    assert [r["verdict"] for r in ls.decision_records(t[3])] == ["escalate"]
    counts = server_uuid_counts(ls, ls_pid)
    assert counts == {u_accept: 1, u_fix: 1, u_reject: 1, u_esc: 1}

    # pushing again changes nothing; pulling brings the reviewer annotation and the flags in
    again = sync_service.push()
    assert again.synced == 0
    assert server_uuid_counts(ls, ls_pid) == counts
    pulled = sync_service.pull(ls.url, ls_pid).report
    assert pulled.conflicts == 0


def test_undo_before_and_after_push(ls, sync_service, rd_store, make_project):
    ls_pid = make_project(3)
    sync_service.pull(ls.url, ls_pid)
    t = [x["id"] for x in ls.tasks(ls_pid)]
    ds = DecisionService(rd_store)
    # undo before push: neither the decision nor its retraction ever reaches the server
    u1 = decide(rd_store, ls_pid, t[0], "accept", 0)
    r1 = ds.retract(u1, reviewer="rev@example.com").decisions[0].uuid
    # undo after push: a reversal is pushed (flag cleared, retraction recorded)
    u2 = decide(rd_store, ls_pid, t[1], "accept", 1)
    u3 = decide(rd_store, ls_pid, t[2], "fix", 0, result=fixed("Other"))
    assert sync_service.push().synced == 2
    assert ls.task(t[1])["annotations"][1]["ground_truth"] is True
    r2 = ds.retract(u2, reviewer="rev@example.com").decisions[0].uuid
    r3 = ds.retract(u3, reviewer="rev@example.com").decisions[0].uuid
    out = sync_service.push()
    assert out.synced == 2
    st = states(rd_store)
    assert st[u1] == st[r1] == "cancelled"
    assert st[r2] == st[r3] == "synced"
    assert ls.task(t[0])["annotations"][0]["ground_truth"] is False
    assert ls.decision_records(t[0]) == []
    assert ls.task(t[1])["annotations"][1]["ground_truth"] is False
    recs = ls.decision_records(t[1])
    assert [r["verdict"] for r in recs] == ["accept", "retract"] and recs[1]["retracts"] == u2
    fix_ann = [r for r in ls.decision_records(t[2]) if r["uuid"] == u3][0]["fix_annotation"]
    assert [a["ground_truth"] for a in ls.task(t[2])["annotations"] if a["id"] == fix_ann] == [False]


def test_offline_decision_on_an_annotation_changed_on_the_server_is_a_conflict(ls, sync_service, rd_store,
                                                                                make_project):
    ls_pid = make_project(3)
    sync_service.pull(ls.url, ls_pid)
    tasks = ls.tasks(ls_pid)
    t0 = tasks[0]
    ann = t0["annotations"][0]
    u_keep = decide(rd_store, ls_pid, t0["id"], "accept", 0)
    u_discard = decide(rd_store, ls_pid, tasks[1]["id"], "reject", 0, reason="Wrong label")
    # meanwhile, on the server (no pull in between): both annotations are edited
    for a in (ann, tasks[1]["annotations"][0]):
        ls.call("PATCH", f"/api/annotations/{a['id']}/", json={"result": fixed("Account")})
    out = sync_service.push()
    assert out.conflicts == 2 and out.synced == 0
    assert ls.decision_records(t0["id"]) == [] and ls.task(t0["id"])["annotations"][0]["ground_truth"] is False
    conflicts = {c.uuid: c for c in sync_service.conflicts()}
    assert conflicts[u_keep].kind == "changed"
    assert conflicts[u_keep].theirs["result"][0]["value"]["choices"] == ["Account"]
    # keep mine: pushed anyway, and the server record says it was forced
    sync_service.keep_mine(u_keep, actor="rev@example.com")
    # discard mine: retracted locally, never sent
    sync_service.discard_mine(u_discard, actor="rev@example.com")
    out = sync_service.push()
    assert out.synced == 1
    rec = ls.decision_records(t0["id"])
    assert len(rec) == 1 and rec[0]["uuid"] == u_keep and rec[0]["forced"] is True
    assert ls.decision_records(tasks[1]["id"]) == []
    st = states(rd_store)
    assert st[u_keep] == "synced" and st[u_discard] == "cancelled"
    assert sync_service.conflicts() == ()


def test_another_reviewers_decision_on_the_same_annotation_is_a_conflict(ls, rd_store, tmp_path, make_project):
    from app.models.store import Store

    ls_pid = make_project(2)
    mine = SyncService(rd_store)
    mine.login(ls.url, ls.token)
    mine.pull(ls.url, ls_pid)
    other_store = Store.open(tmp_path / "other")
    theirs = SyncService(other_store)
    theirs.login(ls.url, ls.token)
    theirs.pull(ls.url, ls_pid)
    task = ls.tasks(ls_pid)[0]
    u_mine = decide(rd_store, ls_pid, task["id"], "accept", 0, reviewer="rev@example.com")
    u_theirs = decide(other_store, ls_pid, task["id"], "reject", 0, reviewer="rev2@example.com", reason="Wrong label")
    assert theirs.push().synced == 1
    out = mine.push()
    assert out.conflicts == 1
    c = mine.conflicts()[0]
    assert c.uuid == u_mine and c.kind == "other_reviewer" and c.theirs["uuid"] == u_theirs
    # re-review: my decision is retracted and the task comes back for review
    task_id, _changes = mine.rereview(u_mine, actor="rev@example.com")
    from app.services.projects import ProjectService

    assert task_id == ProjectService(rd_store).find_task(local_project(rd_store, ls_pid), task["id"])
    # my verdict went on the record as contested (so the other side sees the disagreement), with no effect
    # on the server; the re-review retracts it there too
    assert [r.get("contested") for r in ls.decision_records(task["id"]) if r["uuid"] == u_mine] == [[u_theirs]]
    assert ls.task(task["id"])["annotations"][0]["ground_truth"] is False
    assert mine.push().synced == 1
    assert [r["retracts"] for r in ls.decision_records(task["id"]) if r["verdict"] == "retract"] == [u_mine]
    assert states(rd_store)[u_mine] == "synced" and mine.conflicts() == ()
    other_store.close()


def test_expert_resolving_an_escalation_is_not_a_conflict(ls, rd_store, tmp_path, make_project):
    from app.models.store import Store

    ls_pid = make_project(2)
    rev_store = Store.open(tmp_path / "reviewer")
    rev = SyncService(rev_store)
    rev.login(ls.url, ls.token)
    rev.pull(ls.url, ls_pid)
    task = ls.tasks(ls_pid)[0]
    decide(rev_store, ls_pid, task["id"], "escalate", 0, reviewer="rev@example.com", comment="unsure")
    assert rev.push().synced == 1
    expert = SyncService(rd_store)
    expert.login(ls.url, ls.token)
    expert.pull(ls.url, ls_pid)
    u = decide(rd_store, ls_pid, task["id"], "fix", 0, reviewer="expert@example.com", role="expert",
               result=fixed("Technical"))
    assert expert.push().synced == 1
    assert [r["verdict"] for r in ls.decision_records(task["id"])] == ["escalate", "fix"]
    assert states(rd_store)[u] == "synced"
    rev_store.close()
