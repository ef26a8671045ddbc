from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.models.schema import Comment, Decision, DecisionSync
from app.models.store import Store
from app.services.decisions import DecisionError, DecisionRequest, DecisionService
from app.services.demo import ensure_demo
from app.services.projects import ProjectService
from app.services.review import QueueFilter, ReviewSession


@pytest.fixture
def demo(store: Store) -> tuple[ProjectService, int]:
    return ProjectService(store), ensure_demo(store)


def session(demo: tuple[ProjectService, int], **kw) -> ReviewSession:
    projects, pid = demo
    return ReviewSession(projects, pid, reviewer=kw.pop("reviewer", "rev@example.com"), **kw)


def decision_rows(store: Store) -> list[tuple[str, int | None, str]]:
    with store.session() as s:
        return [(d.verdict, d.annotation_id, d.reviewer) for d in s.scalars(select(Decision).order_by(Decision.id))]


def test_accepting_every_annotation_advances_to_next_task(demo, store: Store) -> None:
    s = session(demo)
    first = s.current
    assert first is not None and s.state == "idle"
    n = len(first.annotations)
    for i in range(n):
        assert s.current.id == first.id, f"moved on after {i} of {n} verdicts"
        s.decide("accept")
    assert s.current.id != first.id  # auto-advance once all annotations have a verdict
    assert [r[0] for r in decision_rows(store)] == ["accept"] * n
    assert s.counters().remaining == s.counters().total - 1


def test_second_key_during_transition_is_swallowed(demo, store: Store) -> None:
    s = session(demo)
    pending = s.begin("accept")
    assert pending is not None and s.state == "transition"
    assert s.begin("accept") is None  # second press while writing
    assert s.begin("reject", reason="x") is None
    assert s.undo() == s.undo()  # no-ops while busy
    assert s.swallowed == 4
    s.finish(pending, s.commit(pending))
    assert s.state == "idle"
    assert len(decision_rows(store)) == 1


def test_failed_commit_returns_to_idle_and_writes_nothing(demo, store: Store) -> None:
    s = session(demo)
    pending = s.begin("fix", result=[{"from_name": "category", "to_name": "ticket", "type": "choices",
                                      "value": {"choices": ["NotAnOption"]}}])
    assert pending is not None
    with pytest.raises(DecisionError, match="not an option"):
        s.commit(pending)
    s.abort(pending)
    assert s.state == "idle" and decision_rows(store) == []


def test_undo_appends_retraction_and_redo_records_again(demo, store: Store) -> None:
    s = session(demo)
    t0 = s.current.id
    ann0 = s.focused_annotation().id
    s.decide("reject", reason="Wrong label", comment="see guideline 2")
    assert s.view().verdicts == {ann0: "reject"}
    s.undo()
    assert s.view().verdicts == {}
    assert s.current.id == t0 and s.focused_annotation().id == ann0
    rows = decision_rows(store)
    assert [r[0] for r in rows] == ["reject", "retract"]  # nothing deleted
    hist = s.history()
    assert hist[0].verdict == "reject" and hist[0].retracted
    s.redo()
    assert s.view().verdicts == {ann0: "reject"}
    assert [r[0] for r in decision_rows(store)] == ["reject", "retract", "reject"]
    with store.session() as db:  # the reason travels as a comment
        assert db.scalar(select(func.count()).select_from(Comment)) == 2


def test_undo_restores_the_previous_verdict(demo, store: Store) -> None:
    s = session(demo, auto_advance=False)
    ann = s.focused_annotation().id
    s.decide("accept")
    s.cycle_annotation(-1)  # back to the same annotation
    assert s.focused_annotation().id == ann
    s.decide("reject", reason="changed my mind")
    assert s.view().verdicts[ann] == "reject"
    s.undo()
    assert s.view().verdicts[ann] == "accept"


def test_navigation_and_annotation_focus(demo) -> None:
    s = session(demo)
    assert s.index == 0
    s.previous()
    assert s.index == 0
    s.next()
    s.next()
    assert s.index == 2
    n = len(s.current.annotations)
    seen = {s.focused_annotation().id}
    for _ in range(n - 1):
        s.cycle_annotation()
        seen.add(s.focused_annotation().id)
    assert len(seen) == n
    s.cycle_annotation()
    assert s.focus == 0
    s.go(10_000)
    assert s.index == len(s.task_ids) - 1


def test_shift_a_accepts_focused_and_rejects_others_in_one_step(demo, store: Store) -> None:
    s = session(demo)
    t = s.current
    s.cycle_annotation()
    focused = s.focused_annotation().id
    s.decide("accept", others="reject")
    verdicts = DecisionService(store).effective_verdicts(s.project_id)
    assert verdicts[focused] == "accept"
    assert all(verdicts[a.id] == "reject" for a in t.annotations if a.id != focused)
    assert s.current.id != t.id
    assert DecisionService(store).ground_truth(t.id) == list(next(a for a in t.annotations if a.id == focused).result)


