"""Decisions: append-only verdict events, retractions (undo), ground-truth folding, listing.

Every write is one transaction that returns :class:`Changes`; a decision is durably committed
(SQLite WAL, ``synchronous=FULL``) when :meth:`DecisionService.record` returns.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.audit import append_event, append_event_cursor
from app.models.config import parse_config, validate_result
from app.models.schema import (
    Annotation,
    Decision,
    DecisionSync,
    GroundTruth,
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

# DecisionService.record's statements (the review loop's hot path: one key press), on the DB-API cursor
_PROJECT_SQL = "SELECT server_ref, fold_ground_truth FROM projects WHERE id = ?"
_CONFIG_SQL = "SELECT label_config FROM projects WHERE id = ?"
_TASK_SQL = "SELECT id, project_id, server_id FROM tasks WHERE id = ?"
_ANN_SQL = "SELECT id, task_id, server_id, updated_at FROM annotations WHERE id = ?"
_ANN_RESULT_SQL = "SELECT result FROM annotations WHERE id = ?"
_PRED_SQL = "SELECT id, task_id, result FROM predictions WHERE id = ?"
_LAST_GT_SQL = "SELECT result FROM ground_truth WHERE task_id = ? ORDER BY id DESC LIMIT 1"
# the verdict this one replaces (the audit event's "from"): IS compares NULL with NULL as the ORM's == None did
_BEFORE_SQL = ("SELECT verdict FROM decisions WHERE task_id = ? AND annotation_id IS ? AND prediction_id IS ? "
               "AND id != ? AND verdict != 'retract' ORDER BY id DESC LIMIT 1")
_INSERT_DECISION_SQL = (
    "INSERT INTO decisions (uuid, project_id, task_id, annotation_id, prediction_id, verdict, result, reason, "
    "comment, reviewer, role, created_at, lead_time_ms, seen_updated_at, origin) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_SYNC_SQL = "INSERT INTO decision_sync (decision_id, state, attempts, updated_at) VALUES (?, ?, 0, ?)"
_INSERT_COMMENT_SQL = ("INSERT INTO comments (uuid, task_id, annotation_id, decision_uuid, author, text, created_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)")
_INSERT_GT_SQL = ("INSERT INTO ground_truth (task_id, result, source, annotation_id, decision_uuid, created_at) "
                  "VALUES (?, ?, ?, ?, ?, ?)")


def _loads(raw: Any) -> Any:
    """A JSON column's value as SQLAlchemy's JSON type reads it (SQL NULL -> None)."""
    return None if raw is None else json.loads(raw)


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
            # the review loop's hot path (one key press): every read and write goes through the DB-API cursor of
            # the session's connection, in its transaction (committed durably by the ``with``), not through a
            # SQLAlchemy statement per row -- building and executing those cost more than the durable commit.
            # The rows are the ones the ORM wrote (tests/unit/test_review_fast_paths.py compares them).
            raw = s.connection().connection.driver_connection
            assert raw is not None
            cur = raw.cursor()
            try:
                project = cur.execute(_PROJECT_SQL, (project_id,)).fetchone()
                if project is None:
                    raise DecisionError(f"No project {project_id} in this store.")
                server_ref, fold = project
                config = None
                for req in reqs:
                    if req.verdict not in VERDICTS:
                        raise DecisionError(f"unknown verdict {req.verdict!r}; use one of {', '.join(VERDICTS)}")
                    task = cur.execute(_TASK_SQL, (req.task_id,)).fetchone()
                    if task is None or task[1] != project_id:
                        raise DecisionError(f"Task {req.task_id} is not in project {project_id}.")
                    task_id, _, task_server_id = task
                    ann: Any = None  # (id, task_id, server_id, updated_at)
                    pred: Any = None  # (id, task_id, result)
                    if req.annotation_id is not None:
                        ann = cur.execute(_ANN_SQL, (req.annotation_id,)).fetchone()
                        if ann is None or ann[1] != task_id:
                            raise DecisionError(f"Annotation {req.annotation_id} does not belong to task {task_id}.")
                    if req.prediction_id is not None:
                        pred = cur.execute(_PRED_SQL, (req.prediction_id,)).fetchone()
                        if pred is None or pred[1] != task_id:
                            raise DecisionError(f"Prediction {req.prediction_id} does not belong to task {task_id}.")
                    if req.verdict in JUDGEMENTS and ann is None and pred is None:
                        raise DecisionError(f"A {req.verdict} decision needs an annotation or a prediction.")
                    result = None
                    if req.verdict == "fix":
                        if req.result is None:
                            raise DecisionError("A fix needs the fixed result.")
                        if config is None:
                            row = cur.execute(_CONFIG_SQL, (project_id,)).fetchone()
                            config = parse_config((row[0] if row else None) or "")
                        problems = validate_result(config, list(req.result), strict=True)
                        if problems:
                            raise DecisionError("The fixed result does not fit the labeling config: "
                                                + "; ".join(problems[:3]))
                        result = list(req.result)
                    if req.verdict == "reject" and not (req.reason or req.comment):
                        raise DecisionError("A reject needs a reason or a comment.")
                    if req.verdict == "escalate" and not (req.reason or req.comment):
                        raise DecisionError("An escalation needs a reason or a note for the expert.")
                    uuid = new_uuid()
                    created_at = now_iso()
                    ann_id = ann[0] if ann is not None else None
                    pred_id = pred[0] if pred is not None else None
                    # JSON columns as SQLAlchemy's JSON type writes them: json.dumps, and JSON null for None
                    cur.execute(_INSERT_DECISION_SQL, (
                        uuid, project_id, task_id, ann_id, pred_id, req.verdict, json.dumps(result), req.reason,
                        req.comment, reviewer, role, created_at, req.lead_time_ms,
                        ann[3] if ann is not None else None, "local"))
                    decision_id = int(cur.lastrowid)
                    state = "pending" if server_ref is not None and req.verdict != "skip" else "local"
                    cur.execute(_INSERT_SYNC_SQL, (decision_id, state, created_at))
                    note = " — ".join(x for x in (req.reason, req.comment) if x) if req.comment or req.reason else None
                    if note is not None:
                        cur.execute(_INSERT_COMMENT_SQL, (new_uuid(), task_id, ann_id, uuid, reviewer, note,
                                                          created_at))
                    gt_old: Any = None
                    gt_new: Any = None
                    if fold and req.verdict in ("accept", "fix") and (ann is not None or pred is not None):
                        source_result: list[Any] | None
                        if result is not None:
                            source_result = result
                        elif ann is not None:
                            row = cur.execute(_ANN_RESULT_SQL, (ann_id,)).fetchone()
                            source_result = _loads(row[0]) if row is not None else None
                        else:  # a prediction's result; one the export listed by id only has none to take
                            pres = _loads(pred[2])
                            source_result = pres if isinstance(pres, list) else None
                        if source_result is not None:
                            row = cur.execute(_LAST_GT_SQL, (task_id,)).fetchone()
                            gt_old = _loads(row[0]) if row is not None else None
                            gt_new = source_result
                            cur.execute(_INSERT_GT_SQL, (task_id, json.dumps(source_result), "decision", ann_id,
                                                         uuid, created_at))
                            gt_changed = True
                    row = cur.execute(_BEFORE_SQL, (task_id, ann_id, pred_id, decision_id)).fetchone()
                    before = row[0] if row is not None else None
                    payload: dict[str, Any] = {
                        "uuid": uuid, "verdict": req.verdict, "task": task_id, "annotation": ann_id,
                        "prediction": pred_id, "from": before, "to": req.verdict}
                    if result is not None:
                        payload["result"] = result
                    if note is not None:
                        payload["comment"] = {"from": None, "to": note}
                    if gt_new is not None:
                        payload["ground_truth"] = {"from": gt_old, "to": gt_new}
                    append_event_cursor(cur, reviewer, "decision.recorded", payload)
                    out.append(DecisionInfo(
                        uuid=uuid, project_id=project_id, task_id=task_id, task_server_id=task_server_id,
                        annotation_id=ann_id, annotation_server_id=ann[2] if ann is not None else None,
                        prediction_id=pred_id, verdict=req.verdict,
                        result=None if result is None else tuple(result), reason=req.reason, comment=req.comment,
                        reviewer=reviewer, role=role, created_at=created_at, lead_time_ms=req.lead_time_ms,
                        retracts=None, sync_state=state))
            finally:
                cur.close()
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


def _info(d: Decision, task_server_id: int | None, ann_server_id: int | None, state: str,
          retracted: bool = False) -> DecisionInfo:
    return DecisionInfo(uuid=d.uuid, project_id=d.project_id, task_id=d.task_id, task_server_id=task_server_id,
                        annotation_id=d.annotation_id, annotation_server_id=ann_server_id,
                        prediction_id=d.prediction_id, verdict=d.verdict,
                        result=None if d.result is None else tuple(d.result), reason=d.reason, comment=d.comment,
                        reviewer=d.reviewer, role=d.role, created_at=d.created_at, lead_time_ms=d.lead_time_ms,
                        retracts=d.retracts, sync_state=state, retracted=retracted, origin=d.origin or "local")

