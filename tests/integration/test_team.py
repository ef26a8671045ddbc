"""Team review on one real Label Studio server: several stores (two reviewers, one expert) at the same time.

Issue 11: concurrent pushes lose nothing (one reviewer's writes slowed through a loopback proxy, many
randomized rounds: after the next sync of each, every decision of every reviewer is on the server exactly
once); others' decisions come down with a pull; an escalation reaches the expert's store and its resolution
comes back; a two-reviewer disagreement is a conflict on both sides; the numbers do not change across a sync.
Runs on both Label Studio back ends (issue 17).
"""

from __future__ import annotations

import io
import json
import random
import threading
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from app.models.schema import Decision, DecisionSync
from app.models.store import Store
from app.services.decisions import DecisionService
from app.services.sync import SyncService
from app.sync.client import LSClient
from tests.integration.conftest import MEMBERS
from tests.integration.faultproxy import FaultProxy
from tests.integration.helpers import decide, fixed, local_project, server_uuid_counts, states

pytestmark = pytest.mark.integration
LS_BACKENDS = ("sqlite", "postgres")

REV, REV2, EXPERT = "rev@example.com", "rev2@example.com", "expert@example.com"


def reviewer(ls: Any, path: Any, email: str, url: str | None = None, slow: bool = False) -> tuple[Store, SyncService]:
    """A reviewer's own store, logged in with their own token (optionally through a proxy URL)."""
    store = Store.open(path)

    def factory(u: str, tok: str | None, ca: str | None) -> LSClient:
        return LSClient(u, tok, ca_bundle=ca, timeout=(5.0, 30.0))

    svc = SyncService(store, client_factory=factory)
    svc.login(url or ls.url, MEMBERS[email])
    return store, svc


def local_records(store: Store) -> dict[str, tuple[str, dict[str, Any]]]:
    """uuid -> (state, effect) of this store's own decisions."""
    with store.session() as s:
        return {d.uuid: (ds.state, ds.effect or {}) for d, ds in s.execute(
            select(Decision, DecisionSync).join(DecisionSync, DecisionSync.decision_id == Decision.id)
            .where(Decision.origin == "local"))}


@pytest.fixture
def slow_proxy(ls):
    parts = urlsplit(ls.url)
    p = FaultProxy(parts.hostname, parts.port)
    yield p
    p.close()


def test_concurrent_pushes_on_the_same_tasks_lose_nothing(ls, tmp_path, make_project, slow_proxy):
    ls_pid = make_project(9)
    a_store, a = reviewer(ls, tmp_path / "a", REV)
    b_store, b = reviewer(ls, tmp_path / "b", REV2, url=slow_proxy.url)
    a.pull(ls.url, ls_pid)
    b.pull(slow_proxy.url, ls_pid)
    tasks = [t["id"] for t in ls.tasks(ls_pid)]
    rng = random.Random(11)
    # B's writes of task meta take ~1 s (a field link): A's writes land inside B's read-merge-write
    slow_proxy.add("PATCH", r"^/api/tasks/\d+", "delay", count=10_000, seconds=1.0)
    rounds = 3
    healed = 0
    for rnd in range(rounds):
        # each reviewer decides on every task, each on a random annotation (sometimes the same one)
        for t in tasks:
            for store, who in ((a_store, REV), (b_store, REV2)):
                verdict = rng.choice(["accept", "reject", "escalate"])
                decide(store, ls_pid, t, verdict, rng.randrange(3), reviewer=who)
        errors: list[BaseException] = []
        pushed: list[int] = []

        def push(svc: SyncService, pushed: list[int] = pushed, errors: list[BaseException] = errors) -> None:
            try:
                pushed.append(sum(r.reappended for _, r in svc.push().reports))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=push, args=(svc,)) for svc in (a, b)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=600)
        assert not errors, errors
        # the next sync of each (one after the other)
        healed += sum(pushed)
        out_a = a.sync(ls.url)
        out_b = b.sync(slow_proxy.url)
        healed += out_a.reappended + out_b.reappended
        assert not out_a.errors and not out_b.errors, (out_a.errors, out_b.errors)

        counts = server_uuid_counts(ls, ls_pid)
        for store, name in ((a_store, "A"), (b_store, "B")):
            mine = local_records(store)
            on_record = {u for u, (st, eff) in mine.items() if st == "synced" or eff.get("on_server")}
            assert set(mine) == on_record | {u for u, (st, _e) in mine.items() if st == "conflict"}, \
                f"round {rnd}: {name} has decisions neither synced nor in conflict"
            missing = sorted(u for u in on_record if counts.get(u, 0) == 0)
            dupes = sorted(u for u in mine if counts.get(u, 0) > 1)
            assert not missing, f"round {rnd}: {len(missing)} of {name}'s decisions are not on the server"
            assert not dupes, f"round {rnd}: {name}'s decisions twice on the server: {dupes}"
            # conflicts are disagreements on the record (never a silently dropped decision)
            for u, (st, eff) in mine.items():
                if st == "conflict":
                    assert eff.get("on_server") and counts.get(u) == 1
    # the interleaving really happened (records were erased by the other's write) and was healed
    assert healed > 0
    # every decision of both reviewers: on the server exactly once
    total = len(local_records(a_store)) + len(local_records(b_store))
    assert total == 2 * rounds * len(tasks)
    counts = server_uuid_counts(ls, ls_pid)
    assert sum(1 for u in counts if "/" not in u) == total
    assert set(counts.values()) == {1}
    a_store.close()
    b_store.close()


