"""Review queues: every eligibility rule, every ordering (ties, missing scores), seeded randomness, presets,
routing to the expert queue and its resolution. Pure rules run on hand-made per-task inputs; the store-backed
parts (annotators, control values, review state, ground truth, escalations) on a small hand-made project."""

from __future__ import annotations

import json
import uuid as uuidlib
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from app.models.schema import AuditEvent, Decision, DecisionSync, Member
from app.models.store import Store, now_iso
from app.services.decisions import DecisionRequest, DecisionService
from app.services.projects import ProjectService
from app.services.queues import (
    ORDERS,
    QueueCounts,
    QueueError,
    QueueInputs,
    QueueSpec,
    ReviewState,
    assign,
    assignments,
    build_queue,
    delete_preset,
    get_expert_threshold,
    get_preset,
    list_presets,
    queue_counts,
    queue_inputs,
    save_preset,
    set_expert_threshold,
)
from tests.conftest import SMALL_CONFIG, choice

NAN = float("nan")
EMPTY = ReviewState(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), {})


def made(agreement, confidence=None, uncertainty=None, created=None, disagreement=None) -> QueueInputs:
    n = len(agreement)
    tasks = np.arange(1, n + 1, dtype=np.int64)

    def col(v):
        return np.array(v if v is not None else [NAN] * n, dtype=float)

    return QueueInputs(1, ("v",), tasks, tasks + 1000,
                       np.array(created if created is not None else range(n), dtype=np.int64), col(agreement), {},
                       col(confidence), {}, col(uncertainty),
                       {"m1": col(disagreement)} if disagreement is not None else {})


def order_of(inp: QueueInputs, spec: QueueSpec, state: ReviewState = EMPTY, **kw) -> list[int]:
    return build_queue(None, 1, spec, inputs=inp, state=state, expert_threshold=kw.pop("threshold", None),  # type: ignore[arg-type]
                       **kw).task_ids.tolist()


# -- orderings (hand-made inputs) ----------------------------------------------------------------------------------
def test_agreement_order_lowest_first_ties_by_task_id_missing_last() -> None:
    inp = made([0.5, NAN, 0.2, 0.5, 0.9, 0.2])
    # 0.2 (tasks 3 and 6: tie -> id), 0.5 (1, 4), 0.9 (5), then the task with one annotation (no agreement)
    assert order_of(inp, QueueSpec(order="agreement")) == [3, 6, 1, 4, 5, 2]


def test_confidence_order_lowest_first_without_prediction_last() -> None:
    inp = made([NAN] * 5, confidence=[0.7, 0.1, NAN, 0.7, 0.4])
    assert order_of(inp, QueueSpec(order="confidence")) == [2, 5, 1, 4, 3]


def test_uncertainty_order_highest_first_missing_last() -> None:
    inp = made([NAN] * 5, uncertainty=[0.1, NAN, 0.6, 0.6, 0.0])
    assert order_of(inp, QueueSpec(order="uncertainty")) == [3, 4, 1, 5, 2]


def test_model_disagreement_order_most_first_not_compared_last() -> None:
    inp = made([NAN] * 4, disagreement=[0.0, 1.0, NAN, 0.5])
    assert order_of(inp, QueueSpec(order="model-disagreement")) == [2, 4, 1, 3]


def test_oldest_order_by_creation_rank() -> None:
    inp = made([NAN] * 4, created=[3, 0, 2, 1])
    assert order_of(inp, QueueSpec(order="oldest")) == [2, 4, 3, 1]


def test_random_order_is_seeded_reproducible_and_a_permutation() -> None:
    inp = made([NAN] * 50)
    a = order_of(inp, QueueSpec(order="random", seed=7))
    assert a == order_of(inp, QueueSpec(order="random", seed=7))
    assert sorted(a) == list(range(1, 51)) and a != sorted(a)
    assert a != order_of(inp, QueueSpec(order="random", seed=8))


