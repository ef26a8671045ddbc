"""Pull one Label Studio project into the store: incremental, resumable, conflict-aware.

Order (DESIGN.md section 5): project + labeling config -> members -> tasks with ``fields=all`` -> id
reconciliation (deleted tasks) -> media into the content-addressed cache.

Tasks are read in pages ordered by ``updated_at`` and filtered by ``updated_at > lower``, where ``lower``
starts at the stored cursor minus a small overlap and then follows the pages (keyset paging): every request
is the cheap first page of a filter, and a task updated while the pull runs moves to the end instead of
shifting later pages. Each page is applied and the cursor advanced in ONE local transaction, so an
interrupted pull resumes where it stopped. The next page is fetched while the current one is written.

``sync_state.pull_cursor`` is the lower bound of the next pull: tasks updated after it may not have been
seen. While paging it trails the newest stamp applied by the overlap; when a pull completes it moves up to
the newest stamp if the server's clock (HTTP ``Date``, taken before the first page) shows that every
transaction stamped before it had committed when the reading started.

An annotation that changed (``updated_at`` differs from what the reviewer saw, and not because of our own
push) or disappeared under a pending decision, or another reviewer's new decision record in the task meta,
turns that decision into a ``conflict`` -- with the result the reviewer judged kept for the side-by-side view.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.orm import Session

from app.models import lsjson
from app.models.audit import append_event
from app.models.config import parse_config
from app.models.importer import insert_project, replace_controls
from app.models.schema import (
    Annotation,
    Comment,
    Decision,
    DecisionSync,
    GroundTruth,
    Member,
    Prediction,
    Project,
    SyncState,
    Task,
)
from app.models.store import Store, now_iso
from app.sync import records as rec
from app.sync.client import LSClient
from app.sync.errors import Cancelled, NotFoundError, RequestError

PAGE_SIZE = 500
OVERLAP = timedelta(seconds=2)
RECONCILE_EVERY = timedelta(hours=24)
LS_DT = "%Y-%m-%dT%H:%M:%S.%fZ"

# Data Manager columns computed per request: not part of the task, not worth storing or exporting.
TASK_NOISE = frozenset({
    "drafts", "annotators", "cancelled_annotations", "total_annotations", "total_predictions", "completed_at",
    "annotations_results", "predictions_results", "predictions_score", "annotations_ids",
    "predictions_model_versions", "avg_lead_time", "draft_exists", "updated_by", "is_labeled",
    "comment_count", "unresolved_comment_count", "last_comment_updated_at", "project", "comment_authors",
    "reviewers", "reviews_accepted", "reviews_rejected", "ground_truth", "annotations_updated_at",
    "file_upload", "storage_filename", "state",
})
ANNOTATION_NOISE = frozenset({"created_username", "created_ago", "task", "project", "state"})
PREDICTION_NOISE = frozenset({"created_ago", "task", "project", "cluster", "neighbors", "mislabeling"})
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class PullReport:
    project_id: int
    server_project_id: int
    title: str
    tasks_new: int = 0
    tasks_updated: int = 0
    tasks_unchanged: int = 0
    tasks_deleted: int = 0
    annotations_changed: int = 0
    predictions_changed: int = 0
    members: int = 0
    conflicts: int = 0
    pages: int = 0
    reconciled: bool = False
    media_fetched: int = 0
    media_failed: int = 0
    lost: int = 0  # this store's records found erased on the server (re-queued for the next push)
    server_decisions: int = 0  # other reviewers' decisions brought down
    cursor: str | None = None
    config_changed: bool = False
    project_created: bool = False


AUDIT_CHANGES_CAP = 500


@dataclass
class _Counts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    anns: int = 0
    preds: int = 0
    conflicts: int = 0
    pages: int = 0
    lost: int = 0
    server_decisions: int = 0
    touched_tasks: list[int] = field(default_factory=list)
    # what the pull changed, per annotation, for the audit trail (from -> to server updated_at; capped)
    changes: list[dict[str, Any]] = field(default_factory=list)

    def note(self, task: int, annotation: int | None, before: Any, after: Any, **extra: Any) -> None:
        if len(self.changes) < AUDIT_CHANGES_CAP:
            self.changes.append({"task": task, "annotation": annotation, "from": before, "to": after, **extra})


def parse_ls_dt(value: str) -> datetime:
    v = value.rstrip("Z").replace("+00:00", "")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in v else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(v, fmt).replace(tzinfo=UTC)


def format_ls_dt(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime(LS_DT)


def _server_time(date_header: Any) -> datetime | None:
    """The server clock from an HTTP ``Date`` header, rounded down a second (it has 1 s resolution)."""
    if not isinstance(date_header, str):
        return None
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(date_header).astimezone(UTC) - timedelta(seconds=1)
    except (TypeError, ValueError):
        return None


def updated_filter(lower: str | None) -> dict[str, Any]:
    items = [] if lower is None else [{"filter": "filter:tasks:updated_at", "operator": "greater",
                                       "type": "Datetime", "value": lower}]
    return {"filters": {"conjunction": "and", "items": items}, "ordering": ["tasks:updated_at"]}


def _clean(raw: dict[str, Any]) -> dict[str, Any]:
    t = {k: v for k, v in raw.items() if k not in TASK_NOISE}
    t["annotations"] = [{k: v for k, v in a.items() if k not in ANNOTATION_NOISE}
                        for a in raw.get("annotations") or [] if isinstance(a, dict)]
    t["predictions"] = [{k: v for k, v in p.items() if k not in PREDICTION_NOISE}
                        for p in raw.get("predictions") or [] if isinstance(p, dict)]
    return t


# -- project, members -------------------------------------------------------------------------------
def _upsert_project(s: Session, server_ref: int, body: dict[str, Any]) -> tuple[Project, bool, bool]:
    sid = int(body["id"])
    xml = body.get("label_config") or "<View></View>"
    project = s.scalar(select(Project).where(Project.server_ref == server_ref, Project.server_id == sid))
    extra = {k: body[k] for k in ("description", "color", "created_at") if body.get(k) is not None}
    if project is None:
        cfg = parse_config(xml)
        project = insert_project(s, cfg, body.get("title") or f"Project {sid}", media_root=None,
                                 server_ref=server_ref, server_id=sid,
                                 expert_instruction=body.get("expert_instruction") or None, extra=extra)
        return project, True, True
    changed = project.label_config != xml
    if changed:
        cfg = parse_config(xml)
        project.label_config = cfg.xml
        replace_controls(s, project.id, cfg)
    if body.get("title") and project.title != body["title"]:
        project.title = body["title"]
    return project, False, changed


def _upsert_members(s: Session, project_id: int, users: list[dict[str, Any]]) -> int:
    existing = {m.user_id: m for m in s.scalars(select(Member).where(Member.project_id == project_id))}
    n = 0
    for u in users:
        uid = u.get("id")
        if not isinstance(uid, int):
            continue
        m = existing.get(uid)
        if m is None:
            s.add(Member(project_id=project_id, user_id=uid, email=u.get("email"),
                         first_name=u.get("first_name"), last_name=u.get("last_name")))
            n += 1
        elif (m.email, m.first_name, m.last_name) != (u.get("email"), u.get("first_name"), u.get("last_name")):
            m.email, m.first_name, m.last_name = u.get("email"), u.get("first_name"), u.get("last_name")
            n += 1
    s.flush()
    return n


# -- conflicts ------------------------------------------------------------------------------------------
def own_updated_at(s: Session, annotation_ids: list[int]) -> dict[int, set[str]]:
    """annotation id -> ``updated_at`` values our own pushes produced on it (not a conflict)."""
    out: dict[int, set[str]] = {}
    if not annotation_ids:
        return out
    for ann_id, effect in s.execute(
            select(Decision.annotation_id, DecisionSync.effect).join(DecisionSync, DecisionSync.decision_id == Decision.id)
            .where(Decision.annotation_id.in_(annotation_ids), Decision.origin == "local",
                   DecisionSync.state.in_(("synced", "pending", "conflict")))):
        if isinstance(effect, dict):
            for v in effect.get("annotation_updated_at") or []:
                out.setdefault(ann_id, set()).add(v)
    return out


def mark_conflict(s: Session, ds: DecisionSync, kind: str, detail: dict[str, Any]) -> None:
    effect = dict(ds.effect or {})
    effect["conflict"] = {"kind": kind, "found_at": now_iso(), **detail}
    ds.effect = effect
    ds.state = "conflict"
    ds.last_error = {
        "changed": "The annotation changed on the server after you reviewed it.",
        "deleted": "The annotation was deleted on the server.",
        "task_deleted": "The task was deleted on the server.",
        "other_reviewer": "Another reviewer decided on the same annotation.",
    }.get(kind, kind)
    ds.updated_at = now_iso()


def _pending_by_annotation(s: Session, ann_ids: list[int]) -> dict[int, list[tuple[Decision, DecisionSync]]]:
    out: dict[int, list[tuple[Decision, DecisionSync]]] = {}
    if not ann_ids:
        return out
    for d, ds in s.execute(select(Decision, DecisionSync).join(DecisionSync, DecisionSync.decision_id == Decision.id)
                           .where(Decision.annotation_id.in_(ann_ids), DecisionSync.state == "pending",
                                  Decision.verdict != "retract").order_by(Decision.id)):
        if d.annotation_id is not None:  # always: the query asks for these annotations
            out.setdefault(d.annotation_id, []).append((d, ds))
    return out


def _snapshot(a: Any) -> dict[str, Any]:
    return {"server_id": a.get("id"), "result": a.get("result"), "updated_at": a.get("updated_at"),
            "completed_by": a.get("completed_by"), "ground_truth": a.get("ground_truth")}


# -- one page ---------------------------------------------------------------------------------------------
def apply_page(s: Session, project_id: int, raw_tasks: list[dict[str, Any]], counts: _Counts,
               actor: str = "sync") -> None:
    """Upsert one page of tasks (with annotations and predictions) into the store."""
    sids = [int(t["id"]) for t in raw_tasks]
    local = {r.server_id: r for r in s.execute(
        select(Task.id, Task.server_id, Task.updated_at, Task.meta, Task.deleted)
        .where(Task.project_id == project_id, Task.server_id.in_(sids)))}
    conn = s.connection()
    new_tasks: list[tuple[dict[str, Any], lsjson.ParsedTask]] = []
    changed: list[tuple[Any, lsjson.ParsedTask]] = []
    for raw in raw_tasks:
        sid = int(raw["id"])
        row = local.get(sid)
        if row is not None and row.updated_at == raw.get("updated_at") and not row.deleted:
            counts.unchanged += 1
            continue
        parsed = lsjson.parse_task(0, _clean(raw))
        if row is None:
            new_tasks.append((raw, parsed))
        else:
            changed.append((row, parsed))

    if new_tasks:
        task_rows = [{"project_id": project_id, "server_id": p.server_id, "position": p.server_id or 0,
                      "data": p.data, "meta": p.meta, "extra": p.extra, "created_at": p.created_at,
                      "updated_at": p.updated_at, "deleted": False} for _, p in new_tasks]
        ids = conn.execute(insert(Task).returning(Task.id, sort_by_parameter_order=True), task_rows).scalars().all()
        ann_rows: list[dict[str, Any]] = []
        pred_rows: list[dict[str, Any]] = []
        for tid, (_, p) in zip(ids, new_tasks, strict=True):
            # by server id (creation order): PostgreSQL-backed servers list them in no fixed order, and every
            # reviewer's store must number a task's annotations the same way
            ann_rows.extend(_ann_row(tid, a, j) for j, a in enumerate(_by_server_id(p.annotations)))
            pred_rows.extend(_pred_row(tid, pr, j) for j, pr in enumerate(_by_server_id(p.predictions)))
            counts.touched_tasks.append(tid)
        if ann_rows:
            conn.execute(insert(Annotation), ann_rows)
        if pred_rows:
            conn.execute(insert(Prediction), pred_rows)
        counts.new += len(new_tasks)
        counts.anns += len(ann_rows)
        counts.preds += len(pred_rows)

    if changed:
        _apply_changed(s, project_id, changed, counts)
    team_records(s, project_id, raw_tasks, counts, actor)


class _HasServerId(Protocol):
    @property
    def server_id(self) -> int | None: ...


_WithServerId = TypeVar("_WithServerId", bound=_HasServerId)


def _by_server_id(items: Iterable[_WithServerId]) -> list[_WithServerId]:
    return sorted(items, key=lambda x: x.server_id if isinstance(x.server_id, int) else 0)


def _ann_row(task_id: int, a: lsjson.ParsedAnnotation, position: int) -> dict[str, Any]:
    return {"task_id": task_id, "server_id": a.server_id, "uuid": None, "completed_by": a.completed_by,
            "completed_by_raw": a.completed_by_raw, "result": a.result, "ground_truth": a.ground_truth,
            "was_cancelled": a.was_cancelled, "lead_time": a.lead_time, "created_at": a.created_at,
            "updated_at": a.updated_at, "position": position, "extra": a.extra, "deleted": False}


def _pred_row(task_id: int, p: lsjson.ParsedPrediction, position: int) -> dict[str, Any]:
    return {"task_id": task_id, "server_id": p.server_id, "model_version": p.model_version, "score": p.score,
            "result": p.result, "created_at": p.created_at, "position": position, "extra": p.extra}


def _referenced_annotations(s: Session, ann_ids: list[int]) -> set[int]:
    if not ann_ids:
        return set()
    refs: set[int] = set()
    for model in (Decision, GroundTruth, Comment):
        refs.update(x for x in s.scalars(select(model.annotation_id).where(model.annotation_id.in_(ann_ids))) if x)
    return refs


def _apply_changed(s: Session, project_id: int, changed: list[tuple[Any, lsjson.ParsedTask]], counts: _Counts) -> None:
    tids = [row.id for row, _ in changed]
    local_anns: dict[int, dict[int, Annotation]] = {}
    for ann in s.scalars(select(Annotation).where(Annotation.task_id.in_(tids), Annotation.server_id.is_not(None))):
        if ann.server_id is not None:  # always: the query asks for these
            local_anns.setdefault(ann.task_id, {})[ann.server_id] = ann
    all_ann_ids = [a.id for m in local_anns.values() for a in m.values()]
    pending = _pending_by_annotation(s, all_ann_ids)
    own = own_updated_at(s, list(pending))
    referenced = _referenced_annotations(s, all_ann_ids)
    local_preds: dict[int, dict[int, Prediction]] = {}
    for pred in s.scalars(select(Prediction).where(Prediction.task_id.in_(tids), Prediction.server_id.is_not(None))):
        if pred.server_id is not None:  # always: the query asks for these
            local_preds.setdefault(pred.task_id, {})[pred.server_id] = pred
    referenced_preds = set(s.scalars(select(Decision.prediction_id).where(Decision.prediction_id.in_(
        [p.id for m in local_preds.values() for p in m.values()] or [-1]))))

    for row, p in changed:
        # another reviewer's decision records that appeared since the last pull
        task_obj = s.get(Task, row.id)
        assert task_obj is not None
        task_obj.data, task_obj.meta, task_obj.extra = p.data, p.meta, p.extra
        task_obj.updated_at, task_obj.created_at, task_obj.deleted = p.updated_at, p.created_at, False
        counts.updated += 1
        counts.touched_tasks.append(row.id)
        mine = local_anns.get(row.id, {})
        seen_sids = set()
        next_pos = max([a.position for a in mine.values()] + [-1]) + 1
        for a in _by_server_id(p.annotations):
            seen_sids.add(a.server_id)
            loc = mine.get(a.server_id) if a.server_id is not None else None
            if loc is None:
                s.add(Annotation(**_ann_row(row.id, a, next_pos)))
                next_pos += 1
                counts.anns += 1
                counts.note(row.id, a.server_id, None, a.updated_at)
                continue
            if loc.updated_at == a.updated_at and not loc.deleted:
                continue
            for d, ds in pending.get(loc.id, []):
                seen = (ds.effect or {}).get("seen_result", loc.result)
                if d.seen_updated_at != a.updated_at and a.updated_at not in own.get(loc.id, set()) \
                        and not rec.same_judgement("fix", seen, "fix", a.result):
                    effect = dict(ds.effect or {})
                    effect.setdefault("seen_result", loc.result)
                    ds.effect = effect
                    mark_conflict(s, ds, "changed", {"theirs": {"server_id": a.server_id, "result": a.result,
                                                                 "updated_at": a.updated_at,
                                                                 "completed_by": a.completed_by}})
                    counts.conflicts += 1
            counts.note(row.id, a.server_id, loc.updated_at, a.updated_at,
                        **({"ground_truth": {"from": loc.ground_truth, "to": a.ground_truth}}
                           if bool(loc.ground_truth) != bool(a.ground_truth) else {}))
            loc.result, loc.ground_truth, loc.was_cancelled = a.result, a.ground_truth, a.was_cancelled
            loc.lead_time, loc.updated_at, loc.completed_by = a.lead_time, a.updated_at, a.completed_by
            loc.completed_by_raw, loc.extra, loc.deleted = a.completed_by_raw, a.extra, False
            counts.anns += 1
        for sid, loc in mine.items():
            if sid in seen_sids or loc.deleted:
                continue
            for _d, ds in pending.get(loc.id, []):
                effect = dict(ds.effect or {})
                effect.setdefault("seen_result", loc.result)
                ds.effect = effect
                mark_conflict(s, ds, "deleted", {"theirs": None})
                counts.conflicts += 1
            counts.note(row.id, sid, loc.updated_at, None)
            if loc.id in referenced:
                loc.deleted = True
            else:
                s.delete(loc)
            counts.anns += 1
        # predictions
        preds = local_preds.get(row.id, {})
        seen_p = set()
        next_pp = max([x.position for x in preds.values()] + [-1]) + 1
        for pr in _by_server_id(p.predictions):
            seen_p.add(pr.server_id)
            loc_p = preds.get(pr.server_id) if pr.server_id is not None else None
            if loc_p is None:
                s.add(Prediction(**_pred_row(row.id, pr, next_pp)))
                next_pp += 1
                counts.preds += 1
            elif (loc_p.result, loc_p.score, loc_p.model_version) != (pr.result, pr.score, pr.model_version):
                loc_p.result, loc_p.score, loc_p.model_version, loc_p.extra = pr.result, pr.score, pr.model_version, pr.extra
                counts.preds += 1
        for sid, loc_p in preds.items():
            if sid not in seen_p and loc_p.id not in referenced_preds:
                s.delete(loc_p)
                counts.preds += 1
    s.flush()


# -- team review: verify our records, bring down everyone else's -------------------------------------------
PUSHED = ("accept", "fix", "reject", "escalate", "retract")
JUDGED = ("accept", "fix", "reject")


def team_records(s: Session, project_id: int, raw_tasks: list[dict[str, Any]], counts: _Counts,
                 actor: str = "sync") -> None:
    """For one page of server tasks: verify this store's synced records are still in the task meta (re-queue
    the erased ones), and materialise other reviewers' records as read-only ``origin = server`` decisions,
    turning a differing verdict on an annotation I decided into a conflict on my side too."""
    from app.sync.push import mark_lost

    recs_by_sid = {int(t["id"]): rec.meta_records(t.get("meta")) for t in raw_tasks}
    tasks = dict(s.execute(select(Task.server_id, Task.id).where(Task.project_id == project_id,
                                                                Task.server_id.in_(list(recs_by_sid)))).all())
    tids = list(tasks.values())
    if not tids:
        return
    present: dict[int, set[str]] = {tasks[sid]: {r["uuid"] for r in rs} for sid, rs in recs_by_sid.items()
                                    if sid in tasks}
    rows = s.execute(select(Decision, DecisionSync).join(DecisionSync, DecisionSync.decision_id == Decision.id)
                     .where(Decision.task_id.in_(tids)).order_by(Decision.id)).all()
    known = {d.uuid for d, _ in rows}
    lost = []
    for d, ds in rows:
        on_record = ds.state == "synced" or (ds.state == "conflict" and (ds.effect or {}).get("on_server"))
        if d.origin != "local" or not on_record or d.verdict not in PUSHED:
            continue
        needed = (ds.effect or {}).get("records") or [d.uuid]
        if any(u not in present.get(d.task_id, set()) for u in needed):
            lost.append(d.uuid)
    if lost:
        counts.lost += mark_lost(s, lost, actor, where="pull")

    fresh = [(tasks[sid], r) for sid, rs in recs_by_sid.items() if sid in tasks for r in rs
             if r["uuid"] not in known and r.get("verdict") in PUSHED]
    if fresh:  # a UUID already used anywhere in this store (a copied meta, another project) is not new
        known |= set(s.scalars(select(Decision.uuid).where(Decision.uuid.in_([r["uuid"] for _, r in fresh]))))
        fresh = [(t, r) for t, r in fresh if r["uuid"] not in known]
    if not fresh:
        return
    ann_rows = s.execute(select(Annotation.id, Annotation.task_id, Annotation.server_id, Annotation.result)
                         .where(Annotation.task_id.in_({t for t, _ in fresh}))).all()
    ann_id = {(a.task_id, a.server_id): a.id for a in ann_rows}
    ann_result = {(a.task_id, a.server_id): a.result for a in ann_rows}
    pred_id = dict(((p.task_id, p.server_id), p.id) for p in s.execute(
        select(Prediction.id, Prediction.task_id, Prediction.server_id)
        .where(Prediction.task_id.in_({t for t, _ in fresh}))))
    now = now_iso()
    made: list[tuple[Decision, dict[str, Any]]] = []
    for tid, r in fresh:
        verdict = r["verdict"]
        result = ann_result.get((tid, r.get("fix_annotation"))) if verdict == "fix" else None
        d = Decision(uuid=r["uuid"], project_id=project_id, task_id=tid,
                     annotation_id=ann_id.get((tid, r.get("annotation"))),
                     prediction_id=pred_id.get((tid, r.get("prediction"))), verdict=verdict, result=result,
                     reason=_str(r.get("reason")), comment=_str(r.get("comment")),
                     reviewer=_str(r.get("reviewer")) or "unknown reviewer",
                     role="expert" if r.get("role") == "expert" else "reviewer",
                     created_at=_str(r.get("at")) or now,
                     lead_time_ms=r.get("lead_time_ms") if isinstance(r.get("lead_time_ms"), int) else None,
                     retracts=_str(r.get("retracts")), origin="server")
        s.add(d)
        made.append((d, r))
        known.add(r["uuid"])
    s.flush()
    for d, r in made:
        s.add(DecisionSync(decision_id=d.id, state="synced", updated_at=now,
                           effect={"origin": "server", "record": r}))
    counts.server_decisions += len(made)
    append_event(s, actor, "sync.server_decisions", {"project_id": project_id, "count": len(made),
                                                     "uuids": [d.uuid for d, _ in made][:200]})
    _team_conflicts(s, rows, made, counts)


def enterprise_reviews(s: Session, project_id: int, reviews: list[dict[str, Any]], counts: _Counts,
                       actor: str = "sync") -> int:
    """Label Studio Enterprise annotation reviews made outside ReviewDesk -> read-only ``origin = server``
    decisions (UUID ``ls-review-<id>``): accepted -> accept (fix when the reviewer changed the result),
    rejected -> reject. ReviewDesk's own reviews carry ``[reviewdesk UUID]`` and are already decisions."""
    ann_sids = {r.get("annotation") for r in reviews if isinstance(r.get("annotation"), int)}
    if not ann_sids:
        return 0
    anns = {a.server_id: a for a in s.execute(
        select(Annotation.id, Annotation.task_id, Annotation.server_id, Annotation.result)
        .join(Task, Task.id == Annotation.task_id)
        .where(Task.project_id == project_id, Annotation.server_id.in_(ann_sids)))}
    emails = dict(s.execute(select(Member.user_id, Member.email).where(Member.project_id == project_id)).all())
    uuids = {f"ls-review-{r.get('id')}": r for r in reviews if r.get("id") is not None}
    known = set(s.scalars(select(Decision.uuid).where(Decision.uuid.in_(list(uuids)))))
    now = now_iso()
    made: list[tuple[Decision, dict[str, Any]]] = []
    for uuid, r in uuids.items():
        a = anns.get(r.get("annotation"))
        if uuid in known or a is None or r.get("accepted") is None or "[reviewdesk " in str(r.get("comment") or ""):
            continue
        result = r.get("result") if isinstance(r.get("result"), list) and r.get("result") else None
        verdict = "reject" if r["accepted"] is False else ("fix" if result is not None and result != a.result
                                                          else "accept")
        by = r.get("created_by")
        who = emails.get(by) if isinstance(by, int) else (by.get("email") if isinstance(by, dict) else None)
        d = Decision(uuid=uuid, project_id=project_id, task_id=a.task_id, annotation_id=a.id, verdict=verdict,
                     result=result if verdict == "fix" else None, reviewer=who or f"user #{by}", role="reviewer",
                     created_at=_str(r.get("created_at")) or now, origin="server")
        s.add(d)
        made.append((d, {"uuid": uuid, "verdict": verdict, "annotation": r.get("annotation"),
                         "reviewer": d.reviewer, "role": "reviewer", "at": d.created_at, "review": r.get("id")}))
    if not made:
        return 0
    s.flush()
    for d, record in made:
        s.add(DecisionSync(decision_id=d.id, state="synced", updated_at=now,
                           effect={"origin": "server", "record": record, "enterprise_review": True}))
    counts.server_decisions += len(made)
    append_event(s, actor, "sync.server_decisions", {"project_id": project_id, "count": len(made),
                                                     "source": "annotation-reviews"})
    return len(made)


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _team_conflicts(s: Session, rows: Sequence[Row[Decision, DecisionSync]],
                    made: list[tuple[Decision, dict[str, Any]]],
                    counts: _Counts) -> None:
    """Another reviewer's new verdict that differs from my live one on the same annotation: a conflict here
    (theirs named); a retraction of the verdict I conflicted with settles my side again."""
    retracted = {d.retracts for d, _ in rows if d.retracts} | {d.retracts for d, _ in made if d.retracts}
    mine: dict[int, tuple[Decision, DecisionSync]] = {}
    in_conflict: list[tuple[Decision, DecisionSync]] = []
    for d, ds in rows:
        if d.origin != "local" or d.annotation_id is None:
            continue
        if ds.state == "conflict":
            in_conflict.append((d, ds))
        if d.verdict in JUDGED and d.uuid not in retracted and ds.state in ("pending", "synced", "conflict"):
            mine[d.annotation_id] = (d, ds)  # the latest live one wins
    for theirs, r in made:
        if theirs.verdict == "retract":
            for _mine, ds in in_conflict:
                c = (ds.effect or {}).get("conflict") or {}
                if c.get("kind") == "other_reviewer" and (c.get("theirs") or {}).get("uuid") == theirs.retracts:
                    eff = {k: v for k, v in (ds.effect or {}).items() if k != "conflict"}
                    if eff.get("contest"):  # mine was on the record without effect: now it stands, apply it
                        eff["force"] = True
                        ds.state = "pending"
                    else:
                        ds.state = "synced" if eff.get("on_server") else "pending"
                    ds.effect, ds.last_error, ds.updated_at = eff, None, now_iso()
            continue
        if theirs.verdict not in JUDGED or theirs.annotation_id is None or theirs.annotation_id not in mine:
            continue
        d, ds = mine[theirs.annotation_id]
        if ds.state == "conflict" or d.reviewer == theirs.reviewer or d.role == "expert":
            continue
        if theirs.role == "expert" and ds.state == "synced":
            continue  # the expert adjudicated after my decision was on the record
        if (ds.effect or {}).get("force"):
            continue
        if rec.same_judgement(d.verdict, d.result, theirs.verdict, theirs.result):
            continue
        on_server = ds.state == "synced"
        detail = {"theirs": {**r, "result": theirs.result}}
        mark_conflict(s, ds, "other_reviewer", detail)
        if on_server:
            ds.effect = {**(ds.effect or {}), "on_server": True}
        counts.conflicts += 1


