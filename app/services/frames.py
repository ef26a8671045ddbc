"""Metric frames from the store's per-control result values, in a few SQL reads (Qt-free; issue 14).

:func:`build_frames` returns the same :class:`~app.services.dashboard.ProjectFrames` as the JSON-decoding
path (``app.services.dashboard._build_frames``): the same rows in the same order, the same reference
rules (DESIGN.md section 7). It reads the plain columns of annotations, predictions and ground truth, and
the ``result_values`` table (migration 0007: the items of each row's control as compact JSON, kept by
triggers), instead of decoding and splitting every stored result. Equal item texts are decoded once and
the decoded list is shared by their rows, so frames are read-only (as the cached frames always were).
docs/adr/0011-frames-from-store.md.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from app.metrics import SOURCE_EVALUATOR
from app.models.config import parse_config
from app.models.schema import Project
from app.models.store import BUSY_TIMEOUT_MS, Store
from app.services.projects import member_name

log = logging.getLogger(__name__)

#: Whether this process reads frames with the ADBC SQLite driver. The driver carries its own copy of SQLite;
#: two copies of SQLite must never have the same database open at once in one process (POSIX locks are per
#: process: one copy's close drops the other's locks, and one copy may reset the WAL index the other has
#: mapped -- sqlite.org/howtocorrupt.html, section 2.2.1; a test crashed with SIGBUS that way). So only the
#: dashboard's metrics process sets it (app.services.dashboard._warm_main): a process that never writes the
#: store, whose own connections are closed while the driver's are open. The GUI and the CLI read with sqlite3.
ARROW_READS = False


def _decode(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, str) else raw


def _split(result: Any, controls: Any) -> dict[str, list[Any]]:
    """The items of ``result`` per control in ``controls``, in result order (the old path's grouping)."""
    out: dict[str, list[Any]] = {}
    for item in result or []:
        if isinstance(item, dict):
            fn = item.get("from_name")
            if isinstance(fn, str) and fn in controls:
                out.setdefault(fn, []).append(item)
    return out


class _Values:
    """``result_values`` of one kind of one project, as columns; ``{control: items}`` of a row on demand.

    Only the rows of the config's ``controls`` are read, each with its control's position in ``controls``
    (SQLite maps the name: a small int per row instead of a string); every reader keeps only those controls.
    A control's single item with a plain region id is stored with ``"id": null`` and the id apart
    (``item_id``): the item is the decoded template with its id put back, in the same key position.
    The item texts are kept coded: ``codes`` into the distinct texts ``uniq`` (a 5-class Choices control has
    five texts for a million rows)."""

    def __init__(self, row_ids: np.ndarray, cpos: np.ndarray, codes: np.ndarray, uniq: np.ndarray,
                 id_rows: np.ndarray, id_vals: np.ndarray, controls: list[str], fallback: set[int]) -> None:
        self.names = controls
        self.row_ids, self.cpos, self.codes, self.uniq = row_ids, cpos, codes, uniq
        self.id_rows, self.id_vals = id_rows, id_vals  # the rows (positions, ascending) with an item id apart
        self.fallback = fallback  # results that are not strict JSON: decoded from the row
        self.cache: dict[str, Any] = {}

    @staticmethod
    def case(controls: list[str]) -> tuple[str, str, list[Any]]:
        """``CASE`` mapping a control name to its position, the ``IN`` list's marks, the CASE's parameters."""
        case = "CASE control " + " ".join(["WHEN ? THEN ?"] * len(controls)) + " END"
        return case, ", ".join("?" * len(controls)), [v for k, c in enumerate(controls) for v in (c, k)]

    @classmethod
    def read(cls, cur: Any, project_id: int, kind: str, controls: list[str]) -> _Values:
        """Read with the DB-API cursor (Python's ``sqlite3``)."""
        if controls:
            case, marks, params = cls.case(controls)
            rows = cur.execute(f"SELECT row_id, {case}, items, item_id FROM result_values WHERE project_id = ? "
                               f"AND kind = ? AND control IN ({marks}) ORDER BY row_id, ord",
                               (*params, project_id, kind, *controls)).fetchall()
        else:
            rows = []
        cols = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
        del rows
        codes, uniq = pd.factorize(np.array(cols[2], dtype=object))
        ids = np.array(cols[3], dtype=object)
        id_rows = np.flatnonzero(ids != None)  # noqa: E711 - elementwise on an object array
        return cls(np.array(cols[0], dtype=np.int64), np.array(cols[1], dtype=np.int64), codes,
                   np.asarray(uniq, dtype=object), id_rows, ids[id_rows], controls, _fallback(cur, project_id, kind))

    @classmethod
    def from_arrow(cls, table: Any, cur: Any, project_id: int, kind: str, controls: list[str]) -> _Values:
        """From the Arrow table of :data:`_ARROW_VALUES` (``_arrow_reads``)."""
        import pyarrow.compute as pc

        texts = pc.dictionary_encode(table.column(2)).combine_chunks()  # no copy of the texts
        id_rows = np.flatnonzero(table.column(3).to_numpy())
        id_vals = np.empty(len(id_rows), dtype=object)
        id_vals[:] = pc.take(table.column(4), id_rows).to_pylist() if len(id_rows) else []
        return cls(table.column(0).to_numpy(), table.column(1).to_numpy(),
                   texts.indices.to_numpy(zero_copy_only=False).astype(np.int64),
                   np.asarray(texts.dictionary.to_pylist(), dtype=object), id_rows, id_vals, controls,
                   _fallback(cur, project_id, kind))

    def items(self, text: str, item_id: str | None = None) -> Any:
        hit = self.cache.get(text)
        if hit is None:
            hit = self.cache[text] = json.loads(text)
        if item_id is not None:
            return [{**hit[0], "id": item_id}]
        return hit

    def decoded(self, mask: np.ndarray) -> np.ndarray:
        """The decoded items of the rows in ``mask``: each distinct text decoded once; without an item id
        apart, the decoded list is shared by the rows that carry that text."""
        lists = np.empty(len(self.uniq), dtype=object)
        for k, t in enumerate(self.uniq.tolist()):
            lists[k] = self.items(t)
        out: np.ndarray = lists[self.codes[mask]]
        if len(self.id_rows):
            sel = np.flatnonzero(mask)  # row positions of out's entries, ascending
            at = np.searchsorted(sel, self.id_rows)
            hit = at < len(sel)
            hit[hit] = sel[at[hit]] == self.id_rows[hit]
            for k, item_id in zip(at[hit].tolist(), self.id_vals[hit].tolist(), strict=True):
                out[k] = [{**out[k][0], "id": item_id}]
        return out

    def of(self, row_id: int) -> list[tuple[str, Any]]:
        """``(control, items)`` of one row's config controls, in ``ord`` order."""
        lo = int(np.searchsorted(self.row_ids, row_id, "left"))
        hi = int(np.searchsorted(self.row_ids, row_id, "right"))
        return [(self.names[self.cpos[k]], self.items(self.uniq[self.codes[k]], self._item_id(k)))
                for k in range(lo, hi)]

    def _item_id(self, k: int) -> str | None:
        j = int(np.searchsorted(self.id_rows, k))
        return self.id_vals[j] if j < len(self.id_rows) and self.id_rows[j] == k else None


def _fallback(cur: Any, project_id: int, kind: str) -> set[int]:
    return {r[0] for r in cur.execute(
        "SELECT row_id FROM result_values WHERE project_id = ? AND kind = ? AND ord < 0", (project_id, kind))}


def build_frames(store: Store, project_id: int, version: tuple[Any, ...],
                 progress: Callable[[int], None] | None = None, *, reader: str = "arrow") -> Any:
    """:class:`~app.services.dashboard.ProjectFrames` of the project, from ``result_values`` (module doc).

    ``reader``: ``"arrow"`` reads the two big tables with the ADBC driver where this process allows it
    (:data:`ARROW_READS`: the dashboard's metrics process) and falls back to ``sqlite3`` if it fails;
    ``"sqlite3"`` reads everything with ``sqlite3``; ``"arrow-only"`` uses the driver in any process and
    raises instead of falling back (tests and benchmarks: proof that the fast path ran).

    The cyclic garbage collector is paused while the rows are read: millions of fresh tuples and lists
    (none of them cyclic) would otherwise trigger full collections over all of them, repeatedly.
    """
    if not _has_values(store):  # a store stamped 0007 by a development build before item_id: the JSON path
        from app.services.dashboard import _build_frames

        return _build_frames(store, project_id, version, progress)
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(store, project_id, version, progress, reader)
    finally:
        if enabled:
            gc.enable()


def _has_values(store: Store) -> bool:
    with store.session() as s:
        cols = {r[1] for r in s.connection().exec_driver_sql("PRAGMA table_info(result_values)")}
    return {"items", "item_id"} <= cols


def _build(store: Store, project_id: int, version: tuple[Any, ...],
           progress: Callable[[int], None] | None, reader: str) -> Any:
    from app.services.dashboard import MODEL_PREFIX, ProjectFrames, _params, _same, _sync_facts

    with store.session() as s:
        xml = s.scalar(select(Project.label_config).where(Project.id == project_id))
    if xml is None:
        raise LookupError(f"No project {project_id} in this store.")
    cfg = parse_config(xml)
    controls = [c.name for c in cfg.controls]
    ctype = {c.name: c.result_type for c in cfg.controls}
    ctl_pos = {c: i for i, c in enumerate(controls)}
    C = len(controls)
    live_sql = "FROM annotations a JOIN tasks t ON t.id = a.task_id " \
               "WHERE t.project_id = ? AND t.deleted = 0 AND a.was_cancelled = 0 AND a.deleted = 0"
    tables = None
    if reader == "arrow-only" or (reader == "arrow" and ARROW_READS):
        # the driver's SQLite is a second copy of SQLite in this process: this process's own connections are
        # closed first, and opened again only after the driver's are (module doc, docs/adr/0011)
        store.engine.dispose()
        tables = _arrow_reads(store, project_id, live_sql, controls)
        if tables is None and reader == "arrow-only" and controls:
            raise RuntimeError("the Arrow read of the frames failed (reader='arrow-only')")
    with store.session() as s:
        conn = s.connection()
        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        cur = dbapi.cursor()
        members: dict[int, str] = {}
        for uid, email, first, last in cur.execute(
                "SELECT user_id, email, first_name, last_name FROM members WHERE project_id = ?", (project_id,)):
            if uid is not None:
                members[uid] = member_name(email, first, last, uid)
        facts = _sync_facts(conn, project_id)

        # annotations: plain columns, then their per-control items. The columns every row needs; the server id
        # and the ground-truth flag only where they matter (below): each column costs ~0.1 s per 500k rows
        if tables is not None:
            a_id, a_task, uid_codes, uids, lead_all, at_codes, at_uniq = _annotation_columns_arrow(tables[0])
        else:
            a_id, a_task, uid_codes, uids, lead_all, at_codes, at_uniq = _annotation_columns(cur, live_sql, project_id)
        n_all = len(a_id)
        names = [members.get(u) or (f"user #{u}" if u is not None else "unknown") for u in uids]
        is_ev = np.ones(n_all, dtype=bool)  # False below for a reviewer's fix (the reference, not an evaluator)

        def ev_at(i: int) -> str | None:
            return names[uid_codes[i]] if is_ev[i] else None

        def ev_of(aid: int) -> str | None:
            """The evaluator of a live annotation (``None``: a fix, or no such live annotation)."""
            i = int(np.searchsorted(a_id, aid))
            return ev_at(i) if i < n_all and a_id[i] == aid else None
        # the server id only where it matters: flagged rows, and rows that may be a reviewer's fix on the server
        # (the reference itself, not an evaluator)
        flagged = cur.execute(f"SELECT a.id, a.server_id {live_sql} AND a.ground_truth = 1", (project_id,)).fetchall()
        if facts.fix_annotations:
            for aid, sid in cur.execute(f"SELECT a.id, a.server_id {live_sql} AND a.server_id IS NOT NULL",
                                        (project_id,)):
                i = int(np.searchsorted(a_id, aid))
                if (int(a_task[i]), sid) in facts.fix_annotations:
                    is_ev[i] = False
        ann_vals = (_Values.from_arrow(tables[1], cur, project_id, "a", controls) if tables is not None
                    else _Values.read(cur, project_id, "a", controls))
        fallback_raw: dict[int, Any] = {}
        if ann_vals.fallback:
            fallback_raw = _raw_results(cur, "annotations", ann_vals.fallback)
        # task -> (flagged result per control, its evaluator, server id of the prediction it copies)
        gt_flag: dict[int, tuple[dict[str, list[Any]], str | None, int | None]] = {}
        for aid, sid in sorted(flagged):  # by id, as the rows: a later flag of a task wins
            i = int(np.searchsorted(a_id, aid))
            tid = int(a_task[i])
            key = (tid, sid)
            if key not in facts.own_flags:
                by_ctl = (_split(_decode(fallback_raw[aid]), ctl_pos) if aid in fallback_raw
                          else dict(ann_vals.of(aid)))
                gt_flag[tid] = (by_ctl, ev_at(i), facts.fix_of_prediction.get(key))
        k_idx = np.flatnonzero(is_ev)
        n = len(k_idx)
        name_codes, name_uniq = pd.factorize(np.array(names, dtype=object))
        # rows: every kept annotation x every control (config order), empty lists where nothing was given
        res = np.empty(n * C, dtype=object)
        filled = np.zeros(n * C, dtype=bool)
        if n and C and len(ann_vals.row_ids):
            pos_of = np.full(n_all, -1, dtype=np.int64)
            pos_of[k_idx] = np.arange(n)
            where = np.searchsorted(a_id, ann_vals.row_ids)
            where[where >= n_all] = 0
            slot = np.where(a_id[where] == ann_vals.row_ids, pos_of[where], -1)
            cpos = ann_vals.cpos  # only config controls were read (marker rows have none)
            ok = slot >= 0
            dest = slot[ok] * C + cpos[ok]
            res[dest] = ann_vals.decoded(ok)
            filled[dest] = True
            live = set(a_id.tolist()) if fallback_raw else set()
            for aid in fallback_raw:
                j = int(pos_of[np.searchsorted(a_id, aid)]) if aid in live else -1
                if j >= 0:
                    for c, its in _split(_decode(fallback_raw[aid]), ctl_pos).items():
                        res[j * C + ctl_pos[c]] = its
                        filled[j * C + ctl_pos[c]] = True
        empty: list[Any] = []  # one shared (read-only) empty answer: the engine keys each distinct object once
        for k in np.flatnonzero(~filled).tolist():
            res[k] = empty
        if progress:  # as the old path: every 50,000 annotations
            for k in range(50_000, n + 1, 50_000):
                progress(k)
        a_frame = {  # evaluators, controls and times as codes into their distinct values
            "task": np.repeat(a_task[k_idx], C), "evaluator": np.repeat(name_codes[uid_codes[k_idx]], C),
            "control": np.tile(np.arange(C, dtype=np.int64), n),
            "lead_time": np.repeat(lead_all[k_idx], C), "created_at": np.repeat(at_codes[k_idx], C)}

        # predictions: the controls each model predicts, in the order its result first names them
        prows = cur.execute(
            "SELECT p.id, p.task_id, p.server_id, p.model_version, p.created_at FROM predictions p "
            "JOIN tasks t ON t.id = p.task_id WHERE t.project_id = ? AND t.deleted = 0 "
            "AND p.result IS NOT NULL ORDER BY p.id", (project_id,)).fetchall()
        pred_vals = _Values.read(cur, project_id, "p", controls)
        pred_fallback = _raw_results(cur, "predictions", pred_vals.fallback) if pred_vals.fallback else {}
        pred_ev: dict[int, str] = {}
        pred_sid_ev: dict[tuple[int, int], str] = {}
        p_task: list[int] = []
        p_ev: list[str] = []
        p_ctl: list[str] = []
        p_res: list[Any] = []
        p_at: list[Any] = []
        for prid, tid, psid, mv, pat in prows:
            ev = f"{MODEL_PREFIX}{mv or 'unversioned'}"
            pred_ev[prid] = ev
            if psid is not None:
                pred_sid_ev[(tid, psid)] = ev
            pairs = (list(_split(_decode(pred_fallback[prid]), ctype).items()) if prid in pred_fallback
                     else [(c, its) for c, its in pred_vals.of(prid) if c in ctype])
            for c, its in pairs:
                p_task.append(tid)
                p_ev.append(ev)
                p_ctl.append(c)
                p_res.append(its)
                p_at.append(pat)

        # adjudicated ground truth (latest non-retracted decision fold) wins over server flags
        retracted = facts.retracted
        gt_vals = _Values.read(cur, project_id, "g", controls)
        grows = cur.execute(
            "SELECT g.id, g.task_id, g.annotation_id, g.decision_uuid, g.result IS NULL OR g.result = 'null' "
            "FROM ground_truth g JOIN tasks t ON t.id = g.task_id WHERE t.project_id = ? ORDER BY g.id",
            (project_id,)).fetchall()
        same_check: list[tuple[int, int]] = []  # (gt row, annotation): the old path's _same() test
        adjudicated: dict[int, tuple[int, str | None, bool]] = {}  # task -> (gt row, source, result is None)
        for gid, tid, aid, duuid, is_none in grows:
            if duuid is not None and duuid in retracted:
                continue
            verdict, d_ann, d_pred = facts.decisions.get(duuid, (None, aid, None)) if duuid else (None, aid, None)
            source: str | None = None
            if verdict == "accept":  # the accepted annotation (or prediction) is the reference itself
                source = ev_of(d_ann) if d_ann is not None else pred_ev.get(d_pred)  # type: ignore[arg-type]
            elif verdict is None and aid is not None and not is_none and ev_of(aid) is not None:
                same_check.append((gid, aid))
            adjudicated[tid] = (gid, source, bool(is_none))
        if same_check:
            gt_raw = _raw_results(cur, "ground_truth", {g for g, _ in same_check})
            an_raw = _raw_results(cur, "annotations", {a for _, a in same_check})
            same_ok = {g for g, a in same_check if _same(_decode(an_raw[a]) or [], _decode(gt_raw[g]))}
            for tid, (gid, _source, is_none) in list(adjudicated.items()):
                if gid in same_ok:
                    aid = dict(same_check)[gid]
                    adjudicated[tid] = (gid, ev_of(aid), is_none)
        g_fallback = _raw_results(cur, "ground_truth", gt_vals.fallback) if gt_vals.fallback else {}

        def gt_items(gid: int) -> dict[str, list[Any]]:
            if gid in g_fallback:
                return _split(_decode(g_fallback[gid]), ctl_pos)
            return dict(gt_vals.of(gid))

        reference: dict[int, tuple[dict[str, list[Any]], str | None]] = {
            tid: (by_ctl, pred_sid_ev.get((tid, psid)) if psid is not None else ev)
            for tid, (by_ctl, ev, psid) in gt_flag.items()}
        for tid, (gid, source, _none) in adjudicated.items():
            reference[tid] = (gt_items(gid), source)
        gt_rows = []
        for tid, (by_ctl, source) in reference.items():
            for c in controls:
                gt_rows.append((tid, c, ctype[c], by_ctl.get(c) or [], source))

        dec_rows = []
        verdicts: dict[int, str] = {}
        for aid, verdict, uid in cur.execute(
                "SELECT annotation_id, verdict, uuid FROM decisions WHERE project_id = ? "
                "AND annotation_id IS NOT NULL AND verdict IN ('accept','fix','reject') ORDER BY created_at, id",
                (project_id,)):
            if uid not in retracted:  # any origin: this store's and other reviewers' decisions alike
                verdicts[aid] = verdict
        for aid, verdict in verdicts.items():
            name = ev_of(aid)
            if name is not None:
                dec_rows.append((name, verdict))

    types = np.array([ctype.get(c, "") for c in controls], dtype=object)
    task = np.concatenate([a_frame["task"], np.asarray(p_task, dtype=np.int64)])
    p_ev_codes, p_ev_uniq = pd.factorize(np.array(p_ev, dtype=object))
    ev_col = _coded_str_column(np.concatenate([a_frame["evaluator"], p_ev_codes + len(name_uniq)]),
                               np.concatenate([np.asarray(name_uniq, dtype=object), np.asarray(p_ev_uniq, dtype=object)]))
    ctl_codes = np.concatenate([a_frame["control"], np.array([ctl_pos[c] for c in p_ctl], dtype=np.int64)])
    p_at_codes, p_at_uniq = pd.factorize(pd.Series(p_at, dtype=object))
    at_col = np.concatenate([a_frame["created_at"], np.where(p_at_codes < 0, -1, p_at_codes + len(at_uniq))])
    ann = pd.DataFrame({
        "task": task, "evaluator": ev_col, "control": _coded_str_column(ctl_codes, np.array(controls, dtype=object)),
        "type": _coded_str_column(ctl_codes, types),
        "result": _objects(res, p_res),
        "lead_time": np.concatenate([a_frame["lead_time"], np.full(len(p_task), np.nan)]),
        "created_at": _timestamps_coded(at_col, np.concatenate([at_uniq, np.asarray(p_at_uniq, dtype=object)]))})
    gt = pd.DataFrame(gt_rows, columns=["task", "control", "type", "result", SOURCE_EVALUATOR])
    dec = pd.DataFrame(dec_rows, columns=["evaluator", "verdict"])
    return ProjectFrames(ann, gt, _params(cfg), dec, tuple(controls), members, version)


_ARROW_ANNOTATIONS = (  # every column one SQLite type on every row: the driver infers each column's type once
    "SELECT a.id, a.task_id, a.completed_by IS NULL, coalesce(CAST(a.completed_by AS INTEGER), 0), "
    "coalesce(CAST(a.lead_time AS REAL), 0.0), a.lead_time IS NULL, coalesce(CAST(a.created_at AS TEXT), '') ")
_ARROW_VALUES = ("SELECT row_id, {case}, coalesce(items, ''), item_id IS NOT NULL, coalesce(CAST(item_id AS TEXT), '') "
                 "FROM result_values WHERE project_id = ? AND kind = 'a' AND control IN ({marks}) ORDER BY row_id, ord")


def _arrow_reads(store: Store, project_id: int, live_sql: str, controls: list[str]) -> tuple[Any, Any] | None:
    """The two big reads of a project -- its annotations' plain columns and their per-control values -- as
    Arrow tables, at the same time on two read-only connections of the ADBC SQLite driver (docs/adr/0011).

    The driver steps SQLite and fills Arrow columns in C with the GIL released: both reads of 1M rows take
    about 0.5 s together, where ``sqlite3`` makes 2M tuples of Python objects in 1.6 s and turning them into
    columns costs another 0.8 s. ``None`` (the caller reads with ``sqlite3``) when the driver is missing or
    fails: the frames are the same either way (tests/unit/test_frames_arrow.py)."""
    if not controls:
        return None  # a config without controls has no values to read: nothing to gain
    try:
        import adbc_driver_sqlite.dbapi as adbc
    except Exception:  # noqa: BLE001 - missing, or a bundle without its files (a frozen build): read with sqlite3
        log.warning("the ADBC SQLite driver cannot be loaded; frames are read with sqlite3", exc_info=True)
        return None
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    uri = Path(store.path).resolve().as_uri() + "?mode=ro"
    case, marks, params = _Values.case(controls)
    values_sql = _ARROW_VALUES.format(case=case, marks=marks)
    jobs = [(_ARROW_ANNOTATIONS + live_sql, [project_id]), (values_sql, [*params, project_id, *controls])]

    def read(job: tuple[str, list[Any]]) -> Any:
        sql, args = job
        with adbc.connect(uri) as conn, conn.cursor() as cur:
            cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")  # as the store's own connections
            cur.fetchall()
            cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "65536"})
            cur.execute(sql, args)
            return cur.fetch_arrow_table()

    try:
        with ThreadPoolExecutor(2, thread_name_prefix="frames-read") as pool:
            a_tab, v_tab = pool.map(read, jobs)
    except Exception:  # noqa: BLE001 - any driver failure: the sqlite3 path reads the same rows
        log.warning("the Arrow read of project %s failed; reading with sqlite3", project_id, exc_info=True)
        return None
    return a_tab, v_tab


