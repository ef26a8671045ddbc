"""Filtering, sorting and paging the tasks of a project in SQL: the Tasks tab and the review queues.

Qt-free. A :class:`TaskFilter` says which tasks (status, annotators, a control, disagreement, a text search)
in which order; :func:`count`, :func:`page` and :func:`locate` answer it with one SQLite query each, so a
100k-task project is never loaded whole: the view asks for the number of rows, then for pages of rows.

Status of a task (one word, highest first wins):

``conflict``   one of its decisions is in conflict with the server (``decision_sync.state = 'conflict'``,
               the set :meth:`app.services.sync.SyncService.conflicts` lists), not yet resolved;
``escalated``  it has an open escalation (not retracted, no later expert verdict on the same annotation or
               task: the rule of :meth:`app.services.decisions.DecisionService.escalations`), any origin;
``decided``    every annotation (not cancelled, not deleted) has a live accept/fix/reject -- anyone's, the
               live verdict of :meth:`DecisionService.effective_verdicts` (an undone decision lets the one
               before it back into force, so an annotation is decided while any of its judgements stands);
``partly``     some but not all of them have;
``undecided``  none has (also a task without annotations).

The control and disagreement filters need the metrics engine (per-task agreement of the annotators, as the
dashboard's :func:`app.services.dashboard.queue_by_agreement` computes it, humans only). That is computed
once per data version by :func:`agreement_index` -- slow on a big project, so callers run it off the UI
thread and pass the result to :func:`count`/:func:`page`/:func:`locate` as ``index``.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from sqlalchemy import select, text

from app.models.schema import Member, Project
from app.models.store import Store
from app.services.decisions import JUDGEMENTS
from app.services.projects import TaskRow, member_name

STATUSES = ("undecided", "partly", "decided", "escalated", "conflict")
STATUS_CODE = {s: i for i, s in enumerate(STATUSES)}
STATUS_LABELS = {"undecided": "○ undecided", "partly": "◐ partly decided", "decided": "✓ decided",
                 "escalated": "⚑ escalated", "conflict": "⚠ conflict"}
SORT_KEYS = ("position", "task", "status", "text", "annotations", "predictions", "ground_truth")
_JUDGED = ", ".join(f"'{v}'" for v in JUDGEMENTS)


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks, in which order. Empty fields filter nothing.

    ``statuses``: any of :data:`STATUSES`. ``annotators``: server user ids (``completed_by``); a task with an
    annotation by any of them. ``control``: a control (dimension) name: tasks an annotator answered on it.
    ``agreement_below``: tasks whose annotators' agreement (on ``control``, else on the task overall) is
    below this (``1.0`` = any disagreement; tasks with fewer than two annotators have none).
    ``search``: words that must all occur in the task's data (text values, case-insensitive for ASCII).
    ``sort``: one of :data:`SORT_KEYS` (ties in queue order).
    """

    statuses: frozenset[str] = frozenset()
    annotators: frozenset[int] = frozenset()
    control: str | None = None
    agreement_below: float | None = None
    search: str = ""
    sort: str = "position"
    descending: bool = False

    def __post_init__(self) -> None:
        bad = set(self.statuses) - set(STATUSES)
        if bad:
            raise ValueError(f"unknown status {sorted(bad)}; use {', '.join(STATUSES)}")
        if self.sort not in SORT_KEYS:
            raise ValueError(f"unknown sort key {self.sort!r}; use {', '.join(SORT_KEYS)}")

    @property
    def disagreement(self) -> bool:
        return self.agreement_below is not None

    @property
    def needs_index(self) -> bool:
        """Whether the filter needs :func:`agreement_index` (the metrics engine)."""
        return self.control is not None or self.agreement_below is not None

    @property
    def active(self) -> bool:
        """Whether anything is filtered out (sorting is not filtering)."""
        return bool(self.statuses or self.annotators or self.needs_index or self.search.strip())

    def cleared(self) -> TaskFilter:
        """The same order, no filters."""
        return TaskFilter(sort=self.sort, descending=self.descending)


@dataclass(frozen=True)
class TaskListRow(TaskRow):
    """A task-list row with its review status (one of :data:`STATUSES`)."""

    status: str = "undecided"

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