def test_others_decisions_come_down_and_count(ls, tmp_path, make_project, capsys):
    from app.cli import main

    ls_pid = make_project(4)
    a_store, a = reviewer(ls, tmp_path / "a", REV)
    b_store, b = reviewer(ls, tmp_path / "b", REV2)
    a.pull(ls.url, ls_pid)
    b.pull(ls.url, ls_pid)
    t = [x["id"] for x in ls.tasks(ls_pid)]
    u_rej = decide(a_store, ls_pid, t[0], "reject", 1, reviewer=REV, reason="Wrong label", comment="refund")
    u_acc = decide(a_store, ls_pid, t[1], "accept", 0, reviewer=REV)
    a.sync(ls.url)
    rep = b.pull(ls.url, ls_pid).report
    assert rep.server_decisions == 2
    pid_b = local_project(b_store, ls_pid)
    got = {d.uuid: d for d in DecisionService(b_store).list_decisions(pid_b)}
    assert set(got) == {u_rej, u_acc}
    r = got[u_rej]
    assert (r.origin, r.reviewer, r.verdict, r.reason, r.comment) == ("server", REV, "reject", "Wrong label", "refund")
    assert r.annotation_server_id == ls.tasks(ls_pid)[0]["annotations"][1]["id"]
    # read-only here: B cannot undo A's decision
    from app.services.decisions import DecisionError

    with pytest.raises(DecisionError, match="another machine"):
        DecisionService(b_store).retract(u_rej, reviewer=REV2)
    # pulling again brings nothing twice
    assert b.pull(ls.url, ls_pid).report.server_decisions == 0
    assert len(DecisionService(b_store).list_decisions(pid_b)) == 2
    # the CLI shows origin
    code = main(["decisions", str(pid_b), "--json", "--data-dir", str(tmp_path / "b")])
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and {(x["uuid"], x["origin"]) for x in rows} == {(u_rej, "server"), (u_acc, "server")}
    # B's own decision stays local in origin and is pushed; A sees it after its pull
    u_b = decide(b_store, ls_pid, t[2], "reject", 2, reviewer=REV2, reason="Missed something")
    b.sync(ls.url)
    a.sync(ls.url)
    pid_a = local_project(a_store, ls_pid)
    theirs = [d for d in DecisionService(a_store).list_decisions(pid_a) if d.uuid == u_b]
    assert theirs and theirs[0].origin == "server" and theirs[0].reviewer == REV2
    a_store.close()
    b_store.close()


def test_escalation_reaches_an_expert_on_another_machine_and_comes_back_resolved(ls, tmp_path, make_project, capsys):
    from app.cli import main

    ls_pid = make_project(3)
    r_store, r = reviewer(ls, tmp_path / "rev", REV)
    e_store, e = reviewer(ls, tmp_path / "expert", EXPERT)
    r.pull(ls.url, ls_pid)
    task = ls.tasks(ls_pid)[1]
    u_esc = decide(r_store, ls_pid, task["id"], "escalate", 2, reviewer=REV, reason="Ambiguous example")
    assert r.sync(ls.url).push.synced == 1
    e.pull(ls.url, ls_pid)
    pid_e = local_project(e_store, ls_pid)
    code = main(["escalations", str(pid_e), "--json", "--data-dir", str(tmp_path / "expert")])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and len(out["items"]) == 1
    item = out["items"][0]
    assert item["task"] == task["id"] and item["annotation"] == task["annotations"][2]["id"]
    assert (item["reviewer"], item["reason"], item["origin"]) == (REV, "Ambiguous example", "server")
    assert item["uuid"] == u_esc and item["created_at"]
    # the expert decides: resolved on the server, and in the reviewer's store after its next pull
    u_fix = decide(e_store, ls_pid, task["id"], "fix", 2, reviewer=EXPERT, role="expert",
                   result=fixed("Technical"))
    assert e.sync(ls.url).push.synced == 1
    assert DecisionService(e_store).escalations(pid_e) == ()
    recs = {x["uuid"]: x for x in ls.decision_records(task["id"])}
    assert recs[u_fix]["role"] == "expert" and recs[u_fix]["verdict"] == "fix"
    pid_r = local_project(r_store, ls_pid)
    assert len(DecisionService(r_store).escalations(pid_r)) == 1
    r.sync(ls.url)
    assert DecisionService(r_store).escalations(pid_r) == ()
    code = main(["escalations", str(pid_r), "--json", "--data-dir", str(tmp_path / "rev")])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["items"] == []
    # the expert's fix came down as a server decision with the fixed result
    d = [x for x in DecisionService(r_store).list_decisions(pid_r) if x.uuid == u_fix][0]
    assert d.origin == "server" and d.role == "expert" and d.result[0]["value"]["choices"] == ["Technical"]
    r_store.close()
    e_store.close()