_Columns = tuple[np.ndarray, np.ndarray, np.ndarray, list[Any], np.ndarray, np.ndarray, np.ndarray]


def _annotation_columns(cur: Any, live_sql: str, project_id: int) -> _Columns:
    """``(id, task, user code, users, lead time, created-at code, created-at texts)`` of the live annotations
    in id order, read with ``sqlite3`` (codes index the distinct users and texts; a missing text: -1)."""
    rows = cur.execute(f"SELECT a.id, a.task_id, a.completed_by, a.lead_time, a.created_at {live_sql}",
                       (project_id,)).fetchall()
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * 5
    del rows
    uid_codes, uids = pd.factorize(np.array(cols[2], dtype=object), use_na_sentinel=False)
    at_codes, at_uniq = pd.factorize(np.array(cols[4], dtype=object))
    return _in_id_order(np.array(cols[0], dtype=np.int64), np.array(cols[1], dtype=np.int64), uid_codes,
                        [None if u is None or u != u else int(u) for u in uids], np.array(cols[3], dtype=float),
                        at_codes, np.asarray(at_uniq, dtype=object))


def _annotation_columns_arrow(table: Any) -> _Columns:
    """:func:`_annotation_columns` from the Arrow table of :data:`_ARROW_ANNOTATIONS`."""
    import pyarrow.compute as pc

    no_uid = table.column(2).to_numpy().astype(bool)
    uid = table.column(3).to_numpy()
    uniq, uid_codes = np.unique(uid[~no_uid], return_inverse=True)
    codes = np.full(len(uid), len(uniq), dtype=np.int64)  # a missing user: the code after the known ones
    codes[~no_uid] = uid_codes
    uids: list[Any] = [*uniq.tolist(), None]
    lead = table.column(4).to_numpy().astype(float)
    lead[table.column(5).to_numpy().astype(bool)] = np.nan
    at = pc.dictionary_encode(table.column(6)).combine_chunks()  # no copy of the texts
    return _in_id_order(table.column(0).to_numpy(), table.column(1).to_numpy(), codes, uids, lead,
                        at.indices.to_numpy(zero_copy_only=False).astype(np.int64),
                        np.asarray(at.dictionary.to_pylist(), dtype=object))