# -- eligibility rules (hand-made inputs) ------------------------------------------------------------------------
def test_agreement_below_rule_never_admits_a_missing_agreement() -> None:
    inp = made([0.5, NAN, 0.2, 0.8])
    q = build_queue(None, 1, QueueSpec(agreement_below=0.6), inputs=inp, state=EMPTY,  # type: ignore[arg-type]
                    expert_threshold=None)
    assert q.task_ids.tolist() == [3, 1]
    assert q.items()[0].reasons == ("agreement 0.200 below 0.6",)
    assert q.items()[0].task == 1003 and q.items()[0].agreement == 0.2


def test_confidence_below_rule() -> None:
    inp = made([NAN] * 4, confidence=[0.9, 0.3, NAN, 0.49])
    assert order_of(inp, QueueSpec(confidence_below=0.5, order="confidence")) == [2, 4]


def test_disagrees_with_model_rule() -> None:
    inp = made([NAN] * 4, disagreement=[0.0, 1.0, NAN, 0.5])
    assert order_of(inp, QueueSpec(model_version="m1", disagrees_with_model=True)) == [2, 4]


def test_not_reviewed_and_ground_truth_rules() -> None:
    inp = made([0.1, 0.2, 0.3, 0.4])
    state = ReviewState(np.array([2]), np.zeros(0, np.int64), np.array([3, 4]), {})
    assert order_of(inp, QueueSpec(not_reviewed=True), state) == [1, 3, 4]
    assert order_of(inp, QueueSpec(ground_truth="only"), state) == [3, 4]
    assert order_of(inp, QueueSpec(ground_truth="exclude"), state) == [1, 2]
    assert order_of(inp, QueueSpec(ground_truth="exclude", not_reviewed=True), state) == [1]


def test_sample_is_seeded_about_n_percent_and_independent_of_other_rules() -> None:
    inp = made(list(np.linspace(0, 1, 2000, endpoint=False)))
    s10 = set(order_of(inp, QueueSpec(sample_pct=10, seed=3)))
    assert 150 < len(s10) < 250
    assert s10 == set(order_of(inp, QueueSpec(sample_pct=10, seed=3)))
    assert s10 != set(order_of(inp, QueueSpec(sample_pct=10, seed=4)))
    # a task's membership does not depend on the other rules: the sample of a sub-queue is the intersection
    low = set(order_of(inp, QueueSpec(agreement_below=0.5)))
    assert set(order_of(inp, QueueSpec(agreement_below=0.5, sample_pct=10, seed=3))) == s10 & low


def test_rules_combine_and_bad_specs_are_refused() -> None:
    inp = made([0.1, 0.2, 0.9, 0.3], confidence=[0.9, 0.2, 0.1, 0.3])
    assert order_of(inp, QueueSpec(agreement_below=0.5, confidence_below=0.5)) == [2, 4]
    for bad in (dict(order="alphabet"), dict(role="boss"), dict(agreement_below=2.0), dict(sample_pct=0),
                dict(value="x"), dict(disagrees_with_model=True), dict(ground_truth="maybe")):
        with pytest.raises(QueueError):
            QueueSpec(**bad)  # type: ignore[arg-type]


def test_routing_on_inputs_escalated_and_below_threshold_go_to_the_expert() -> None:
    inp = made([0.1, 0.2, 0.9, NAN])
    state = ReviewState(np.zeros(0, np.int64), np.array([2]), np.zeros(0, np.int64), {3: "escalated by Priya"})
    # task 1 is below 0.5; task 2 also, but an expert judged it already; task 3 is escalated
    assert order_of(inp, QueueSpec(role="expert"), state, threshold=0.5) == [1, 3]
    assert order_of(inp, QueueSpec(role="reviewer"), state, threshold=0.5) == [2, 4]
    q = build_queue(None, 1, QueueSpec(role="expert"), inputs=inp, state=state,  # type: ignore[arg-type]
                    expert_threshold=0.5)
    assert [i.reasons for i in q.items()] == [("agreement 0.100 below the expert threshold 0.5",),
                                              ("escalated by Priya",)]


# -- a small project in a store ------------------------------------------------------------------------------------
def ann(aid: int, user: int, label: str, **kw) -> dict:
    return {"id": aid, "completed_by": user, "result": [choice(label)], **kw}