def test_two_reviewers_disagreeing_see_a_conflict_on_both_sides(ls, tmp_path, make_project):
    ls_pid = make_project(2)
    a_store, a = reviewer(ls, tmp_path / "a", REV)
    b_store, b = reviewer(ls, tmp_path / "b", REV2)
    a.pull(ls.url, ls_pid)
    b.pull(ls.url, ls_pid)
    task = ls.tasks(ls_pid)[0]
    u_a = decide(a_store, ls_pid, task["id"], "accept", 0, reviewer=REV)
    u_b = decide(b_store, ls_pid, task["id"], "reject", 0, reviewer=REV2, reason="Wrong label")
    # both agree on another annotation: no conflict there
    u_a2 = decide(a_store, ls_pid, task["id"], "reject", 1, reviewer=REV, reason="Wrong label")
    u_b2 = decide(b_store, ls_pid, task["id"], "reject", 1, reviewer=REV2, reason="Wrong label")
    assert a.sync(ls.url).push.synced == 2
    out_b = b.sync(ls.url)
    assert out_b.push.conflicts == 1 and out_b.push.synced == 1
    cb = {c.uuid: c for c in b.conflicts()}
    assert set(cb) == {u_b} and cb[u_b].kind == "other_reviewer"
    assert (cb[u_b].verdict, cb[u_b].theirs["verdict"], cb[u_b].theirs["reviewer"]) == ("reject", "accept", REV)
    # B's verdict is on the record (contested: no effect on the server), so A sees the conflict too
    recs = {x["uuid"]: x for x in ls.decision_records(task["id"])}
    assert recs[u_b]["contested"] == [u_a]
    assert ls.task(task["id"])["annotations"][0]["ground_truth"] is True  # A's accept stands, untouched
    a.sync(ls.url)
    ca = {c.uuid: c for c in a.conflicts()}
    assert set(ca) == {u_a}
    assert (ca[u_a].verdict, ca[u_a].theirs["verdict"], ca[u_a].theirs["reviewer"]) == ("accept", "reject", REV2)
    assert states(a_store)[u_a2] == "synced" and states(b_store)[u_b2] == "synced"
    # B gives way (discard mine): the retraction is recorded and pushed; A's side settles at its next pull
    b.discard_mine(u_b, actor=REV2)
    b.sync(ls.url)
    recs = ls.decision_records(task["id"])
    assert [x["retracts"] for x in recs if x["verdict"] == "retract"] == [u_b]
    assert b.conflicts() == ()
    a.sync(ls.url)
    assert a.conflicts() == ()
    assert states(a_store)[u_a] == "synced"
    assert set(server_uuid_counts(ls, ls_pid).values()) == {1}
    a_store.close()
    b_store.close()


def test_keep_mine_after_a_disagreement_is_recorded_and_applied(ls, tmp_path, make_project):
    ls_pid = make_project(2)
    a_store, a = reviewer(ls, tmp_path / "a", REV)
    b_store, b = reviewer(ls, tmp_path / "b", REV2)
    a.pull(ls.url, ls_pid)
    b.pull(ls.url, ls_pid)
    task = ls.tasks(ls_pid)[0]
    u_a = decide(a_store, ls_pid, task["id"], "reject", 0, reviewer=REV, reason="Wrong label")
    u_b = decide(b_store, ls_pid, task["id"], "accept", 0, reviewer=REV2)
    a.sync(ls.url)
    assert b.sync(ls.url).push.conflicts == 1
    assert ls.task(task["id"])["annotations"][0]["ground_truth"] is False  # contested: no effect yet
    b.keep_mine(u_b, actor=REV2)
    out = b.sync(ls.url)
    assert out.push.synced == 1 and b.conflicts() == ()
    assert ls.task(task["id"])["annotations"][0]["ground_truth"] is True  # applied once kept
    recs = {x["uuid"]: x for x in ls.decision_records(task["id"])}
    assert recs[f"{u_b}/kept"]["resolves"] == u_b and recs[f"{u_b}/kept"]["against"] == u_a
    a.sync(ls.url)
    assert {c.uuid for c in a.conflicts()} == {u_a}  # A still disagrees: shown, never overwritten
    a_store.close()
    b_store.close()