def _in_id_order(a_id: np.ndarray, a_task: np.ndarray, uid_codes: np.ndarray, uids: list[Any], lead: np.ndarray,
                 at_codes: np.ndarray, at_uniq: np.ndarray) -> _Columns:
    """The rows by annotation id (the old ``ORDER BY a.id``) without SQLite's temp b-tree: they come in task
    order, which is id order unless later annotations were added to earlier tasks."""
    if len(a_id) and (np.diff(a_id) < 0).any():
        order = np.argsort(a_id, kind="stable")
        a_id, a_task, uid_codes, lead, at_codes = a_id[order], a_task[order], uid_codes[order], lead[order], \
            at_codes[order]
    return a_id, a_task, uid_codes, uids, lead, at_codes, at_uniq


def _coded_str_column(codes: np.ndarray, uniq: np.ndarray) -> Any:
    """The column pandas infers for the object array ``uniq[codes]`` of strings (its ``str`` dtype), built from
    the distinct values: converting every row's string costs far more than one take over a few names."""
    if len(codes) == 0:
        return np.array([], dtype=object)  # empty: let the DataFrame infer as it always did
    if not all(isinstance(u, str) for u in uniq.tolist()):
        return uniq[codes]  # non-string values: let the DataFrame infer as it always did
    inferred = pd.Series(uniq[:1]).dtype
    return pd.Series(pd.array(uniq, dtype=inferred).take(codes))


