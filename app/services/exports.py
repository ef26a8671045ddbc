"""Project exports for pipelines: tasks, ground truth, decisions, metrics, consensus as LS JSON, CSV or Parquet.

``reviewdesk export PROJECT --what W --format F -o OUT`` and :func:`app.api.export` call
:func:`export_project_as`. The tables and their column types are :data:`SCHEMAS` (the README lists them);
``ls-json`` is a Label Studio import file and exists for ``tasks`` (the lossless export, unchanged) and
``ground-truth`` (one task per task with a reference, its reference as the one annotation, flagged
``ground_truth: true``). Every file is written to ``OUT.part`` and renamed over ``OUT`` once complete, so a
failed export (bad folder, full disk, a bug) leaves no partial file and an earlier ``OUT`` untouched.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import text

from app.models import lsjson
from app.models.importer import export_project
from app.models.schema import Project
from app.models.store import Store

__all__ = ["FORMATS", "SCHEMAS", "WHATS", "ExportError", "ExportResult", "export_project_as", "export_table"]

WHATS = ("tasks", "ground-truth", "decisions", "metrics", "consensus")
FORMATS = ("ls-json", "csv", "parquet")
LS_JSON_WHATS = ("tasks", "ground-truth")

#: Column -> type of every tabular export, in file order ("string" columns that hold JSON say so in the README).
#: Types are Arrow's: int64 / float64 / bool / string; every column may be null unless the README says otherwise.
SCHEMAS: dict[str, tuple[tuple[str, str], ...]] = {
    "tasks": (("task", "int64"), ("server_id", "int64"), ("position", "int64"), ("data", "string"),
              ("meta", "string"), ("annotations", "int64"), ("predictions", "int64"), ("created_at", "string"),
              ("updated_at", "string")),
    "ground-truth": (("task", "int64"), ("server_id", "int64"), ("source", "string"), ("decision", "string"),
                     ("verdict", "string"), ("reviewer", "string"), ("annotation", "int64"),
                     ("annotation_server_id", "int64"), ("result", "string"), ("created_at", "string")),
    "decisions": (("uuid", "string"), ("task", "int64"), ("task_server_id", "int64"), ("annotation", "int64"),
                  ("annotation_server_id", "int64"), ("prediction", "int64"), ("verdict", "string"),
                  ("result", "string"), ("reason", "string"), ("comment", "string"), ("reviewer", "string"),
                  ("role", "string"), ("created_at", "string"), ("lead_time_ms", "int64"),
                  ("retracts", "string"), ("retracted", "bool"), ("sync_state", "string"), ("origin", "string")),
    "metrics": (("dimension", "string"), ("aggregation", "string"), ("evaluator_a", "string"),
                ("evaluator_b", "string"), ("agreement_pct", "float64"), ("n_shared_tasks", "int64")),
    "consensus": (("task", "int64"), ("server_id", "int64"), ("control", "string"), ("label", "string"),
                  ("source", "string"), ("posterior", "float64"), ("n_answers", "int64"), ("result", "string")),
}

ProgressFn = Callable[[int], None]


class ExportError(ValueError):
    """A request that cannot be exported (unknown --what, format not available for it); a user message."""


@dataclass(frozen=True)
class ExportResult:
    project_id: int
    what: str
    format: str
    output: str
    rows: int  # tasks for ls-json, table rows otherwise


def _dumps(v: Any) -> str | None:
    return None if v is None else json.dumps(v, ensure_ascii=False, separators=(",", ":"))


@contextmanager
def atomic_path(out: str | Path) -> Iterator[Path]:
    """A temporary path beside ``out``; renamed over ``out`` when the block succeeds, removed when it fails."""
    out = Path(out)
    tmp = out.with_name(out.name + ".part")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check(what: str, fmt: str) -> None:
    if what not in WHATS:
        raise ExportError(f"Unknown --what {what!r}; choose one of: {', '.join(WHATS)}.")
    if fmt not in FORMATS:
        raise ExportError(f"Unknown --format {fmt!r}; choose one of: {', '.join(FORMATS)}.")
    if fmt == "ls-json" and what not in LS_JSON_WHATS:
        raise ExportError(f"--format ls-json is a Label Studio import file: it exists for --what tasks and "
                          f"ground-truth, not {what}; use --format csv or parquet.")


def _require_project(store: Store, project_id: int) -> None:
    with store.session() as s:
        if s.get(Project, project_id) is None:
            raise LookupError(f"No project {project_id} in this store.")


# -- tables -------------------------------------------------------------------------------------------------


def _tasks_table(store: Store, project_id: int) -> pd.DataFrame:
    with store.session() as s:
        rows = s.connection().execute(text(
            "SELECT t.id, t.server_id, t.position, t.data, t.meta, "
            "(SELECT count(*) FROM annotations a WHERE a.task_id = t.id AND a.deleted = 0), "
            "(SELECT count(*) FROM predictions p WHERE p.task_id = t.id), t.created_at, t.updated_at "
            "FROM tasks t WHERE t.project_id = :p AND t.deleted = 0 ORDER BY t.id"), {"p": project_id}).all()
    # data/meta are stored as JSON text: re-encode compactly so the column is canonical JSON
    return _frame("tasks", [(r[0], r[1], r[2], _dumps(_load(r[3])), _dumps(_load(r[4])), r[5], r[6], r[7], r[8])
                            for r in rows])


def _load(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, str) else raw


@dataclass(frozen=True)
class _Reference:
    task: int
    server_id: int | None
    source: str  # decision | server-flag
    decision: str | None
    verdict: str | None
    reviewer: str | None
    annotation: int | None
    annotation_server_id: int | None
    result: Any
    created_at: str | None
    task_data: Any
    task_meta: Any


def references(store: Store, project_id: int) -> list[_Reference]:
    """The ground truth of each task, by the frames' rules (DESIGN.md section 7): the latest adjudicated row
    (a local or pulled accept/fix whose decision is not retracted) wins, else the task's last server
    ground-truth flag on a live annotation that is not one this store's own push set. Task id order."""
    from app.services.dashboard import _sync_facts

    with store.session() as s:
        conn = s.connection()
        facts = _sync_facts(conn, project_id)
        tasks = {r[0]: r for r in conn.execute(text(
            "SELECT id, server_id, data, meta, created_at FROM tasks WHERE project_id = :p AND deleted = 0"),
            {"p": project_id})}
        out: dict[int, _Reference] = {}
        for tid, aid, asid, araw, acreated in conn.execute(text(
                "SELECT a.task_id, a.id, a.server_id, a.result, a.created_at FROM annotations a "
                "JOIN tasks t ON t.id = a.task_id WHERE t.project_id = :p AND t.deleted = 0 AND a.deleted = 0 "
                "AND a.was_cancelled = 0 AND a.ground_truth = 1 ORDER BY a.id"), {"p": project_id}):
            if (tid, asid) in facts.own_flags or tid not in tasks:
                continue
            t = tasks[tid]
            out[tid] = _Reference(tid, t[1], "server-flag", None, None, None, aid, asid, _load(araw), acreated,
                                  _load(t[2]), _load(t[3]))
        dec = {u: (v, r) for u, v, r in conn.execute(text(
            "SELECT uuid, verdict, reviewer FROM decisions WHERE project_id = :p"), {"p": project_id})}
        for tid, aid, asid, duuid, graw, gcreated in conn.execute(text(
                "SELECT g.task_id, g.annotation_id, a.server_id, g.decision_uuid, g.result, g.created_at "
                "FROM ground_truth g JOIN tasks t ON t.id = g.task_id LEFT JOIN annotations a ON a.id = g.annotation_id "
                "WHERE t.project_id = :p AND t.deleted = 0 ORDER BY g.id"), {"p": project_id}):
            if duuid is not None and duuid in facts.retracted:
                continue
            t = tasks[tid]
            verdict, reviewer = dec.get(duuid, (None, None))
            out[tid] = _Reference(tid, t[1], "decision", duuid, verdict, reviewer, aid, asid, _load(graw), gcreated,
                                  _load(t[2]), _load(t[3]))
    return [out[k] for k in sorted(out)]


