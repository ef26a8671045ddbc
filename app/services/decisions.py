"""Decisions: append-only verdict events, retractions (undo), ground-truth folding, listing.

Every write is one transaction that returns :class:`Changes`; a decision is durably committed
(SQLite WAL, ``synchronous=FULL``) when :meth:`DecisionService.record` returns.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, insert, select
from sqlalchemy.orm import Session

from app.models.audit import append_event
from app.models.config import parse_config, validate_result
from app.models.schema import (
    Annotation,
    Comment,
    Decision,
    DecisionSync,
    GroundTruth,
    Prediction,
    Project,
    Task,
)
from app.models.store import Store, now_iso
from app.services.changes import Changes

VERDICTS = ("accept", "fix", "reject", "escalate", "skip")
JUDGEMENTS = ("accept", "fix", "reject")  # verdicts that settle an annotation
DEFAULT_REJECT_REASONS = (
    "Wrong label",
    "Boundary or region off",
    "Missed something",
    "Extra or spurious item",
    "Breaks the guidelines",
    "Ambiguous example",
    "Low effort / random",
    "Other",
)


PENDING_COUNT_SQL = ("SELECT count(*) FROM decision_sync JOIN decisions ON decisions.id = decision_sync.decision_id "
                     "WHERE decisions.project_id = ? AND decision_sync.state = 'pending'")


class DecisionError(ValueError):
    """A decision that cannot be recorded as asked; nothing was written."""


@dataclass(frozen=True)
class DecisionInfo:
    uuid: str
    project_id: int
    task_id: int
    task_server_id: int | None
    annotation_id: int | None
    annotation_server_id: int | None
    prediction_id: int | None
    verdict: str
    result: tuple[Any, ...] | None
    reason: str | None
    comment: str | None
    reviewer: str
    role: str
    created_at: str
    lead_time_ms: int | None
    retracts: str | None
    sync_state: str
    retracted: bool = False
    origin: str = "local"  # local: recorded here; server: another reviewer's, brought by a pull (read-only)


@dataclass(frozen=True)
class DecisionRequest:
    task_id: int
    verdict: str
    annotation_id: int | None = None
    prediction_id: int | None = None
    result: Sequence[Any] | None = None
    reason: str | None = None
    comment: str | None = None
    lead_time_ms: int | None = None


@dataclass(frozen=True)
class Recorded:
    decisions: tuple[DecisionInfo, ...]
    changes: Changes = field(default_factory=Changes)


def new_uuid() -> str:
    return str(uuidlib.uuid4())


class DecisionService:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- writes ------------------------------------------------------------------------------
    def record(self, project_id: int, requests: Iterable[DecisionRequest], *, reviewer: str,
               role: str = "reviewer") -> Recorded:
        """Record one or more decisions in ONE transaction (all or nothing)."""
        reqs = list(requests)
        if not reqs:
            raise DecisionError("nothing to record")
        out: list[DecisionInfo] = []
        gt_changed = False
        with self.store.transaction() as s:
            # column reads instead of ORM objects: this is the review hot path (one key press), and
            # loading whole rows (task data, label config JSON) cost more than the durable commit
            project = s.execute(select(Project.server_ref, Project.fold_ground_truth)
                                .where(Project.id == project_id)).first()
            if project is None:
                raise DecisionError(f"No project {project_id} in this store.")
            config = None
            for req in reqs:
                if req.verdict not in VERDICTS:
                    raise DecisionError(f"unknown verdict {req.verdict!r}; use one of {', '.join(VERDICTS)}")
                task = s.execute(select(Task.id, Task.project_id, Task.server_id)
                                 .where(Task.id == req.task_id)).first()
                if task is None or task.project_id != project_id:
                    raise DecisionError(f"Task {req.task_id} is not in project {project_id}.")
                ann: Any = None
                pred: Prediction | None = None
                if req.annotation_id is not None:
                    ann = s.execute(select(Annotation.id, Annotation.task_id, Annotation.server_id,
                                           Annotation.updated_at)
                                    .where(Annotation.id == req.annotation_id)).first()
                    if ann is None or ann.task_id != task.id:
                        raise DecisionError(f"Annotation {req.annotation_id} does not belong to task {task.id}.")
                if req.prediction_id is not None:
                    pred = s.get(Prediction, req.prediction_id)
                    if pred is None or pred.task_id != task.id:
                        raise DecisionError(f"Prediction {req.prediction_id} does not belong to task {task.id}.")
                if req.verdict in JUDGEMENTS and ann is None and pred is None:
                    raise DecisionError(f"A {req.verdict} decision needs an annotation or a prediction.")
                result = None
                if req.verdict == "fix":
                    if req.result is None:
                        raise DecisionError("A fix needs the fixed result.")
                    config = config or parse_config(s.scalar(select(Project.label_config)
                                                             .where(Project.id == project_id)) or "")
                    problems = validate_result(config, list(req.result), strict=True)
                    if problems:
                        raise DecisionError("The fixed result does not fit the labeling config: "
                                            + "; ".join(problems[:3]))
                    result = list(req.result)
                if req.verdict == "reject" and not (req.reason or req.comment):
                    raise DecisionError("A reject needs a reason or a comment.")
                if req.verdict == "escalate" and not (req.reason or req.comment):
                    raise DecisionError("An escalation needs a reason or a note for the expert.")
                # the rows go in by Core INSERTs in this transaction, not through the unit of work: a flush
                # per decision (and the autoflush before every later SELECT) cost more than the commit
                d = Decision(uuid=new_uuid(), project_id=project_id, task_id=task.id,
                             annotation_id=ann.id if ann else None, prediction_id=pred.id if pred else None,
                             verdict=req.verdict, result=result, reason=req.reason, comment=req.comment,
                             reviewer=reviewer, role=role, created_at=now_iso(), lead_time_ms=req.lead_time_ms,
                             seen_updated_at=ann.updated_at if ann else None, origin="local")
                d.id = _insert(s, Decision, uuid=d.uuid, project_id=d.project_id, task_id=d.task_id,
                               annotation_id=d.annotation_id, prediction_id=d.prediction_id, verdict=d.verdict,
                               result=d.result, reason=d.reason, comment=d.comment, reviewer=d.reviewer,
                               role=d.role, created_at=d.created_at, lead_time_ms=d.lead_time_ms,
                               seen_updated_at=d.seen_updated_at, origin=d.origin)
                state = "pending" if project.server_ref is not None and req.verdict != "skip" else "local"
                _insert(s, DecisionSync, decision_id=d.id, state=state, updated_at=d.created_at)
                if req.comment or req.reason:
                    text = " — ".join(x for x in (req.reason, req.comment) if x)
                    _insert(s, Comment, uuid=new_uuid(), task_id=task.id, annotation_id=d.annotation_id,
                            decision_uuid=d.uuid, author=reviewer, text=text, created_at=d.created_at)
                gt_old: Any = None
                gt_new: Any = None
                if project.fold_ground_truth and req.verdict in ("accept", "fix") and (ann or pred):
                    source_result: list[Any] | None
                    if result is not None:
                        source_result = result
                    elif ann is not None:
                        source_result = s.scalar(select(Annotation.result).where(Annotation.id == ann.id))
                    elif pred is not None and isinstance(pred.result, list):
                        source_result = pred.result
                    else:  # a prediction the export listed by id only: no result to take as the reference
                        source_result = None
                    if source_result is not None:
                        gt_old = s.scalar(select(GroundTruth.result).where(GroundTruth.task_id == task.id)
                                          .order_by(GroundTruth.id.desc()).limit(1))
                        gt_new = source_result
                        _insert(s, GroundTruth, task_id=task.id, result=source_result, source="decision",
                                annotation_id=d.annotation_id, decision_uuid=d.uuid, created_at=d.created_at)
                        gt_changed = True
                before = s.execute(select(Decision.verdict).where(
                    Decision.task_id == task.id, Decision.annotation_id == d.annotation_id,
                    Decision.prediction_id == d.prediction_id, Decision.id != d.id,
                    Decision.verdict != "retract").order_by(Decision.id.desc()).limit(1)).scalar()
                payload: dict[str, Any] = {
                    "uuid": d.uuid, "verdict": d.verdict, "task": task.id, "annotation": d.annotation_id,
                    "prediction": d.prediction_id, "from": before, "to": d.verdict}
                if result is not None:
                    payload["result"] = result
                if req.comment or req.reason:
                    payload["comment"] = {"from": None, "to": " — ".join(x for x in (req.reason, req.comment) if x)}
                if gt_new is not None:
                    payload["ground_truth"] = {"from": gt_old, "to": gt_new}
                append_event(s, reviewer, "decision.recorded", payload)
                out.append(_info(d, task.server_id, ann.server_id if ann else None, state))
        return Recorded(tuple(out), Changes(decisions=True, queue=True, sync=True, ground_truth=gt_changed))

    def retract(self, decision_uuid: str, *, reviewer: str, role: str = "reviewer") -> Recorded:
        """Undo: append a retraction event for ``decision_uuid`` (nothing is deleted)."""
        return self.retract_many([decision_uuid], reviewer=reviewer, role=role)

    def retract_many(self, decision_uuids: Sequence[str], *, reviewer: str, role: str = "reviewer") -> Recorded:
        """Undo one keystroke's decisions (``Shift+A``: the accept and its rejects) in ONE transaction: all
        of them are retracted or none (the refusals of :meth:`retract` apply to each)."""
        out: list[DecisionInfo] = []
        gt = False
        with self.store.transaction() as s:
            for decision_uuid in decision_uuids:
                d = s.scalar(select(Decision).where(Decision.uuid == decision_uuid))
                if d is None:
                    raise DecisionError(f"No decision {decision_uuid}.")
                if d.origin != "local":
                    raise DecisionError(f"That decision was made by {d.reviewer} on another machine; only they "
                                        "can undo it. Record your own decision instead.")
                if d.verdict == "retract":
                    raise DecisionError("A retraction cannot itself be retracted; record the decision again.")
                if s.scalar(select(Decision.id).where(Decision.retracts == decision_uuid)) is not None:
                    raise DecisionError("That decision was already undone.")
                project = s.get(Project, d.project_id)
                assert project is not None
                r = Decision(uuid=new_uuid(), project_id=d.project_id, task_id=d.task_id,
                             annotation_id=d.annotation_id, prediction_id=d.prediction_id, verdict="retract",
                             reviewer=reviewer, role=role, created_at=now_iso(), retracts=d.uuid)
                s.add(r)
                s.flush()
                state = "pending" if project.server_ref is not None and d.verdict != "skip" else "local"
                s.add(DecisionSync(decision_id=r.id, state=state, updated_at=r.created_at))
                append_event(s, reviewer, "decision.retracted",
                             {"uuid": r.uuid, "retracts": d.uuid, "task": d.task_id, "annotation": d.annotation_id,
                              "from": d.verdict, "to": None})
                task = s.get(Task, d.task_id)
                out.append(_info(r, task.server_id if task else None, None, state))
                gt = gt or d.verdict in ("accept", "fix")
        return Recorded(tuple(out), Changes(decisions=True, queue=True, sync=True, ground_truth=gt))

    # -- reads -------------------------------------------------------------------------------
    def list_decisions(self, project_id: int, *, include_retractions: bool = True) -> tuple[DecisionInfo, ...]:
        with self.store.session() as s:
            return tuple(self._infos(s, select(Decision).where(Decision.project_id == project_id)
                                     .order_by(Decision.id), include_retractions))

    def get(self, decision_uuid: str) -> DecisionInfo:
        with self.store.session() as s:
            found = self._infos(s, select(Decision).where(Decision.uuid == decision_uuid), True)
        if not found:
            raise DecisionError(f"No decision {decision_uuid}.")
        return found[0]

    def _infos(self, s: Session, stmt: Any, include_retractions: bool) -> list[DecisionInfo]:
        rows = s.scalars(stmt).all()
        if not rows:
            return []
        pids = {d.project_id for d in rows}
        retracted = set(s.scalars(select(Decision.retracts).where(Decision.project_id.in_(pids),
                                                                  Decision.retracts.is_not(None))))
        states = dict(s.execute(select(DecisionSync.decision_id, DecisionSync.state)
                                .where(DecisionSync.decision_id.in_([d.id for d in rows]))).all())
        task_ids = {d.task_id for d in rows}
        ann_ids = {d.annotation_id for d in rows if d.annotation_id}
        tsid = dict(s.execute(select(Task.id, Task.server_id).where(Task.id.in_(task_ids))).all())
        asid = dict(s.execute(select(Annotation.id, Annotation.server_id).where(Annotation.id.in_(ann_ids))).all())
        return [_info(d, tsid.get(d.task_id), asid.get(d.annotation_id) if d.annotation_id else None,
                      states.get(d.id, "pending"), d.uuid in retracted)
                for d in rows if include_retractions or d.verdict != "retract"]

    def effective_verdicts(self, project_id: int) -> dict[int, str]:
        """annotation id -> its current verdict (latest non-retracted accept/fix/reject)."""
        with self.store.session() as s:
            retracted = set(s.scalars(select(Decision.retracts).where(Decision.project_id == project_id,
                                                                      Decision.retracts.is_not(None))))
            out: dict[int, str] = {}
            for ann_id, verdict, uid in s.execute(
                    select(Decision.annotation_id, Decision.verdict, Decision.uuid)
                    .where(Decision.project_id == project_id, Decision.annotation_id.is_not(None),
                           Decision.verdict.in_(JUDGEMENTS)).order_by(Decision.id)):
                # (the query skips decisions without an annotation); undoing the latest brings the one before back
                if ann_id is not None and uid not in retracted:
                    out[ann_id] = verdict
            return out

    def open_escalations(self, project_id: int) -> dict[int, DecisionInfo]:
        """task id -> its latest open escalation (not retracted, no expert decision after it), any origin."""
        out: dict[int, DecisionInfo] = {}
        for d in self.escalations(project_id):
            out[d.task_id] = d
        return out

    def escalations(self, project_id: int) -> tuple[DecisionInfo, ...]:
        """Every open escalation of the project, from every reviewer (local and pulled), oldest first.

        An escalation is open until it is retracted or an expert records a verdict on the same annotation
        (or, for a task-level escalation, on the task) after it -- here or on another machine.
        """
        infos = self.list_decisions(project_id)
        open_: dict[str, DecisionInfo] = {}
        for d in infos:
            if d.retracted or d.verdict == "retract":
                continue
            if d.verdict == "escalate":
                open_[d.uuid] = d
            elif d.role == "expert" and d.verdict in JUDGEMENTS:
                for key, e in list(open_.items()):
                    if e.task_id == d.task_id and (e.annotation_id is None or d.annotation_id is None
                                                   or e.annotation_id == d.annotation_id
                                                   or e.prediction_id == d.prediction_id is not None):
                        del open_[key]
        return tuple(open_.values())

    def ground_truth(self, task_id: int) -> list[Any] | None:
        """The task's current reference result: latest adjudicated row, else a server-flagged annotation."""
        with self.store.session() as s:
            retracted = set(s.scalars(select(Decision.retracts).where(Decision.task_id == task_id,
                                                                      Decision.retracts.is_not(None))))
            for gt in s.scalars(select(GroundTruth).where(GroundTruth.task_id == task_id)
                                .order_by(GroundTruth.id.desc())):
                if gt.decision_uuid is None or gt.decision_uuid not in retracted:
                    return list(gt.result)
            flagged = s.scalar(select(Annotation.result).where(Annotation.task_id == task_id,
                                                               Annotation.ground_truth.is_(True))
                               .order_by(Annotation.id.desc()).limit(1))
            return list(flagged) if flagged is not None else None

    def pending_count(self, project_id: int) -> int:
        """Decisions of the project still waiting to reach the server."""
        # plain SQL: asked on every key press (the counters), where building the ORM query cost more than
        # the count; tests/unit/test_review_fast_paths.py holds it equal to the ORM query
        with self.store.session() as s:
            return int(s.connection().exec_driver_sql(PENDING_COUNT_SQL, (project_id,)).scalar() or 0)

    def reject_reasons(self, project_id: int) -> tuple[str, ...]:
        with self.store.session() as s:
            reasons = s.scalar(select(Project.reject_reasons).where(Project.id == project_id))
        return tuple(reasons) if reasons else DEFAULT_REJECT_REASONS

    def set_reject_reasons(self, project_id: int, reasons: Sequence[str]) -> Changes:
        clean = [r.strip() for r in reasons if r.strip()][:9]
        if not clean:
            raise DecisionError("Give at least one reject reason.")
        with self.store.transaction() as s:
            p = s.get(Project, project_id)
            if p is None:
                raise DecisionError(f"No project {project_id}.")
            before = list(p.reject_reasons) if p.reject_reasons else None
            p.reject_reasons = clean
            append_event(s, "local", "project.reject_reasons", {"project_id": project_id, "reasons": clean,
                                                                 "from": before, "to": clean})
        return Changes(settings=True)


def _insert(s: Session, table: Any, **values: Any) -> int:
    """One Core INSERT in the session's transaction (column defaults and JSON as the ORM writes them); the row id."""
    # the Table, not the mapped class: an insert() of a mapped class goes through the ORM's bulk path
    res = cast(CursorResult[Any], s.execute(insert(table.__table__).values(**values)))
    return int(res.lastrowid)


def _info(d: Decision, task_server_id: int | None, ann_server_id: int | None, state: str,
          retracted: bool = False) -> DecisionInfo:
    return DecisionInfo(uuid=d.uuid, project_id=d.project_id, task_id=d.task_id, task_server_id=task_server_id,
                        annotation_id=d.annotation_id, annotation_server_id=ann_server_id,
                        prediction_id=d.prediction_id, verdict=d.verdict,
                        result=None if d.result is None else tuple(d.result), reason=d.reason, comment=d.comment,
                        reviewer=d.reviewer, role=d.role, created_at=d.created_at, lead_time_ms=d.lead_time_ms,
                        retracts=d.retracts, sync_state=state, retracted=retracted, origin=d.origin or "local")