# -- reconciliation -------------------------------------------------------------------------------------
def reconcile(s: Session, project_id: int, server_ids: set[int]) -> int:
    """Mark local tasks that no longer exist on the server as deleted; pending decisions on them conflict."""
    gone = s.execute(select(Task.id).where(Task.project_id == project_id, Task.deleted.is_(False),
                                           Task.server_id.is_not(None),
                                           Task.server_id.not_in(server_ids) if server_ids else Task.id.is_not(None)
                                           )).scalars().all()
    if not gone:
        return 0
    s.execute(update(Task).where(Task.id.in_(gone)).values(deleted=True))
    for _d, ds in s.execute(select(Decision, DecisionSync).join(DecisionSync, DecisionSync.decision_id == Decision.id)
                            .where(Decision.task_id.in_(gone), DecisionSync.state == "pending")):
        mark_conflict(s, ds, "task_deleted", {"theirs": None})
    return len(gone)


# -- the whole pull -------------------------------------------------------------------------------------
def pull_project(store: Store, client: LSClient, server_ref: int, ls_project_id: int, *,
                 page_size: int = PAGE_SIZE, overlap: timedelta = OVERLAP, full: bool = False,
                 reconcile_ids: bool | None = None, media: bool = True, media_cap_bytes: int | None = None,
                 progress: Progress | None = None, cancel: threading.Event | None = None,
                 actor: str = "sync", edition: str | None = None) -> PullReport:
    client.cancel_event = cancel

    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("Pull cancelled; the pages already applied are kept and the next pull resumes.")

    body = client.project(ls_project_id)
    users = client.users()
    with store.transaction() as s:
        project, created, config_changed = _upsert_project(s, server_ref, body)
        pid = project.id
        title = project.title
        n_members = _upsert_members(s, pid, users)
        state = s.get(SyncState, pid)
        if state is None:
            state = SyncState(project_id=pid)
            s.add(state)
        if full:
            state.pull_cursor = None
        cursor = state.pull_cursor
        last_reconcile = state.last_reconcile_at

    counts = _Counts()
    lower = cursor
    started = _server_time(body.get("_server_date"))
    newest: str | None = None
    page = 1
    total: int | None = None
    done = 0

    def fetch(lower_: str | None, page_: int) -> dict[str, Any]:
        return client.tasks_page(ls_project_id, page=page_, page_size=page_size, query=updated_filter(lower_))

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pull-prefetch")
    try:
        fut: Future[dict[str, Any]] = pool.submit(fetch, lower, page)
        while True:
            check()
            resp = fut.result()
            tasks = resp.get("tasks") or []
            if total is None and isinstance(resp.get("total"), int):
                total = resp["total"]
            if not tasks:
                break
            stamps = [t.get("updated_at") for t in tasks if t.get("updated_at")]
            top = max(stamps) if stamps else None
            last_page = len(tasks) < page_size
            if not last_page:
                # keyset: restart from just below the newest stamp of this page (ties are re-read, never lost)
                nxt = format_ls_dt(parse_ls_dt(top) - timedelta(microseconds=1)) if top else None
                if nxt is not None and (lower is None or nxt > lower):
                    lower, page = nxt, 1
                else:
                    page += 1
                fut = pool.submit(fetch, lower, page)
            with store.transaction() as s:
                apply_page(s, pid, tasks, counts, actor)
                st = s.get(SyncState, pid)
                assert st is not None
                if top:
                    newest = top if newest is None or top > newest else newest
                    trail = format_ls_dt(parse_ls_dt(top) - overlap)
                    if st.pull_cursor is None or trail > st.pull_cursor:
                        st.pull_cursor = trail
                st.last_pull_at = now_iso()
            counts.pages += 1
            done += len(tasks)
            if progress:
                progress(done, total)
            if last_page:
                break
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

    if newest is not None:
        # complete: everything stamped before (server time at start - overlap) had committed when we read
        final = format_ls_dt(max(parse_ls_dt(newest) - overlap, started - overlap)) if started else None
        if final is not None:
            final = min(final, newest)
            with store.transaction() as s:
                st = s.get(SyncState, pid)
                assert st is not None
                if st.pull_cursor is None or final > st.pull_cursor:
                    st.pull_cursor = final

    if edition == "enterprise":
        # reviews made in Label Studio's own review stream (not through ReviewDesk) are decisions too
        check()
        try:
            reviews = client.project_reviews(ls_project_id)
        except (NotFoundError, RequestError):
            reviews = []
        if reviews:
            with store.transaction() as s:
                enterprise_reviews(s, pid, reviews, counts, actor)

    # deleted tasks: reconcile ids when counts disagree, when asked, or once a day
    reconciled = False
    do_reconcile = reconcile_ids
    if do_reconcile is None and cursor is None:
        do_reconcile = False  # a full read just happened: nothing local can be stale
        with store.transaction() as s:
            st = s.get(SyncState, pid)
            assert st is not None
            st.last_reconcile_at = now_iso()
    if do_reconcile is None:
        server_count = body.get("task_number")
        with store.session() as s:
            local_count = s.scalar(select(func.count()).select_from(Task).where(
                Task.project_id == pid, Task.deleted.is_(False), Task.server_id.is_not(None))) or 0
        stale = last_reconcile is None or (datetime.now(UTC) - parse_ls_dt(last_reconcile)) > RECONCILE_EVERY
        # more local tasks than the server counted means some were deleted there
        do_reconcile = stale or (isinstance(server_count, int) and local_count > server_count)
    if do_reconcile:
        check()
        ids = set(client.iter_task_ids(ls_project_id))
        with store.transaction() as s:
            counts.deleted = reconcile(s, pid, ids)
            st = s.get(SyncState, pid)
            assert st is not None
            st.last_reconcile_at = now_iso()
        reconciled = True

    fetched = failed = 0
    if media and counts.touched_tasks:
        from app.sync.media import fetch_project_media

        fetched, failed = fetch_project_media(store, client, pid, counts.touched_tasks, cap_bytes=media_cap_bytes,
                                              cancel=cancel)

    with store.transaction() as s:
        st = s.get(SyncState, pid)
        cursor_now = st.pull_cursor if st else None
        append_event(s, actor, "sync.pulled", {
            "project_id": pid, "server_project": ls_project_id, "new": counts.new, "updated": counts.updated,
            "deleted": counts.deleted, "conflicts": counts.conflicts, "pages": counts.pages,
            "lost": counts.lost, "server_decisions": counts.server_decisions, "changes": counts.changes,
            "changes_truncated": counts.anns > len(counts.changes)})
    return PullReport(project_id=pid, server_project_id=ls_project_id, title=title, tasks_new=counts.new,
                      tasks_updated=counts.updated, tasks_unchanged=counts.unchanged, tasks_deleted=counts.deleted,
                      annotations_changed=counts.anns, predictions_changed=counts.preds, members=n_members,
                      conflicts=counts.conflicts, pages=counts.pages, reconciled=reconciled,
                      media_fetched=fetched, media_failed=failed, cursor=cursor_now, lost=counts.lost,
                      server_decisions=counts.server_decisions,
                      config_changed=config_changed and not created, project_created=created)
