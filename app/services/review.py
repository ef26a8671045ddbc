"""The reviewer's session: a Qt-free state machine over a queue of tasks.

States: ``idle`` (ready for a key) and ``transition`` (a decision is being written). A decision
key pressed in ``transition`` is swallowed — never doubled. The GUI splits a decision into
:meth:`ReviewSession.begin` (UI thread), :meth:`ReviewSession.commit` (worker thread: the durable
write) and :meth:`ReviewSession.finish` (UI thread: advance); :meth:`decide` does all three at
once for scripts and tests. The next task is shown only after the decision is committed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from app.models.schema import Annotation, Task
from app.services.changes import NOTHING, Changes
from app.services.decisions import (
    JUDGEMENTS,
    DecisionError,
    DecisionInfo,
    DecisionRequest,
    DecisionService,
    Recorded,
)
from app.services.projects import AnnotationInfo, ProjectService, TaskDetail

ROLES = ("reviewer", "expert")


@dataclass(frozen=True)
class QueueFilter:
    """Which tasks a queue holds, in which order. ``task_ids`` (e.g. a heatmap drill-down) wins."""

    task_ids: tuple[int, ...] | None = None
    evaluator_user_id: int | None = None
    label: str = ""


@dataclass(frozen=True)
class Counters:
    made: int
    pending_sync: int
    remaining: int
    total: int


@dataclass(frozen=True)
class Pending:
    """A decision that :meth:`ReviewSession.begin` accepted and that must now be committed."""

    requests: tuple[DecisionRequest, ...]
    task_id: int
    started: float


@dataclass(frozen=True)
class SessionView:
    """Everything a view needs to draw the session, as plain values."""

    state: str
    position: int
    total: int
    task: TaskDetail | None
    focus: int
    verdicts: dict[int, str] = field(default_factory=dict)
    escalation: DecisionInfo | None = None
    counters: Counters | None = None


class ReviewSession:
    def __init__(self, projects: ProjectService, project_id: int, *, reviewer: str, role: str = "reviewer",
                 queue: QueueFilter | None = None, auto_advance: bool = True) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        self.projects = projects
        self.decisions = DecisionService(projects.store)
        self.project_id = project_id
        self.reviewer = reviewer
        self.role = role
        self.queue = queue or QueueFilter()
        self.auto_advance = auto_advance
        self.state = "idle"
        self.swallowed = 0
        self.index = 0
        self.focus = 0
        self._detail: TaskDetail | None = None
        self._shown_at = time.monotonic()
        self._history: list[DecisionInfo] = []  # this session's decisions, oldest first
        self._undone: list[DecisionInfo] = []  # redo stack
        self.reload()

    # -- queue ---------------------------------------------------------------------------------
    def reload(self) -> None:
        """(Re)build the queue and the verdict state from the store (start, sync, filter change)."""
        store = self.projects.store
        with store.session() as s:
            if self.queue.task_ids is not None:
                wanted = list(dict.fromkeys(self.queue.task_ids))
                present = set(s.scalars(select(Task.id).where(Task.project_id == self.project_id,
                                                              Task.deleted.is_(False), Task.id.in_(wanted))))
                ids = [t for t in wanted if t in present]
            else:
                stmt = select(Task.id).where(Task.project_id == self.project_id, Task.deleted.is_(False))
                if self.queue.evaluator_user_id is not None:
                    stmt = stmt.where(Task.id.in_(select(Annotation.task_id).where(
                        Annotation.completed_by == self.queue.evaluator_user_id)))
                ids = list(s.scalars(stmt.order_by(Task.position, Task.id)))
            # per-task annotation counts, aggregated in SQLite (a 1M-annotation project stays fast)
            self._ann_counts: dict[int, int] = dict(s.execute(
                select(Annotation.task_id, func.count()).join(Task, Task.id == Annotation.task_id)
                .where(Task.project_id == self.project_id, Annotation.was_cancelled.is_(False),
                       Annotation.deleted.is_(False))
                .group_by(Annotation.task_id)).all())
        escalated = self.decisions.open_escalations(self.project_id)
        if self.role == "expert":
            ids = [t for t in ids if t in escalated]
        self.task_ids = ids
        self.task_ids_set = set(ids)
        self._escalations = escalated
        self._load_verdicts()
        self._recount()
        self.index = min(self.index, max(len(ids) - 1, 0))
        self._load_current()

    def _load_verdicts(self) -> None:
        self._verdicts = self.decisions.effective_verdicts(self.project_id)
        with self.projects.store.session() as s:
            self._ann_task: dict[int, int] = dict(s.execute(
                select(Annotation.id, Annotation.task_id).where(Annotation.id.in_(list(self._verdicts)))).all()
            ) if self._verdicts else {}
        self._decided = Counter(self._ann_task[a] for a in self._verdicts if a in self._ann_task)

    def _recount(self) -> None:
        self._open = {t for t in self.task_ids if self._compute_open(t)}

    def _load_current(self) -> None:
        self._detail = self.projects.task_detail(self.task_ids[self.index]) if self.task_ids else None
        self.focus = 0
        self._shown_at = time.monotonic()

    def _compute_open(self, task_id: int) -> bool:
        if self.role == "reviewer" and task_id in self._escalations:
            return False
        if self.role == "expert" and task_id not in self._escalations:
            return False
        return self._ann_counts.get(task_id, 0) > self._decided.get(task_id, 0)

    def annotation_count(self) -> int:
        return sum(self._ann_counts.values())

    def task_is_open(self, task_id: int) -> bool:
        return task_id in self._open

    def remaining(self) -> int:
        """Tasks of the queue that still need a verdict (kept incrementally: O(1) per decision)."""
        return len(self._open)

    # -- navigation ----------------------------------------------------------------------------
    @property
    def current(self) -> TaskDetail | None:
        return self._detail

    def focused_annotation(self) -> AnnotationInfo | None:
        d = self._detail
        if d is None or not d.annotations:
            return None
        return d.annotations[self.focus % len(d.annotations)]

    def go(self, index: int) -> Changes:
        if not self.task_ids or self.state != "idle":
            return NOTHING
        index = max(0, min(index, len(self.task_ids) - 1))
        if index != self.index or self._detail is None:
            self.index = index
            self._load_current()
        return Changes(queue=True)

    def go_to_task(self, task_id: int) -> Changes:
        if task_id in self.task_ids:
            return self.go(self.task_ids.index(task_id))
        return NOTHING

    def next(self) -> Changes:
        return self.go(self.index + 1)

    def previous(self) -> Changes:
        return self.go(self.index - 1)

    def next_open(self) -> Changes:
        """Advance to the next task that still needs a verdict (wrapping), else stay."""
        n = len(self.task_ids)
        for step in range(1, n + 1):
            i = (self.index + step) % n
            if self.task_is_open(self.task_ids[i]):
                return self.go(i)
        return self.go(min(self.index + 1, n - 1))

    def cycle_annotation(self, step: int = 1) -> Changes:
        d = self._detail
        if d is None or not d.annotations or self.state != "idle":
            return NOTHING
        self.focus = (self.focus + step) % len(d.annotations)
        return Changes(queue=True)

    # -- deciding --------------------------------------------------------------------------------
    def _lead_ms(self) -> int:
        return int((time.monotonic() - self._shown_at) * 1000)

    def begin(self, verdict: str, *, reason: str | None = None, comment: str | None = None,
              result: Sequence[Any] | None = None, others: str | None = None) -> Pending | None:
        """Start a decision on the focused annotation; ``None`` when swallowed (busy or nothing to judge).

        ``others="reject"`` also rejects the task's other annotations (Shift+A), in the same transaction.
        """
        if self.state != "idle":
            self.swallowed += 1
            return None
        d = self._detail
        if d is None:
            return None
        ann = self.focused_annotation()
        if verdict in JUDGEMENTS and ann is None:
            return None
        lead = self._lead_ms()
        target = ann.id if ann is not None else None
        reqs = [DecisionRequest(task_id=d.id, verdict=verdict, annotation_id=target,
                                result=list(result) if result is not None else None, reason=reason,
                                comment=comment, lead_time_ms=lead)]
        if others == "reject" and ann is not None:
            reqs += [DecisionRequest(task_id=d.id, verdict="reject", annotation_id=a.id,
                                     reason=reason or "Another annotation was accepted", lead_time_ms=lead)
                     for a in d.annotations if a.id != ann.id]
        self.state = "transition"
        return Pending(tuple(reqs), d.id, time.monotonic())

    def commit(self, pending: Pending) -> Recorded:
        """The durable write; safe to run on a worker thread. Raises DecisionError/StoreError."""
        return self.decisions.record(self.project_id, pending.requests, reviewer=self.reviewer, role=self.role)

    def finish(self, pending: Pending, recorded: Recorded | None) -> Changes:
        """Back in ``idle``; on success update the verdict state and auto-advance when the task is done."""
        self.state = "idle"
        if recorded is None:
            return NOTHING
        self._apply(recorded.decisions)
        self._history.extend(recorded.decisions)
        self._undone.clear()
        changes = recorded.changes
        verdict = pending.requests[0].verdict
        if verdict in ("skip", "escalate") or (self.auto_advance and not self.task_is_open(pending.task_id)):
            changes = changes | self.next_open()
        elif verdict in JUDGEMENTS:
            self._focus_next_undecided()
        return changes

    def abort(self, pending: Pending) -> None:
        self.state = "idle"

    def decide(self, verdict: str, **kw: Any) -> Changes:
        """begin + commit + finish on the calling thread (scripts, tests, CLI)."""
        pending = self.begin(verdict, **kw)
        if pending is None:
            return NOTHING
        try:
            recorded = self.commit(pending)
        except BaseException:
            self.abort(pending)
            raise
        return self.finish(pending, recorded)

    def _focus_next_undecided(self) -> None:
        d = self._detail
        if d is None or not d.annotations:
            return
        n = len(d.annotations)
        for step in range(1, n + 1):
            a = d.annotations[(self.focus + step) % n]
            if a.id not in self._verdicts:
                self.focus = (self.focus + step) % n
                return

    def _apply(self, infos: Sequence[DecisionInfo]) -> None:
        self._apply_verdicts(infos)
        if any(i.verdict == "retract" for i in infos):
            self._recount()
            return
        for tid in {i.task_id for i in infos}:
            if tid in self.task_ids_set and self._compute_open(tid):
                self._open.add(tid)
            else:
                self._open.discard(tid)

    def _apply_verdicts(self, infos: Sequence[DecisionInfo]) -> None:
        for info in infos:
            if info.verdict in JUDGEMENTS and info.annotation_id is not None:
                if info.annotation_id not in self._verdicts:
                    self._decided[info.task_id] += 1
                    self._ann_task[info.annotation_id] = info.task_id
                self._verdicts[info.annotation_id] = info.verdict
            elif info.verdict == "escalate":
                self._escalations[info.task_id] = info
            elif info.verdict == "retract":
                self._load_verdicts()
                self._escalations = self.decisions.open_escalations(self.project_id)
        if self.role == "expert":
            for info in infos:
                if info.verdict in JUDGEMENTS:
                    self._escalations.pop(info.task_id, None)

    # -- undo / redo -------------------------------------------------------------------------------
    def undo(self, decision_uuid: str | None = None) -> Changes:
        """Retract the last (or the given) decision of this session and go back to its task."""
        if self.state != "idle":
            self.swallowed += 1
            return NOTHING
        live = [d for d in self._history if d.verdict != "retract" and not self._is_retracted(d.uuid)]
        if decision_uuid is not None:
            live = [d for d in live if d.uuid == decision_uuid]
        if not live:
            return NOTHING
        target = live[-1]
        rec = self.decisions.retract(target.uuid, reviewer=self.reviewer, role=self.role)
        self._history.extend(rec.decisions)
        self._undone.append(target)
        self._apply(rec.decisions)
        return rec.changes | self.go_to_task(target.task_id) | self._focus_annotation(target.annotation_id)

    def redo(self) -> Changes:
        if self.state != "idle" or not self._undone:
            return NOTHING
        d = self._undone.pop()
        req = DecisionRequest(task_id=d.task_id, verdict=d.verdict, annotation_id=d.annotation_id,
                              prediction_id=d.prediction_id, result=list(d.result) if d.result else None,
                              reason=d.reason, comment=d.comment, lead_time_ms=d.lead_time_ms)
        rec = self.decisions.record(self.project_id, [req], reviewer=self.reviewer, role=self.role)
        self._history.extend(rec.decisions)
        self._apply(rec.decisions)
        return rec.changes | self.go_to_task(d.task_id)

    def _focus_annotation(self, annotation_id: int | None) -> Changes:
        d = self._detail
        if d is None or annotation_id is None:
            return NOTHING
        for i, a in enumerate(d.annotations):
            if a.id == annotation_id:
                self.focus = i
        return Changes(queue=True)

    def _is_retracted(self, uuid: str) -> bool:
        return any(d.retracts == uuid for d in self._history)

    # -- views -------------------------------------------------------------------------------------
    def history(self, n: int = 20) -> tuple[DecisionInfo, ...]:
        """The last ``n`` decisions of this session, newest first, with retraction marks."""
        retracted = {d.retracts for d in self._history if d.retracts}
        out = [DecisionInfo(**{**d.__dict__, "retracted": d.uuid in retracted})
               for d in self._history if d.verdict != "retract"]
        return tuple(reversed(out[-n:]))

    def counters(self) -> Counters:
        made = sum(1 for d in self._history if d.verdict != "retract") - sum(
            1 for d in self._history if d.verdict == "retract")
        pending = self.decisions.pending_count(self.project_id)
        return Counters(made=made, pending_sync=pending, remaining=self.remaining(), total=len(self.task_ids))

    def verdicts_for_current(self) -> dict[int, str]:
        d = self._detail
        if d is None:
            return {}
        return {a.id: self._verdicts[a.id] for a in d.annotations if a.id in self._verdicts}

    def view(self) -> SessionView:
        d = self._detail
        return SessionView(state=self.state, position=self.index, total=len(self.task_ids), task=d,
                           focus=self.focus, verdicts=self.verdicts_for_current(),
                           escalation=self._escalations.get(d.id) if d else None, counters=self.counters())


__all__ = ["ReviewSession", "QueueFilter", "Counters", "Pending", "SessionView", "DecisionError"]
