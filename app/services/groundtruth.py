"""The project's ground-truth set: one reference per task, with provenance and history (Qt-free; issue 15).

The reference of a task follows DESIGN.md section 7 and the metric frames (``app.services.frames``) to the
letter: the latest ``ground_truth`` row of the task whose decision was not retracted (an accept or fix folded
here, or an imported reference), else the latest annotation flagged ``ground_truth`` on the server -- except
flags this store's own pushes set (those stand for a local decision, whose row or retraction decides). A new
decision that changes a reference appends a row: the old one stays in :meth:`GroundTruthService.history` and
the metrics read the new one. Nothing here writes.

The index (task -> where its reference lives) is built in a few SQL reads and cached per :func:`gt_version` (a
fingerprint of what the index reads: ground-truth rows, decisions and their delivery state, flagged annotations,
the project's tasks), so paging the browser over 100k tasks reads only one page of results and provenance at a
time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from app.models.store import Store
from app.services.dashboard import _sync_facts
from app.services.describe import describe_result
from app.services.projects import member_name

SOURCES = ("decision", "server-flag", "import")


@dataclass(frozen=True)
class Provenance:
    """Where a reference came from: the decision (uuid, reviewer, verdict, origin) or the server flag."""

    source: str  # decision | server-flag | import
    decision_uuid: str | None
    reviewer: str | None
    at: str | None
    verdict: str | None = None  # accept | fix, for a decision
    origin: str | None = None  # local | server, for a decision
    annotation_id: int | None = None  # the annotation the reference was taken from (None: a fix's own result)


@dataclass(frozen=True)
class Reference:
    task_id: int
    task_server_id: int | None
    result: tuple[Any, ...]
    summary: str
    provenance: Provenance
    revisions: int  # entries in the task's history (1 = never changed)

    @property
    def task_key(self) -> int:
        return self.task_server_id if self.task_server_id is not None else self.task_id


@dataclass(frozen=True)
class HistoryEntry:
    result: tuple[Any, ...]
    summary: str
    provenance: Provenance
    current: bool  # the reference the metrics use now
    retracted: bool  # its decision was undone: no longer a reference


@dataclass(frozen=True)
class GroundTruthCounts:
    tasks: int  # live tasks of the project
    references: int  # tasks with a reference
    by_source: tuple[tuple[str, int], ...]  # (source, tasks) for the current references
    revised: int  # tasks whose reference changed at least once (more than one history entry)


@dataclass(frozen=True, eq=False)
class _Index:
    version: tuple[Any, ...]
    order: tuple[int, ...]  # task ids with a reference, in task order
    where: dict[int, tuple[str, int]]  # task -> ("g", ground_truth row) | ("a", flagged annotation)
    history: dict[int, int]  # task -> history entries
    tasks: int
    own_flags: frozenset[tuple[int, int]]
    retracted: frozenset[str]


_INDEX: dict[tuple[str, int], _Index] = {}
_LOCK = threading.Lock()


def gt_version(store: Store, project_id: int) -> tuple[Any, ...]:
    """Fingerprint of everything the index reads; changes when a decision, a retraction, a push's effect, a pull
    (flags, deletions) or an import lands. Cheaper than the dashboard's ``data_version`` (no task meta, no
    per-project annotation join): ~0.1 s at 100k tasks and 300k annotations."""
    with store.session() as s:
        conn = s.connection()
        gt = conn.execute(text("SELECT max(id), count(*) FROM ground_truth")).one()
        dec = conn.execute(text("SELECT max(id) FROM decisions")).scalar()
        eff = conn.execute(text("SELECT max(updated_at) FROM decision_sync")).scalar()
        flags = conn.execute(text(
            "SELECT count(*), total(id), max(updated_at) FROM annotations WHERE ground_truth = 1 AND deleted = 0 "
            "AND was_cancelled = 0")).one()
        tasks = conn.execute(text("SELECT count(*), max(id), total(position) FROM tasks WHERE project_id = :p AND "
                                  "deleted = 0"), {"p": project_id}).one()
    return (*tuple(gt), dec, eff, *tuple(flags), *tuple(tasks))


def _json(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, str) else raw


def _summary(result: Any) -> str:
    return "; ".join(describe_result(result if isinstance(result, list) else []))


class GroundTruthService:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- the index ---------------------------------------------------------------------------
    def _index(self, project_id: int, check: bool = True) -> _Index:
        """The cached index; rebuilt when the data version moved. ``check=False`` skips the version check (a
        few hundred ms at 100k tasks) when there is an index: views that refresh from ``Changes`` page with it."""
        key = (str(self.store.path), project_id)
        with _LOCK:
            hit = _INDEX.get(key)
        if hit is not None and not check:
            return hit
        version = gt_version(self.store, project_id)
        if hit is not None and hit.version == version:
            return hit
        idx = self._build(project_id, version)
        with _LOCK:
            _INDEX[key] = idx
        return idx

    def _build(self, project_id: int, version: tuple[Any, ...]) -> _Index:
        with self.store.session() as s:
            conn = s.connection()
            if conn.execute(text("SELECT 1 FROM projects WHERE id = :p"), {"p": project_id}).first() is None:
                raise LookupError(f"No project {project_id} in this store.")
            facts = _sync_facts(conn, project_id)
            retracted = frozenset(facts.retracted)
            where: dict[int, tuple[str, int]] = {}
            history: dict[int, int] = {}
            for gid, tid, duuid in conn.execute(text(
                    "SELECT g.id, g.task_id, g.decision_uuid FROM ground_truth g JOIN tasks t ON t.id = g.task_id "
                    "WHERE t.project_id = :p AND t.deleted = 0 ORDER BY g.id"), {"p": project_id}):
                history[tid] = history.get(tid, 0) + 1
                if duuid is None or duuid not in retracted:
                    where[tid] = ("g", gid)
            for aid, tid, sid in conn.execute(text(
                    "SELECT a.id, a.task_id, a.server_id FROM annotations a JOIN tasks t ON t.id = a.task_id "
                    "WHERE t.project_id = :p AND t.deleted = 0 AND a.ground_truth = 1 AND a.was_cancelled = 0 "
                    "AND a.deleted = 0 ORDER BY a.id"), {"p": project_id}):
                if (tid, sid) in facts.own_flags:
                    continue
                history[tid] = history.get(tid, 0) + 1
                if where.get(tid, ("a", 0))[0] == "a":  # an adjudicated row wins over any flag
                    where[tid] = ("a", aid)
            n_tasks = 0
            order: list[int] = []
            for (tid,) in conn.execute(text(
                    "SELECT id FROM tasks WHERE project_id = :p AND deleted = 0 ORDER BY position, id"),
                    {"p": project_id}):
                n_tasks += 1
                if tid in where:
                    order.append(tid)
        return _Index(version, tuple(order), where, history, n_tasks, frozenset(facts.own_flags), retracted)

    # -- reads -------------------------------------------------------------------------------
    def count(self, project_id: int, *, check: bool = True) -> int:
        """Tasks of the project that have a reference."""
        return len(self._index(project_id, check).order)

    def counts(self, project_id: int, *, check: bool = True) -> GroundTruthCounts:
        idx = self._index(project_id, check)
        by: dict[str, int] = {}
        g_rows = [rid for kind, rid in idx.where.values() if kind == "g"]
        with self.store.session() as s:
            conn = s.connection()
            for k in range(0, len(g_rows), 900):
                chunk = g_rows[k:k + 900]
                marks = ",".join(str(int(x)) for x in chunk)
                for src, n in conn.execute(text(
                        f"SELECT source, count(*) FROM ground_truth WHERE id IN ({marks}) GROUP BY source")):  # noqa: S608 - ints
                    by[src] = by.get(src, 0) + n
        flags = sum(1 for kind, _ in idx.where.values() if kind == "a")
        if flags:
            by["server-flag"] = by.get("server-flag", 0) + flags
        return GroundTruthCounts(tasks=idx.tasks, references=len(idx.order),
                                 by_source=tuple(sorted(by.items())),
                                 revised=sum(1 for t in idx.order if idx.history.get(t, 0) > 1))

    def references(self, project_id: int, offset: int = 0, limit: int = 50, *,
                   check: bool = True) -> tuple[Reference, ...]:
        """One page of references, in task order."""
        idx = self._index(project_id, check)
        tids = idx.order[max(0, offset):max(0, offset) + max(0, limit)]
        return self._load(project_id, idx, tids)

    def task_ids(self, project_id: int) -> tuple[int, ...]:
        """Local ids of the tasks that have a reference, in task order (cheap: from the cached index)."""
        return self._index(project_id).order

    def references_of(self, project_id: int, task_ids: Sequence[int]) -> tuple[Reference, ...]:
        """The references of these tasks (those that have one), in the order given."""
        idx = self._index(project_id)
        return self._load(project_id, idx, tuple(t for t in task_ids if t in idx.where))

    def reference(self, project_id: int, task_id: int) -> Reference | None:
        """The current reference of a task (local id), or None when it has none."""
        idx = self._index(project_id)
        if task_id not in idx.where:
            self._check_task(project_id, task_id)
            return None
        return self._load(project_id, idx, (task_id,))[0]

    def history(self, project_id: int, task_id: int, *, check: bool = True) -> tuple[HistoryEntry, ...]:
        """Every reference the task has had, newest first; ``current`` marks the one the metrics use."""
        self._check_task(project_id, task_id)
        idx = self._index(project_id, check)
        cur = idx.where.get(task_id)
        entries: list[tuple[str, int, Any, Provenance, bool]] = []  # (sort stamp, ...)
        with self.store.session() as s:
            conn = s.connection()
            rows = conn.execute(text(
                "SELECT g.id, g.result, g.source, g.annotation_id, g.decision_uuid, g.created_at, d.reviewer, "
                "d.verdict, d.origin, d.created_at FROM ground_truth g LEFT JOIN decisions d ON d.uuid = "
                "g.decision_uuid WHERE g.task_id = :t ORDER BY g.id"), {"t": task_id}).all()
            g_entries = []
            for gid, res, src, aid, duuid, gat, who, verdict, origin, dat in rows:
                prov = Provenance(src, duuid, who, dat or gat, verdict, origin, aid)
                retracted = duuid is not None and duuid in idx.retracted
                g_entries.append((("g", gid), _json(res), prov, retracted))
            flags = conn.execute(text(
                "SELECT a.id, a.server_id, a.result FROM annotations a WHERE a.task_id = :t AND a.ground_truth = 1 "
                "AND a.was_cancelled = 0 AND a.deleted = 0 ORDER BY a.id"), {"t": task_id}).all()
            f_entries = []
            for aid, sid, res in flags:
                if (task_id, sid) in idx.own_flags:
                    continue
                f_entries.append((("a", aid), _json(res), self._flag_provenance(conn, project_id, task_id, aid, sid),
                                  False))
        # flags (server state, older than any local adjudication that overrides them) first, then the rows
        for key, res, prov, retracted in f_entries + g_entries:
            entries.append((key[0], key[1], res, prov, retracted))
        out = [HistoryEntry(tuple(res or ()), _summary(res), prov, cur == (kind, rid), retracted)
               for kind, rid, res, prov, retracted in entries]
        return tuple(reversed(out))

    # -- helpers -----------------------------------------------------------------------------
    def _check_task(self, project_id: int, task_id: int) -> None:
        with self.store.session() as s:
            found = s.connection().execute(text("SELECT 1 FROM tasks WHERE id = :t AND project_id = :p"),
                                           {"t": task_id, "p": project_id}).first()
        if found is None:
            raise LookupError(f"Project {project_id} has no task {task_id}.")

    def _flag_provenance(self, conn: Any, project_id: int, task_id: int, ann_id: int, ann_sid: int | None) -> Provenance:
        return self._flag_provenances(conn, project_id, [(task_id, ann_id, ann_sid)])[ann_id]

    def _flag_provenances(self, conn: Any, project_id: int, flags: Sequence[tuple[int, int, int | None]]
                          ) -> dict[int, Provenance]:
        """Who set each server flag ``(task, annotation, annotation server id)``: the pulled decision behind it
        (an accept of that annotation, or a fix that created it), else the annotation's own author and time
        (a flag set in Label Studio itself). Two queries for any number of flags."""
        out: dict[int, Provenance] = {}
        if not flags:
            return out
        tids = ",".join(str(int(t)) for t in {t for t, _, _ in flags})
        by_task: dict[int, list[Any]] = {}
        for row in conn.execute(text(
                "SELECT d.task_id, d.uuid, d.verdict, d.reviewer, d.created_at, d.annotation_id, ds.effect "
                "FROM decisions d LEFT JOIN decision_sync ds ON ds.decision_id = d.id "
                f"WHERE d.task_id IN ({tids}) AND d.origin = 'server' AND d.verdict IN ('accept', 'fix') "  # noqa: S608
                "ORDER BY d.id DESC")):
            by_task.setdefault(row[0], []).append(row[1:])
        rest: list[int] = []
        for tid, ann_id, ann_sid in flags:
            for uuid, verdict, who, at, aid, effect in by_task.get(tid, ()):
                record = (_json(effect) or {}).get("record") or {}
                if (verdict == "accept" and aid == ann_id) or (
                        verdict == "fix" and ann_sid is not None and record.get("fix_annotation") == ann_sid):
                    out[ann_id] = Provenance("server-flag", uuid, who, at, verdict, "server", ann_id)
                    break
            else:
                rest.append(ann_id)
        if rest:
            aids = ",".join(str(int(a)) for a in rest)
            for aid, upd, created, email, first, last, uid in conn.execute(text(
                    "SELECT a.id, a.updated_at, a.created_at, m.email, m.first_name, m.last_name, a.completed_by "
                    "FROM annotations a LEFT JOIN members m ON m.project_id = :p AND m.user_id = a.completed_by "
                    f"WHERE a.id IN ({aids})"), {"p": project_id}):  # noqa: S608
                out[aid] = Provenance("server-flag", None, member_name(email, first, last, uid), upd or created,
                                      None, None, aid)
        for _, ann_id, _ in flags:
            out.setdefault(ann_id, Provenance("server-flag", None, None, None, None, None, ann_id))
        return out

    def _load(self, project_id: int, idx: _Index, tids: tuple[int, ...]) -> tuple[Reference, ...]:
        if not tids:
            return ()
        g_ids = [idx.where[t][1] for t in tids if idx.where[t][0] == "g"]
        a_ids = [idx.where[t][1] for t in tids if idx.where[t][0] == "a"]
        marks = ",".join(str(int(t)) for t in tids)
        with self.store.session() as s:
            conn = s.connection()
            sids: dict[int, int | None] = dict(conn.execute(text(f"SELECT id, server_id FROM tasks WHERE id IN ({marks})")).all())  # noqa: S608
            g_rows: dict[int, Any] = {}
            if g_ids:
                gm = ",".join(str(int(x)) for x in g_ids)
                for gid, res, src, aid, duuid, gat, who, verdict, origin, dat in conn.execute(text(
                        "SELECT g.id, g.result, g.source, g.annotation_id, g.decision_uuid, g.created_at, d.reviewer, "
                        "d.verdict, d.origin, d.created_at FROM ground_truth g LEFT JOIN decisions d "
                        f"ON d.uuid = g.decision_uuid WHERE g.id IN ({gm})")):  # noqa: S608 - ints
                    g_rows[gid] = (_json(res), Provenance(src, duuid, who, dat or gat, verdict, origin, aid))
            a_rows: dict[int, Any] = {}
            if a_ids:
                am = ",".join(str(int(x)) for x in a_ids)
                flagged = conn.execute(text(
                    f"SELECT id, task_id, server_id, result FROM annotations WHERE id IN ({am})")).all()  # noqa: S608
                provs = self._flag_provenances(conn, project_id, [(tid, aid, sid) for aid, tid, sid, _ in flagged])
                for aid, _tid, _sid, res in flagged:
                    a_rows[aid] = (_json(res), provs[aid])
        out = []
        for t in tids:
            kind, rid = idx.where[t]
            res, prov = (g_rows if kind == "g" else a_rows)[rid]
            out.append(Reference(t, sids.get(t), tuple(res or ()), _summary(res), prov, idx.history.get(t, 1)))
        return tuple(out)


def reference_json(r: Reference) -> dict[str, Any]:
    """A reference for ``--json``: ``task`` is the id ``decide`` takes (the Label Studio id, else the local id)."""
    p = r.provenance
    return {"task": r.task_key, "local_task": r.task_id, "result": list(r.result), "summary": r.summary,
            "source": p.source, "decision": p.decision_uuid, "reviewer": p.reviewer, "at": p.at,
            "verdict": p.verdict, "origin": p.origin, "annotation": p.annotation_id, "revisions": r.revisions}


def history_json(h: HistoryEntry) -> dict[str, Any]:
    p = h.provenance
    return {"result": list(h.result), "summary": h.summary, "source": p.source, "decision": p.decision_uuid,
            "reviewer": p.reviewer, "at": p.at, "verdict": p.verdict, "origin": p.origin,
            "annotation": p.annotation_id, "current": h.current, "retracted": h.retracted}
