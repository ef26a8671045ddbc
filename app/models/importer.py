"""Import a Label Studio JSON export into the store, and export a project back.

Import streams the file (bounded memory) and writes everything in ONE transaction: a bad task
anywhere rolls the whole import back, so nothing is ever half-imported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from app.models import lsjson
from app.models.audit import append_event
from app.models.config import LabelingConfig, parse_config, validate_result
from app.models.schema import Annotation, Control, Member, Prediction, Project, Task
from app.models.store import Store, now_iso

CHUNK = 2000
ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class ImportSummary:
    project_id: int
    tasks: int
    annotations: int
    predictions: int
    predictions_ids_only: int  # predictions the export gave as ids only, with no result anywhere in the file
    members: int
    legacy_tasks: int = 0  # tasks of a Label Studio < 1.0 export, whose "completions" were read as annotations
    predictions_embedded: int = 0  # id-only predictions whose result came from an annotation's "prediction"


def _dump(v: Any) -> str | None:
    return None if v is None else json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def insert_project(session: Session, cfg: LabelingConfig, title: str, *, media_root: str | None,
                   server_ref: int | None = None, server_id: int | None = None,
                   expert_instruction: str | None = None, extra: dict[str, Any] | None = None) -> Project:
    project = Project(title=title, label_config=cfg.xml, media_root=media_root, server_ref=server_ref,
                      server_id=server_id, expert_instruction=expert_instruction, extra=extra,
                      fold_ground_truth=True, created_at=now_iso())
    session.add(project)
    session.flush()
    replace_controls(session, project.id, cfg)
    return project


def replace_controls(session: Session, project_id: int, cfg: LabelingConfig) -> None:
    session.query(Control).filter(Control.project_id == project_id).delete()
    for t in cfg.all_tags:
        d = t.to_dict()
        session.add(Control(project_id=project_id, kind=t.kind, tag=t.tag, name=t.name,
                            to_name=",".join(t.to_name) or None, result_type=t.result_type,
                            attrs=d["attrs"] | ({"value": t.value} if t.value else {}),
                            options=d["options"], position=t.position))
    session.flush()


def import_export(
    store: Store,
    source: str | Path | IO[bytes],
    config_xml: str,
    title: str,
    *,
    media_root: str | None = None,
    actor: str = "local",
    progress: ProgressFn | None = None,
) -> ImportSummary:
    """Import an export file as a new project. Raises ConfigError / LSFormatError / StoreError."""
    cfg = parse_config(config_xml)
    if media_root is None and isinstance(source, str | Path):
        media_root = str(Path(source).resolve().parent)
    with store.transaction() as s:
        project = insert_project(s, cfg, title, media_root=media_root)
        pid = project.id
        conn = s.connection()
        next_task = (s.scalar(select(func.max(Task.id))) or 0) + 1
        next_ann = (s.scalar(select(func.max(Annotation.id))) or 0) + 1
        members: dict[int | str, dict[str, Any]] = {}
        tasks_rows: list[dict[str, Any]] = []
        ann_rows: list[dict[str, Any]] = []
        pred_rows: list[dict[str, Any]] = []
        n_tasks = n_anns = n_preds = n_ids_only = 0
        seen_ids: set[int] = set()

        def flush() -> None:
            if tasks_rows:
                conn.execute(insert(Task), tasks_rows)
            if ann_rows:
                conn.execute(insert(Annotation), ann_rows)
            if pred_rows:
                conn.execute(insert(Prediction), pred_rows)
            tasks_rows.clear()
            ann_rows.clear()
            pred_rows.clear()

        n_legacy = n_embedded = 0
        for index, raw in lsjson.iter_raw_tasks(source):
            t = lsjson.parse_task(index, raw)
            if t.extra.get(lsjson.ANNOTATIONS_KEY) == lsjson.LEGACY_ANNOTATIONS:
                n_legacy += 1
            embedded = _embedded_predictions(cfg, t)
            if t.server_id is not None:
                if t.server_id in seen_ids:
                    raise lsjson.LSFormatError(f"task index {index}: task id {t.server_id} appears twice",
                                               task_index=index)
                seen_ids.add(t.server_id)
            tid = next_task
            next_task += 1
            tasks_rows.append({"id": tid, "project_id": pid, "server_id": t.server_id, "position": index,
                               "data": t.data, "meta": t.meta, "extra": t.extra, "created_at": t.created_at,
                               "updated_at": t.updated_at, "deleted": False})
            for j, a in enumerate(t.annotations):
                problems = validate_result(cfg, a.result)
                if problems:
                    raise lsjson.LSFormatError(
                        f"task index {index}" + (f" (id {t.server_id})" if t.server_id is not None else "")
                        + f": annotation {j}: {problems[0]}", task_index=index)
                if a.member is not None:
                    key: int | str = a.completed_by if a.completed_by is not None else str(a.member.get("email"))
                    known = members.setdefault(key, {})
                    known.update({k: v for k, v in a.member.items() if v is not None})
                ann_rows.append({"id": next_ann, "task_id": tid, "server_id": a.server_id, "uuid": None,
                                 "completed_by": a.completed_by, "completed_by_raw": a.completed_by_raw,
                                 "result": a.result, "ground_truth": a.ground_truth,
                                 "was_cancelled": a.was_cancelled, "lead_time": a.lead_time,
                                 "created_at": a.created_at, "updated_at": a.updated_at, "position": j,
                                 "extra": a.extra})
                next_ann += 1
            for j, p in enumerate(t.predictions):
                if p.result is None and p.server_id in embedded:
                    p = embedded[p.server_id]  # the export listed its id; an annotation embeds the prediction
                    n_embedded += 1
                if p.result is not None:
                    problems = validate_result(cfg, p.result)
                    if problems:
                        raise lsjson.LSFormatError(
                            f"task index {index}" + (f" (id {t.server_id})" if t.server_id is not None else "")
                            + f": prediction {j}: {problems[0]}", task_index=index)
                else:
                    n_ids_only += 1
                pred_rows.append({"task_id": tid, "server_id": p.server_id, "model_version": p.model_version,
                                  "score": p.score, "result": p.result, "created_at": p.created_at,
                                  "position": j, "extra": p.extra})
            n_tasks += 1
            n_anns += len(t.annotations)
            n_preds += len(t.predictions)
            if len(tasks_rows) >= CHUNK:
                flush()
                if progress:
                    progress(n_tasks)
        flush()
        if n_tasks == 0:
            raise lsjson.LSFormatError("The export holds no tasks.")
        member_rows = []
        for key, m in members.items():
            member_rows.append({"project_id": pid, "user_id": m.get("id") if isinstance(key, int) else None,
                                "email": m.get("email"), "first_name": m.get("first_name"),
                                "last_name": m.get("last_name")})
        if member_rows:
            conn.execute(insert(Member), member_rows)
        append_event(s, actor, "project.imported",
                     {"project_id": pid, "title": title, "tasks": n_tasks, "annotations": n_anns,
                      "predictions": n_preds, "source": str(source) if isinstance(source, str | Path) else None})
        if progress:
            progress(n_tasks)
        return ImportSummary(pid, n_tasks, n_anns, n_preds, n_ids_only, len(member_rows), n_legacy, n_embedded)


def _embedded_predictions(cfg: LabelingConfig, t: lsjson.ParsedTask) -> dict[int, lsjson.ParsedPrediction]:
    """Predictions an export lists by id only, as embedded in its annotations' ``prediction`` objects.

    Label Studio exports ``"predictions": [11]`` with the full prediction 11 under the annotation made from it
    (``"prediction": {"id": 11, "result": [...], "model_version": ...}``). The prediction keeps exporting as the
    bare id; its result makes the model an evaluator. An embedded prediction that does not fit the labeling
    config is left out (the id stays an id), never a reason to refuse the file.
    """
    wanted = {p.server_id for p in t.predictions if p.result is None and p.server_id is not None}
    found: dict[int, lsjson.ParsedPrediction] = {}
    if not wanted:
        return found
    for a in t.annotations:
        emb = a.extra.get("prediction")
        if not isinstance(emb, dict) or emb.get("id") not in wanted or emb["id"] in found:
            continue
        try:
            parsed = lsjson.parse_prediction(emb)
        except ValueError:
            continue
        if parsed.result and not validate_result(cfg, parsed.result):
            found[emb["id"]] = lsjson.ParsedPrediction(parsed.server_id, parsed.result, parsed.model_version,
                                                       parsed.score, parsed.created_at, {"__id_only__": True})
    return found


def export_project(store: Store, project_id: int, out: str | Path, *, progress: ProgressFn | None = None) -> int:
    """Write the project as a Label Studio JSON export (importable by Label Studio). Returns tasks written.

    Written to a temporary file and renamed, so a failed export never leaves a truncated file.
    """
    out = Path(out)
    tmp = out.with_name(out.name + ".part")
    n = 0
    with store.session() as s:
        if s.get(Project, project_id) is None:
            raise LookupError(f"No project {project_id} in this store.")
        conn = s.connection()
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                fh.write("[")
                last_id = 0
                while True:
                    tasks = conn.execute(
                        select(Task.id, Task.server_id, Task.data, Task.meta, Task.created_at, Task.updated_at,
                               Task.extra)
                        .where(Task.project_id == project_id, Task.deleted.is_(False), Task.id > last_id)
                        .order_by(Task.id).limit(CHUNK)).all()
                    if not tasks:
                        break
                    ids = [t.id for t in tasks]
                    last_id = ids[-1]
                    anns: dict[int, list[dict[str, Any]]] = {}
                    for a in conn.execute(select(Annotation).where(Annotation.task_id.in_(ids))
                                          .order_by(Annotation.task_id, Annotation.position, Annotation.id)):
                        anns.setdefault(a.task_id, []).append(lsjson.build_annotation(
                            server_id=a.server_id, result=a.result, completed_by_raw=a.completed_by_raw,
                            ground_truth=a.ground_truth, was_cancelled=a.was_cancelled, lead_time=a.lead_time,
                            created_at=a.created_at, updated_at=a.updated_at, extra=a.extra))
                    preds: dict[int, list[Any]] = {}
                    for p in conn.execute(select(Prediction).where(Prediction.task_id.in_(ids))
                                          .order_by(Prediction.task_id, Prediction.position, Prediction.id)):
                        preds.setdefault(p.task_id, []).append(lsjson.build_prediction(
                            server_id=p.server_id, result=p.result, model_version=p.model_version,
                            score=p.score, created_at=p.created_at, extra=p.extra))
                    for t in tasks:
                        obj = lsjson.build_task(server_id=t.server_id, data=t.data, meta=t.meta,
                                                created_at=t.created_at, updated_at=t.updated_at,
                                                annotations=anns.get(t.id, []), predictions=preds.get(t.id, []),
                                                extra=t.extra)
                        fh.write(("," if n else "") + "\n" + lsjson.dumps(obj))
                        n += 1
                    if progress:
                        progress(n)
                fh.write("\n]\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, out)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return n