@dataclass(frozen=True)
class Annotator:
    user_id: int
    name: str


@dataclass(frozen=True, eq=False)
class AgreementIndex:
    """Per-task agreement of the annotators (humans), per control and overall, for one data version."""

    project_id: int
    version: tuple[Any, ...]
    tasks: np.ndarray  # local task ids (sorted)
    overall: np.ndarray  # agreement per task (nan: fewer than two annotators)
    by_control: Mapping[str, np.ndarray]  # control -> agreement per task, aligned with ``tasks``
    answered: Mapping[str, np.ndarray]  # control -> task ids with an annotator's answer on it

    def disagreeing(self, control: str | None, below: float = 1.0) -> np.ndarray:
        """Task ids whose agreement (on ``control``, or overall) is below ``below``."""
        scores = self.overall if control is None else self.by_control.get(control)
        if scores is None:
            return np.zeros(0, dtype=np.int64)
        with np.errstate(invalid="ignore"):
            hit = scores < below - 1e-9
        return self.tasks[hit & ~np.isnan(scores)]

    def task_ids(self, f: TaskFilter) -> np.ndarray | None:
        """The ids ``f``'s control and agreement filters allow (None: they allow every task)."""
        if not f.needs_index:
            return None
        ids: np.ndarray | None = None
        if f.control is not None:
            ids = self.answered.get(f.control, np.zeros(0, dtype=np.int64))
        if f.agreement_below is not None:
            dis = self.disagreeing(f.control, f.agreement_below)
            ids = dis if ids is None else np.intersect1d(ids, dis, assume_unique=True)
        return ids


# -- status, in SQL --------------------------------------------------------------------------------------------
def _status_cte(scope: str = "") -> str:
    """CTEs ending in ``st(task_id, code)``: the status code of every task with a decision (absent = 0,
    undecided). ``scope`` restricts the decisions read (``AND d.task_id IN (…)``); it names alias ``d``.

    "Decided" is the review session's own test (:meth:`app.services.review.ReviewSession._compute_open`): the
    annotations with a live judgement are at least as many as the task's annotations that count (not
    cancelled, not deleted). Reads indexes only (migration 0006), never the wide rows."""
    scope_e = scope.replace("d.task_id", "e.task_id")
    return f"""
ret AS (SELECT retracts AS u FROM decisions WHERE project_id = :p AND retracts IS NOT NULL),
judged AS (
  SELECT d.task_id, count(DISTINCT d.annotation_id) AS n FROM decisions d
  WHERE d.project_id = :p AND d.verdict IN ({_JUDGED}) AND d.annotation_id IS NOT NULL
    AND d.uuid NOT IN (SELECT u FROM ret) {scope}
  GROUP BY d.task_id),
esc AS (
  SELECT DISTINCT e.task_id FROM decisions e
  WHERE e.project_id = :p AND e.verdict = 'escalate' AND e.uuid NOT IN (SELECT u FROM ret) {scope_e}
    AND NOT EXISTS (
      SELECT 1 FROM decisions x WHERE x.task_id = e.task_id AND x.id > e.id AND x.role = 'expert'
        AND x.verdict IN ({_JUDGED}) AND x.uuid NOT IN (SELECT u FROM ret)
        AND (e.annotation_id IS NULL OR x.annotation_id IS NULL OR x.annotation_id = e.annotation_id
             OR (x.prediction_id IS NOT NULL AND x.prediction_id = e.prediction_id)))),
conf AS (
  SELECT DISTINCT d.task_id FROM decision_sync ds JOIN decisions d ON d.id = ds.decision_id
  WHERE ds.state = 'conflict' AND d.project_id = :p {scope}),
st AS (
  SELECT task_id, max(code) AS code FROM (
    SELECT task_id, 4 AS code FROM conf
    UNION ALL SELECT task_id, 3 FROM esc
    UNION ALL SELECT j.task_id, CASE WHEN j.n >= (
        SELECT count(*) FROM annotations a WHERE a.task_id = j.task_id AND a.was_cancelled = 0 AND a.deleted = 0)
      THEN 2 ELSE 1 END FROM judged j)
  GROUP BY task_id)"""