def _objects(head: np.ndarray, tail: list[Any]) -> np.ndarray:
    out = np.empty(len(head) + len(tail), dtype=object)
    out[:len(head)] = head
    for k, v in enumerate(tail, start=len(head)):
        out[k] = v
    return out


def _timestamps_coded(codes: np.ndarray, uniq: np.ndarray) -> pd.Series:
    """``pd.to_datetime`` (ISO 8601, UTC, unparsable or missing -> NaT) of the distinct strings ``uniq`` only,
    spread back over ``codes`` (-1: missing)."""
    if len(uniq) == 0:
        return pd.to_datetime(pd.Series(np.full(len(codes), None, dtype=object), dtype="object"), utc=True,
                              errors="coerce", format="ISO8601")
    conv = pd.to_datetime(pd.Series(uniq, dtype="object"), utc=True, errors="coerce", format="ISO8601")
    return pd.Series(conv.array.take(codes, allow_fill=True))


def _raw_results(cur: Any, table: str, ids: set[int]) -> dict[int, Any]:
    out: dict[int, Any] = {}
    id_list = sorted(ids)
    for k in range(0, len(id_list), 500):
        chunk = id_list[k:k + 500]
        marks = ",".join("?" * len(chunk))
        out.update(cur.execute(f"SELECT id, result FROM {table} WHERE id IN ({marks})", chunk).fetchall())  # noqa: S608
    return out

