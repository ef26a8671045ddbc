"""The review loop's fast paths (issue 14.3) return and write exactly what the ORM paths did.

- ``team_rows`` (plain SQL) == the ORM select ``task_decisions`` used before, row for row;
- ``pending_count`` (plain SQL) == the ORM count;
- ``ProjectService.task_detail`` (plain SQL) == the ORM column reads it made before, for every task;
- ``DecisionService.record`` writes its rows with Core INSERTs: the stored columns are what an ORM flush
  writes (column defaults, JSON ``null`` for no result, the comment and ground-truth rows), and the audit
  chain still verifies.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from app.models.audit import verify_chain
from app.models.schema import (
    Annotation,
    Comment,
    Decision,
    DecisionSync,
    GroundTruth,
    Member,
    Prediction,
    Task,
)
from app.models.store import Store
from app.services.decisions import DecisionRequest, DecisionService
from app.services.demo import ensure_demo
from app.services.projects import AnnotationInfo, PredictionInfo, ProjectService, TaskDetail, member_name
from app.services.review import ReviewSession
from app.services.review_fast import team_rows
from benchmarks.bench_import import CONFIG, generate

ORM_TEAM_COLUMNS = (Decision.id, Decision.uuid, Decision.task_id, Decision.annotation_id, Decision.prediction_id,
                    Decision.verdict, Decision.reason, Decision.comment, Decision.reviewer, Decision.role,
                    Decision.created_at, Decision.origin, Decision.retracts, Decision.result, Decision.project_id,
                    DecisionSync.state)


def orm_team_rows(store: Store, task_id: int) -> list[tuple]:
    """The ORM select ``task_decisions`` ran before the fast path."""
    with store.session() as s:
        return [tuple(r) for r in s.execute(select(*ORM_TEAM_COLUMNS)
                                            .outerjoin(DecisionSync, DecisionSync.decision_id == Decision.id)
                                            .where(Decision.task_id == task_id)).all()]


def orm_task_detail(store: Store, task_id: int) -> TaskDetail:
    """``ProjectService.task_detail`` as it read the task through ORM column queries before the fast path."""
    with store.session() as s:
        t = s.execute(select(Task.id, Task.project_id, Task.server_id, Task.position, Task.data, Task.meta,
                             Task.updated_at).where(Task.id == task_id)).first()
        assert t is not None
        names = {m.user_id: member_name(m.email, m.first_name, m.last_name, m.user_id)
                 for m in s.execute(select(Member.user_id, Member.email, Member.first_name, Member.last_name)
                                    .where(Member.project_id == t.project_id))}
        anns = s.execute(select(Annotation.id, Annotation.server_id, Annotation.completed_by, Annotation.result,
                                Annotation.ground_truth, Annotation.was_cancelled, Annotation.lead_time,
                                Annotation.created_at, Annotation.updated_at)
                         .where(Annotation.task_id == task_id, Annotation.deleted.is_(False))
                         .order_by(Annotation.position, Annotation.id)).all()
        preds = s.execute(select(Prediction.id, Prediction.server_id, Prediction.model_version,
                                 Prediction.score, Prediction.result)
                          .where(Prediction.task_id == task_id)
                          .order_by(Prediction.position, Prediction.id)).all()
        return TaskDetail(
            id=t.id, project_id=t.project_id, server_id=t.server_id, position=t.position, data=t.data or {},
            meta=t.meta or {}, updated_at=t.updated_at,
            annotations=tuple(AnnotationInfo(
                a.id, a.server_id, a.completed_by,
                names.get(a.completed_by, member_name(None, None, None, a.completed_by)),
                tuple(a.result or ()), bool(a.ground_truth), bool(a.was_cancelled), a.lead_time, a.created_at,
                a.updated_at) for a in anns),
            predictions=tuple(PredictionInfo(p.id, p.server_id, p.model_version, p.score,
                                             None if p.result is None else tuple(p.result)) for p in preds))


def check_task_details(store: Store, pid: int) -> int:
    projects = ProjectService(store)
    with store.session() as s:
        ids = list(s.scalars(select(Task.id).where(Task.project_id == pid).order_by(Task.id)))
    with store.transaction() as s:  # a deleted annotation stays out of both
        s.execute(text("UPDATE annotations SET deleted = 1 WHERE id = (SELECT min(id) FROM annotations "
                       "WHERE task_id = :t)"), {"t": ids[0]})
    for tid in ids:
        assert projects.task_detail(tid) == orm_task_detail(store, tid)
    with pytest.raises(LookupError):
        projects.task_detail(10**9)
    return len(ids)


def chain_holds(store: Store) -> None:
    with store.session() as s:
        assert s.scalar(text("SELECT count(*) FROM audit_events WHERE kind = 'decision.recorded'"))
        assert verify_chain(s) is None


def orm_pending(store: Store, project_id: int) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(DecisionSync)
                        .join(Decision, Decision.id == DecisionSync.decision_id)
                        .where(Decision.project_id == project_id, DecisionSync.state == "pending")) or 0


def review_everything(projects: ProjectService, pid: int, n_tasks: int) -> ReviewSession:
    """Every kind of decision: accept, fix, reject with a reason, escalate, skip, an undo, Shift+A."""
    s = ReviewSession(projects, pid, reviewer="rev@example.com")
    verdicts = ["accept", "reject", "fix", "escalate", "skip", "undo", "shift_a"]
    for i in range(n_tasks):
        cur = s.current
        if cur is None:
            break
        kind = verdicts[i % len(verdicts)]
        if kind == "reject":
            s.decide("reject", reason="Wrong label", comment="see the guideline")
        elif kind == "fix":
            ann = s.focused_annotation()
            assert ann is not None
            s.decide("fix", result=list(ann.result))
        elif kind == "escalate":
            s.decide("escalate", reason="Edge case")
        elif kind == "undo":
            s.decide("accept")
            s.undo()
            s.decide("skip")
        elif kind == "shift_a":
            s.decide("accept", others="reject")
        else:
            s.decide(kind)
    return s


def check_equal(store: Store, pid: int) -> int:
    with store.session() as s:
        task_ids = sorted(set(s.scalars(select(Decision.task_id))))
    assert task_ids, "the test made no decisions"
    rows = 0
    for tid in task_ids:
        with store.session() as s:
            fast = sorted(tuple(r) for r in team_rows(s, tid))
        assert fast == sorted(orm_team_rows(store, tid))
        rows += len(fast)
    # delivery states: some decisions pending, as on a server project
    assert orm_pending(store, pid) == DecisionService(store).pending_count(pid) == 0
    with store.transaction() as s:
        s.execute(text("UPDATE decision_sync SET state = 'pending' WHERE decision_id % 2 = 0"))
    assert orm_pending(store, pid) == DecisionService(store).pending_count(pid) > 0
    assert DecisionService(store).pending_count(pid + 999) == orm_pending(store, pid + 999) == 0
    return rows


def test_fast_paths_equal_the_orm_paths_on_the_demo(store: Store) -> None:
    projects = ProjectService(store)
    pid = ensure_demo(store)
    review_everything(projects, pid, 14)
    assert check_equal(store, pid) >= 14
    assert check_task_details(store, pid) >= 14
    chain_holds(store)


def test_fast_paths_equal_the_orm_paths_on_generated_data(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "export.json"
    generate(src, 30)
    projects = ProjectService(store)
    pid = projects.import_file(src, CONFIG, "generated").summary.project_id
    review_everything(projects, pid, 21)
    assert check_equal(store, pid) >= 21
    assert check_task_details(store, pid) == 30
    chain_holds(store)


@pytest.mark.parametrize("verdict", ["accept", "fix", "reject", "skip"])
def test_recorded_rows_are_what_an_orm_flush_writes(store: Store, verdict: str) -> None:
    projects = ProjectService(store)
    pid = ensure_demo(store)
    s = ReviewSession(projects, pid, reviewer="rev@example.com")
    ann = s.focused_annotation()
    assert s.current is not None and ann is not None
    result = [dict(x) for x in ann.result] if verdict == "fix" else None
    reason = "Wrong label" if verdict == "reject" else None
    rec = DecisionService(store).record(pid, [DecisionRequest(
        task_id=s.current.id, verdict=verdict, annotation_id=ann.id, result=result, reason=reason,
        lead_time_ms=1200)], reviewer="rev@example.com")
    info = rec.decisions[0]
    # the same row written through the ORM, as record did before (a reference to compare the columns with)
    with store.transaction() as t:
        updated = t.scalar(select(Annotation.updated_at).where(Annotation.id == ann.id))
        ref = Decision(uuid="reference", project_id=pid, task_id=s.current.id, annotation_id=ann.id,
                       prediction_id=None, verdict=verdict, result=result, reason=reason, comment=None,
                       reviewer="rev@example.com", role="reviewer", created_at=info.created_at, lead_time_ms=1200,
                       seen_updated_at=updated)
        t.add(ref)
        t.flush()
        t.add(DecisionSync(decision_id=ref.id, state=info.sync_state, updated_at=info.created_at))
    cols = ("project_id, task_id, annotation_id, prediction_id, verdict, result, typeof(result), reason, comment, "
            "reviewer, role, created_at, lead_time_ms, seen_updated_at, retracts, origin")
    with store.session() as t:
        c = t.connection()
        ours = c.exec_driver_sql(f"SELECT {cols} FROM decisions WHERE uuid = ?", (info.uuid,)).one()
        theirs = c.exec_driver_sql(f"SELECT {cols} FROM decisions WHERE uuid = 'reference'").one()
        assert tuple(ours) == tuple(theirs)
        sync = "SELECT state, attempts, last_error, effect, updated_at FROM decision_sync WHERE decision_id = ?"
        our_id = c.exec_driver_sql("SELECT id FROM decisions WHERE uuid = ?", (info.uuid,)).scalar()
        assert tuple(c.exec_driver_sql(sync, (our_id,)).one()) == tuple(c.exec_driver_sql(sync, (ref.id,)).one())
        comments = t.scalars(select(Comment).where(Comment.decision_uuid == info.uuid)).all()
        assert [(x.text, x.author, x.annotation_id, x.task_id) for x in comments] == (
            [("Wrong label", "rev@example.com", ann.id, s.current.id)] if verdict == "reject" else [])
        gt = t.scalars(select(GroundTruth).where(GroundTruth.decision_uuid == info.uuid)).all()
        expected_gt = (list(result) if verdict == "fix" else list(ann.result)) if verdict in ("accept", "fix") else None
        assert [g.result for g in gt] == ([expected_gt] if expected_gt is not None else [])
        assert all(g.source == "decision" and g.annotation_id == ann.id for g in gt)
    chain_holds(store)


def test_an_audit_event_on_the_cursor_is_the_row_append_event_writes(tmp_path: Path, monkeypatch) -> None:
    """``append_event_cursor`` (the decision's hot path) and ``append_event`` (ORM session) write the same row:
    the payload's JSON text, its type, the previous hash and the hash; and the chain verifies."""
    import app.models.audit as audit

    monkeypatch.setattr(audit, "now_iso", lambda: "2026-12-05T11:00:00.000001Z")
    payload = {"uuid": "u-1", "verdict": "fix", "task": 7, "annotation": None, "from": "accept", "to": "fix",
               "result": [{"value": {"choices": ["pos"]}, "text": "naïve — “quoted”"}], "score": 0.5}
    rows = []
    for name, use_cursor in (("orm", False), ("cursor", True)):
        st = Store.open(tmp_path / name)
        try:
            for n in range(3):  # a chain of three: each links to the one before
                p = dict(payload, n=n)
                with st.transaction() as s:
                    if use_cursor:
                        raw = s.connection().connection.driver_connection
                        cur = raw.cursor()
                        audit.append_event_cursor(cur, "rev@example.com", "decision.recorded", p)
                        cur.close()
                    else:
                        audit.append_event(s, "rev@example.com", "decision.recorded", p)
            with st.session() as s:
                rows.append([tuple(r) for r in s.connection().exec_driver_sql(
                    "SELECT at, actor, kind, payload, typeof(payload), prev_hash, hash FROM audit_events "
                    "WHERE kind = 'decision.recorded' ORDER BY id")])
                assert verify_chain(s) is None
        finally:
            st.close()
    assert len(rows[0]) == 3 and rows[0] == rows[1]


def test_a_refused_request_rolls_back_the_whole_keystroke(store: Store) -> None:
    """The writes of the first request (on the DB-API cursor) are undone when a later one of the same
    keystroke is refused: nothing of it is stored, not even its audit event."""
    projects = ProjectService(store)
    pid = ensure_demo(store)
    s = ReviewSession(projects, pid, reviewer="rev@example.com")
    cur = s.current
    assert cur is not None and len(cur.annotations) >= 1
    tables = ("decisions", "decision_sync", "comments", "ground_truth", "audit_events")

    def counts() -> dict[str, int]:
        with store.session() as t:
            return {name: t.connection().exec_driver_sql(f"SELECT count(*) FROM {name}").scalar() for name in tables}

    before = counts()
    with pytest.raises(Exception, match="reject needs a reason"):
        DecisionService(store).record(pid, [
            DecisionRequest(task_id=cur.id, verdict="accept", annotation_id=cur.annotations[0].id, comment="ok"),
            DecisionRequest(task_id=cur.id, verdict="reject", annotation_id=cur.annotations[0].id)],
            reviewer="rev@example.com")
    assert counts() == before
    DecisionService(store).record(pid, [DecisionRequest(task_id=cur.id, verdict="accept",
                                                        annotation_id=cur.annotations[0].id, comment="ok")],
                                  reviewer="rev@example.com")
    after = counts()
    assert {k: after[k] - before[k] for k in tables} == {"decisions": 1, "decision_sync": 1, "comments": 1,
                                                         "ground_truth": 1, "audit_events": 1}
    chain_holds(store)


def test_a_decision_on_a_prediction_folds_its_result(store: Store, tmp_path: Path) -> None:
    """Accepting a model's prediction: the decision row names it, the ground truth is its result, and the audit
    event says so (the prediction branch of the cursor path)."""
    src = tmp_path / "export.json"
    generate(src, 3)
    projects = ProjectService(store)
    pid = projects.import_file(src, CONFIG, "generated").summary.project_id
    with store.session() as t:
        tid, prid, presult = t.execute(select(Prediction.task_id, Prediction.id, Prediction.result)
                                       .order_by(Prediction.id).limit(1)).one()
    rec = DecisionService(store).record(pid, [DecisionRequest(task_id=tid, verdict="accept", prediction_id=prid)],
                                        reviewer="rev@example.com")
    info = rec.decisions[0]
    assert (info.prediction_id, info.annotation_id, info.task_id) == (prid, None, tid) and rec.changes.ground_truth
    with store.session() as t:
        gt = t.execute(select(GroundTruth.result, GroundTruth.annotation_id, GroundTruth.decision_uuid)
                       .where(GroundTruth.task_id == tid)).one()
        assert tuple(gt) == (presult, None, info.uuid)
        d = t.execute(select(Decision.prediction_id, Decision.result, Decision.seen_updated_at)
                      .where(Decision.uuid == info.uuid)).one()
        assert tuple(d) == (prid, None, None)
        payload = t.scalar(text("SELECT payload FROM audit_events ORDER BY id DESC LIMIT 1"))
    ev = json.loads(payload)
    assert ev["prediction"] == prid and ev["ground_truth"] == {"from": None, "to": presult}
    with pytest.raises(Exception, match="does not belong"):
        DecisionService(store).record(pid, [DecisionRequest(task_id=tid + 1, verdict="accept", prediction_id=prid)],
                                      reviewer="rev@example.com")
    chain_holds(store)