EXPORT = [
    {"id": 11, "data": {"text": "a"}, "created_at": "2026-01-05T00:00:00Z",
     "annotations": [ann(101, 2, "pos"), ann(102, 3, "pos")],
     "predictions": [{"id": 501, "model_version": "v1", "score": 0.9, "result": [choice("pos")]},
                     {"id": 502, "model_version": "v2", "score": 0.6, "result": [choice("pos")]}]},
    {"id": 12, "data": {"text": "b"}, "created_at": "2026-01-01T00:00:00Z",
     "annotations": [ann(103, 2, "pos"), ann(104, 3, "neg")],
     "predictions": [{"id": 503, "model_version": "v1", "score": 0.3, "result": [choice("neg")]}]},
    {"id": 13, "data": {"text": "c"}, "created_at": "2026-01-03T00:00:00Z",
     "annotations": [ann(105, 2, "neg")]},
    {"id": 14, "data": {"text": "d"}, "created_at": "2026-01-02T00:00:00Z",
     "annotations": [ann(106, 3, "neutral"), ann(107, 4, "neutral", ground_truth=True)]},
]


@pytest.fixture
def small(store: Store, tmp_path: Path) -> tuple[Store, int, dict[int, int]]:
    src = tmp_path / "q.json"
    src.write_text(json.dumps(EXPORT))
    pid = ProjectService(store).import_file(src, SMALL_CONFIG, "queues").summary.project_id
    with store.transaction() as s:
        s.add(Member(project_id=pid, user_id=9001, email="priya.shah@example.com", first_name="Priya",
                     last_name="Shah"))
    ids = {sid: ProjectService(store).find_task(pid, sid) for sid in (11, 12, 13, 14)}
    return store, pid, ids


def keys(q) -> list[int]:
    return [i.task for i in q.items()]


def test_inputs_from_the_store(small) -> None:
    store, pid, ids = small
    inp = queue_inputs(store, pid)
    at = {int(t): i for i, t in enumerate(inp.tasks)}
    # overall: the mean over the controls (both left ner and quality empty: agreed); on sentiment: 0
    assert inp.agreement[at[ids[11]]] == 1.0 and inp.agreement[at[ids[12]]] == pytest.approx(2 / 3)
    assert inp.agreement_by_control["sentiment"][at[ids[12]]] == 0.0
    assert np.isnan(inp.agreement[at[ids[13]]])  # one annotation: no agreement
    assert inp.confidence[at[ids[11]]] == 0.6  # the lowest of the task's predictions
    assert inp.confidence_by_model["v1"][at[ids[11]]] == 0.9
    assert np.isnan(inp.confidence[at[ids[14]]])
    assert keys(build_queue(store, pid, QueueSpec(order="oldest"))) == [12, 14, 13, 11]
    # agreement order: 0.67, 1.0 (tie 11/14 by id), then the one-annotation task last
    assert keys(build_queue(store, pid, QueueSpec(order="agreement"))) == [12, 11, 14, 13]
    assert keys(build_queue(store, pid, QueueSpec(order="confidence"))) == [12, 11, 13, 14]
    assert keys(build_queue(store, pid, QueueSpec(order="confidence", model_version="v1"))) == [12, 11, 13, 14]


def test_annotator_and_control_value_rules(small) -> None:
    store, pid, _ = small
    q = build_queue(store, pid, QueueSpec(annotators=(4,)))
    assert keys(q) == [14] and q.items()[0].reasons == ("annotated by user #4",)
    assert keys(build_queue(store, pid, QueueSpec(annotators=(3, 4), order="oldest"))) == [12, 14, 11]
    q = build_queue(store, pid, QueueSpec(control="sentiment", value="neg", order="oldest"))
    assert keys(q) == [12, 13] and q.items()[0].reasons == ("sentiment = neg",)
    assert keys(build_queue(store, pid, QueueSpec(control="sentiment", value="nothing"))) == []