def _ground_truth_table(store: Store, project_id: int) -> pd.DataFrame:
    return _frame("ground-truth", [(r.task, r.server_id, r.source, r.decision, r.verdict, r.reviewer, r.annotation,
                                    r.annotation_server_id, _dumps(r.result), r.created_at)
                                   for r in references(store, project_id)])


def _decisions_table(store: Store, project_id: int) -> pd.DataFrame:
    from app.services.decisions import DecisionService

    rows = DecisionService(store).list_decisions(project_id, include_retractions=True)
    return _frame("decisions", [(d.uuid, d.task_id, d.task_server_id, d.annotation_id, d.annotation_server_id,
                                 d.prediction_id, d.verdict, _dumps(list(d.result) if d.result is not None else None),
                                 d.reason, d.comment, d.reviewer, d.role, d.created_at, d.lead_time_ms, d.retracts,
                                 d.retracted, d.sync_state, d.origin)
                                for d in sorted(rows, key=lambda d: (d.created_at, d.uuid))])


def _metrics_table(store: Store, project_id: int) -> pd.DataFrame:
    from app.services.dashboard import agreement_long, compute_dashboard

    d = compute_dashboard(store, project_id, save=False)
    df = agreement_long(d) if d.matrices else pd.DataFrame()
    return _frame("metrics", list(df.itertuples(index=False, name=None)) if not df.empty else [])