def statuses(store: Store, project_id: int, task_ids: Sequence[int]) -> dict[int, str]:
    """task id -> status, for these tasks of the project (one query)."""
    if not task_ids:
        return {}
    sql = (f"WITH {_status_cte('AND d.task_id IN (SELECT value FROM json_each(:ids))')} "  # by task: a page
           "SELECT task_id, code FROM st")
    with store.session() as s:
        found: dict[int, int] = dict(s.connection().execute(text(sql), {"p": project_id, "ids": json.dumps(list(task_ids))}).all())
    return {t: STATUSES[found.get(t, 0)] for t in task_ids}


# -- the query ---------------------------------------------------------------------------------------------------
def _like(term: str) -> str:
    return "%" + term.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"


def _text_key(store: Store, project_id: int) -> str | None:
    """The data key of the project's first text-like object (what the Text column shows), if any."""
    from app.models.config import parse_config

    with store.session() as s:
        xml = s.scalar(select(Project.label_config).where(Project.id == project_id))
    try:
        cfg = parse_config(xml or "<View/>")
    except Exception:  # noqa: BLE001 - a broken config sorts by the raw data instead
        return None
    for o in cfg.objects:
        if o.data_key and o.tag in ("Text", "HyperText", "Paragraphs", "Header"):
            return o.data_key
    return next((o.data_key for o in cfg.objects if o.data_key), None)


def _order(f: TaskFilter, text_key: str | None) -> str:
    d = " DESC" if f.descending else ""
    if f.sort == "position":
        return f"t.position{d}, t.id{d}"
    if f.sort == "task":
        return f"t.server_id{d}, t.id{d}"
    tail = "t.position, t.id"
    if f.sort == "status":
        return f"coalesce(st.code, 0){d}, {tail}"
    if f.sort == "text":
        expr = f"json_extract(t.data, '$.\"{text_key}\"')" if text_key and '"' not in text_key else "t.data"
        return f"substr({expr}, 1, 64) COLLATE NOCASE{d}, {tail}"  # a short key: the sort stays in memory
    if f.sort == "annotations":
        return f"(SELECT count(*) FROM annotations a WHERE a.task_id = t.id){d}, {tail}"
    if f.sort == "predictions":
        return f"(SELECT count(*) FROM predictions pr WHERE pr.task_id = t.id){d}, {tail}"
    return f"EXISTS (SELECT 1 FROM annotations a WHERE a.task_id = t.id AND a.ground_truth = 1){d}, {tail}"


@dataclass(frozen=True)
class _Query:
    with_: str
    from_: str
    where: str
    params: dict[str, Any] = field(default_factory=dict)
    order: str = ""
    has_code: bool = False  # the status code is a column (``code``)

    def sql(self, select_: str, tail: str = "") -> str:
        w = f"WITH {self.with_} " if self.with_ else ""
        return f"{w}SELECT {select_} FROM {self.from_} WHERE {self.where} {tail}"