def test_not_reviewed_and_ground_truth_from_the_store(small) -> None:
    store, pid, ids = small
    assert keys(build_queue(store, pid, QueueSpec(ground_truth="only"))) == [14]  # the server flag
    svc = DecisionService(store)
    rec = svc.record(pid, [DecisionRequest(task_id=ids[12], verdict="accept", annotation_id=_ann(store, 103))],
                     reviewer="me@example.com")
    assert keys(build_queue(store, pid, QueueSpec(not_reviewed=True, order="oldest"))) == [14, 13, 11]
    assert keys(build_queue(store, pid, QueueSpec(ground_truth="only", order="oldest"))) == [12, 14]
    svc.retract_many([rec.decisions[0].uuid], reviewer="me@example.com")  # undone: back in, no reference
    assert keys(build_queue(store, pid, QueueSpec(not_reviewed=True, order="oldest"))) == [12, 14, 13, 11]
    assert keys(build_queue(store, pid, QueueSpec(ground_truth="exclude", order="oldest"))) == [12, 13, 11]


def _ann(store: Store, server_id: int) -> int:
    from app.models.schema import Annotation

    with store.session() as s:
        return int(s.scalar(select(Annotation.id).where(Annotation.server_id == server_id)))


def pulled(store: Store, pid: int, task_id: int, annotation_id: int | None, verdict: str, *, role: str = "reviewer",
           reason: str | None = None, at: str | None = None) -> str:
    uid = str(uuidlib.uuid4())
    with store.transaction() as s:
        d = Decision(uuid=uid, project_id=pid, task_id=task_id, annotation_id=annotation_id, verdict=verdict,
                     reason=reason, reviewer="priya.shah@example.com", role=role, created_at=at or now_iso(),
                     origin="server")
        s.add(d)
        s.flush()
        s.add(DecisionSync(decision_id=d.id, state="synced", updated_at=now_iso()))
    return uid


def test_a_pulled_escalation_lands_in_the_expert_queue_until_an_expert_decides(small) -> None:
    store, pid, ids = small
    pulled(store, pid, ids[11], _ann(store, 101), "escalate", reason="Unclear policy")
    q = build_queue(store, pid, QueueSpec(role="expert"))
    assert keys(q) == [11]
    assert q.items()[0].reasons == ("escalated by Priya Shah: Unclear policy (pulled)",)
    assert 11 not in keys(build_queue(store, pid, QueueSpec(role="reviewer")))
    assert queue_counts(store, pid) == QueueCounts(reviewer=3, expert=1)
    DecisionService(store).record(pid, [DecisionRequest(task_id=ids[11], verdict="accept",
                                                        annotation_id=_ann(store, 101))],
                                  reviewer="expert@example.com", role="expert")
    assert keys(build_queue(store, pid, QueueSpec(role="expert"))) == []
    assert 11 in keys(build_queue(store, pid, QueueSpec(role="reviewer")))


def test_agreement_below_the_expert_threshold_routes_until_an_expert_decides(small) -> None:
    store, pid, ids = small
    assert get_expert_threshold(store, pid) is None
    assert keys(build_queue(store, pid, QueueSpec(role="expert"))) == []
    set_expert_threshold(store, pid, 0.7, actor="lead@example.com")
    q = build_queue(store, pid, QueueSpec(role="expert"))
    assert keys(q) == [12] and q.items()[0].reasons == ("agreement 0.667 below the expert threshold 0.7",)
    assert keys(build_queue(store, pid, QueueSpec(role="reviewer", order="oldest"))) == [14, 13, 11]
    # a reviewer's verdict does not resolve it; an expert's does
    DecisionService(store).record(pid, [DecisionRequest(task_id=ids[12], verdict="reject", reason="x",
                                                        annotation_id=_ann(store, 104))], reviewer="r@example.com")
    assert keys(build_queue(store, pid, QueueSpec(role="expert"))) == [12]
    pulled(store, pid, ids[12], _ann(store, 103), "accept", role="expert")
    assert keys(build_queue(store, pid, QueueSpec(role="expert"))) == []
    with pytest.raises(QueueError):
        set_expert_threshold(store, pid, 1.5)