def _consensus_table(store: Store, project_id: int) -> pd.DataFrame:
    """Per task and categorical control: the adjudicated label (ground truth from a decision that answers
    that control), else the Dawid-Skene label with its posterior (``posterior`` is null for adjudicated rows;
    ``n_answers`` counts the human answers either way, null where no consensus was fitted)."""
    from app.metrics.matrix import _answer_label, _consensus_eligible
    from app.services.consensus import consensus_labels
    from app.services.dashboard import load_frames

    frames = load_frames(store, project_id)
    ds = consensus_labels(store, project_id)
    adjudicated = {r.task for r in references(store, project_id) if r.source == "decision"}
    with store.session() as s:
        sid: dict[int, int | None] = dict(s.connection().execute(text("SELECT id, server_id FROM tasks WHERE project_id = :p"),
                                          {"p": project_id}).all())
    rows: dict[tuple[int, str], tuple[Any, ...]] = {}
    for r in ds.itertuples(index=False):
        rows[(int(r.task), str(r.control))] = (int(r.task), sid.get(int(r.task)), str(r.control), str(r.label),
                                               "dawid-skene", float(r.confidence), int(r.n_answers),
                                               _dumps(list(r.result)))
    gt = frames.ground_truth
    if not gt.empty and adjudicated:
        sub = gt[gt["task"].isin(list(adjudicated))]
        for r in sub.itertuples(index=False):
            if not _consensus_eligible(r.type, dict(frames.params.get(r.control, {}) or {})):
                continue
            items = list(r.result or [])
            if not items:  # the reference says nothing on this control: the consensus (if any) stands
                continue
            n = rows.get((int(r.task), str(r.control)), (None,) * 7)[6]
            rows[(int(r.task), str(r.control))] = (int(r.task), sid.get(int(r.task)), str(r.control),
                                                   str(_answer_label(r.type, items)), "adjudicated", None, n,
                                                   _dumps(items))
    return _frame("consensus", [rows[k] for k in sorted(rows)])