def test_fix_is_validated_and_folds_into_ground_truth(demo, store: Store) -> None:
    s = session(demo, auto_advance=False)
    t = s.current
    ann = s.focused_annotation()
    fixed = [dict(it) for it in ann.result]
    for it in fixed:
        if it["from_name"] == "category":
            it["value"] = {"choices": ["Shipping"]}
    s.decide("fix", result=fixed)
    assert DecisionService(store).ground_truth(t.id) == fixed
    s.undo()  # the fold is undone with the decision
    gt = DecisionService(store).ground_truth(t.id)
    assert gt != fixed


def test_escalation_moves_task_to_expert_queue(demo, store: Store) -> None:
    projects, pid = demo
    s = session(demo)
    t = s.current.id
    before = s.counters().remaining
    with pytest.raises(DecisionError):  # a reason is required
        s.decide("escalate")
    s.decide("escalate", reason="Edge case", comment="two topics in one ticket")
    assert s.current.id != t
    assert s.counters().remaining == before - 1
    expert = ReviewSession(projects, pid, reviewer="sme@example.com", role="expert")
    assert expert.task_ids == [t]
    assert expert.view().escalation.comment == "two topics in one ticket"
    for _ in expert.current.annotations:
        expert.decide("accept")
    assert expert.remaining() == 0
    assert ReviewSession(projects, pid, reviewer="sme@example.com", role="expert").task_ids == []


def test_skip_is_recorded_locally_and_moves_on(demo, store: Store) -> None:
    s = session(demo)
    t = s.current.id
    s.decide("skip")
    assert s.current.id != t
    with store.session() as db:
        assert db.scalars(select(DecisionSync.state)).all() == ["local"]


def test_queue_filter_by_task_ids_keeps_order(demo) -> None:
    projects, pid = demo
    s = ReviewSession(projects, pid, reviewer="r", queue=QueueFilter(task_ids=(5, 3, 9, 999999), label="drill"))
    assert s.task_ids == [5, 3, 9]


def test_clearing_the_whole_demo_queue(demo, store: Store) -> None:
    s = session(demo)
    guard = 0
    while s.remaining() and guard < 5000:
        s.decide("accept")
        guard += 1
    assert s.remaining() == 0
    total_anns = s.annotation_count()
    assert len(DecisionService(store).effective_verdicts(s.project_id)) == total_anns
    assert store.integrity_check() == ["ok"]