def test_metrics_json_is_identical_before_push_and_after_pull(ls, tmp_path, make_project, capsys):
    from app.cli import main

    ls_pid = make_project(8)
    data = tmp_path / "a"
    a_store, a = reviewer(ls, data, REV)
    a.pull(ls.url, ls_pid)
    t = [x["id"] for x in ls.tasks(ls_pid)]
    decide(a_store, ls_pid, t[0], "accept", 0, reviewer=REV)
    decide(a_store, ls_pid, t[1], "accept", 1, reviewer=REV)
    decide(a_store, ls_pid, t[2], "fix", 2, reviewer=REV, result=fixed("Shipping"))
    decide(a_store, ls_pid, t[3], "reject", 0, reviewer=REV, reason="Wrong label")
    pid = local_project(a_store, ls_pid)

    def metrics() -> str:
        code = main(["metrics", str(pid), "--json", "--data-dir", str(data)])
        out = capsys.readouterr().out
        assert code == 0, out
        return out

    before = metrics()
    out = a.sync(ls.url)
    assert out.push.synced == 4 and not out.errors
    # the pull brought the ground-truth flags and the fix annotation back
    assert ls.task(t[0])["annotations"][0]["ground_truth"] is True
    assert out.pulls and out.pulls[-1].tasks_updated >= 3
    after = metrics()
    assert after == before
    payload = json.loads(before.strip().splitlines()[-1])
    assert payload  # a real report, not an empty one
    a_store.close()


def test_cli_sync_reports_team_numbers(ls, tmp_path, make_project, capsys, monkeypatch):
    """``sync --json`` says how many rounds it took and what came down from others."""
    from app.cli import main

    ls_pid = make_project(2)
    a_store, a = reviewer(ls, tmp_path / "a", REV)
    a.pull(ls.url, ls_pid)
    decide(a_store, ls_pid, ls.tasks(ls_pid)[0]["id"], "accept", 0, reviewer=REV)
    a_store.close()
    data = str(tmp_path / "b")
    monkeypatch.setattr("sys.stdin", io.StringIO(MEMBERS[REV2] + "\n"))
    assert main(["login", ls.url, "--token-stdin", "--data-dir", data]) == 0
    assert main(["pull", ls.url, "--project", str(ls_pid), "--data-dir", data]) == 0
    capsys.readouterr()
    a_store, a = reviewer(ls, tmp_path / "a", REV)
    a.sync(ls.url)
    a_store.close()
    assert main(["sync", "--json", "--data-dir", data]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["rounds"] >= 1 and res["reappended"] == 0
    assert sum(p["server_decisions"] for p in res["pulls"]) == 1


def test_a_record_erased_by_another_tool_is_found_and_written_again_by_the_next_sync(ls, tmp_path, make_project):
    """The verifying pull: a write by another client after our push erased our record; the next sync restores it."""
    ls_pid = make_project(3)
    a_store, a = reviewer(ls, tmp_path / "a", REV)
    a.pull(ls.url, ls_pid)
    task = ls.tasks(ls_pid)[0]
    u1 = decide(a_store, ls_pid, task["id"], "reject", 0, reviewer=REV, reason="Wrong label")
    u2 = decide(a_store, ls_pid, task["id"], "accept", 1, reviewer=REV)
    assert a.sync(ls.url).push.synced == 2
    # another tool writes the task meta from a stale read: our records vanish (the failure mode)
    ls.call("PATCH", f"/api/tasks/{task['id']}/", json={"meta": {"source": "demo", "other-tool": 1}})
    assert ls.decision_records(task["id"]) == []
    out = a.sync(ls.url)
    assert out.lost == 2 and out.reappended == 2 and out.rounds == 2 and not out.errors
    assert {r["uuid"] for r in ls.decision_records(task["id"])} == {u1, u2}
    assert ls.task(task["id"])["meta"]["other-tool"] == 1  # the other tool's key is kept
    assert states(a_store)[u1] == states(a_store)[u2] == "synced"
    assert set(server_uuid_counts(ls, ls_pid).values()) == {1}
    # nothing left to do: the next sync finds everything in place
    again = a.sync(ls.url)
    assert again.lost == 0 and again.rounds == 1
    a_store.close()
