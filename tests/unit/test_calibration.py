"""Calibration (issue 15 point 6): scoring per control against hand-computed values, pass/fail at the
threshold boundary, the production gate, and the audit trail of the requirement."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from sqlalchemy import select

from app.models.schema import Annotation, AuditEvent, Decision, GroundTruth, Task
from app.models.store import Store
from app.services.calibration import (
    CalibrationError,
    CalibrationService,
    aggregate,
    score_item,
)
from app.services.decisions import DecisionRequest, DecisionService
from tests.conftest import SMALL_CONFIG, choice

CONTROLS = [("sentiment", "choices", {}), ("ner", "labels", {}), ("quality", "rating", {"maxRating": "5"})]


def span(start: int, end: int, label: str = "ORG") -> dict[str, Any]:
    return {"id": f"s{start}", "from_name": "ner", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": end, "labels": [label]}}


def rating(v: int) -> dict[str, Any]:
    return {"id": "q", "from_name": "quality", "to_name": "text", "type": "rating", "value": {"rating": v}}


def test_score_item_per_control_hand_computed() -> None:
    ref = [choice("neg"), span(0, 10), rating(4)]
    ann = [choice("neg"), span(5, 10), rating(4)]  # span IoU = 5 / 10
    assert score_item(CONTROLS, "accept", ann, None, ref) == {"sentiment": 1.0, "ner": 0.5, "quality": 1.0}
    # reject says "wrong": 1 - match
    assert score_item(CONTROLS, "reject", ann, None, ref) == {"sentiment": 0.0, "ner": 0.5, "quality": 0.0}
    # a fix is scored by what it fixed to; the annotation shown does not matter
    fix = [choice("pos"), span(0, 10), rating(4)]
    assert score_item(CONTROLS, "fix", ann, fix, ref) == {"sentiment": 0.0, "ner": 1.0, "quality": 1.0}
    # a control absent from the reference, the annotation and the fix is not scored
    assert score_item(CONTROLS, "accept", [choice("pos")], None, [choice("neg")]) == {"sentiment": 0.0}
    with pytest.raises(CalibrationError):
        score_item(CONTROLS, "escalate", ann, None, ref)


def test_aggregate_means_per_control_and_the_threshold_boundary() -> None:
    items = [{"sentiment": 1.0, "ner": 0.5}, {"sentiment": 0.0}, {"sentiment": 1.0, "ner": 1.0}]
    scores, passed = aggregate(items, ["sentiment", "ner", "quality"], 0.75)
    assert [(s.control, s.score, s.n) for s in scores] == [("sentiment", 2 / 3, 3), ("ner", 0.75, 2)]
    assert passed is False  # sentiment 0.667 < 0.75
    _, passed = aggregate(items, ["sentiment", "ner"], 2 / 3)
    assert passed is True  # every control >= threshold, the boundary included (ner 0.75, sentiment 2/3)
    _, passed = aggregate(items, ["sentiment", "ner"], 0.7501)
    assert passed is False
    assert aggregate([], ["sentiment"], 0.0) == ((), False)  # nothing scored never passes


def _project(store: Store, n_tasks: int) -> tuple[int, dict[int, int], dict[int, list[int]]]:
    """Tasks 1..n, two annotators each ("neg" by ann, "pos" by bob); every task's reference is "neg"
    (a server flag on ann's annotation)."""
    from app.services.projects import ProjectService

    export = [{"id": k, "data": {"text": f"text {k}"}, "annotations": [
        {"id": 100 + k, "completed_by": 2, "result": [choice("neg")], "ground_truth": True},
        {"id": 200 + k, "completed_by": 3, "result": [choice("pos")]}]} for k in range(1, n_tasks + 1)]
    pid = ProjectService(store).import_file(io.BytesIO(json.dumps(export).encode()), SMALL_CONFIG,
                                            "cal").summary.project_id
    with store.session() as s:
        tasks = dict(s.execute(select(Task.id, Task.server_id).where(Task.project_id == pid)).all())
        anns: dict[int, list[int]] = {}
        for aid, tid in s.execute(select(Annotation.id, Annotation.task_id)):
            anns.setdefault(tid, []).append(aid)
    return pid, tasks, anns


def test_a_round_blocks_then_unlocks_production(store: Store) -> None:
    pid, _tasks, _anns = _project(store, 6)
    cal = CalibrationService(store)
    rev = "new@example.com"
    assert cal.production_unlocked(pid, rev)  # nothing required yet
    with pytest.raises(CalibrationError, match="6 ground-truth tasks"):
        cal.require(pid, 7, 0.8, actor="lead@example.com")
    cal.require(pid, 4, 0.75, actor="lead@example.com")
    st = cal.status(pid, rev)
    assert st.locked and not st.passed and st.open_round is None

    rnd = cal.start_round(pid, rev)
    assert len(rnd.items) == 4 and len({i.task_id for i in rnd.items}) == 4
    # the annotation shown is not the reference's own (ann's flagged one) where the task has another
    with store.session() as s:
        flagged = set(s.scalars(select(Annotation.id).where(Annotation.ground_truth.is_(True))))
    assert not any(i.annotation_id in flagged for i in rnd.items)
    assert cal.start_round(pid, rev).round_id == rnd.round_id  # resumed, not a second round
    with pytest.raises(CalibrationError, match="not judged"):
        cal.finish(rnd.round_id, reviewer=rev)
    # bob's "pos" is wrong: reject is right (1), accept is wrong (0); 2 of 4 right = 0.5 < 0.75 -> fail
    for i, verdict in zip(rnd.items, ("reject", "reject", "accept", "accept"), strict=True):
        cal.judge(rnd.round_id, i.position, verdict, reviewer=rev)
    with pytest.raises(CalibrationError, match="is new@example.com's"):
        cal.judge(rnd.round_id, 0, "accept", reviewer="other@example.com")
    done = cal.finish(rnd.round_id, reviewer=rev)
    assert done.passed is False and [(c.control, c.score, c.n) for c in done.scores] == [("sentiment", 0.5, 4)]
    assert cal.status(pid, rev).locked
    with pytest.raises(CalibrationError, match="finished"):
        cal.judge(rnd.round_id, 0, "reject", reviewer=rev)

    # a second round: 3 rejects + a fix to the reference = 4 of 4... and a fix to "neutral" scores 0:
    # 3 of 4 right = 0.75, exactly the threshold -> pass
    rnd2 = cal.start_round(pid, rev)
    assert rnd2.round_id != rnd.round_id
    verdicts = [("reject", None), ("reject", None), ("reject", None), ("fix", [choice("neutral")])]
    for i, (verdict, result) in zip(rnd2.items, verdicts, strict=True):
        cal.judge(rnd2.round_id, i.position, verdict, reviewer=rev, result=result)
    done2 = cal.finish(rnd2.round_id, reviewer=rev)
    assert done2.passed is True and done2.scores[0].score == 0.75
    assert cal.production_unlocked(pid, rev)
    # a stricter requirement locks again; the lead turning it off unlocks everyone
    cal.require(pid, 4, 0.9, actor="lead@example.com")
    assert not cal.production_unlocked(pid, rev)
    cal.turn_off(pid, actor="lead@example.com")
    assert cal.production_unlocked(pid, rev)
    assert [r.round_id for r in cal.results(pid)] == [rnd.round_id, rnd2.round_id]
    assert [r.round_id for r in cal.latest_results(pid)] == [rnd2.round_id]

    # calibration never touches production: no decisions, no ground-truth rows; the audit trail has it all
    with store.session() as s:
        assert s.scalars(select(Decision)).all() == []
        assert s.scalars(select(GroundTruth)).all() == []
        kinds = [k for (k,) in s.execute(select(AuditEvent.kind).order_by(AuditEvent.id))
                 if k.startswith("calibration.")]
        events = {k: p for k, p in s.execute(select(AuditEvent.kind, AuditEvent.payload)
                                               .where(AuditEvent.kind == "calibration.off"))}
    assert kinds.count("calibration.required") == 2 and kinds.count("calibration.off") == 1
    assert kinds.count("calibration.judged") == 8 and kinds.count("calibration.finished") == 2
    assert events["calibration.off"]["from"] == {"required": True, "n_tasks": 4, "threshold": 0.9}


def test_scores_use_the_current_reference_and_skip_own_decisions(store: Store) -> None:
    pid, tasks, anns = _project(store, 3)
    by_sid = {sid: tid for tid, sid in tasks.items()}
    # the candidate decided task 1 (fixed its reference to "pos"): rounds prefer tasks they did not decide
    DecisionService(store).record(pid, [DecisionRequest(by_sid[1], "fix", annotation_id=anns[by_sid[1]][0],
                                                        result=[choice("pos")])], reviewer="cand@example.com")
    cal = CalibrationService(store)
    cal.require(pid, 2, 1.0, actor="lead@example.com")
    rnd = cal.start_round(pid, "cand@example.com")
    assert by_sid[1] not in {i.task_id for i in rnd.items}
    for i in rnd.items:
        cal.judge(rnd.round_id, i.position, "reject", reviewer="cand@example.com")
    assert cal.finish(rnd.round_id, reviewer="cand@example.com").passed is True
    # a round of 3 must include task 1; accepting bob's "pos" there is right against the new reference
    cal.require(pid, 3, 1.0, actor="lead@example.com")
    rnd = cal.start_round(pid, "cand@example.com")
    assert rnd.items[-1].task_id == by_sid[1]
    for i in rnd.items:
        cal.judge(rnd.round_id, i.position, "accept" if i.task_id == by_sid[1] else "reject",
                  reviewer="cand@example.com")
    done = cal.finish(rnd.round_id, reviewer="cand@example.com")
    assert done.passed is True and done.scores[0].score == 1.0


def test_bad_requests(store: Store) -> None:
    pid, _tasks, _anns = _project(store, 2)
    cal = CalibrationService(store)
    with pytest.raises(CalibrationError):
        cal.require(pid, 0, 0.5, actor="x")
    with pytest.raises(CalibrationError):
        cal.require(pid, 1, -0.1, actor="x")
    with pytest.raises(LookupError):
        cal.requirement(999)
    cal.require(pid, 1, 0.5, actor="x")
    rnd = cal.start_round(pid, "r@example.com")
    with pytest.raises(CalibrationError, match="fixed result"):
        cal.judge(rnd.round_id, 0, "fix", reviewer="r@example.com")
    with pytest.raises(CalibrationError, match="labeling config"):
        cal.judge(rnd.round_id, 0, "fix", reviewer="r@example.com", result=[choice("nope")])
    with pytest.raises(CalibrationError, match="position 5"):
        cal.judge(rnd.round_id, 5, "accept", reviewer="r@example.com")