def test_presets_round_trip_and_every_settings_change_is_audited(small) -> None:
    store, pid, _ = small
    spec = QueueSpec(agreement_below=0.7, annotators=(2, 3), control="sentiment", value="pos", confidence_below=0.8,
                     model_version="v1", disagrees_with_model=True, not_reviewed=True, ground_truth="exclude",
                     sample_pct=25.0, order="uncertainty", role="expert", seed=42)
    save_preset(store, pid, "hard ones", spec, actor="lead@example.com")
    assert get_preset(store, pid, "hard ones") == spec
    save_preset(store, pid, "hard ones", spec.with_(order="oldest"), actor="lead@example.com")
    save_preset(store, pid, "all", QueueSpec(), actor="lead@example.com")
    assert [(p.name, p.spec.order) for p in list_presets(store, pid)] == [("all", "agreement"), ("hard ones", "oldest")]
    delete_preset(store, pid, "all", actor="lead@example.com")
    assert [p.name for p in list_presets(store, pid)] == ["hard ones"]
    with pytest.raises(QueueError):
        delete_preset(store, pid, "all")
    with pytest.raises(QueueError):
        get_preset(store, pid, "all")
    assign(store, pid, "Tom@Example.com", "expert", actor="lead@example.com")
    assign(store, pid, "tom@example.com", "expert", actor="lead@example.com")  # already: no second event
    assign(store, pid, "ann@example.com", "hard ones", actor="lead@example.com")
    with pytest.raises(QueueError):
        assign(store, pid, "ann@example.com", "no such queue")
    assert [(a.reviewer, a.queue, a.source) for a in assignments(store, pid)] == [
        ("tom@example.com", "expert", "local"), ("ann@example.com", "hard ones", "local")]
    assign(store, pid, "ann@example.com", "hard ones", remove=True, actor="lead@example.com")
    set_expert_threshold(store, pid, 0.4, actor="lead@example.com")
    set_expert_threshold(store, pid, 0.4, actor="lead@example.com")  # unchanged: no event
    with store.session() as s:
        kinds = [k for k in s.scalars(select(AuditEvent.kind).order_by(AuditEvent.id)) if k.startswith("queue.")]
        last = s.scalars(select(AuditEvent.payload).where(AuditEvent.kind == "queue.expert_threshold")).all()
    assert kinds == ["queue.preset.saved", "queue.preset.saved", "queue.preset.saved", "queue.preset.deleted",
                     "queue.assigned", "queue.assigned", "queue.unassigned", "queue.expert_threshold"]
    assert [p["to"] for p in last] == [0.4]


def test_every_order_runs_on_the_demo(store: Store) -> None:
    from app.services.demo import ensure_demo

    pid = ensure_demo(store)
    n = None
    for order in ORDERS:
        q = build_queue(store, pid, QueueSpec(order=order))
        n = n or len(q)
        assert len(q) == n == 320
        assert sorted(q.task_ids.tolist()) == sorted(set(q.task_ids.tolist()))


def test_the_review_session_walks_the_built_queue_and_an_expert_verdict_resolves(small) -> None:
    from app.services.review import QueueFilter, ReviewSession

    store, pid, ids = small
    pulled(store, pid, ids[11], _ann(store, 101), "escalate", reason="Unclear policy")
    set_expert_threshold(store, pid, 0.7)
    s = ReviewSession(ProjectService(store), pid, reviewer="me@example.com",
                      queue=QueueFilter(spec=QueueSpec(order="oldest")))
    assert s.task_ids == [ids[14], ids[13]]  # 12 (agreement 0.67) and 11 (escalated) are the expert's
    assert s.queue_reasons() == ("in the project (no rule)",)
    s.set_role("expert")
    assert s.task_ids == [ids[12], ids[11]] and s.remaining() == 2  # oldest first
    assert s.queue_reasons() == ("agreement 0.667 below the expert threshold 0.7",)
    s.decide("accept")  # the expert's verdict on task 12 resolves it: the session moves on
    assert not s.task_is_open(ids[12]) and s.remaining() == 1
    assert s.current is not None and s.current.id == ids[11]
    assert s.queue_reasons() == ("escalated by Priya Shah: Unclear policy (pulled)",)
    assert keys(build_queue(store, pid, QueueSpec(role="expert"))) == [11]
    s.decide("accept")
    assert keys(build_queue(store, pid, QueueSpec(role="expert"))) == []
    with store.session() as ss:
        rows = ss.execute(select(Decision.role, Decision.origin, DecisionSync.state).join(
            DecisionSync, DecisionSync.decision_id == Decision.id).where(Decision.reviewer == "me@example.com")).all()
    assert rows == [("expert", "local", "local")] * 2  # on the record (a file project: nothing to push)