def _frame(what: str, rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Rows -> a frame with :data:`SCHEMAS` column order and pandas nullable dtypes (ints stay ints with nulls)."""
    cols = [c for c, _ in SCHEMAS[what]]
    df = pd.DataFrame.from_records(rows, columns=cols) if rows else pd.DataFrame({c: [] for c in cols})
    for c, t in SCHEMAS[what]:
        df[c] = df[c].astype({"int64": "Int64", "float64": "Float64", "bool": "boolean", "string": "string"}[t])
    return df


_TABLES: dict[str, Callable[[Store, int], pd.DataFrame]] = {
    "tasks": _tasks_table, "ground-truth": _ground_truth_table, "decisions": _decisions_table,
    "metrics": _metrics_table, "consensus": _consensus_table}


def export_table(store: Store, project_id: int, what: str) -> pd.DataFrame:
    """The table ``what`` of the project (columns and types of :data:`SCHEMAS`): what CSV and Parquet hold."""
    _check(what, "csv")
    _require_project(store, project_id)
    return _TABLES[what](store, project_id)


# -- writers ------------------------------------------------------------------------------------------------


def _arrow_schema(what: str) -> Any:
    import pyarrow as pa

    types = {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(), "string": pa.string()}
    return pa.schema([pa.field(c, types[t]) for c, t in SCHEMAS[what]])


def write_table(df: pd.DataFrame, what: str, fmt: str, out: str | Path) -> None:
    with atomic_path(out) as tmp:
        if fmt == "csv":
            df.to_csv(tmp, index=False, lineterminator="\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, schema=_arrow_schema(what), preserve_index=False)
            pq.write_table(table, tmp)


def _write_ground_truth_ls(store: Store, project_id: int, out: str | Path, progress: ProgressFn | None) -> int:
    """One Label Studio task per task with a reference: its data and meta, and the reference as its only
    annotation, ``ground_truth: true`` (no ``completed_by``: Label Studio credits the importing user)."""
    refs = references(store, project_id)
    n = 0
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8") as fh:
        fh.write("[")
        for r in refs:
            ann = {"result": r.result if isinstance(r.result, list) else [], "ground_truth": True,
                   "was_cancelled": False}
            obj = {"id": r.server_id if r.server_id is not None else r.task, "data": r.task_data,
                   "annotations": [ann], "predictions": []}
            if r.task_meta:
                obj["meta"] = r.task_meta
            fh.write(("," if n else "") + "\n" + lsjson.dumps(obj))
            n += 1
            if progress and n % 1000 == 0:
                progress(n)
        fh.write("\n]\n")
    if progress:
        progress(n)
    return n


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic GC off while millions of fresh, acyclic rows and dicts are made (as frames.build_frames):
    otherwise it runs full collections over all of them again and again (~1/3 of a 100k-task ls-json export)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def export_project_as(store: Store, project_id: int, out: str | Path, *, what: str = "tasks",
                      fmt: str = "ls-json", progress: ProgressFn | None = None) -> ExportResult:
    """Write ``what`` of the project to ``out`` as ``fmt`` (atomically). ``ExportError`` for a bad
    ``what``/``fmt`` pair, ``LookupError`` for an unknown project, ``OSError`` when the file cannot be
    written (nothing is left behind). ``progress(n)``: tasks written so far (ls-json)."""
    with _gc_paused():
        return _export(store, project_id, out, what, fmt, progress)


def _export(store: Store, project_id: int, out: str | Path, what: str, fmt: str,
            progress: ProgressFn | None) -> ExportResult:
    _check(what, fmt)
    _require_project(store, project_id)
    if fmt == "ls-json":
        if what == "tasks":
            n = export_project(store, project_id, out, progress=progress)
        else:
            n = _write_ground_truth_ls(store, project_id, out, progress)
        return ExportResult(project_id, what, fmt, str(out), n)
    df = _TABLES[what](store, project_id)
    write_table(df, what, fmt, out)
    if progress:
        progress(len(df))
    return ExportResult(project_id, what, fmt, str(out), len(df))

