"""The reviewer's session: a Qt-free state machine over a queue of tasks.

States: ``idle`` (ready for a key) and ``transition`` (a decision is being written). A decision
key pressed in ``transition`` is swallowed — never doubled. The GUI splits a decision into
:meth:`ReviewSession.begin` (UI thread), :meth:`ReviewSession.commit` (worker thread: the durable
write) and :meth:`ReviewSession.finish` (UI thread: advance); :meth:`decide` does all three at
once for scripts and tests. The next task is shown only after the decision is committed.

Team review: other reviewers' decisions arrive by a pull as read-only rows (``decisions.origin`` =
``server``). A task another reviewer already judged is out of the reviewer queue unless
``show_decided_by_others``; escalations from every reviewer, local or pulled, make the expert queue; the
task history (:meth:`ReviewSession.task_history`) shows everyone's decisions, and only this store's own
(``local``) decisions can be undone.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from app.models.schema import Annotation, Decision, Task
from app.services.changes import NOTHING, Changes
from app.services.decisions import (
    JUDGEMENTS,
    DecisionError,
    DecisionInfo,
    DecisionRequest,
    DecisionService,
    Recorded,
)
from app.services.describe import describe_decision, evaluator_name, parse_stamp
from app.services.projects import AnnotationInfo, ProjectService, TaskDetail
from app.services.queues import Queue, QueueSpec
from app.services.review_fast import team_rows

ROLES = ("reviewer", "expert")


@dataclass(frozen=True)
class QueueFilter:
    """Which tasks a queue holds, in which order. ``task_ids`` (e.g. a heatmap drill-down) wins."""

    task_ids: tuple[int, ...] | None = None
    evaluator_user_id: int | None = None
    label: str = ""
    highlight: tuple[str, ...] = ()  # evaluators (e-mails) a drill-down compares: focused first, marked
    # a built queue (app.services.queues): its eligibility rules and order, routed for the session's role
    spec: QueueSpec | None = None


@dataclass(frozen=True)
class Counters:
    made: int
    pending_sync: int
    remaining: int
    total: int
    # tasks of this queue's scope that another reviewer judged (pulled); of those, how many are left out of
    # the queue (``show_decided_by_others`` off). Their verdicts count as decided either way.
    decided_by_others: int = 0
    hidden_by_others: int = 0
    per_hour: float | None = None  # this session's decisions per hour (None until there is a pace to tell)
    minutes_left: float | None = None  # remaining tasks at this session's pace of tasks done

    @property
    def pace(self) -> str:
        """``120 decisions/h · about 2 h 40 min left`` (empty until a few decisions were made)."""
        if self.per_hour is None:
            return ""
        text = f"{self.per_hour:,.0f} decisions/h"
        if self.minutes_left is not None:
            m = int(round(self.minutes_left))
            text += " · about " + (f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{max(m, 1)} min") + " left"
        return text


@dataclass(frozen=True)
class TeamDecision:
    """One decision on a task, as history and side-by-side show it: mine or another reviewer's.

    ``origin`` ``server`` = another reviewer's record brought by a pull (read-only here); ``local`` = made
    in this store (``mine``: the only ones undo applies to). ``reviewer_name`` is the member's name when the
    server gave one, else the e-mail.
    """

    uuid: str
    project_id: int
    task_id: int
    annotation_id: int | None
    prediction_id: int | None
    verdict: str
    reason: str | None
    comment: str | None
    reviewer: str
    reviewer_name: str
    role: str
    created_at: str
    origin: str
    sync_state: str
    retracted: bool = False
    retracts: str | None = None
    result: tuple[Any, ...] | None = None  # a fix's fixed result

    @property
    def from_server(self) -> bool:
        return self.origin == "server"

    @property
    def mine(self) -> bool:
        return self.origin == "local"

    def sentence(self, target: str = "this annotation", *, me: str | None = None, now: Any = None) -> str:
        """``Priya rejected this annotation 2 h ago — Wrong label`` (``You`` for ``me``'s local decisions)."""
        who = "You" if self.mine and me is not None and self.reviewer.lower() == me.lower() else self.reviewer_name
        return describe_decision(who=who, verdict=self.verdict, target=target, created_at=self.created_at,
                                 reason=self.reason, comment=self.comment, now=now)


@dataclass(frozen=True)
class Escalation:
    """An open escalation: not retracted, no expert verdict on its task after it. Local or pulled."""

    uuid: str
    project_id: int
    task_id: int
    task_server_id: int | None
    annotation_id: int | None
    annotation_server_id: int | None
    reviewer: str
    reviewer_name: str
    role: str
    reason: str | None
    comment: str | None
    created_at: str
    origin: str

    @property
    def from_server(self) -> bool:
        return self.origin == "server"

    @property
    def note(self) -> str:
        return " — ".join(x for x in (self.reason, self.comment) if x)


STATUS_WORDS = {"accept": ("✓", "accepted"), "fix": ("✎", "fixed"), "reject": ("✗", "rejected"),
                "escalate": ("⚑", "escalated")}


@dataclass(frozen=True)
class AnnotationStatus:
    """Where one annotation of the task on screen stands: its live verdict (or an open escalation), whose.

    ``mine`` = decided by this reviewer in this store; else ``reviewer_name`` says who (a pulled decision of
    another reviewer, or a colleague on the same store). ``fixed`` is the fixed result of a ``fix``."""

    verdict: str
    reviewer: str
    reviewer_name: str
    origin: str
    mine: bool
    fixed: tuple[Any, ...] | None = None

    @property
    def decided(self) -> bool:
        return self.verdict in JUDGEMENTS

    @property
    def mark(self) -> str:
        return STATUS_WORDS.get(self.verdict, ("•", self.verdict))[0]

    @property
    def label(self) -> str:
        """``✓ accepted`` (mine) or ``✗ rejected by Priya Shah``."""
        mark, word = STATUS_WORDS.get(self.verdict, ("•", self.verdict))
        return f"{mark} {word}" + ("" if self.mine else f" by {self.reviewer_name}")


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
    escalation: Escalation | None = None
    counters: Counters | None = None
    team: tuple[TeamDecision, ...] = ()  # the task's decisions, everyone's, newest first
    statuses: dict[int, AnnotationStatus] = field(default_factory=dict)  # annotation id -> its status
    evaluator_slots: dict[int, int] = field(default_factory=dict)  # annotation id -> the evaluator's fixed slot
    evaluator_names: dict[int, str] = field(default_factory=dict)  # annotation id -> display name

    @property
    def decided(self) -> int:
        """How many of the task's annotations have a live accept/fix/reject (anyone's)."""
        return sum(1 for st in self.statuses.values() if st.decided)


def _when(created_at: str | None, row_id: int) -> tuple[float, int]:
    """Sort key in decision time (pulled rows arrive later than they were made), then arrival order."""
    t = parse_stamp(created_at)
    return (t.timestamp() if t is not None else 0.0, row_id)


def _name(names: dict[str, str], email: str | None) -> str:
    if not email:
        return "someone"
    return names.get(email.strip().lower(), email)


@dataclass(frozen=True)
class _TeamState:
    decided_by_others: frozenset[int]  # tasks with a live accept/fix/reject pulled from another reviewer
    decided_here: frozenset[int]  # tasks with a live accept/fix/reject recorded in this store


def _team_state(projects: ProjectService, project_id: int) -> _TeamState:
    """One pass over the project's decisions (column reads): who decided which task."""
    with projects.store.session() as s:
        rows = s.execute(select(Decision.uuid, Decision.task_id, Decision.verdict, Decision.origin,
                                Decision.retracts).where(Decision.project_id == project_id)).all()
    retracted = {r.retracts for r in rows if r.retracts}
    others: set[int] = set()
    here: set[int] = set()
    for r in rows:
        if r.verdict in JUDGEMENTS and r.uuid not in retracted:
            (others if r.origin == "server" else here).add(r.task_id)
    return _TeamState(frozenset(others), frozenset(here))


def _escalation(d: DecisionInfo, names: dict[str, str]) -> Escalation:
    return Escalation(uuid=d.uuid, project_id=d.project_id, task_id=d.task_id, task_server_id=d.task_server_id,
                      annotation_id=d.annotation_id, annotation_server_id=d.annotation_server_id,
                      reviewer=d.reviewer, reviewer_name=_name(names, d.reviewer), role=d.role, reason=d.reason,
                      comment=d.comment, created_at=d.created_at, origin=getattr(d, "origin", "local") or "local")


def _settles(verdict: DecisionInfo, e: Escalation) -> bool:
    """An expert's verdict settles an escalation on the same annotation, or any on its task when either is
    task-level (the rule of :meth:`DecisionService.escalations`, kept in step for the session's bookkeeping)."""
    return e.task_id == verdict.task_id and (
        e.annotation_id is None or verdict.annotation_id is None or e.annotation_id == verdict.annotation_id)


def open_escalations(projects: ProjectService, project_id: int) -> tuple[Escalation, ...]:
    """Open escalations of a project from every reviewer (local or pulled), oldest first, with the escalating
    reviewer's name (the same set as ``reviewdesk escalations``: :meth:`DecisionService.escalations`)."""
    names = projects.reviewer_names(project_id)
    return tuple(_escalation(d, names) for d in DecisionService(projects.store).escalations(project_id))


def task_decisions(projects: ProjectService, task_id: int, names: dict[str, str] | None = None
                   ) -> tuple[TeamDecision, ...]:
    """Everyone's decisions on one task (retraction events folded into ``retracted``), newest first."""
    with projects.store.session() as s:
        rows = team_rows(s, task_id)  # plain SQL (every key press): the same rows as the ORM select
    if not rows:
        return ()
    if names is None:
        names = projects.reviewer_names(rows[0].project_id)
    retracted = {r.retracts for r in rows if r.retracts}
    return tuple(
        TeamDecision(uuid=r.uuid, project_id=r.project_id, task_id=r.task_id, annotation_id=r.annotation_id,
                     prediction_id=r.prediction_id, verdict=r.verdict, reason=r.reason, comment=r.comment,
                     reviewer=r.reviewer, reviewer_name=_name(names, r.reviewer), role=r.role,
                     created_at=r.created_at, origin=r.origin or "local", sync_state=r.state or "pending",
                     retracted=r.uuid in retracted, retracts=r.retracts,
                     result=tuple(r.result) if isinstance(r.result, list) else None)
        for r in sorted(rows, key=lambda r: _when(r.created_at, r.id), reverse=True) if r.verdict != "retract")


@dataclass(frozen=True)
class ReloadRequest:
    """What :func:`read_session_state` reads for (taken from a session on the UI thread)."""

    project_id: int
    role: str
    queue: QueueFilter
    show_decided_by_others: bool
    keep: frozenset[int]  # tasks that stay in the queue whatever the filters say (pinned, on screen)
    shown: int | None  # the task on screen
    index: int
    own_decisions: int  # how many decisions this session had recorded (its verdicts are in what is read)


@dataclass(frozen=True)
class SessionState:
    """A session's queue and verdict state as read from the store for a :class:`ReloadRequest`; plain values
    (no ORM objects), read on any thread, installed by :meth:`ReviewSession.install` on the session's own."""

    request: ReloadRequest
    task_ids: tuple[int, ...]
    base_ids: frozenset[int]
    ann_counts: dict[int, int]
    slots: dict[int | None, int]
    built: Queue | None
    routed: frozenset[int]
    names: dict[str, str]
    esc_lists: dict[int, tuple[Escalation, ...]]
    by_others: frozenset[int]
    hidden_by_others: int
    verdicts: dict[int, str]
    ann_task: dict[int, int]
    decided: dict[int, int]
    open: frozenset[int]
    index: int
    detail: TaskDetail | None  # the task at ``index``, annotations in slot order


def _is_open(role: str, task_id: int, escalations: Any, routed: Any, ann_counts: dict[int, int],
             decided: Any) -> bool:
    """A task of the queue still needs a verdict (in this role)."""
    if role == "reviewer" and task_id in escalations:
        return False
    if role == "expert" and task_id not in escalations and task_id not in routed:
        return False
    return ann_counts.get(task_id, 0) > decided.get(task_id, 0)


def _slot_order(d: TaskDetail, slots: dict[int | None, int]) -> TaskDetail:
    if len(d.annotations) > 1:
        # the same evaluator in the same place on every task of the project
        d = dataclasses.replace(d, annotations=tuple(sorted(
            d.annotations, key=lambda a: slots.get(a.completed_by, len(slots)))))
    return d


def _read_verdicts(projects: ProjectService, decisions: DecisionService, project_id: int
                   ) -> tuple[dict[int, str], dict[int, int], Counter[int]]:
    verdicts = decisions.effective_verdicts(project_id)
    with projects.store.session() as s:
        ann_task: dict[int, int] = dict(s.execute(
            select(Annotation.id, Annotation.task_id).where(Annotation.id.in_(list(verdicts)))).all()
        ) if verdicts else {}
    return verdicts, ann_task, Counter(ann_task[a] for a in verdicts if a in ann_task)


def _read_escalations(decisions: DecisionService, project_id: int, names: dict[str, str]
                      ) -> dict[int, list[Escalation]]:
    lists: dict[int, list[Escalation]] = {}
    for d in decisions.escalations(project_id):
        lists.setdefault(d.task_id, []).append(_escalation(d, names))
    return lists


def read_session_state(projects: ProjectService, req: ReloadRequest) -> SessionState:
    """Read a session's queue and verdict state (the store only; safe on a worker thread)."""
    store = projects.store
    project_id = req.project_id
    queue = req.queue
    with store.session() as s:
        if queue.task_ids is not None:
            wanted = list(dict.fromkeys(queue.task_ids))
            present = set(s.scalars(select(Task.id).where(Task.project_id == project_id,
                                                          Task.deleted.is_(False), Task.id.in_(wanted))))
            ids = [t for t in wanted if t in present]
        else:
            stmt = select(Task.id).where(Task.project_id == project_id, Task.deleted.is_(False))
            if queue.evaluator_user_id is not None:
                stmt = stmt.where(Task.id.in_(select(Annotation.task_id).where(
                    Annotation.completed_by == queue.evaluator_user_id)))
            ids = list(s.scalars(stmt.order_by(Task.position, Task.id)))
        # per-task annotation counts, aggregated in SQLite (a 1M-annotation project stays fast)
        ann_counts: dict[int, int] = dict(s.execute(
            select(Annotation.task_id, func.count()).join(Task, Task.id == Annotation.task_id)
            .where(Task.project_id == project_id, Annotation.was_cancelled.is_(False),
                   Annotation.deleted.is_(False))
            .group_by(Annotation.task_id)).all())
        # each evaluator keeps one colour and one position for the whole project (in user-id order)
        users = sorted(set(s.scalars(select(Annotation.completed_by).join(Task, Task.id == Annotation.task_id)
                                     .where(Task.project_id == project_id).distinct())),
                       key=lambda u: (u is None, u or 0))
        slots: dict[int | None, int] = {u: i for i, u in enumerate(users)}
    built: Queue | None = None
    routed: set[int] = set()
    if queue.spec is not None and queue.task_ids is None:
        from app.services.queues import _BIT, build_queue

        built = build_queue(store, project_id, queue.spec.with_(role=req.role))
        allowed = set(ids)
        ids = [t for t in built.task_ids.tolist() if t in allowed]  # the built queue's order
        if req.role == "expert":
            hit = (built.bits & _BIT["expert_threshold"]) != 0
            routed = set(built.task_ids[hit].tolist())
    names = projects.reviewer_names(project_id)
    team = _team_state(projects, project_id)
    decisions = DecisionService(store)
    esc_lists = _read_escalations(decisions, project_id, names)
    escalated = {t: es[-1] for t, es in esc_lists.items()}
    keep = req.keep
    base = set(ids)
    by_others = frozenset(t for t in team.decided_by_others if t in base)
    hidden_by_others = 0
    if built is not None:
        listed = set(ids)
        ids += [t for t in keep if t not in listed and t in base]
        if req.role == "reviewer" and not req.show_decided_by_others:
            hide = {t for t in by_others if t not in team.decided_here and t not in keep}
            if hide:
                ids = [t for t in ids if t not in hide]
                hidden_by_others = len(hide & listed)
    elif req.role == "expert":
        ids = [t for t in ids if t in escalated or t in keep]
    elif not req.show_decided_by_others and queue.task_ids is None:
        # another reviewer already judged it (and I did not): not mine to do again, unless opened on purpose
        hide = {t for t in by_others if t not in team.decided_here and t not in keep}
        if hide:
            ids = [t for t in ids if t not in hide]
            hidden_by_others = len(hide)
    verdicts, ann_task, decided = _read_verdicts(projects, decisions, project_id)
    open_ = frozenset(t for t in ids if _is_open(req.role, t, escalated, routed, ann_counts, decided))
    index = req.index
    if req.shown is not None and req.shown in ids:
        index = ids.index(req.shown)
    index = min(index, max(len(ids) - 1, 0))
    detail = _slot_order(projects.task_detail(ids[index]), slots) if ids else None
    return SessionState(request=req, task_ids=tuple(ids), base_ids=frozenset(base), ann_counts=ann_counts,
                        slots=slots, built=built, routed=frozenset(routed), names=names,
                        esc_lists={t: tuple(es) for t, es in esc_lists.items()}, by_others=by_others,
                        hidden_by_others=hidden_by_others, verdicts=verdicts, ann_task=ann_task,
                        decided=dict(decided), open=open_, index=index, detail=detail)


def moves_between_queues(decisions: Sequence[DecisionInfo], *, built: bool) -> bool:
    """Whether recording ``decisions`` can change the queue counts (the bar's reviewer / expert numbers).

    The plain project-order queue routes by open escalations only (``plain_counts``): only an escalation, an
    expert's verdict (it settles one) or an undo (it may reopen one) moves a task between the queues. A built
    queue's rules also read what is judged: any decision may."""
    return built or any(d.verdict in ("escalate", "retract") or (d.role == "expert" and d.verdict in JUDGEMENTS)
                        for d in decisions)


class ReviewSession:
    def __init__(self, projects: ProjectService, project_id: int, *, reviewer: str, role: str = "reviewer",
                 queue: QueueFilter | None = None, auto_advance: bool = True,
                 show_decided_by_others: bool = False) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        self.projects = projects
        self.decisions = DecisionService(projects.store)
        self.project_id = project_id
        self.reviewer = reviewer
        self.role = role
        self.queue = queue or QueueFilter()
        self.auto_advance = auto_advance
        self.show_decided_by_others = show_decided_by_others
        self.state = "idle"
        self.swallowed = 0
        self.index = 0
        self.focus = 0
        self._detail: TaskDetail | None = None
        self._shown_at = time.monotonic()
        self._started = time.monotonic()
        self._history: list[DecisionInfo] = []  # this session's decisions, oldest first
        self._undone: list[tuple[DecisionInfo, ...]] = []  # redo stack: one keystroke's decisions each
        self._batch: dict[str, tuple[str, ...]] = {}  # decision uuid -> the uuids recorded by the same keystroke
        self._slots: dict[int | None, int] = {}  # evaluator (server user id) -> fixed colour/position slot
        self._seen_anns: dict[int, tuple[str, tuple[Any, ...]]] = {}  # annotation id -> (evaluator name, result)
        self._pinned: set[int] = set()  # tasks opened on purpose (re-review): kept in the queue
        self._team_cache: tuple[int, tuple[TeamDecision, ...]] | None = None
        self._names: dict[str, str] = {}
        self._by_others: frozenset[int] = frozenset()
        self._hidden_by_others = 0
        self._built: Queue | None = None
        self._built_at: dict[int, int] = {}
        self._routed: set[int] = set()  # expert queue: tasks routed by the expert threshold, not yet judged by one
        self.reload()

    # -- queue ---------------------------------------------------------------------------------
    def reload(self) -> None:
        """(Re)build the queue and the verdict state from the store (start, sync, filter change).

        The task on screen stays on screen (same annotation focused) when it is still in the queue. The same as
        :meth:`install` of :func:`read_session_state` of :meth:`reload_request`, on the calling thread (the GUI
        reads in a worker and installs on the UI thread).
        """
        installed = self.install(read_session_state(self.projects, self.reload_request()))
        assert installed

    def reload_request(self) -> ReloadRequest:
        """What a reload reads depends on: the queue, role and setting, the tasks kept in it, the task on screen
        and this session's own decisions (a state read before one of them changed is not installed)."""
        shown = self._detail.id if self._detail is not None else None
        keep = set(self._pinned)
        if shown is not None:
            keep.add(shown)  # a pull never pulls the task from under the reviewer's eyes
        return ReloadRequest(project_id=self.project_id, role=self.role, queue=self.queue,
                             show_decided_by_others=self.show_decided_by_others, keep=frozenset(keep), shown=shown,
                             index=self.index, own_decisions=len(self._history))

    def install(self, state: SessionState) -> bool:
        """Take a state read by :func:`read_session_state` (cheap: assignments). Refused (False, nothing
        changed) when the request it answers is no longer this session's (the queue, the task on screen or a
        decision of this session changed since) or a decision is being written."""
        if self.state != "idle" or state.request != self.reload_request():
            return False
        shown = state.request.shown
        shown_ann = self.focused_annotation()
        self._ann_counts = state.ann_counts
        self._slots = state.slots
        self._built, self._built_at, self._routed = state.built, {}, set(state.routed)
        self._names = state.names
        self._esc_lists = {t: list(es) for t, es in state.esc_lists.items()}
        self._escalations: dict[int, Escalation] = {t: es[-1] for t, es in self._esc_lists.items()}
        self._base_ids = state.base_ids
        self._by_others = state.by_others
        self._hidden_by_others = state.hidden_by_others
        self.task_ids = list(state.task_ids)
        self.task_ids_set = set(state.task_ids)
        self._team_cache = None
        self._verdicts = dict(state.verdicts)
        self._ann_task = dict(state.ann_task)
        self._decided = Counter(state.decided)
        self._open = set(state.open)
        self.index = state.index
        self._load_current(state.detail)
        if shown_ann is not None and self._detail is not None and self._detail.id == shown:
            self._focus_annotation(shown_ann.id)
        return True

    def _load_verdicts(self) -> None:
        self._verdicts, self._ann_task, self._decided = _read_verdicts(self.projects, self.decisions, self.project_id)

    def _recount(self) -> None:
        self._open = {t for t in self.task_ids if self._compute_open(t)}

    def _load_current(self, detail: TaskDetail | None = None) -> None:
        """The task at ``index`` on screen (``detail``: it, already read and ordered by slot)."""
        tid = self.task_ids[self.index] if self.task_ids else None
        if detail is not None and detail.id == tid:
            d: TaskDetail | None = detail
        else:
            d = _slot_order(self.projects.task_detail(tid), self._slots) if tid is not None else None
        self._detail = d
        if d is not None:
            for a in d.annotations:
                self._seen_anns[a.id] = (self.evaluator_name(a.evaluator), a.result)
        # the first annotation nobody has decided yet (going back to a task lands where work is left); in a
        # drill-down, one of the compared evaluators' first
        self.focus = 0
        if d is not None:
            open_ = [i for i, a in enumerate(d.annotations) if a.id not in self._verdicts]
            wanted = {e.lower() for e in self.queue.highlight}
            pair = [i for i, a in enumerate(d.annotations) if a.evaluator.lower() in wanted]
            self.focus = next((i for i in pair if i in open_), pair[0] if pair else (open_[0] if open_ else 0))
        self._shown_at = time.monotonic()

    def _compute_open(self, task_id: int) -> bool:
        return _is_open(self.role, task_id, self._escalations, self._routed, self._ann_counts, self._decided)

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

    def set_queue(self, queue: QueueFilter | None) -> Changes:
        """Filter the queue (a drill-down, an annotator's work) or go back to the full queue, keeping this
        session: its history, counters and undo stay."""
        if self.state != "idle":
            return NOTHING
        self.queue = queue or QueueFilter()
        self._detail = None
        self.index = 0
        self.reload()
        return Changes(queue=True)

    def set_role(self, role: str) -> Changes:
        """Work the other role's queue (reviewer or expert), keeping this session's history, counters and undo."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        if self.state != "idle" or role == self.role:
            return NOTHING
        self.role = role
        self._detail = None
        self.index = 0
        self.reload()
        return Changes(queue=True)

    def queue_reasons(self, task_id: int | None = None) -> tuple[str, ...]:
        """Why the task (default: the one on screen) is in the built queue; empty without a built queue."""
        if task_id is None:
            task_id = self._detail.id if self._detail is not None else None
        if self._built is None or task_id is None:
            return ()
        if not self._built_at:
            self._built_at = {int(t): i for i, t in enumerate(self._built.task_ids.tolist())}
        i = self._built_at.get(task_id)
        return () if i is None else self._built._reasons(i)

    def open_task(self, task_id: int) -> Changes:
        """Show this task whatever the queue's filters say (re-review of a conflict, a task picked from the
        task list): it joins the queue and stays in it for this session. A task outside a drill-down filter
        opens the whole queue. Unknown or deleted tasks: nothing happens."""
        if self.state != "idle":
            return NOTHING
        if task_id in self.task_ids_set:
            return self.go_to_task(task_id)
        self._pinned.add(task_id)
        if task_id not in self._base_ids and self.queue != QueueFilter():
            self.queue = QueueFilter()
        self.reload()
        if task_id not in self.task_ids_set:
            self._pinned.discard(task_id)
            return NOTHING
        return self.go_to_task(task_id) | Changes(queue=True)

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
        batch = tuple(d.uuid for d in recorded.decisions)
        for u in batch:
            self._batch[u] = batch
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
        self._team_cache = None
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
                self._esc_lists.setdefault(info.task_id, []).append(_escalation(info, self._names))
                self._escalations[info.task_id] = self._esc_lists[info.task_id][-1]
            elif info.verdict == "retract":
                self._load_verdicts()
                self._load_escalations()
        for info in infos:
            if info.role == "expert" and info.verdict in JUDGEMENTS:
                self._routed.discard(info.task_id)  # an expert's verdict resolves a threshold-routed task
            if info.role == "expert" and info.verdict in JUDGEMENTS and info.task_id in self._esc_lists:
                left = [e for e in self._esc_lists[info.task_id] if not _settles(info, e)]
                if left:
                    self._esc_lists[info.task_id] = left
                    self._escalations[info.task_id] = left[-1]
                else:
                    del self._esc_lists[info.task_id]
                    self._escalations.pop(info.task_id, None)

    def _load_escalations(self) -> None:
        """Open escalations from every reviewer, local or pulled (task id -> oldest first; the latest shows)."""
        lists = _read_escalations(self.decisions, self.project_id, self._names)
        self._esc_lists = lists
        self._escalations = {t: es[-1] for t, es in lists.items()}

    # -- undo / redo -------------------------------------------------------------------------------
    def undo(self, decision_uuid: str | None = None) -> Changes:
        """Retract the last decision of this session, or the given one, and go back to its task.

        Only decisions made in this store (``origin`` local) can be undone: another reviewer's decision,
        brought by a pull, raises :class:`DecisionError` saying whose it is. A local decision of an earlier
        session can be undone by its uuid (picked in the task history).
        """
        if self.state != "idle":
            self.swallowed += 1
            return NOTHING
        live = [d for d in self._history if d.verdict != "retract" and not self._is_retracted(d.uuid)]
        if decision_uuid is not None:
            live = [d for d in live if d.uuid == decision_uuid]
            if not live:
                earlier = self._undoable(decision_uuid)
                if earlier is None:
                    return NOTHING
                live = [earlier]
        if not live:
            return NOTHING
        target = live[-1]
        group = [target]
        if decision_uuid is None:
            # the whole keystroke: Shift+A's accept and its rejects go back together
            batch = set(self._batch.get(target.uuid, (target.uuid,)))
            group = [d for d in live if d.uuid in batch]
        rec = self.decisions.retract_many([d.uuid for d in group], reviewer=self.reviewer, role=self.role)
        self._history.extend(rec.decisions)
        self._undone.append(tuple(group))
        self._apply(rec.decisions)
        return rec.changes | self.go_to_task(target.task_id) | self._focus_annotation(group[0].annotation_id)

    def last_undone(self) -> tuple[DecisionInfo, ...]:
        """The decisions the last undo took back (one keystroke's), for the status bar."""
        return self._undone[-1] if self._undone else ()

    def redo(self) -> Changes:
        if self.state != "idle" or not self._undone:
            return NOTHING
        group = self._undone.pop()
        reqs = [DecisionRequest(task_id=d.task_id, verdict=d.verdict, annotation_id=d.annotation_id,
                                prediction_id=d.prediction_id, result=list(d.result) if d.result else None,
                                reason=d.reason, comment=d.comment, lead_time_ms=d.lead_time_ms) for d in group]
        rec = self.decisions.record(self.project_id, reqs, reviewer=self.reviewer, role=self.role)
        self._history.extend(rec.decisions)
        batch = tuple(d.uuid for d in rec.decisions)
        for u in batch:
            self._batch[u] = batch
        self._apply(rec.decisions)
        return rec.changes | self.go_to_task(group[0].task_id) | self._focus_annotation(group[0].annotation_id)

    def focus_annotation(self, annotation_id: int) -> Changes:
        """Focus this annotation of the task on screen (picked in the task history)."""
        if self.state != "idle":
            return NOTHING
        return self._focus_annotation(annotation_id)

    def _focus_annotation(self, annotation_id: int | None) -> Changes:
        d = self._detail
        if d is None or annotation_id is None:
            return NOTHING
        for i, a in enumerate(d.annotations):
            if a.id == annotation_id:
                self.focus = i
                return Changes(queue=True)
        return NOTHING

    def _undoable(self, decision_uuid: str) -> DecisionInfo | None:
        """A decision outside this session's history that undo may retract; refuses others' decisions."""
        with self.projects.store.session() as s:
            row = s.execute(select(Decision.origin, Decision.reviewer, Decision.verdict)
                            .where(Decision.uuid == decision_uuid, Decision.project_id == self.project_id)).first()
        if row is None:
            raise DecisionError("That decision is not in this project.")
        if row.origin != "local":
            who = _name(self._names, row.reviewer)
            raise DecisionError(f"{who}'s {row.verdict} came from the server: read-only here — only your own "
                                "decisions can be undone.")
        if row.verdict == "retract":
            return None
        info = self.decisions.get(decision_uuid)
        if info.retracted:
            raise DecisionError("That decision was already undone.")
        return info

    def _is_retracted(self, uuid: str) -> bool:
        return any(d.retracts == uuid for d in self._history)

    # -- views -------------------------------------------------------------------------------------
    def history(self, n: int = 20) -> tuple[DecisionInfo, ...]:
        """The last ``n`` decisions of this session, newest first, with retraction marks."""
        retracted = {d.retracts for d in self._history if d.retracts}
        if n <= 0:  # as ``out[-0:]`` was: every one
            n = len(self._history)
        # newest first, only the n shown (asked on every key press: a copy of each of the session's decisions
        # grew with the session, ~2 ms per press after a thousand)
        out: list[DecisionInfo] = []
        for d in reversed(self._history):
            if d.verdict == "retract":
                continue
            mark = d.uuid in retracted
            out.append(d if d.retracted == mark else dataclasses.replace(d, retracted=mark))
            if len(out) >= n:
                break
        return tuple(out)

    def whose(self, annotation_id: int | None) -> str:
        """``Tom Becker's annotation`` for an annotation shown in this session (``the task`` for none)."""
        if annotation_id is None:
            return "the task"
        seen = self._seen_anns.get(annotation_id)
        return f"{seen[0]}'s annotation" if seen else f"annotation {annotation_id}"

    def controls_changed(self, d: DecisionInfo) -> tuple[str, ...]:
        """The controls a fix changed (compared with the annotation as it was shown), in result order."""
        if d.verdict != "fix" or d.result is None or d.annotation_id not in self._seen_anns:
            return ()
        before = self._seen_anns[d.annotation_id][1]

        def by_control(items: Sequence[Any]) -> dict[str, list[Any]]:
            out: dict[str, list[Any]] = {}
            for it in items:
                if isinstance(it, dict):
                    out.setdefault(str(it.get("from_name")), []).append(
                        {k: v for k, v in it.items() if k not in ("id", "origin")})
            return out

        old, new = by_control(before), by_control(d.result)
        return tuple(c for c in dict.fromkeys([*old, *new]) if old.get(c) != new.get(c))

    def display_name(self, email: str | None) -> str:
        """The project member's name for an e-mail when the server gave one, else the e-mail."""
        return _name(self._names, email)

    def task_history(self, task_id: int | None = None) -> tuple[TeamDecision, ...]:
        """Everyone's decisions on the task (default: the one on screen), newest first; others' are marked
        ``origin`` = ``server`` and read-only. Cached per task until a decision or a reload."""
        if task_id is None:
            if self._detail is None:
                return ()
            task_id = self._detail.id
        if self._team_cache is not None and self._team_cache[0] == task_id:
            return self._team_cache[1]
        out = task_decisions(self.projects, task_id, self._names)
        self._team_cache = (task_id, out)
        return out

    def counters(self) -> Counters:
        made = sum(1 for d in self._history if d.verdict != "retract") - sum(
            1 for d in self._history if d.verdict == "retract")
        pending = self.decisions.pending_count(self.project_id)
        remaining = self.remaining()
        per_hour = minutes_left = None
        hours = (time.monotonic() - self._started) / 3600
        if made >= 3 and hours > 0:
            per_hour = made / hours
            tasks_done = len({d.task_id for d in self._history if d.verdict != "retract"})
            if tasks_done:
                minutes_left = remaining / (tasks_done / hours) * 60
        return Counters(made=made, pending_sync=pending, remaining=remaining, total=len(self.task_ids),
                        decided_by_others=len(self._by_others), hidden_by_others=self._hidden_by_others,
                        per_hour=per_hour, minutes_left=minutes_left)

    def verdicts_for_current(self) -> dict[int, str]:
        d = self._detail
        if d is None:
            return {}
        return {a.id: self._verdicts[a.id] for a in d.annotations if a.id in self._verdicts}

    def statuses(self, team: Sequence[TeamDecision] | None = None) -> dict[int, AnnotationStatus]:
        """Each annotation of the task on screen: its live verdict (anyone's, newest wins) or open escalation."""
        d = self._detail
        if d is None:
            return {}
        if team is None:
            team = self.task_history()
        ids = {a.id for a in d.annotations}
        out: dict[int, AnnotationStatus] = {}
        me = self.reviewer.lower()
        for t in team:  # newest first
            if t.annotation_id not in ids or t.annotation_id in out or t.retracted or t.verdict not in JUDGEMENTS:
                continue
            out[t.annotation_id] = AnnotationStatus(
                t.verdict, t.reviewer, t.reviewer_name, t.origin, t.mine and t.reviewer.lower() == me,
                t.result if t.verdict == "fix" else None)
        for e in self._esc_lists.get(d.id, ()):
            if e.annotation_id in ids and e.annotation_id not in out:
                out[e.annotation_id] = AnnotationStatus(
                    "escalate", e.reviewer, e.reviewer_name, e.origin,
                    not e.from_server and e.reviewer.lower() == me)
        return out

    def evaluator_slot(self, completed_by: int | None) -> int:
        """The evaluator's fixed slot in this project (its colour and its place among the chips)."""
        return self._slots.get(completed_by, len(self._slots))

    def evaluator_name(self, evaluator: str) -> str:
        """One name format everywhere: the member's display name, else a name made from the e-mail."""
        return evaluator_name(evaluator, self._names)

    def view(self) -> SessionView:
        d = self._detail
        team = self.task_history()
        anns = d.annotations if d else ()
        return SessionView(state=self.state, position=self.index, total=len(self.task_ids), task=d,
                           focus=self.focus, verdicts=self.verdicts_for_current(),
                           escalation=self._escalations.get(d.id) if d else None, counters=self.counters(),
                           team=team, statuses=self.statuses(team),
                           evaluator_slots={a.id: self.evaluator_slot(a.completed_by) for a in anns},
                           evaluator_names={a.id: self.evaluator_name(a.evaluator) for a in anns})

    def escalations(self) -> tuple[Escalation, ...]:
        """The open escalations this session knows, oldest first (the expert queue's reasons)."""
        return tuple(sorted((e for es in self._esc_lists.values() for e in es),
                            key=lambda e: _when(e.created_at, 0)))


__all__ = ["ReviewSession", "ReloadRequest", "SessionState", "read_session_state", "AnnotationStatus", "STATUS_WORDS", "QueueFilter", "Counters", "Pending", "SessionView", "DecisionError", "TeamDecision",
           "Escalation", "open_escalations", "task_decisions"]