def _build(store: Store, project_id: int, f: TaskFilter, index: AgreementIndex | None, *,
           need_status: bool) -> _Query | None:
    """The query for ``f`` (None: nothing can match). ``need_status``: the status code as column ``code``."""
    params: dict[str, Any] = {"p": project_id}
    where = ["t.project_id = :p", "t.deleted = 0"]
    codes = sorted({STATUS_CODE[s] for s in f.statuses})
    by_status = 0 < len(codes) < len(STATUSES)
    has_code = need_status or f.sort == "status"
    with_ = _status_cte() if by_status or has_code else ""
    from_ = "tasks t"
    listed = ", ".join(str(c) for c in codes)
    if by_status and 0 not in codes:
        from_ = "st JOIN tasks t ON t.id = st.task_id"  # few tasks have decisions: start from them
        where.append(f"st.code IN ({listed})")
    elif has_code:
        from_ = "tasks t LEFT JOIN st ON st.task_id = t.id"
        if by_status:
            where.append(f"coalesce(st.code, 0) IN ({listed})")
    elif by_status:
        others = ", ".join(str(c) for c in codes if c)
        where.append("(t.id NOT IN (SELECT task_id FROM st)"
                     + (f" OR t.id IN (SELECT task_id FROM st WHERE code IN ({others}))" if others else "") + ")")
    if f.annotators:
        where.append("t.id IN (SELECT task_id FROM annotations WHERE completed_by IN "
                     f"({', '.join(str(int(u)) for u in sorted(f.annotators))}))")
    for i, term in enumerate(f.search.split()):
        # the stored JSON escapes non-ASCII (\u00e9): look for the escaped form in the raw text first (cheap),
        # then make sure it is in a value, not a key (top-level values; nested ones as their JSON text)
        params[f"raw{i}"] = _like(json.dumps(term)[1:-1])
        params[f"q{i}"] = _like(term)
        where.append(f"t.data LIKE :raw{i} ESCAPE '!' AND EXISTS (SELECT 1 FROM json_each(t.data) j "
                     f"WHERE j.value LIKE :q{i} ESCAPE '!' OR j.value LIKE :raw{i} ESCAPE '!')")
    if f.needs_index:
        idx = index if index is not None else agreement_index(store, project_id)
        ids = idx.task_ids(f)
        if ids is not None:
            if ids.size == 0:
                return None
            params["within"] = json.dumps(ids.tolist())
            where.append("t.id IN (SELECT value FROM json_each(:within))")
    order = _order(f, _text_key(store, project_id) if f.sort == "text" else None)
    return _Query(with_, from_, " AND ".join(where), params, order, has_code)


def count(store: Store, project_id: int, f: TaskFilter = TaskFilter(), *,  # noqa: B008
          index: AgreementIndex | None = None) -> int:
    """How many tasks of the project ``f`` keeps."""
    if f.sort != "position" or f.descending:
        f = dataclasses.replace(f, sort="position", descending=False)  # the order does not change the count
    q = _build(store, project_id, f, index, need_status=False)
    if q is None:
        return 0
    with store.session() as s:
        return int(s.connection().execute(text(q.sql("count(*)")), q.params).scalar() or 0)


def page(store: Store, project_id: int, f: TaskFilter, offset: int, limit: int, *,
         index: AgreementIndex | None = None) -> tuple[TaskListRow, ...]:
    """Rows ``offset`` … ``offset + limit`` of the filtered, sorted task list (with their status)."""
    q = _build(store, project_id, f, index, need_status=0 < len(f.statuses) < len(STATUSES))
    if q is None or limit <= 0:
        return ()
    status_in_query = q.has_code or "st JOIN" in q.from_
    cols = "t.id" + (", coalesce(st.code, 0) AS code" if status_in_query else "")
    with store.session() as s:
        found = s.connection().execute(text(q.sql(cols, f"ORDER BY {q.order} LIMIT :limit OFFSET :offset")),
                                       {**q.params, "limit": int(limit), "offset": max(int(offset), 0)}).all()
    ids = [r[0] for r in found]
    if not ids:
        return ()
    codes = {r[0]: STATUSES[r[1]] for r in found} if status_in_query else statuses(store, project_id, ids)
    return tuple(TaskListRow(**row.__dict__, status=codes[row.id]) for row in _rows(store, ids))


def _rows(store: Store, ids: Sequence[int]) -> list[TaskRow]:
    from app.services.projects import ProjectService

    return list(ProjectService(store).task_rows(ids))


def resolve(store: Store, project_id: int, task_key: int) -> int | None:
    """Local id of the task shown as ``task_key`` (its Label Studio id; a local-only task's local id)."""
    from app.services.projects import ProjectService

    try:
        return ProjectService(store).find_task(project_id, task_key)
    except LookupError:
        return None


def locate(store: Store, project_id: int, f: TaskFilter, task_key: int, *,
           index: AgreementIndex | None = None) -> int | None:
    """Row of the task shown as ``task_key`` (server id, else local id) in the list ``f`` gives; None when the
    project has no such task or ``f`` leaves it out."""
    tid = resolve(store, project_id, task_key)
    if tid is None:
        return None
    q = _build(store, project_id, f, index, need_status=False)
    if q is None:
        return None
    with store.session() as s:
        conn = s.connection()
        inner = q.sql(f"t.id, row_number() OVER (ORDER BY {q.order}) - 1 AS rn")
        row = conn.execute(text(f"SELECT rn FROM ({inner}) WHERE id = :tid"), {**q.params, "tid": tid}).first()
    return None if row is None else int(row[0])


