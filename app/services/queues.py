"""Review queues (Qt-free): which tasks a reviewer role works through, in which order, and why.

A :class:`QueueSpec` combines eligibility rules (all must hold) with an ordering, a role and a seed.
:func:`build_queue` answers it over a whole project with numpy: the per-task scores come from
:func:`queue_inputs` (agreement from :func:`app.services.taskfilter.agreement_index`, model confidence from
the predictions, Dawid-Skene uncertainty from :func:`app.services.dashboard.consensus_reference`, model
disagreement against that consensus), cached per data version; the review state (decisions, escalations,
ground truth) is read fresh on every build, in a few column queries.

Missing values: a task with fewer than two human answers has no agreement (and no consensus, so no
uncertainty); a task without a prediction has no confidence. A missing score never satisfies a threshold
rule, and sorts **after** every task that has one (then by task id), whatever the ordering.
Ties sort by local task id. ``random`` and the N% sample hash ``(seed, task id)``: the same seed gives the
same queue on every machine, and a task's sample membership does not depend on the other rules.

Routing: the ``expert`` queue holds the tasks with an open escalation (local or pulled,
:meth:`app.services.decisions.DecisionService.escalations`) and the tasks whose agreement is below the
project's expert threshold and which no expert has judged yet; the ``reviewer`` queue leaves both out.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
from sqlalchemy import delete, select, text

from app.models.audit import append_event
from app.models.schema import Project, QueueAssignment, QueuePreset, QueueSetting
from app.models.store import Store, now_iso
from app.services.changes import NOTHING, Changes
from app.services.decisions import JUDGEMENTS

ORDERS = ("agreement", "confidence", "model-disagreement", "uncertainty", "oldest", "random")
ROLES = ("reviewer", "expert")
GROUND_TRUTH_RULES = ("any", "only", "exclude")
_JUDGED = ", ".join(f"'{v}'" for v in JUDGEMENTS)


class QueueError(ValueError):
    """A queue definition or a preset that cannot be used (unknown preset, bad threshold, ...)."""


@dataclass(frozen=True)
class QueueSpec:
    """Which tasks enter a queue (every rule set must hold), in which order, for which role.

    ``agreement_below``: task agreement of the annotators (on ``control`` when given, else overall) below it.
    ``annotators``: server user ids; a task with an annotation by any of them. ``control`` + ``value``: a
    task where an annotator answered ``value`` on ``control``. ``confidence_below``: model confidence (the
    prediction score of ``model_version``, else the lowest of the task's predictions) below it.
    ``model_version`` + ``disagrees_with_model``: the model's answer differs from the Dawid-Skene consensus.
    ``not_reviewed``: no live accept/fix/reject from anyone. ``ground_truth``: ``any``, ``only`` or
    ``exclude`` tasks with a ground-truth reference. ``sample_pct``: a seeded N% sample.
    """

    agreement_below: float | None = None
    annotators: tuple[int, ...] = ()
    control: str | None = None
    value: str | None = None
    confidence_below: float | None = None
    model_version: str | None = None
    disagrees_with_model: bool = False
    not_reviewed: bool = False
    ground_truth: str = "any"
    sample_pct: float | None = None
    order: str = "agreement"
    role: str = "reviewer"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise QueueError(f"unknown order {self.order!r}; use {', '.join(ORDERS)}")
        if self.role not in ROLES:
            raise QueueError(f"unknown role {self.role!r}; use {', '.join(ROLES)}")
        if self.ground_truth not in GROUND_TRUTH_RULES:
            raise QueueError(f"ground_truth must be one of {', '.join(GROUND_TRUTH_RULES)}")
        for name in ("agreement_below", "confidence_below"):
            v = getattr(self, name)
            if v is not None and not 0.0 <= v <= 1.0:
                raise QueueError(f"{name} must be between 0 and 1 (got {v})")
        if self.sample_pct is not None and not 0.0 < self.sample_pct <= 100.0:
            raise QueueError(f"sample_pct must be in (0, 100] (got {self.sample_pct})")
        if self.value is not None and self.control is None:
            raise QueueError("a control value rule needs the control")
        if self.disagrees_with_model and not self.model_version:
            raise QueueError("the model-disagreement rule needs a model version")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["annotators"] = list(self.annotators)
        return d

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> QueueSpec:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in raw.items() if k in known}
        if "annotators" in kw:
            kw["annotators"] = tuple(int(u) for u in kw["annotators"] or ())
        return cls(**kw)

    def with_(self, **kw: Any) -> QueueSpec:
        return replace(self, **kw)


@dataclass(frozen=True)
class QueueItem:
    task: int  # the task id ``reviewdesk decide`` takes: the Label Studio id, else the local id
    agreement: float | None
    confidence: float | None
    uncertainty: float | None
    reasons: tuple[str, ...]
    task_id: int = field(default=0, compare=False)  # local id (not in the CLI's JSON)

    def as_json(self) -> dict[str, Any]:
        return {"task": self.task, "agreement": self.agreement, "confidence": self.confidence,
                "uncertainty": self.uncertainty, "reasons": list(self.reasons)}


# -- per-task inputs (cached per data version) ------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class QueueInputs:
    """Per-task scores of a project, aligned with ``tasks`` (local ids, ascending). NaN = no score."""

    project_id: int
    version: tuple[Any, ...]
    tasks: np.ndarray
    keys: np.ndarray  # the id ``decide`` takes (server id, else local id)
    created: np.ndarray  # oldest-first rank of each task (created_at, then id)
    agreement: np.ndarray
    agreement_by_control: dict[str, np.ndarray]
    confidence: np.ndarray  # lowest prediction score of the task
    confidence_by_model: dict[str, np.ndarray]
    uncertainty: np.ndarray  # P(consensus is wrong) = 1 - posterior, highest over the task's controls
    model_disagreement: dict[str, np.ndarray]  # model version -> 1 - score against the consensus
    values: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # control -> value -> task ids (lazy)

    def align(self, task_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        out = np.full(self.tasks.shape, np.nan)
        if task_ids.size:
            pos = np.searchsorted(self.tasks, task_ids)
            ok = (pos < self.tasks.size)
            ok[ok] &= self.tasks[pos[ok]] == task_ids[ok]
            out[pos[ok]] = scores[ok]
        return out

    def contains(self, task_ids: np.ndarray | Sequence[int]) -> np.ndarray:
        return np.isin(self.tasks, np.asarray(task_ids, dtype=np.int64))


_INPUTS: dict[tuple[str, int], QueueInputs] = {}
_QUICK: dict[tuple[str, int], tuple[Any, ...]] = {}
_LOCK = threading.Lock()


def queue_inputs(store: Store, project_id: int) -> QueueInputs:
    """The per-task scores of the project, cached until its data version changes (slow the first time on a
    big project: the metrics engine; call it off the UI thread)."""
    from app.metrics import GROUND_TRUTH, pair_disagreements
    from app.services.dashboard import MODEL_PREFIX, consensus_reference, load_frames
    from app.services.taskfilter import agreement_index

    key = (str(store.path), project_id)
    with store.session() as s:
        if s.get(Project, project_id) is None:
            raise LookupError(f"No project {project_id}.")
        conn = s.connection()
        quick = _quick_version(conn)
        with _LOCK:
            hit = _INPUTS.get(key)
            seen = _QUICK.get(key)
        if hit is not None and seen == quick:
            return hit  # nothing was written since the last check (O(1): row-id maxima)
        version = _inputs_version(conn, project_id)
        if hit is not None and hit.version == version:
            with _LOCK:
                _QUICK[key] = quick
            return hit
        rows = conn.execute(text("SELECT id, coalesce(server_id, id), coalesce(created_at, '') FROM tasks "
                                 "WHERE project_id = :p AND deleted = 0 ORDER BY id"), {"p": project_id}).all()
        preds = conn.execute(text("SELECT p.task_id, coalesce(p.model_version, ''), p.score FROM predictions p "
                                  "JOIN tasks t ON t.id = p.task_id WHERE t.project_id = :p AND t.deleted = 0 "
                                  "AND p.score IS NOT NULL"), {"p": project_id}).all()
    cols = list(zip(*rows, strict=True)) if rows else [(), (), ()]
    tasks = np.array(cols[0], dtype=np.int64)
    keys = np.array(cols[1], dtype=np.int64)
    created = np.empty(tasks.size, dtype=np.int64)
    created[np.lexsort((tasks, np.array(cols[2], dtype=object).astype(str)))] = np.arange(tasks.size)
    base = QueueInputs(project_id, version, tasks, keys, created, np.full(tasks.size, np.nan), {},
                       np.full(tasks.size, np.nan), {}, np.full(tasks.size, np.nan), {})
    # agreement (the Tasks tab's index: humans, pairwise)
    idx = agreement_index(store, project_id)
    agreement = base.align(idx.tasks, idx.overall)
    by_control = {c: base.align(idx.tasks, v) for c, v in idx.by_control.items()}
    # model confidence
    confidence = np.full(tasks.size, np.nan)
    by_model: dict[str, np.ndarray] = {}
    if preds:
        pt = np.array([r[0] for r in preds], dtype=np.int64)
        pm = np.array([r[1] for r in preds], dtype=object)
        ps = np.array([r[2] for r in preds], dtype=float)
        order = np.lexsort((ps, pt))  # per task, lowest score first
        first = np.unique(pt[order], return_index=True)[1]
        confidence = base.align(pt[order][first], ps[order][first])
        for m in np.unique(pm):
            sel = pm == m
            by_model[str(m)] = base.align(pt[sel], ps[sel])
    # Dawid-Skene uncertainty and model disagreement with the consensus
    frames = load_frames(store, project_id)
    ref = consensus_reference(frames)
    uncertainty = np.full(tasks.size, np.nan)
    disagreement: dict[str, np.ndarray] = {}
    if not ref.empty:
        worst = (1.0 - ref["confidence"].astype(float)).groupby(ref["task"].astype("int64")).max()
        uncertainty = base.align(worst.index.to_numpy(dtype=np.int64), worst.to_numpy(dtype=float))
        ann = frames.annotations
        models = sorted({e for e in ann["evaluator"].astype(str).unique() if e.startswith(MODEL_PREFIX)})
        ref_tasks = ref["task"].to_numpy(dtype=np.int64)
        for m in models:
            mine = ann[ann["evaluator"].astype(str) == m]
            shared = np.intersect1d(np.unique(mine["task"].to_numpy(dtype=np.int64)), ref_tasks)
            scores = base.align(shared, np.zeros(shared.size))  # compared and equal: 0
            df = pair_disagreements(ann, m, GROUND_TRUTH, frames.params, ground_truth=ref)
            if not df.empty:
                d = base.align(df["task"].to_numpy(dtype=np.int64), df["disagreement"].to_numpy(dtype=float))
                scores = np.where(np.isnan(d), scores, d)
            disagreement[m[len(MODEL_PREFIX):]] = scores
    out = replace(base, agreement=agreement, agreement_by_control=by_control, confidence=confidence,
                  confidence_by_model=by_model, uncertainty=uncertainty, model_disagreement=disagreement)
    with _LOCK:
        _INPUTS[key] = out
        _QUICK[key] = quick
    return out


def _quick_version(conn: Any) -> tuple[Any, ...]:
    """Row-id maxima (index lookups): unchanged means nothing was written since. Every change to local state
    appends an audit event (a pull's changed annotations, an import, a deletion) and new rows raise their
    table's maximum; when this moved, :func:`_inputs_version` says whether the scores' inputs did."""
    # the newest audit event that may have touched tasks, annotations, predictions or members: a verdict
    # (decision.*) or a calibration judgement never does, so a review session's writes keep the cache valid
    # (read backwards from the newest event; it stops at the first other kind)
    return tuple(conn.execute(text(
        "SELECT (SELECT id FROM audit_events WHERE kind NOT LIKE 'decision.%' AND kind NOT LIKE 'calibration.%' "
        "ORDER BY id DESC LIMIT 1), (SELECT max(id) FROM annotations), "
        "(SELECT max(id) FROM predictions), (SELECT max(id) FROM tasks), (SELECT max(id) FROM members)")).one())


def _inputs_version(conn: Any, project_id: int) -> tuple[Any, ...]:
    """What the per-task scores depend on: tasks, annotations, predictions and members -- not decisions, so a
    verdict does not send the next queue build through the metrics engine again (the review state is read
    fresh on every build anyway)."""
    p = {"p": project_id}
    ann = conn.execute(text("SELECT count(*), max(a.id), max(a.updated_at), sum(a.deleted), sum(a.was_cancelled) "
                            "FROM annotations a JOIN tasks t ON t.id = a.task_id WHERE t.project_id = :p "
                            "AND t.deleted = 0"), p).one()
    pred = conn.execute(text("SELECT count(*), max(pr.id) FROM predictions pr JOIN tasks t ON t.id = pr.task_id "
                             "WHERE t.project_id = :p AND t.deleted = 0"), p).one()
    tasks = conn.execute(text("SELECT count(*), max(id), max(updated_at) FROM tasks WHERE project_id = :p "
                              "AND deleted = 0"), p).one()
    mem = conn.execute(text("SELECT count(*), max(id), group_concat(coalesce(email, ''), ',') FROM members "
                            "WHERE project_id = :p"), p).one()
    return (*tuple(ann), *tuple(pred), *tuple(tasks), *tuple(mem))


def inputs_ready(store: Store, project_id: int) -> bool:
    """Whether :func:`queue_inputs` would answer from its cache now (nothing written since the last build),
    so a queue can be built on the UI thread; otherwise warm it in a worker first."""
    key = (str(store.path), project_id)
    with _LOCK:
        if key not in _INPUTS:
            return False
        seen = _QUICK.get(key)
    with store.session() as s:
        return seen == _quick_version(s.connection())


def _answer_values(items: Any) -> set[str]:
    """The answers of one control's result items as words (choices, labels, taxonomy steps, rating, text)."""
    out: set[str] = set()
    for it in items or ():
        v = it.get("value") if isinstance(it, dict) else None
        if not isinstance(v, dict):
            continue
        for k, x in v.items():
            if k in ("start", "end", "x", "y", "width", "height", "rotation", "startOffset", "endOffset",
                     "points", "globalOffsets"):
                continue
            stack = [x]
            while stack:
                y = stack.pop()
                if isinstance(y, list):
                    stack.extend(y)
                elif isinstance(y, str | int | float) and not isinstance(y, bool):
                    out.add(str(y))
    return out


def _value_tasks(store: Store, inputs: QueueInputs, control: str, value: str) -> np.ndarray:
    """Task ids where a human annotator answered ``value`` on ``control`` (indexed once per data version)."""
    from app.services.dashboard import MODEL_PREFIX, load_frames

    per = inputs.values.get(control)
    if per is None:
        ann = load_frames(store, inputs.project_id).annotations
        sel = ann[(ann["control"] == control) & ~ann["evaluator"].astype(str).str.startswith(MODEL_PREFIX)]
        found: dict[str, set[int]] = {}
        for t, res in zip(sel["task"].to_numpy(dtype=np.int64), sel["result"], strict=True):
            for v in _answer_values(res):
                found.setdefault(v, set()).add(int(t))
        per = {v: np.array(sorted(ts), dtype=np.int64) for v, ts in found.items()}
        inputs.values[control] = per
    return per.get(value, np.zeros(0, dtype=np.int64))


# -- review state (fresh on every build) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ReviewState:
    judged: np.ndarray  # task ids with a live accept/fix/reject (anyone's)
    expert_judged: np.ndarray  # task ids with a live accept/fix/reject by an expert
    ground_truth: np.ndarray  # task ids with a ground-truth reference
    escalations: dict[int, str]  # task id -> the reason shown (oldest open escalation's)


_RET = "SELECT retracts FROM decisions WHERE project_id = :p AND retracts IS NOT NULL"
# open escalations: not retracted, no later expert judgement on the same annotation (or on the task when either is
# task-level) -- the rule of DecisionService.escalations and of the Tasks tab's ``escalated`` status, in SQL
_OPEN_ESC = f"""
SELECT e.task_id, e.reviewer, e.reason, e.comment, e.origin FROM decisions e
WHERE e.project_id = :p AND e.verdict = 'escalate' AND e.uuid NOT IN ({_RET})
  AND NOT EXISTS (
    SELECT 1 FROM decisions x WHERE x.task_id = e.task_id AND x.id > e.id AND x.role = 'expert'
      AND x.verdict IN ({_JUDGED}) AND x.uuid NOT IN ({_RET})
      AND (e.annotation_id IS NULL OR x.annotation_id IS NULL OR x.annotation_id = e.annotation_id
           OR (x.prediction_id IS NOT NULL AND x.prediction_id = e.prediction_id)))
ORDER BY e.id"""


def review_state(store: Store, project_id: int) -> ReviewState:
    """The review state the rules and the routing read, fresh (a few column queries, no ORM objects)."""
    from app.services.projects import ProjectService
    from app.services.review import _name

    judged_q = f"SELECT DISTINCT task_id FROM decisions WHERE project_id = :p AND verdict IN ({_JUDGED}) " \
        f"AND uuid NOT IN ({_RET})"  # the covering index (project_id, verdict, task_id, annotation_id, uuid)
    expert_q = f"SELECT DISTINCT task_id FROM decisions WHERE project_id = :p AND role = 'expert' " \
        f"AND verdict IN ({_JUDGED}) AND uuid NOT IN ({_RET})"  # the partial index of expert rows (0009)
    # from the few reference rows to their tasks (CROSS JOIN keeps that order), not from every task
    gt = ("SELECT g.task_id FROM ground_truth g CROSS JOIN tasks t ON t.id = g.task_id WHERE t.project_id = :p "
          f"AND (g.decision_uuid IS NULL OR g.decision_uuid NOT IN ({_RET})) "
          "UNION SELECT a.task_id FROM annotations a CROSS JOIN tasks t ON t.id = a.task_id "
          "WHERE a.ground_truth = 1 AND a.deleted = 0 AND t.project_id = :p")
    with store.session() as s:
        raw: Any = s.connection().connection.driver_connection
        cur = raw.cursor()  # DB-API: plain tuples, no row objects
        try:
            args = {"p": project_id}
            judged = np.array([r[0] for r in cur.execute(judged_q, args).fetchall()], dtype=np.int64)
            expert = np.array([r[0] for r in cur.execute(expert_q, args).fetchall()], dtype=np.int64)
            gts = np.array([r[0] for r in cur.execute(gt, args).fetchall()], dtype=np.int64)
            escs = cur.execute(_OPEN_ESC, args).fetchall()
        finally:
            cur.close()
    names = ProjectService(store).reviewer_names(project_id) if escs else {}
    esc: dict[int, str] = {}
    for task_id, reviewer, reason, comment, origin in escs:
        if task_id not in esc:
            note = " — ".join(x for x in (reason, comment) if x)
            esc[task_id] = f"escalated by {_name(names, reviewer)}" + (f": {note}" if note else "") + (
                " (pulled)" if origin == "server" else "")
    return ReviewState(np.unique(judged), np.unique(expert), np.unique(gts), esc)


# -- building --------------------------------------------------------------------------------------------------
def _mix(x: np.ndarray, seed: int, salt: int) -> np.ndarray:
    """splitmix64 of (task id, seed, salt): a uniform, reproducible number in [0, 1) per task."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15 + salt * 0xBF58476D1CE4E5B9) & (2**64 - 1))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


# reason bits
_R = ("agreement", "annotators", "value", "confidence", "model", "not_reviewed", "gt_only", "gt_excluded",
      "sample", "escalated", "expert_threshold", "all")
_BIT = {name: 1 << i for i, name in enumerate(_R)}


@dataclass(frozen=True, eq=False)
class Queue:
    """A built queue: task ids (local) in order with their scores; :meth:`items` makes the records."""

    spec: QueueSpec
    project_id: int
    task_ids: np.ndarray
    keys: np.ndarray
    agreement: np.ndarray
    confidence: np.ndarray
    uncertainty: np.ndarray
    bits: np.ndarray
    expert_threshold: float | None = None
    escalations: dict[int, str] = field(default_factory=dict)
    annotator_names: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.task_ids.size)

    def _reasons(self, i: int) -> tuple[str, ...]:
        s, b = self.spec, int(self.bits[i])
        tid = int(self.task_ids[i])
        out: list[str] = []
        if b & _BIT["escalated"]:
            out.append(self.escalations.get(tid, "escalated"))
        if b & _BIT["expert_threshold"]:
            out.append(f"agreement {self.agreement[i]:.3f} below the expert threshold {self.expert_threshold:g}")
        if b & _BIT["agreement"]:
            on = f" on {s.control}" if s.control else ""
            out.append(f"agreement{on} {self.agreement[i]:.3f} below {s.agreement_below:g}")
        if b & _BIT["annotators"]:
            names = ", ".join(self.annotator_names.get(u, f"user #{u}") for u in s.annotators)
            out.append(f"annotated by {names}")
        if b & _BIT["value"]:
            out.append(f"{s.control} = {s.value}")
        if b & _BIT["confidence"]:
            of = f" ({s.model_version})" if s.model_version else ""
            out.append(f"model confidence{of} {self.confidence[i]:.3f} below {s.confidence_below:g}")
        if b & _BIT["model"]:
            out.append(f"{s.model_version} disagrees with the consensus")
        if b & _BIT["not_reviewed"]:
            out.append("not yet reviewed")
        if b & _BIT["gt_only"]:
            out.append("ground-truth task")
        if b & _BIT["gt_excluded"]:
            out.append("no ground truth")
        if b & _BIT["sample"]:
            out.append(f"in the {s.sample_pct:g}% sample (seed {s.seed})")
        if not out:
            out.append("in the project (no rule)")
        return tuple(out)

    @staticmethod
    def _num(x: float) -> float | None:
        return None if np.isnan(x) else round(float(x), 6)

    def items(self, offset: int = 0, limit: int | None = None) -> tuple[QueueItem, ...]:
        end = len(self) if limit is None else min(len(self), offset + limit)
        return tuple(QueueItem(task=int(self.keys[i]), agreement=self._num(self.agreement[i]),
                               confidence=self._num(self.confidence[i]), uncertainty=self._num(self.uncertainty[i]),
                               reasons=self._reasons(i), task_id=int(self.task_ids[i]))
                     for i in range(max(offset, 0), end))


def _sort_key(order: str, inputs: QueueInputs, agreement: np.ndarray, confidence: np.ndarray,
              disagreement: np.ndarray, seed: int) -> np.ndarray:
    """A float key per task, lower first; NaN = missing (sorted after every task with a score)."""
    if order == "agreement":
        return agreement
    if order == "confidence":
        return confidence
    if order == "model-disagreement":
        return -disagreement
    if order == "uncertainty":
        return -inputs.uncertainty
    if order == "oldest":
        return inputs.created.astype(float)
    return _mix(inputs.tasks, seed, 2)


def build_queue(store: Store, project_id: int, spec: QueueSpec, *, inputs: QueueInputs | None = None,
                state: ReviewState | None = None, expert_threshold: float | None | bool = True,
                annotator_tasks: Callable[[tuple[int, ...]], np.ndarray] | None = None,
                route: bool = True) -> Queue:
    """The queue ``spec`` gives over the project (see the module doc for rules, missing values and ties).

    ``inputs``/``state`` may be passed (already read); ``expert_threshold=True`` reads the project's.
    ``route=False``: the rules only, no routing between the roles (every role's tasks: coverage)."""
    inputs = inputs if inputs is not None else queue_inputs(store, project_id)
    state = state if state is not None else review_state(store, project_id)
    if expert_threshold is True:
        expert_threshold = get_expert_threshold(store, project_id)
    threshold = None if expert_threshold is False else expert_threshold
    n = inputs.tasks.size
    keep = np.ones(n, dtype=bool)
    bits = np.zeros(n, dtype=np.int64)
    agreement = inputs.agreement
    if spec.control is not None and spec.agreement_below is not None:
        agreement = inputs.agreement_by_control.get(spec.control, np.full(n, np.nan))
    if spec.model_version:
        confidence = inputs.confidence_by_model.get(spec.model_version, np.full(n, np.nan))
        disagreement = inputs.model_disagreement.get(spec.model_version, np.full(n, np.nan))
    else:
        confidence = inputs.confidence
        if inputs.model_disagreement:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no model compared
                disagreement = np.nanmax(np.vstack(list(inputs.model_disagreement.values())), axis=0)
        else:
            disagreement = np.full(n, np.nan)

    def rule(name: str, hit: np.ndarray) -> None:
        nonlocal keep
        keep &= hit
        bits[hit] |= _BIT[name]

    with np.errstate(invalid="ignore"):
        if spec.agreement_below is not None:
            rule("agreement", agreement < spec.agreement_below - 1e-9)
        if spec.confidence_below is not None:
            rule("confidence", confidence < spec.confidence_below - 1e-9)
        if spec.disagrees_with_model:
            rule("model", disagreement > 1e-9)
    if spec.annotators:
        found = annotator_tasks(spec.annotators) if annotator_tasks else _annotator_tasks(store, project_id,
                                                                                           spec.annotators)
        rule("annotators", inputs.contains(found))
    if spec.value is not None and spec.control is not None:
        rule("value", inputs.contains(_value_tasks(store, inputs, spec.control, spec.value)))
    if spec.not_reviewed:
        rule("not_reviewed", ~inputs.contains(state.judged))
    if spec.ground_truth == "only":
        rule("gt_only", inputs.contains(state.ground_truth))
    elif spec.ground_truth == "exclude":
        rule("gt_excluded", ~inputs.contains(state.ground_truth))
    if spec.sample_pct is not None:
        rule("sample", _mix(inputs.tasks, spec.seed, 1) < spec.sample_pct / 100.0)
    escalated = inputs.contains(np.fromiter(state.escalations, dtype=np.int64, count=len(state.escalations)))
    with np.errstate(invalid="ignore"):
        low = (inputs.agreement < threshold - 1e-9) if threshold is not None else np.zeros(n, dtype=bool)
    low &= ~inputs.contains(state.expert_judged)
    routed = escalated | low
    if not route:
        pass
    elif spec.role == "expert":
        keep &= routed
        bits[escalated] |= _BIT["escalated"]
        bits[low] |= _BIT["expert_threshold"]
    else:
        keep &= ~routed
    sel = np.flatnonzero(keep)
    key = _sort_key(spec.order, inputs, agreement, confidence, disagreement, spec.seed)[sel]
    missing = np.isnan(key)
    order = np.lexsort((inputs.tasks[sel], np.where(missing, 0.0, key), missing))
    pick = sel[order]
    names = _annotator_names(store, project_id, spec.annotators) if spec.annotators else {}
    return Queue(spec, project_id, inputs.tasks[pick], inputs.keys[pick], agreement[pick], confidence[pick],
                 inputs.uncertainty[pick], bits[pick], threshold, state.escalations, names)


def _annotator_tasks(store: Store, project_id: int, users: tuple[int, ...]) -> np.ndarray:
    with store.session() as s:
        rows = s.connection().execute(text(
            "SELECT DISTINCT a.task_id FROM annotations a JOIN tasks t ON t.id = a.task_id WHERE t.project_id = :p "
            f"AND a.completed_by IN ({', '.join(str(int(u)) for u in users)})"), {"p": project_id}).all()
    return np.array([r[0] for r in rows], dtype=np.int64)


def _annotator_names(store: Store, project_id: int, users: tuple[int, ...]) -> dict[int, str]:
    from app.services.taskfilter import annotators

    wanted = set(users)
    return {a.user_id: a.name for a in annotators(store, project_id) if a.user_id in wanted}


@dataclass(frozen=True)
class QueueCounts:
    reviewer: int
    expert: int


def queue_counts(store: Store, project_id: int, spec: QueueSpec | None = None, *,
                 threshold: bool = True) -> QueueCounts:
    """How many tasks each role's queue holds (the same rules, each role's routing; ``threshold=False``:
    escalations only, as the review session's plain project-order queue routes)."""
    spec = spec or QueueSpec()
    inputs = queue_inputs(store, project_id)
    state = review_state(store, project_id)
    thr = get_expert_threshold(store, project_id) if threshold else None
    return QueueCounts(*(len(build_queue(store, project_id, spec.with_(role=r), inputs=inputs, state=state,
                                         expert_threshold=thr)) for r in ROLES))


def plain_counts(store: Store, project_id: int) -> QueueCounts:
    """The queue sizes of the review session's plain project-order queue (no metrics needed): the expert queue
    is the open escalations, the reviewer queue every other task."""
    state = review_state(store, project_id)
    with store.session() as s:
        n = int(s.connection().execute(text("SELECT count(*) FROM tasks WHERE project_id = :p AND deleted = 0"),
                                       {"p": project_id}).scalar() or 0)
    return QueueCounts(n - len(state.escalations), len(state.escalations))


# -- presets, expert threshold and assignments (each change audited) -------------------------------------------------
@dataclass(frozen=True)
class Preset:
    name: str
    spec: QueueSpec
    updated_at: str


def _check_project(s: Any, project_id: int) -> None:
    if s.get(Project, project_id) is None:
        raise LookupError(f"No project {project_id}.")


def save_preset(store: Store, project_id: int, name: str, spec: QueueSpec, *, actor: str = "local") -> Changes:
    name = name.strip()
    if not name:
        raise QueueError("a preset needs a name")
    payload = spec.to_json()
    with store.transaction() as s:
        _check_project(s, project_id)
        row = s.scalar(select(QueuePreset).where(QueuePreset.project_id == project_id, QueuePreset.name == name))
        before = None if row is None else row.spec
        if row is None:
            s.add(QueuePreset(project_id=project_id, name=name, spec=payload, created_at=now_iso(),
                              updated_at=now_iso()))
        else:
            row.spec = payload
            row.updated_at = now_iso()
        append_event(s, actor, "queue.preset.saved", {"project_id": project_id, "name": name, "from": before,
                                                      "to": payload})
    return Changes(queue=True, settings=True)


def list_presets(store: Store, project_id: int) -> tuple[Preset, ...]:
    with store.session() as s:
        _check_project(s, project_id)
        rows = s.execute(select(QueuePreset.name, QueuePreset.spec, QueuePreset.updated_at)
                         .where(QueuePreset.project_id == project_id).order_by(QueuePreset.name)).all()
    return tuple(Preset(r.name, QueueSpec.from_json(json.loads(r.spec) if isinstance(r.spec, str) else r.spec),
                        r.updated_at) for r in rows)


def get_preset(store: Store, project_id: int, name: str) -> QueueSpec:
    for p in list_presets(store, project_id):
        if p.name == name:
            return p.spec
    raise QueueError(f"Project {project_id} has no queue preset {name!r}.")


def delete_preset(store: Store, project_id: int, name: str, *, actor: str = "local") -> Changes:
    with store.transaction() as s:
        _check_project(s, project_id)
        row = s.scalar(select(QueuePreset).where(QueuePreset.project_id == project_id, QueuePreset.name == name))
        if row is None:
            raise QueueError(f"Project {project_id} has no queue preset {name!r}.")
        before = row.spec
        s.delete(row)
        append_event(s, actor, "queue.preset.deleted", {"project_id": project_id, "name": name, "from": before})
    return Changes(queue=True, settings=True)


def get_expert_threshold(store: Store, project_id: int) -> float | None:
    with store.session() as s:
        return s.scalar(select(QueueSetting.expert_threshold).where(QueueSetting.project_id == project_id))


def set_expert_threshold(store: Store, project_id: int, threshold: float | None, *, actor: str = "local") -> Changes:
    """Tasks whose agreement is below ``threshold`` go to the expert queue (None: off)."""
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise QueueError(f"the expert threshold must be between 0 and 1 (got {threshold})")
    with store.transaction() as s:
        _check_project(s, project_id)
        row = s.get(QueueSetting, project_id)
        before = None if row is None else row.expert_threshold
        if before == threshold:
            return NOTHING
        if row is None:
            s.add(QueueSetting(project_id=project_id, expert_threshold=threshold, updated_at=now_iso()))
        else:
            row.expert_threshold = threshold
            row.updated_at = now_iso()
        append_event(s, actor, "queue.expert_threshold", {"project_id": project_id, "from": before, "to": threshold})
    return Changes(queue=True, settings=True)


@dataclass(frozen=True)
class Assignment:
    reviewer: str
    queue: str  # a role (``reviewer``/``expert``) or a preset name
    source: str  # ``local`` or ``server``


def assign(store: Store, project_id: int, reviewer: str, queue: str, *, actor: str = "local",
           remove: bool = False) -> Changes:
    """Assign a reviewer (e-mail) to a queue of the project here (``remove``: take the assignment back)."""
    reviewer = reviewer.strip().lower()
    if not reviewer or not queue.strip():
        raise QueueError("an assignment needs a reviewer and a queue")
    with store.transaction() as s:
        _check_project(s, project_id)
        if queue not in ROLES and s.scalar(select(QueuePreset.id).where(
                QueuePreset.project_id == project_id, QueuePreset.name == queue)) is None:
            raise QueueError(f"no queue {queue!r}: use reviewer, expert or a preset name")
        where = (QueueAssignment.project_id == project_id, QueueAssignment.reviewer == reviewer,
                 QueueAssignment.queue == queue, QueueAssignment.source == "local")
        exists = s.scalar(select(QueueAssignment.id).where(*where)) is not None
        if exists == (not remove):
            return NOTHING
        if remove:
            s.execute(delete(QueueAssignment).where(*where))
        else:
            s.add(QueueAssignment(project_id=project_id, reviewer=reviewer, queue=queue, source="local",
                                  created_at=now_iso()))
        append_event(s, actor, "queue.unassigned" if remove else "queue.assigned",
                     {"project_id": project_id, "reviewer": reviewer, "queue": queue})
    return Changes(queue=True, settings=True)


def assignments(store: Store, project_id: int) -> tuple[Assignment, ...]:
    with store.session() as s:
        _check_project(s, project_id)
        rows = s.execute(select(QueueAssignment.reviewer, QueueAssignment.queue, QueueAssignment.source)
                         .where(QueueAssignment.project_id == project_id)
                         .order_by(QueueAssignment.queue, QueueAssignment.reviewer, QueueAssignment.source)).all()
    return tuple(Assignment(*r) for r in rows)


__all__ = ["ORDERS", "ROLES", "GROUND_TRUTH_RULES", "QueueError", "QueueSpec", "QueueItem", "QueueInputs", "Queue",
           "QueueCounts", "ReviewState", "Preset", "Assignment", "queue_inputs", "review_state", "build_queue",
           "queue_counts", "plain_counts", "inputs_ready", "save_preset", "list_presets", "get_preset", "delete_preset", "get_expert_threshold",
           "set_expert_threshold", "assign", "assignments"]