def test_cli_decide_and_decisions(tmp_path: Path, capsys) -> None:
    from app.main import main

    data = str(tmp_path / "d")
    main(["--data-dir", data, "demo"])
    capsys.readouterr()
    tasks = json.loads((Path(__file__).resolve().parents[2] / "app/resources/demo/tasks.json").read_text())
    task = tasks[0]
    ann = task["annotations"][0]["id"]
    assert main(["--data-dir", data, "decide", "1", str(task["id"]), "--annotation", str(ann), "--accept",
                 "--reviewer", "cli@example.com", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "accept" and out["task"] == task["id"] and out["annotation"] == ann
    fixed = tmp_path / "fix.json"
    fixed.write_text(json.dumps([{"from_name": "category", "to_name": "ticket", "type": "choices",
                                  "value": {"choices": ["Billing"]}}]))
    assert main(["--data-dir", data, "decide", "1", str(task["id"]), "--annotation", str(ann), "--fix",
                 str(fixed), "--json"]) == 0
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"from_name": "mood", "to_name": "ticket", "type": "choices",
                                "value": {"choices": ["Billing"]}}]))
    assert main(["--data-dir", data, "decide", "1", str(task["id"]), "--annotation", str(ann), "--fix",
                 str(bad)]) == 1
    assert "does not fit the labeling config" in capsys.readouterr().err
    assert main(["--data-dir", data, "decide", "1", str(task["id"]), "--annotation", "424242", "--accept"]) == 1
    capsys.readouterr()
    assert main(["--data-dir", data, "decisions", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["verdict"] for r in rows] == ["accept", "fix"]
    assert {"uuid", "task", "annotation", "verdict", "reviewer", "created_at", "sync_state"} <= set(rows[0])
    assert rows[0]["reviewer"] == "cli@example.com"


def test_reject_reasons_are_per_project_and_validated(demo, store: Store) -> None:
    projects, pid = demo
    svc = DecisionService(store)
    assert len(svc.reject_reasons(pid)) == 8
    svc.set_reject_reasons(pid, ["Breaks guideline 3", "  ", "Wrong span", *[f"r{i}" for i in range(10)]])
    reasons = svc.reject_reasons(pid)
    assert reasons[:2] == ("Breaks guideline 3", "Wrong span") and len(reasons) == 9
    with pytest.raises(DecisionError):
        svc.set_reject_reasons(pid, ["", " "])


def test_counters_pace_and_time_left() -> None:
    """Issue 13.13: decisions per hour and the time left for the queue at this session's pace."""
    from app.services.review import Counters

    c = Counters(made=10, pending_sync=0, remaining=30, total=40, per_hour=120.0, minutes_left=150.0)
    assert c.pace == "120 decisions/h · about 2 h 30 min left"
    assert Counters(made=1, pending_sync=0, remaining=3, total=4).pace == ""
    assert Counters(made=5, pending_sync=0, remaining=3, total=4, per_hour=60.0, minutes_left=0.2).pace == \
        "60 decisions/h · about 1 min left"


def test_undo_after_shift_a_takes_back_the_whole_keystroke(demo, store: Store) -> None:
    """Issue 12: Shift+A records N decisions in one transaction; one undo retracts all N (one transaction);
    redo records them again; an earlier single decision is untouched."""
    s = session(demo, auto_advance=False)
    task = s.current
    n = len(task.annotations)
    assert n >= 2
    s.decide("accept", others="reject")
    live = DecisionService(store).effective_verdicts(s.project_id)
    assert sum(1 for a in task.annotations if a.id in live) == n
    s.undo()
    live = DecisionService(store).effective_verdicts(s.project_id)
    assert not any(a.id in live for a in task.annotations)
    assert [r[0] for r in decision_rows(store)].count("retract") == n
    assert len(s.last_undone()) == n
    s.redo()
    live = DecisionService(store).effective_verdicts(s.project_id)
    assert sum(1 for a in task.annotations if a.id in live) == n
    s.undo()  # the redone keystroke is one group again
    assert [r[0] for r in decision_rows(store)].count("retract") == 2 * n


def test_session_status_of_each_annotation(demo, store: Store) -> None:
    """Issue 13.1/13.2: the session tells each annotation's status, whose, and a fix's fixed result."""
    s = session(demo, auto_advance=False)
    a = s.focused_annotation()
    fixed = [dict(i) for i in a.result]
    s.decide("fix", result=fixed)
    st = s.view().statuses[a.id]
    assert (st.verdict, st.mine, st.label) == ("fix", True, "✎ fixed")
    assert st.fixed is not None and list(st.fixed) == fixed
    assert s.view().decided == 1
    b = next(x for x in s.current.annotations if x.id != a.id)
    DecisionService(store).record(s.project_id, [DecisionRequest(task_id=s.current.id, verdict="reject",
                                                                 annotation_id=b.id, reason="Wrong label")],
                                  reviewer="priya@example.com")
    s.reload()
    assert s.view().statuses[b.id].label == "✗ rejected by priya@example.com"


def test_which_decisions_move_tasks_between_the_queues() -> None:
    import dataclasses

    from app.services.decisions import DecisionInfo
    from app.services.review import moves_between_queues

    base = DecisionInfo(uuid="u", project_id=1, task_id=1, task_server_id=None, annotation_id=1,
                        annotation_server_id=None, prediction_id=None, verdict="accept", result=None, reason=None,
                        comment=None, reviewer="r", role="reviewer", created_at="", lead_time_ms=None, retracts=None,
                        sync_state="local")

    def d(verdict: str, role: str = "reviewer") -> DecisionInfo:
        return dataclasses.replace(base, verdict=verdict, role=role)

    for v in ("accept", "fix", "reject", "skip"):
        assert not moves_between_queues([d(v)], built=False)
        assert moves_between_queues([d(v)], built=True)  # a built queue's rules read what is judged
    assert moves_between_queues([d("escalate")], built=False)
    assert moves_between_queues([d("retract")], built=False)
    assert moves_between_queues([d("accept", "expert")], built=False)  # settles an escalation
    assert not moves_between_queues([d("skip", "expert")], built=False)
    assert moves_between_queues([d("accept"), d("reject"), d("escalate")], built=False)


def test_history_is_the_last_n_with_retraction_marks_as_before(demo) -> None:
    """The session list's history: the last n decisions (no retraction events), newest first, each marked when
    undone -- the same as the copy of the whole session it used to make on every press."""
    s = session(demo)

    def reference(n: int) -> tuple:
        retracted = {d.retracts for d in s._history if d.retracts}
        out = [dataclasses.replace(d, retracted=d.uuid in retracted) for d in s._history if d.verdict != "retract"]
        return tuple(reversed(out[-n:]))

    for i in range(30):
        if s.current is None:
            break
        s.decide("reject", reason="Wrong label") if i % 4 == 1 else s.decide("accept")
        if i % 7 == 3:
            s.undo()
        for n in (1, 5, 20, 100, 0):
            assert s.history(n) == reference(n), (i, n)
    assert any(d.retracted for d in s.history(100)) and len(s.history(20)) == 20
