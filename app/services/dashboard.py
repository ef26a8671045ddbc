"""Assemble metric frames from the store and compute the QA dashboard's numbers (Qt-free).

Frames follow the input contract of :mod:`app.metrics.matrix`: one row per (task, evaluator, control).
Evaluators are annotators (by e-mail or name) and model versions (``model:<version>``). The reference of a
task is its adjudicated result (an accept or fix folded into ground truth, made here or pulled), else an
annotation flagged ``ground_truth`` on the server. An annotation (or prediction) that is the reference stays
an evaluator -- pairwise agreement, volume, time -- but is never scored against itself; the annotations a
ReviewDesk fix creates on the server are no evaluator. So the same decisions give the same numbers before a
push and after the pull that brings them back (DESIGN.md section 7; ``_build_frames``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select, text

from app.metrics import (
    CONSENSUS_DS,
    GROUND_TRUTH,
    SOURCE_EVALUATOR,
    AgreementMatrix,
    agreement_matrices,
    annotator_quality,
    control_alpha,
    dawid_skene_consensus,
    default_tolerances,
    pair_disagreements,
    shared_preparation,
    task_agreement,
)
from app.models.config import LabelingConfig, parse_config
from app.models.schema import Project
from app.models.store import Store
from app.services.projects import member_name
from app.sync.records import META_KEY, meta_records

MODEL_PREFIX = "model:"
MIN_OVERLAP = 5  # cells with fewer shared tasks are greyed out


@dataclass(frozen=True, eq=False)
class ProjectFrames:
    annotations: pd.DataFrame
    ground_truth: pd.DataFrame
    params: Mapping[str, Mapping[str, Any]]
    decisions: pd.DataFrame
    controls: tuple[str, ...]
    members: Mapping[int, str]  # user id -> evaluator name
    version: tuple[Any, ...]


@dataclass(frozen=True, eq=False)
class QualityView:
    """The per-annotator table of one dimension (or all): quality, agreement with each model, drift."""

    table: pd.DataFrame
    model_agreement: pd.DataFrame
    drift_series: Mapping[str, tuple[tuple[float, ...], tuple[bool, ...]]] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Dashboard:
    project_id: int
    mode: str
    matrices: Mapping[str | None, AgreementMatrix]  # None = overall
    difficulty: pd.DataFrame  # control, agreement, alpha, n_tasks (sorted, hardest first)
    quality: pd.DataFrame  # per evaluator (see app.metrics.annotator_quality)
    # evaluator, task, score, rolling_accuracy, cusum, alarm (time order): one row per scored annotation, so
    # it is left out (no rows) of the dashboard kept on disk and sent by the metrics process (_for_screen)
    drift: pd.DataFrame
    model_agreement: pd.DataFrame  # evaluators x model versions
    leaderboard: pd.DataFrame  # model version x control: score vs ground truth
    controls: tuple[str, ...]
    min_overlap: int = MIN_OVERLAP
    notes: tuple[str, ...] = field(default_factory=tuple)
    version: tuple[Any, ...] = ()
    stale: bool = False  # read from the cache, computed before the latest changes
    # per evaluator: rolling ground-truth accuracy downsampled for a sparkline, and alarm marks
    drift_series: Mapping[str, tuple[tuple[float, ...], tuple[bool, ...]]] = field(default_factory=dict)
    # the per-annotator table restricted to one dimension (the Dimension selector's choice)
    quality_by_control: Mapping[str, QualityView] = field(default_factory=dict)
    # computed as of an audit point (app.services.asof.AsOf.as_json()); None: the store as it is now
    as_of: Mapping[str, Any] | None = None

    def quality_view(self, control: str | None) -> QualityView:
        """The annotator table of ``control`` (``None``: pooled over all dimensions)."""
        if control is not None and control in self.quality_by_control:
            return self.quality_by_control[control]
        return QualityView(self.quality, self.model_agreement, self.drift_series)


def _params(cfg: LabelingConfig) -> dict[str, dict[str, Any]]:
    return {c.name: dict(c.attrs) for c in cfg.controls}


def data_version(store: Store, project_id: int) -> tuple[Any, ...]:
    """Cheap fingerprint of everything the dashboard reads (changes when decisions or a sync land).

    Besides annotations, predictions, decisions and ground truth: ground-truth flags, task meta (other
    reviewers' decision records name the annotations their fixes created), the delivery effects of this
    store's decisions (the flags and annotations its pushes created) and members (evaluator names).
    Element 0 stays the annotation count.
    """
    with store.session() as s:
        conn = s.connection()
        # two narrow reads: ix_annotations_version covers the first, ix_annotations_gt_task the flags (the wide
        # rows are never read: 0.20 -> 0.07 s at 502k annotations)
        ann = conn.execute(text(
            "SELECT count(*), max(a.id), max(a.updated_at), sum(a.deleted) FROM annotations a "
            "JOIN tasks t ON t.id = a.task_id WHERE t.project_id = :p AND t.deleted = 0"), {"p": project_id}).one()
        flags = conn.execute(text(
            "SELECT count(*) FROM annotations a JOIN tasks t ON t.id = a.task_id "
            "WHERE t.project_id = :p AND t.deleted = 0 AND a.ground_truth = 1"), {"p": project_id}).scalar()
        pred = conn.execute(text(
            "SELECT count(*), max(p.id) FROM predictions p JOIN tasks t ON t.id = p.task_id "
            "WHERE t.project_id = :p AND t.deleted = 0"), {"p": project_id}).one()
        dec = conn.execute(text("SELECT max(id) FROM decisions WHERE project_id = :p"), {"p": project_id}).scalar()
        gt = conn.execute(text("SELECT max(g.id) FROM ground_truth g JOIN tasks t ON t.id = g.task_id "
                               "WHERE t.project_id = :p"), {"p": project_id}).scalar()
        meta = conn.execute(text(
            "SELECT max(updated_at), count(*), total(length(meta)) FROM tasks WHERE project_id = :p AND deleted = 0 "
            "AND instr(meta, :k) > 0"), {"p": project_id, "k": META_KEY}).one()
        eff = conn.execute(text(
            "SELECT max(ds.updated_at), total(length(ds.effect)) FROM decision_sync ds "
            "JOIN decisions d ON d.id = ds.decision_id WHERE d.project_id = :p"), {"p": project_id}).one()
        mem = hashlib.sha1(repr(conn.execute(text(  # noqa: S324 - a fingerprint, not security
            "SELECT user_id, email, first_name, last_name FROM members WHERE project_id = :p ORDER BY id"),
            {"p": project_id}).all()).encode(), usedforsecurity=False).hexdigest()
        return (*tuple(ann), flags, *tuple(pred), dec, gt, *tuple(meta), *tuple(eff), mem)


_CACHE: dict[tuple[str, int], ProjectFrames] = {}
_CACHE_LOCK = threading.Lock()


def load_frames(store: Store, project_id: int, *, progress: Callable[[int], None] | None = None,
                persist: bool = False) -> ProjectFrames:
    """Frames for the metrics engine; cached per project until the data version changes.

    ``persist``: also keep them on disk beside the store (``cache/frames-<project>.pickle``) and read them
    from there when the data version is unchanged -- for a new process on unchanged data (``reviewdesk
    metrics``). Any write the data version sees (decision, sync, edit) makes the file stale; it is then
    rebuilt from the store and rewritten."""
    version = data_version(store, project_id)
    key = (str(store.path), project_id)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None and hit.version == version:
        return hit
    from app.services.frames import build_frames  # issue 14: from result_values, same frames as _build_frames

    frames = _read_frames_cache(store, project_id, version) if persist else None
    if frames is None:
        frames = build_frames(store, project_id, version, progress)
        if persist:  # written on a thread while the caller computes; flush_frames_cache() waits for it
            writer = threading.Thread(target=_write_frames_cache, args=(store, project_id, frames),
                                      name="frames-cache-writer")
            with _CACHE_LOCK:
                _WRITERS.append(writer)
            writer.start()
    with _CACHE_LOCK:
        _CACHE[key] = frames
    return frames


FRAMES_CACHE_FORMAT = 1
_WRITERS: list[threading.Thread] = []


def flush_frames_cache() -> None:
    """Wait until the frames :func:`load_frames` keeps on disk are written (a command calls it before it
    ends; a non-daemon writer would also hold the interpreter open until it is done)."""
    while True:
        with _CACHE_LOCK:
            if not _WRITERS:
                return
            writer = _WRITERS.pop()
        writer.join()


def _frames_cache_path(store: Store, project_id: int) -> Any:
    return store.data_dir / "cache" / f"frames-{project_id}.pickle"


def _frames_code() -> str:
    """Digest of the code that builds frames: frames cached by another build are not used."""
    from pathlib import Path

    h = hashlib.blake2b(digest_size=16)
    for mod in ("frames.py", "dashboard.py"):
        try:
            h.update((Path(__file__).with_name(mod)).read_bytes())
        except OSError:
            h.update(mod.encode())
    return h.hexdigest()


def _read_frames_cache(store: Store, project_id: int, version: tuple[Any, ...]) -> ProjectFrames | None:
    import pickle

    try:
        with _frames_cache_path(store, project_id).open("rb") as fh:
            fmt, code, path, frames = pickle.load(fh)  # noqa: S301 - our own cache file in the user's data dir
    except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError, AttributeError, ImportError):
        return None
    if (fmt, code, path) != (FRAMES_CACHE_FORMAT, _frames_code(), str(store.path)):
        return None
    if not isinstance(frames, ProjectFrames) or frames.version != version:
        return None
    return frames


def _write_frames_cache(store: Store, project_id: int, frames: ProjectFrames) -> None:
    import os
    import pickle

    path = _frames_cache_path(store, project_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        with tmp.open("wb") as fh:
            pickle.dump((FRAMES_CACHE_FORMAT, _frames_code(), str(store.path), frames), fh,
                        protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs time next run


def _json(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, str) else raw


def _sid(v: Any) -> int | None:
    try:
        return int(v) if v is not None and not isinstance(v, bool) else None
    except (TypeError, ValueError):
        return None


@dataclass
class _SyncFacts:
    """What the sync left in the store that decides who is an evaluator and which flag is a reference."""

    retracted: set[str]  # decision UUIDs undone (local retractions and retract records in task meta)
    fix_annotations: set[tuple[int, int]]  # (task, server id): reviewer annotations a push created
    # (task, server id) of such an annotation -> server id of the prediction its accept copied (the model is
    # then the reference's own evaluator)
    fix_of_prediction: dict[tuple[int, int], int]
    own_flags: set[tuple[int, int]]  # (task, server id): ground-truth flags this store's pushes set
    decisions: dict[str, tuple[str, int | None, int | None]]  # uuid -> (verdict, annotation id, prediction id)


def _sync_facts(conn: Any, project_id: int) -> _SyncFacts:
    facts = _SyncFacts(set(), set(), {}, set(), {})
    for uuid, tid, aid, pid, verdict, retracts, origin, effect in conn.execute(text(
            "SELECT d.uuid, d.task_id, d.annotation_id, d.prediction_id, d.verdict, d.retracts, d.origin, ds.effect "
            "FROM decisions d LEFT JOIN decision_sync ds ON ds.decision_id = d.id WHERE d.project_id = :p"),
            {"p": project_id}):
        facts.decisions[uuid] = (verdict, aid, pid)
        if retracts is not None:
            facts.retracted.add(retracts)
        eff = _json(effect)
        if isinstance(eff, dict) and (origin or "local") == "local":  # what this store's pushes did
            fix = _sid(eff.get("fix_annotation"))
            if fix is not None:
                facts.fix_annotations.add((tid, fix))
                facts.own_flags.add((tid, fix))
            flagged = _sid(eff.get("ground_truth"))
            if flagged is not None:
                facts.own_flags.add((tid, flagged))
    for tid, meta in conn.execute(text(  # other reviewers' records come with the pulled task meta
            "SELECT id, meta FROM tasks WHERE project_id = :p AND deleted = 0 AND instr(meta, :k) > 0"),
            {"p": project_id, "k": META_KEY}):
        for r in meta_records(_json(meta)):
            fix = _sid(r.get("fix_annotation"))
            if fix is not None:
                facts.fix_annotations.add((tid, fix))
                pred = _sid(r.get("prediction"))
                if r.get("verdict") == "accept" and pred is not None:
                    facts.fix_of_prediction[(tid, fix)] = pred
            if r.get("verdict") == "retract" and isinstance(r.get("retracts"), str):
                facts.retracted.add(r["retracts"])
    return facts


def _build_frames(store: Store, project_id: int, version: tuple[Any, ...],
                  progress: Callable[[int], None] | None) -> ProjectFrames:
    """Frames for the engine, with the reference of each task and whose own result it is (DESIGN.md section 7).

    Reference: the latest non-retracted ``ground_truth`` row (a local or pulled accept/fix), else the latest
    annotation flagged ``ground_truth`` on the server -- except flags this store's own pushes set: those stand
    for a local decision, whose ground-truth row (or its retraction, or a project that does not fold) decides.
    An annotation that is the reference keeps its evaluator (pairwise agreement, volume, time) and is only
    kept out of the comparison with itself (``source_evaluator`` of the ground-truth frame). The reviewer
    annotations a fix (or an accepted prediction) creates on the server are the reference, never an evaluator.
    Decisions of every origin (local, and other reviewers' pulled from the server) count in the rates.
    """
    with store.session() as s:
        xml = s.scalar(select(Project.label_config).where(Project.id == project_id))
        if xml is None:
            raise LookupError(f"No project {project_id} in this store.")
        cfg = parse_config(xml)
        controls = [c.name for c in cfg.controls]
        ctype = {c.name: c.result_type for c in cfg.controls}
        conn = s.connection()
        members = {}
        for uid, email, first, last in conn.execute(text(
                "SELECT user_id, email, first_name, last_name FROM members WHERE project_id = :p"), {"p": project_id}):
            if uid is not None:
                members[uid] = member_name(email, first, last, uid)
        facts = _sync_facts(conn, project_id)
        rows_task: list[int] = []
        rows_ev: list[str] = []
        rows_ctl: list[str] = []
        rows_res: list[list[Any]] = []
        rows_lead: list[float] = []
        rows_at: list[str | None] = []
        # task -> (flagged result, its evaluator, server id of the prediction it copies)
        gt_flag: dict[int, tuple[list[Any], str | None, int | None]] = {}
        ann_ev: dict[int, str] = {}
        ann_result: dict[int, Any] = {}
        n = 0
        q = conn.execute(text(
            "SELECT a.id, a.task_id, a.server_id, a.completed_by, a.result, a.lead_time, a.created_at, "
            "a.ground_truth FROM annotations a JOIN tasks t ON t.id = a.task_id "
            "WHERE t.project_id = :p AND t.deleted = 0 AND a.was_cancelled = 0 AND a.deleted = 0 ORDER BY a.id"),
            {"p": project_id})
        for aid, tid, sid, uid, raw, lead, at, is_gt in q:
            result = _json(raw) or []
            key = (tid, sid)
            evaluator = sid is None or key not in facts.fix_annotations
            ev = (members.get(uid) or (f"user #{uid}" if uid is not None else "unknown")) if evaluator else None
            if is_gt and key not in facts.own_flags:
                gt_flag[tid] = (result, ev, facts.fix_of_prediction.get(key))
            if ev is None:
                continue  # a reviewer's fix on the server: the reference itself, not an evaluator
            ann_ev[aid] = ev
            ann_result[aid] = result
            by_ctl: dict[str, list[Any]] = {c: [] for c in controls}
            for item in result:
                if isinstance(item, dict):
                    fn = item.get("from_name")
                    if fn in by_ctl:
                        by_ctl[fn].append(item)
            for c in controls:
                rows_task.append(tid)
                rows_ev.append(ev)
                rows_ctl.append(c)
                rows_res.append(by_ctl[c])
                rows_lead.append(np.nan if lead is None else float(lead))
                rows_at.append(at)
            n += 1
            if progress and n % 50_000 == 0:
                progress(n)
        pred_ev: dict[int, str] = {}
        pred_sid_ev: dict[tuple[int, int], str] = {}
        for prid, tid, psid, mv, raw, at in conn.execute(text(
                "SELECT p.id, p.task_id, p.server_id, p.model_version, p.result, p.created_at FROM predictions p "
                "JOIN tasks t ON t.id = p.task_id WHERE t.project_id = :p AND t.deleted = 0 "
                "AND p.result IS NOT NULL ORDER BY p.id"), {"p": project_id}):
            result = _json(raw) or []
            ev = f"{MODEL_PREFIX}{mv or 'unversioned'}"
            pred_ev[prid] = ev
            if psid is not None:
                pred_sid_ev[(tid, psid)] = ev
            by_ctl = {}
            for item in result:
                if isinstance(item, dict) and item.get("from_name") in ctype:
                    by_ctl.setdefault(item["from_name"], []).append(item)
            for c, items in by_ctl.items():  # a model is scored only on the controls it predicts
                rows_task.append(tid)
                rows_ev.append(ev)
                rows_ctl.append(c)
                rows_res.append(items)
                rows_lead.append(np.nan)
                rows_at.append(at)
        # adjudicated ground truth (latest non-retracted decision fold) wins over server flags
        retracted = facts.retracted
        adjudicated: dict[int, tuple[list[Any], str | None]] = {}
        for tid, raw, aid, duuid in conn.execute(text(
                "SELECT g.task_id, g.result, g.annotation_id, g.decision_uuid FROM ground_truth g "
                "JOIN tasks t ON t.id = g.task_id WHERE t.project_id = :p ORDER BY g.id"), {"p": project_id}):
            if duuid is not None and duuid in retracted:
                continue
            result = _json(raw)
            verdict, d_ann, d_pred = facts.decisions.get(duuid, (None, aid, None)) if duuid else (None, aid, None)
            source: str | None = None
            if verdict == "accept":  # the accepted annotation (or prediction) is the reference itself
                source = ann_ev.get(d_ann) if d_ann is not None else pred_ev.get(d_pred)  # type: ignore[arg-type]
            elif verdict is None and aid is not None and _same(ann_result.get(aid), result):
                source = ann_ev.get(aid)  # no decision known: the source annotation, when it is the reference
            adjudicated[tid] = (result, source)
        flagged = {tid: (result, pred_sid_ev.get((tid, psid)) if psid is not None else ev)
                   for tid, (result, ev, psid) in gt_flag.items()}
        reference = {**flagged, **adjudicated}
        gt_rows = []
        for tid, (result, source) in reference.items():
            for c in controls:
                items = [i for i in (result or []) if isinstance(i, dict) and i.get("from_name") == c]
                gt_rows.append((tid, c, ctype[c], items, source))
        dec_rows = []
        verdicts: dict[int, str] = {}
        for aid, verdict, uid in conn.execute(text(
                "SELECT annotation_id, verdict, uuid FROM decisions WHERE project_id = :p "
                "AND annotation_id IS NOT NULL AND verdict IN ('accept','fix','reject') ORDER BY created_at, id"),
                {"p": project_id}):
            if uid not in retracted:  # any origin: this store's and other reviewers' decisions alike
                verdicts[aid] = verdict
        for aid, verdict in verdicts.items():
            if aid in ann_ev:
                dec_rows.append((ann_ev[aid], verdict))
    ann = pd.DataFrame({"task": np.asarray(rows_task, dtype=np.int64), "evaluator": rows_ev,
                        "control": rows_ctl, "type": [ctype.get(c, "") for c in rows_ctl],
                        "result": rows_res, "lead_time": np.asarray(rows_lead, dtype=float),
                        "created_at": pd.to_datetime(pd.Series(rows_at, dtype="object"), utc=True,
                                                     errors="coerce", format="ISO8601")})
    gt = pd.DataFrame(gt_rows, columns=["task", "control", "type", "result", SOURCE_EVALUATOR])
    dec = pd.DataFrame(dec_rows, columns=["evaluator", "verdict"])
    return ProjectFrames(ann, gt, _params(cfg), dec, tuple(controls), members, version)


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


CACHE_FORMAT = 5  # 3: references are evaluators too (no self-scoring), fix annotations are not;
#                  4: pairwise matrices carry the "Consensus (Dawid-Skene)" column; 5: quality per dimension


def _cache_path(store: Store, project_id: int, mode: str) -> Any:
    return store.data_dir / "cache" / f"dashboard-{project_id}-{mode}.pickle"


def cached_dashboard(store: Store, project_id: int, mode: str = "pairwise", *,
                     check: bool = True) -> Dashboard | None:
    """The last computed dashboard from the on-disk cache (``stale`` when the data changed since).

    Lets the dashboard paint at once on large projects while a fresh computation runs in the background.
    The cache is ReviewDesk's own file in the user's data folder; anything unreadable is ignored.
    """
    import pickle

    path = _cache_path(store, project_id, mode)
    try:
        with path.open("rb") as fh:
            fmt, d = pickle.load(fh)  # noqa: S301 - our own cache file in the user's data dir
    except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError, AttributeError, ImportError):
        return None
    if fmt != CACHE_FORMAT or not isinstance(d, Dashboard) or d.project_id != project_id:
        return None
    if check and d.version != data_version(store, project_id):
        from dataclasses import replace

        d = replace(d, stale=True)
    return d


def refresh_dashboard(store: Store, project_id: int, *, mode: str = "pairwise", known: tuple[Any, ...] | None = None,
                      cancel: threading.Event | None = None) -> Dashboard | None:
    """Recompute unless the data still has version ``known``; ``None`` means "what you show is current"."""
    if known is not None and data_version(store, project_id) == known:
        return None
    return compute_dashboard_isolated(store, project_id, mode=mode, cancel=cancel)


def _for_screen(d: Dashboard) -> Dashboard:
    """``d`` without the per-annotation drift rows: the screen draws ``drift_series``. At 1M annotations those
    rows were 14.6 of the 15 MB pickled for the on-disk cache and for the metrics process's answer, and
    unpickling them held the GUI process's interpreter (issue 14)."""
    return replace(d, drift=d.drift.iloc[:0])


def _save_cache(store: Store, d: Dashboard) -> None:
    import os
    import pickle

    d = _for_screen(d)
    path = _cache_path(store, d.project_id, d.mode)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        with tmp.open("wb") as fh:
            pickle.dump((CACHE_FORMAT, d), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs time next open


ISOLATE_ABOVE = 200_000  # annotations; bigger projects compute in a child process


def _child_compute(data_dir: str, project_id: int, mode: str, out: Any, store: Store | None = None) -> None:
    try:
        # the parent has this store open and checked it on open: no second quick_check, no daily backup
        if store is None:
            store = Store.open(data_dir, daily_backup=False, check=False)
        try:
            d = compute_dashboard(store, project_id, mode=mode, save=False)
            out.put(("ok", _for_screen(d)))  # the numbers first; the on-disk cache after (the parent does not wait for it)
            out.close()
            out.join_thread()  # sent: the queue's feeder thread has written them to the pipe
            _save_cache(store, d)
        finally:
            store.close()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out.put(("error", f"{type(exc).__name__}: {exc}"))


def _warm_up(data_dir: str | None) -> Store | None:
    """What a first computation pays once per process, paid while the process waits for its job: the imports
    made on first use (the ADBC driver and its shared library, pyarrow.compute, pandas' and scipy's lazily
    loaded paths -- a tiny computation runs them), and the store opened. A failure here only costs time."""
    store = None
    try:
        import pyarrow.compute  # noqa: F401 - imported for its side effect (loaded once)

        if data_dir is not None:
            import importlib.util

            if importlib.util.find_spec("adbc_driver_sqlite") is not None:
                # the driver (its own SQLite) before this process opens the store with sqlite3: never both
                # at once (frames.ARROW_READS)
                from pathlib import Path

                import adbc_driver_sqlite.dbapi as adbc

                from app.models.store import STORE_FILENAME

                uri = (Path(data_dir) / STORE_FILENAME).resolve().as_uri() + "?mode=ro"
                with adbc.connect(uri) as conn, conn.cursor() as cur:
                    cur.execute("SELECT count(*) FROM result_values WHERE 0")
                    cur.fetch_arrow_table()
            store = Store.open(data_dir, daily_backup=False, check=False)
        _tiny_computation()
    except Exception:  # noqa: BLE001 - an optimisation; the job itself reports real errors
        pass
    return store


def _tiny_computation() -> None:
    """The dashboard's engine calls on four made-up annotations (no store): warms their lazy imports."""
    item = {"from_name": "c", "to_name": "t", "type": "choices"}
    res = [[{**item, "value": {"choices": [v]}}] for v in "abab"]
    ann = pd.DataFrame({"task": [1, 1, 2, 2], "evaluator": ["x", "y", "x", "y"], "control": ["c"] * 4,
                        "type": ["choices"] * 4, "result": res, "lead_time": [1.0, 2.0, 3.0, 4.0],
                        "created_at": pd.to_datetime(["2026-01-01T00:00:00Z"] * 4, utc=True, format="ISO8601")})
    gt = pd.DataFrame({"task": [1], "control": ["c"], "type": ["choices"], "result": [res[0]],
                       SOURCE_EVALUATOR: [None]})
    params: dict[str, dict[str, Any]] = {"c": {}}
    with shared_preparation():
        agreement_matrices(ann, gt, params)
        control_alpha(ann, params, "c", ["x", "y"])
        drift_series(annotator_quality(ann, gt, params, None).drift)


def _warm_main(jobs: Any, out: Any, data_dir: str | None = None) -> None:
    """A metrics process started ahead of need: warmed up (:func:`_warm_up`) by the time a job arrives (one
    job). It only reads the store, so it is where frames are read with the ADBC driver (frames.ARROW_READS)."""
    from app.services import frames

    frames.ARROW_READS = True
    store = _warm_up(data_dir)
    job = jobs.get()
    if job is None:
        if store is not None:
            store.close()
        return
    job_dir, project_id, mode = job
    if store is not None and job_dir != data_dir:
        store.close()
        store = None
    _child_compute(job_dir, project_id, mode, out, store)
    # done: the numbers are sent and the cache written. Skip the interpreter's teardown, which frees the
    # frames' millions of objects one by one (0.3-0.5 s at 1M annotations) for a process that ends anyway.
    import os

    out.close()
    out.join_thread()  # an error report, too, is in the pipe before the process ends
    os._exit(0)


class _Warm:
    """One spawned metrics process waiting for a job (``prewarm_metrics_process``); ``data_dir``/``project_id``:
    the store it opened ahead and the large project it was started for (``None``: not known)."""

    def __init__(self, data_dir: str | None = None, project_id: int | None = None) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.data_dir, self.project_id = data_dir, project_id
        self.jobs = ctx.Queue()
        self.out = ctx.Queue()
        self.proc = ctx.Process(target=_warm_main, args=(self.jobs, self.out, data_dir), daemon=True,
                                name="reviewdesk-metrics")
        self.proc.start()

    def close(self) -> None:
        if self.proc.is_alive():
            self.jobs.put(None)
            self.proc.join(timeout=2)
            if self.proc.is_alive():
                self.proc.terminate()


_WARM: _Warm | None = None
_WARM_LOCK = threading.Lock()
_GENERATION = 0  # bumped by stop_metrics_process: a start asked for before it is not made after it


def _annotation_count(store: Store, project_id: int) -> int:
    """Live-task annotations of the project (the first element of :func:`data_version`, at half its cost)."""
    with store.session() as s:
        return int(s.connection().execute(text(
            "SELECT count(*) FROM annotations a JOIN tasks t ON t.id = a.task_id "
            "WHERE t.project_id = :p AND t.deleted = 0"), {"p": project_id}).scalar() or 0)


def prewarm_metrics_process(store: Store | None = None, project_id: int | None = None) -> bool:
    """Start the metrics process of the next large computation now, so its interpreter start, imports and
    warm-up (about 1.5 s) are done before it is needed. With a store and project: only when that project is
    large enough to compute in a child process, and the process opens that store ahead. Idempotent: at most
    one waits at a time. Returns whether one is waiting."""
    global _WARM
    if store is not None and project_id is not None and _annotation_count(store, project_id) < ISOLATE_ABOVE:
        return False
    _start_warm(str(store.data_dir) if store is not None else None, project_id)
    return True


def _start_warm(data_dir: str | None, project_id: int | None, generation: int | None = None) -> None:
    global _WARM
    with _WARM_LOCK:
        if generation is not None and generation != _GENERATION:
            return  # stopped since (the app quits, a test ended): nothing is to wait for work any more
        if _WARM is None or not _WARM.proc.is_alive():
            _WARM = _Warm(data_dir, project_id)


def stop_metrics_process() -> None:
    """Stop a metrics process that is waiting for a job (the window closes, a test ends)."""
    global _WARM, _GENERATION
    with _WARM_LOCK:
        warm, _WARM = _WARM, None
        _GENERATION += 1
    if warm is not None:
        warm.close()


def _take_warm() -> _Warm | None:
    global _WARM
    with _WARM_LOCK:
        warm, _WARM = _WARM, None
    if warm is not None and not warm.proc.is_alive():
        return None
    return warm


def _waiting_for(store: Store, project_id: int) -> bool:
    """A process started ahead for this store's project is waiting (it was started because it is large)."""
    with _WARM_LOCK:
        warm = _WARM
    return (warm is not None and warm.proc.is_alive() and warm.project_id == project_id
            and warm.data_dir == str(store.data_dir))


def compute_dashboard_isolated(store: Store, project_id: int, *, mode: str = "pairwise",
                               cancel: threading.Event | None = None) -> Dashboard:
    """Compute in a child process when the project is large, so the GUI's thread never waits on the GIL.

    Small projects compute in the calling thread (a process start costs about a second). A process started
    ahead by :func:`prewarm_metrics_process` is used when one is waiting, and the next one is started for the
    next computation (a sync or a decision changes the numbers again).
    """
    if not _waiting_for(store, project_id) and _annotation_count(store, project_id) < ISOLATE_ABOVE:
        return compute_dashboard(store, project_id, mode=mode)
    import queue as queue_mod

    warm = _take_warm() or _Warm(str(store.data_dir), project_id)
    proc, out = warm.proc, warm.out
    warm.jobs.put((str(store.data_dir), project_id, mode))
    try:
        while True:
            if cancel is not None and cancel.is_set():
                proc.terminate()
                raise InterruptedError("cancelled")
            try:
                status, payload = out.get(timeout=0.1)
                break
            except queue_mod.Empty:
                if not proc.is_alive() and out.empty():
                    raise RuntimeError(
                        f"the metrics process stopped unexpectedly (exit code {proc.exitcode})") from None
    except BaseException:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()
        _start_warm(str(store.data_dir), project_id)  # ready for the next computation of this large project
        raise
    # the numbers are here; the process still writes the on-disk cache and ends by itself. It is reaped off
    # this thread, and only then is the next one started: two metrics processes never run at once (memory,
    # and the new one's imports would compete on 2 cores with the GUI painting these numbers).
    data_dir = str(store.data_dir)
    with _WARM_LOCK:
        generation = _GENERATION

    def reap() -> None:
        proc.join()
        _start_warm(data_dir, project_id, generation)

    threading.Thread(target=reap, name="reviewdesk-metrics-reaper", daemon=True).start()
    if status != "ok":
        raise RuntimeError(payload)
    return payload


def compute_dashboard(store: Store, project_id: int, *, mode: str = "pairwise",
                      progress: Callable[[int], None] | None = None, save: bool = True,
                      as_of: str | int | None = None) -> Dashboard:
    """The dashboard of a project now, or ``as_of`` an audit point (an event id or an ISO 8601 time;
    ``app.services.asof``, docs/adr/0015): then computed on a rewound copy of the store, never cached,
    and :attr:`Dashboard.as_of` says which event and whether the rewind was exact."""
    if as_of is not None:
        from app.services.asof import resolve_as_of, snapshot

        with snapshot(store, resolve_as_of(store, as_of), project_id) as (snap, cut):
            d = _compute_dashboard(snap, project_id, mode=mode, progress=progress)
        return replace(d, as_of=cut.as_json())
    d = _compute_dashboard(store, project_id, mode=mode, progress=progress)
    if save:
        _save_cache(store, d)
    return d


@shared_preparation()  # matrices, alpha and the quality tables code the frames once
def _compute_dashboard(store: Store, project_id: int, *, mode: str = "pairwise",
                       progress: Callable[[int], None] | None = None) -> Dashboard:
    frames = load_frames(store, project_id, progress=progress)
    ann, gt, params = frames.annotations, frames.ground_truth, frames.params
    notes = []
    if ann.empty:
        empty = pd.DataFrame()
        return Dashboard(project_id, mode, {}, empty, empty, empty, empty, empty, frames.controls,
                         notes=("This project has no annotations yet.",), version=frames.version)
    gt_arg = gt if not gt.empty else None
    if gt_arg is None:
        notes.append("No ground truth yet: accept or fix decisions, or server ground-truth flags, create it.")
    # pairwise: the engine's default adds the "Consensus (Dawid-Skene)" column of the human annotators (the
    # same consensus as consensus_reference(frames)); consensus mode has its own columns
    mats = agreement_matrices(ann, gt_arg, params, mode=mode)  # type: ignore[arg-type]
    if progress:
        progress(60)
    diff = []
    for c in frames.controls:
        m = mats.get(c)
        if m is None:
            continue
        humans = [i for i, e in enumerate(m.evaluators) if not e.startswith(MODEL_PREFIX)]
        cols = [m.columns.index(m.evaluators[i]) for i in humans] if mode == "pairwise" else [1]
        block = m.matrix[np.ix_(humans, cols)] if humans else np.empty((0, 0))
        agree = float(np.nanmean(block)) if block.size and not np.all(np.isnan(block)) else np.nan
        try:
            alpha = control_alpha(ann, params, c, [m.evaluators[i] for i in humans], shared=True,
                                  ground_truth=gt_arg)
        except Exception:  # noqa: BLE001 - alpha is undefined on degenerate data; the chart shows n/a
            alpha = None
        diff.append({"control": c, "agreement": agree, "alpha": np.nan if alpha is None else alpha,
                     "n_tasks": int(ann.loc[ann["control"] == c, "task"].nunique())})
    difficulty = pd.DataFrame(diff).sort_values("agreement", na_position="last").reset_index(drop=True)
    decisions = frames.decisions if not frames.decisions.empty else None
    q = annotator_quality(ann, gt_arg, params, decisions)
    q_series = drift_series(q.drift)
    dims = [k for k in mats if k is not None]
    by_control = {}
    for c in frames.controls:  # the annotator table follows the Dimension selector
        if dims == [c]:  # the only dimension: its table is the pooled one (the same call), not computed twice
            by_control[c] = QualityView(q.table.copy(), q.model_agreement.copy(), dict(q_series))
        elif c in mats:
            qc = annotator_quality(ann, gt_arg, params, decisions, controls=[c])
            by_control[c] = QualityView(qc.table, qc.model_agreement, drift_series(qc.drift))
    if progress:
        progress(90)
    board = []
    for c in frames.controls:
        m = mats.get(c)
        if m is None:
            continue
        for i, e in enumerate(m.evaluators):
            if e.startswith(MODEL_PREFIX):
                board.append({"model": e[len(MODEL_PREFIX):], "control": c, "score": m.matrix[i, 0],
                              "n": int(m.counts[i, 0])})
    leaderboard = (pd.DataFrame(board).pivot(index="model", columns="control", values="score")
                   if board else pd.DataFrame())
    if not leaderboard.empty:
        leaderboard["overall"] = leaderboard.mean(axis=1)
        leaderboard = leaderboard.sort_values("overall", ascending=False)
    return Dashboard(project_id, mode, mats, difficulty, q.table, q.drift, q.model_agreement,
                     leaderboard, frames.controls, notes=tuple(notes), version=frames.version,
                     drift_series=q_series, quality_by_control=by_control)


SPARK_POINTS = 86


def drift_series(drift: pd.DataFrame, points: int = SPARK_POINTS) -> dict[str, tuple[tuple[float, ...], tuple[bool, ...]]]:
    """Each evaluator's rolling accuracy in time order, bucketed to ``points`` means (alarm if any)."""
    out: dict[str, tuple[tuple[float, ...], tuple[bool, ...]]] = {}
    if drift is None or drift.empty:
        return out
    for ev, g in drift.groupby("evaluator", sort=False):
        vals = g["rolling_accuracy"].to_numpy(dtype=float)
        alarms = g["alarm"].to_numpy(dtype=bool)
        if len(vals) > points:  # every bucket holds at least one row: one reduceat each, not a loop of nanmean
            starts = np.linspace(0, len(vals), points + 1).astype(int)[:-1]
            known = ~np.isnan(vals)
            sums = np.add.reduceat(np.where(known, vals, 0.0), starts)
            counts = np.add.reduceat(known.astype(np.int64), starts)
            with np.errstate(invalid="ignore", divide="ignore"):
                vals = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
            alarms = np.logical_or.reduceat(alarms, starts)
        out[str(ev)] = (tuple(float(v) for v in vals), tuple(bool(a) for a in alarms))
    return out


def human_evaluators(frames: ProjectFrames) -> list[str]:
    """The annotators of the frames (no ``model:*``), sorted."""
    return sorted({str(e) for e in frames.annotations["evaluator"].unique() if not str(e).startswith(MODEL_PREFIX)})


def consensus_reference(frames: ProjectFrames) -> pd.DataFrame:
    """Dawid-Skene consensus of the human annotators per (task, categorical control), as a reference frame
    (``task, control, type, result`` + ``label, confidence, n_answers``); models are scored against it, not
    part of it. Tasks need two human answers. See :func:`app.metrics.dawid_skene_consensus`."""
    if frames.annotations.empty:
        return dawid_skene_consensus(frames.annotations)
    return dawid_skene_consensus(frames.annotations, frames.params, evaluators=human_evaluators(frames))


def drill_tolerances(store: Store, project_id: int) -> dict[str, float]:
    """Control name -> the drill-down tolerance of its type (:data:`app.metrics.DEFAULT_TOLERANCE`)."""
    return default_tolerances(load_frames(store, project_id).annotations)


def disagreeing_tasks(store: Store, project_id: int, row: str, column: str, control: str | None,
                      tolerance: float | Mapping[str, float] | None = None) -> list[int]:
    """Local task ids where ``row`` disagrees with ``column`` (an evaluator, ``Ground truth`` or
    ``Consensus (Dawid-Skene)``) on ``control`` (or on any control), worst first.

    ``tolerance`` (default: per control type, :func:`drill_tolerances`) lets near matches of numeric and
    region scores pass: a rating one star away or a box at high overlap is no disagreement to look at."""
    frames = load_frames(store, project_id)
    if tolerance is None:
        tolerance = default_tolerances(frames.annotations)
    if column == CONSENSUS_DS:
        ref = consensus_reference(frames)
        if ref.empty:
            return []
        df = pair_disagreements(frames.annotations, row, GROUND_TRUTH, frames.params, ground_truth=ref,
                                control=control, tolerance=tolerance)
        return [int(t) for t in df["task"]]
    gt = frames.ground_truth if not frames.ground_truth.empty else None
    if column == GROUND_TRUTH and gt is None:
        return []
    df = pair_disagreements(frames.annotations, row, column, frames.params, ground_truth=gt, control=control,
                            tolerance=tolerance)
    return [int(t) for t in df["task"]]


def queue_by_agreement(store: Store, project_id: int, mode: str = "pairwise") -> list[int]:
    """Task ids ordered by agreement, lowest first (expert attention on the contentious ones)."""
    frames = load_frames(store, project_id)
    humans = frames.annotations[~frames.annotations["evaluator"].str.startswith(MODEL_PREFIX)]
    df = task_agreement(humans, frames.params, mode=mode)  # type: ignore[arg-type]
    return [int(t) for t in df.sort_values("agreement", na_position="last").index]


def evaluator_user_id(frames: ProjectFrames, evaluator: str) -> int | None:
    for uid, name in frames.members.items():
        if name == evaluator:
            return uid
    return None


def matrix_frame(m: AgreementMatrix) -> pd.DataFrame:
    """The matrix as percentages with a ``shared tasks`` block, for CSV."""
    pct = m.to_frame() * 100.0
    counts = m.counts_frame().add_prefix("n: ")
    out = pd.concat([pct.round(2), counts.astype(int)], axis=1)
    out.index.name = "evaluator"
    return out


ALL_MEAN = "all dimensions (mean of the dimensions)"
ALL_POOLED = "all dimensions (pooled)"


def _pct_col(v: Any) -> Any:
    return np.round(pd.to_numeric(v, errors="coerce") * 100.0, 2)


def agreement_long(d: Dashboard) -> pd.DataFrame:
    """Every matrix cell as one row: ``dimension, aggregation, evaluator_a, evaluator_b, agreement_pct,
    n_shared_tasks`` (row ``evaluator_a`` scored against column ``evaluator_b``; no diagonal, no Avg. row;
    on the all-dimensions rows the count is summed over the dimensions)."""
    rows = []
    for c, m in d.matrices.items():
        for r, a in enumerate(m.evaluators):
            for k, b in enumerate(m.columns):
                if a == b:
                    continue
                v, n = float(m.matrix[r, k]), int(m.counts[r, k])
                if n == 0 and np.isnan(v):
                    continue
                rows.append((ALL_MEAN if c is None else c, d.mode, a, b, v, n))
    df = pd.DataFrame(rows, columns=["dimension", "aggregation", "evaluator_a", "evaluator_b", "agreement",
                                     "n_shared_tasks"])
    df["agreement"] = _pct_col(df["agreement"])
    return df.rename(columns={"agreement": "agreement_pct"})


_ANNOTATOR_COLUMNS = {  # quality column -> CSV column (rates as percentages, *_pct)
    "evaluator": "evaluator", "is_model": "is_model", "volume": "tasks", "agreement": "agreement_pct",
    "agreement_n": "agreement_n", "accuracy": "accuracy_pct", "accuracy_low": "accuracy_low_pct",
    "accuracy_high": "accuracy_high_pct", "accuracy_n": "accuracy_n", "n_decisions": "decisions",
    "accept_rate": "accept_pct", "fix_rate": "fix_pct", "reject_rate": "reject_pct",
    "median_lead_time": "median_lead_time_s", "drift_alarm": "drift_alarm", "fast_flag": "fast_flag",
    "low_entropy_flag": "low_entropy_flag",
}


def annotators_long(d: Dashboard) -> pd.DataFrame:
    """The annotator table of every dimension and of all dimensions pooled, one row per (dimension, evaluator)."""
    parts = []
    for c in (None, *[c for c in d.controls if c in d.quality_by_control]):
        t = d.quality_view(c).table
        if t is None or t.empty:
            continue
        t = t[[k for k in _ANNOTATOR_COLUMNS if k in t.columns]].copy()
        for k in ("agreement", "accuracy", "accuracy_low", "accuracy_high", "accept_rate", "fix_rate",
                  "reject_rate"):
            if k in t.columns:
                t[k] = _pct_col(t[k])
        t.insert(0, "dimension", ALL_POOLED if c is None else c)
        parts.append(t.rename(columns=_ANNOTATOR_COLUMNS))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def models_long(d: Dashboard) -> pd.DataFrame:
    """Each model version's score against the ground truth per dimension: ``model, dimension,
    score_vs_ground_truth_pct, n_tasks``."""
    rows = []
    for c, m in d.matrices.items():
        if not m.columns or m.columns[0] != GROUND_TRUTH:
            continue
        for i, e in enumerate(m.evaluators):
            if e.startswith(MODEL_PREFIX):
                rows.append((e[len(MODEL_PREFIX):], ALL_MEAN if c is None else c, float(m.matrix[i, 0]),
                             int(m.counts[i, 0])))
    df = pd.DataFrame(rows, columns=["model", "dimension", "score", "n_tasks"])
    df["score"] = _pct_col(df["score"])
    return df.rename(columns={"score": "score_vs_ground_truth_pct"})


def controls_table(d: Dashboard) -> pd.DataFrame:
    """Dimension difficulty: ``dimension, agreement_pct`` (among annotators), ``alpha_annotators`` (Krippendorff,
    -1..1), ``n_tasks``."""
    if d.difficulty is None or d.difficulty.empty:
        return pd.DataFrame()
    t = d.difficulty.rename(columns={"control": "dimension", "alpha": "alpha_annotators"}).copy()
    t["agreement"] = _pct_col(t["agreement"])
    return t.rename(columns={"agreement": "agreement_pct"})[["dimension", "agreement_pct", "alpha_annotators",
                                                                "n_tasks"]]


def export_csv(d: Dashboard, path: str, control: str | None = None) -> list[str]:
    """Write the selected dimension's matrix to ``path`` and one tidy table per file beside it; return the files.

    ``path``: the matrix as shown (wide: evaluator rows, ``Ground truth`` and evaluator columns, percentages,
    then ``n: ...`` shared-task counts) -- the shape ``reviewdesk metrics --csv`` always wrote.
    ``<stem>-agreement.csv``: every dimension's matrix in long form (``dimension, aggregation, evaluator_a,
    evaluator_b, agreement_pct, n_shared_tasks``); ``<stem>-annotators.csv``: the annotator table per dimension
    and pooled over all; ``<stem>-controls.csv``: dimension difficulty; ``<stem>-models.csv``: model versions vs
    ground truth per dimension. Every rate is a percentage (0-100) in a column named ``*_pct``; alpha is a
    coefficient (-1..1); counts are whole numbers.
    """
    from pathlib import Path

    p = Path(path)
    m = d.matrices.get(control)
    if m is None:
        raise KeyError(f"unknown control {control!r}")
    written = []
    matrix_frame(m).to_csv(p)
    written.append(str(p))
    for suffix, frame in (("agreement", agreement_long(d)), ("annotators", annotators_long(d)),
                          ("controls", controls_table(d)), ("models", models_long(d))):
        if frame is not None and not frame.empty:
            q = p.with_name(f"{p.stem}-{suffix}{p.suffix or '.csv'}")
            frame.to_csv(q, index=False)
            written.append(str(q))
    return written