def test_plain_counts_match_the_plain_session(small) -> None:
    from app.services.queues import plain_counts
    from app.services.review import ReviewSession

    store, pid, ids = small
    pulled(store, pid, ids[13], None, "escalate", reason="?")
    assert plain_counts(store, pid) == QueueCounts(reviewer=3, expert=1)
    projects = ProjectService(store)
    assert len(ReviewSession(projects, pid, reviewer="me@example.com", role="expert").task_ids) == 1


def test_the_queue_state_is_remembered_and_only_role_or_queue_changes_are_audited(store: Store) -> None:
    from app.services.settings import QueueState, load_queue_state, save_queue_state

    assert load_queue_state(store.data_dir, 1) == QueueState()  # never chosen: the settings' role
    save_queue_state(store.data_dir, 1, QueueState("expert", "", 5), actor="me@example.com")  # first: no change
    save_queue_state(store.data_dir, 1, QueueState("expert", "order:oldest", 5), actor="me@example.com")
    save_queue_state(store.data_dir, 1, QueueState("expert", "order:oldest", 9), actor="me@example.com")
    save_queue_state(store.data_dir, 2, QueueState("reviewer", "preset:x", 1), actor="me@example.com")
    save_queue_state(store.data_dir, 1, QueueState("reviewer", "order:oldest", 9), actor="me@example.com")
    assert load_queue_state(store.data_dir, 1) == QueueState("reviewer", "order:oldest", 9)
    assert load_queue_state(store.data_dir, 2) == QueueState("reviewer", "preset:x", 1)
    with store.session() as s:
        events = s.execute(select(AuditEvent.kind, AuditEvent.payload).where(
            AuditEvent.kind == "settings.queue").order_by(AuditEvent.id)).all()
    assert [e.payload["changes"] for e in events] == [
        {"queue": {"from": "", "to": "order:oldest"}}, {"queue": {"from": "", "to": "preset:x"}},
        {"role": {"from": "expert", "to": "reviewer"}}]


def test_a_verdict_keeps_the_scores_cached_and_a_pulled_change_does_not(small) -> None:
    """The cheap cache check ignores verdicts (decision.* events never touch what the scores read), so the
    review loop's next queue build does not re-check; a pull's change to an annotation still invalidates."""
    from sqlalchemy import update

    from app.models.audit import append_event
    from app.models.schema import Annotation
    from app.services.queues import inputs_ready

    store, pid, ids = small
    before = queue_inputs(store, pid)
    assert inputs_ready(store, pid)
    aid = ProjectService(store).task_detail(ids[12]).annotations[0].id
    DecisionService(store).record(pid, [DecisionRequest(task_id=ids[12], verdict="accept", annotation_id=aid)],
                                  reviewer="rev@example.com")
    assert inputs_ready(store, pid)  # a verdict: still valid, no version check on the next build
    assert queue_inputs(store, pid) is before
    with store.transaction() as s:  # what a pull does when the server deleted an annotation
        s.execute(update(Annotation).where(Annotation.id == aid).values(deleted=True, updated_at=now_iso()))
        append_event(s, "rev@example.com", "sync.pulled", {"project_id": pid, "deleted": 1})
    assert not inputs_ready(store, pid)
    after = queue_inputs(store, pid)
    at = {int(t): i for i, t in enumerate(after.tasks)}
    assert after is not before and after.agreement[at[ids[12]]] != before.agreement[at[ids[12]]]