# -- choices for the filter bar ------------------------------------------------------------------------------
def annotators(store: Store, project_id: int) -> tuple[Annotator, ...]:
    """Everyone with an annotation in the project, by display name (member name or e-mail, else ``user #id``)."""
    with store.session() as s:
        conn = s.connection()
        users = [u for (u,) in conn.execute(text("SELECT DISTINCT completed_by FROM annotations "
                                                 "WHERE completed_by IS NOT NULL"))]
        mine = [u for u in users if conn.execute(text(
            "SELECT 1 FROM annotations a JOIN tasks t ON t.id = a.task_id WHERE a.completed_by = :u "
            "AND t.project_id = :p LIMIT 1"), {"u": u, "p": project_id}).first() is not None]
        names = {m.user_id: member_name(m.email, m.first_name, m.last_name, m.user_id) for m in s.execute(
            select(Member.user_id, Member.email, Member.first_name, Member.last_name)
            .where(Member.project_id == project_id))}
    out = [Annotator(int(u), names.get(u) or member_name(None, None, None, u)) for u in mine]
    return tuple(sorted(out, key=lambda a: (a.name.lower(), a.user_id)))


def controls(store: Store, project_id: int) -> tuple[str, ...]:
    """The project's controls (dimensions), in config order."""
    from app.services.projects import ProjectService

    return tuple(c.name for c in ProjectService(store).config(project_id).controls)


# -- agreement (the metrics engine), once per data version -----------------------------------------------------
_INDEX: dict[tuple[str, int], AgreementIndex] = {}
_INDEX_LOCK = threading.Lock()


def agreement_index(store: Store, project_id: int) -> AgreementIndex:
    """Per-task agreement of the project's annotators, cached until the data version changes. Slow the first
    time on a big project (the metrics engine): call it off the UI thread."""
    from app.services.dashboard import MODEL_PREFIX, data_version, load_frames

    key = (str(store.path), project_id)
    version = data_version(store, project_id)
    with _INDEX_LOCK:
        hit = _INDEX.get(key)
    if hit is not None and hit.version == version:
        return hit
    from app.metrics import task_agreement

    frames = load_frames(store, project_id)
    ann = frames.annotations
    humans = ann[~ann["evaluator"].astype(str).str.startswith(MODEL_PREFIX)] if not ann.empty else ann
    empty = np.zeros(0, dtype=np.int64)
    if humans.empty:
        idx = AgreementIndex(project_id, frames.version, empty, np.zeros(0), MappingProxyType({}),
                             MappingProxyType({}))
    else:
        df = task_agreement(humans, frames.params, mode="pairwise").sort_index()
        tasks = df.index.to_numpy(dtype=np.int64)
        controls_ = [c for c in frames.controls if c in df.columns]
        answered_rows = humans[humans["result"].map(bool)]
        answered = {str(c): np.unique(g["task"].to_numpy(dtype=np.int64))
                    for c, g in answered_rows.groupby("control", sort=False)}
        idx = AgreementIndex(project_id, frames.version, tasks, df["agreement"].to_numpy(dtype=float),
                             MappingProxyType({c: df[c].to_numpy(dtype=float) for c in controls_}),
                             MappingProxyType(answered))
    with _INDEX_LOCK:
        _INDEX[key] = idx
    return idx


def cached_agreement_index(store: Store, project_id: int) -> AgreementIndex | None:
    """The last index built for the project (maybe of an older data version), without computing anything."""
    with _INDEX_LOCK:
        return _INDEX.get((str(store.path), project_id))


__all__ = ["STATUSES", "STATUS_LABELS", "SORT_KEYS", "TaskFilter", "TaskListRow", "Annotator", "AgreementIndex",
           "count", "page", "locate", "resolve", "statuses", "annotators", "controls", "agreement_index",
           "cached_agreement_index"]
