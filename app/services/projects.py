"""Projects and tasks as plain frozen values for views, CLI and scripts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import case, func, select

from app.models.config import LabelingConfig, parse_config
from app.models.importer import ImportSummary, export_project, import_export
from app.models.schema import Annotation, Member, Prediction, Project, Task
from app.models.store import Store
from app.services.changes import Changes
from app.services.review_fast import task_rows


@dataclass(frozen=True)
class ProjectSummary:
    id: int
    title: str
    tasks: int
    annotations: int
    predictions: int
    ground_truth_tasks: int
    server_id: int | None
    created_at: str


@dataclass(frozen=True)
class TaskRow:
    id: int
    server_id: int | None
    position: int
    preview: str
    annotations: int
    predictions: int
    ground_truth: bool
    updated_at: str | None


@dataclass(frozen=True)
class MemberInfo:
    user_id: int | None
    email: str | None
    name: str


@dataclass(frozen=True)
class AnnotationInfo:
    id: int
    server_id: int | None
    completed_by: int | None
    evaluator: str
    result: tuple[Any, ...]
    ground_truth: bool
    was_cancelled: bool
    lead_time: float | None
    created_at: str | None
    updated_at: str | None


@dataclass(frozen=True)
class PredictionInfo:
    id: int
    server_id: int | None
    model_version: str | None
    score: float | None
    result: tuple[Any, ...] | None


@dataclass(frozen=True)
class TaskDetail:
    id: int
    project_id: int
    server_id: int | None
    position: int
    data: dict[str, Any]
    meta: dict[str, Any]
    updated_at: str | None
    annotations: tuple[AnnotationInfo, ...]
    predictions: tuple[PredictionInfo, ...]


@dataclass(frozen=True)
class ImportResult:
    summary: ImportSummary
    changes: Changes


def _preview(data: dict[str, Any], limit: int = 120) -> str:
    for v in data.values():
        if isinstance(v, str) and v and not v.startswith(("http://", "https://", "/", "media/", "s3://", "gs://")):
            text = " ".join(v.split())
            return text if len(text) <= limit else text[: limit - 1] + "…"
    for k, v in data.items():
        return f"{k}: {v}"[:limit]
    return ""


def member_name(email: str | None, first: str | None, last: str | None, user_id: int | None) -> str:
    if email:
        return email
    full = " ".join(p for p in (first, last) if p)
    if full:
        return full
    return f"user #{user_id}" if user_id is not None else "unknown"


class ProjectService:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- reads -------------------------------------------------------------------------------
    def list_projects(self, *, counts: bool = True) -> tuple[ProjectSummary, ...]:
        """All projects; ``counts=False`` skips the annotation/prediction/ground-truth counts (which scan
        every annotation) for a quick listing."""
        with self.store.session() as s:
            task_counts = dict(s.execute(
                select(Task.project_id, func.count()).where(Task.deleted.is_(False)).group_by(Task.project_id)).all())
            if not counts:
                rows = s.execute(select(Project.id, Project.title, Project.server_id, Project.created_at)
                                 .order_by(Project.id)).all()
                return tuple(ProjectSummary(r.id, r.title, task_counts.get(r.id, 0), -1, -1, -1, r.server_id,
                                            r.created_at) for r in rows)
            ann_counts = dict(s.execute(
                select(Task.project_id, func.count(Annotation.id)).join(Annotation, Annotation.task_id == Task.id)
                .group_by(Task.project_id)).all())
            pred_counts = dict(s.execute(
                select(Task.project_id, func.count(Prediction.id)).join(Prediction, Prediction.task_id == Task.id)
                .group_by(Task.project_id)).all())
            gt_counts = dict(s.execute(
                select(Task.project_id, func.count(func.distinct(Task.id)))
                .join(Annotation, Annotation.task_id == Task.id)
                .where(Annotation.ground_truth.is_(True)).group_by(Task.project_id)).all())
            rows = s.execute(select(Project.id, Project.title, Project.server_id, Project.created_at)
                             .order_by(Project.id)).all()
            return tuple(ProjectSummary(r.id, r.title, task_counts.get(r.id, 0), ann_counts.get(r.id, 0),
                                        pred_counts.get(r.id, 0), gt_counts.get(r.id, 0), r.server_id,
                                        r.created_at) for r in rows)

    def project(self, project_id: int) -> ProjectSummary:
        for p in self.list_projects():
            if p.id == project_id:
                return p
        raise LookupError(f"No project {project_id} in this store.")

    def config(self, project_id: int) -> LabelingConfig:
        with self.store.session() as s:
            xml = s.scalar(select(Project.label_config).where(Project.id == project_id))
        if xml is None:
            raise LookupError(f"No project {project_id} in this store.")
        return parse_config(xml)

    def instructions(self, project_id: int) -> str | None:
        """The project's labeling instructions (raw HTML from Label Studio; sanitise before showing)."""
        with self.store.session() as s:
            return s.scalar(select(Project.expert_instruction).where(Project.id == project_id))

    def media_root(self, project_id: int) -> str | None:
        with self.store.session() as s:
            return s.scalar(select(Project.media_root).where(Project.id == project_id))

    def task_count(self, project_id: int) -> int:
        with self.store.session() as s:
            return s.scalar(select(func.count()).select_from(Task)
                            .where(Task.project_id == project_id, Task.deleted.is_(False))) or 0

    def task_page(self, project_id: int, offset: int, limit: int) -> tuple[TaskRow, ...]:
        """One page of the task list, in queue order (never loads the whole project)."""
        with self.store.session() as s:
            tasks = s.execute(
                select(Task.id, Task.server_id, Task.position, Task.data, Task.updated_at)
                .where(Task.project_id == project_id, Task.deleted.is_(False))
                .order_by(Task.position, Task.id).offset(offset).limit(limit)).all()
        return self.task_rows([t.id for t in tasks])

    def task_rows(self, task_ids: Sequence[int]) -> tuple[TaskRow, ...]:
        """Task-list rows of these tasks, in the given order (one page: a few hundred ids)."""
        ids = list(task_ids)
        if not ids:
            return ()
        with self.store.session() as s:
            found = {t.id: t for t in s.execute(
                select(Task.id, Task.server_id, Task.position, Task.data, Task.updated_at).where(Task.id.in_(ids)))}
            ann = {r[0]: (r[1], bool(r[2])) for r in s.execute(
                select(Annotation.task_id, func.count(),
                       func.max(case((Annotation.ground_truth.is_(True), 1), else_=0)))
                .where(Annotation.task_id.in_(ids)).group_by(Annotation.task_id))}
            pred = dict(s.execute(select(Prediction.task_id, func.count())
                                  .where(Prediction.task_id.in_(ids)).group_by(Prediction.task_id)).all())
        tasks = [found[i] for i in ids if i in found]
        return tuple(TaskRow(t.id, t.server_id, t.position, _preview(t.data or {}), ann.get(t.id, (0, False))[0],
                             pred.get(t.id, 0), ann.get(t.id, (0, False))[1], t.updated_at) for t in tasks)

    def members(self, project_id: int) -> tuple[MemberInfo, ...]:
        with self.store.session() as s:
            rows = s.execute(select(Member).where(Member.project_id == project_id).order_by(Member.id)).scalars()
            return tuple(MemberInfo(m.user_id, m.email, member_name(m.email, m.first_name, m.last_name, m.user_id))
                         for m in rows)

    def reviewer_names(self, project_id: int) -> dict[str, str]:
        """Lower-cased e-mail -> how to call that person in the UI: first + last name from the project's
        members when the server gave one, else the e-mail itself (reviewers are known by e-mail)."""
        with self.store.session() as s:
            rows = s.execute(select(Member.email, Member.first_name, Member.last_name)
                             .where(Member.project_id == project_id, Member.email.is_not(None))).all()
        out: dict[str, str] = {}
        for email, first, last in rows:
            if not email:
                continue
            full = " ".join(p.strip() for p in (first, last) if p and p.strip())
            out[str(email).strip().lower()] = full or str(email)
        return out

    def task_detail(self, task_id: int) -> TaskDetail:
        # plain SQL reads, not ORM queries: this runs once per task shown in review (the hot path);
        # tests/unit/test_review_fast_paths.py holds the result equal to the ORM column reads
        with self.store.session() as s:
            rows = task_rows(s, task_id)
        if rows is None:
            raise LookupError(f"No task {task_id} in this store.")
        tid, project_id, server_id, position, data, meta, updated_at = rows.task
        names = {uid: member_name(email, first, last, uid) for uid, email, first, last in rows.members}
        return TaskDetail(
            id=tid, project_id=project_id, server_id=server_id, position=position, data=data or {},
            meta=meta or {}, updated_at=updated_at,
            annotations=tuple(AnnotationInfo(
                a_id, a_sid, by, names.get(by, member_name(None, None, None, by)), tuple(result or ()), bool(gt),
                bool(cancelled), lead, created, updated)
                for a_id, a_sid, by, result, gt, cancelled, lead, created, updated in rows.annotations),
            predictions=tuple(PredictionInfo(p_id, p_sid, version, score, None if result is None else tuple(result))
                              for p_id, p_sid, version, score, result in rows.predictions),
        )

    def task_data(self, task_ids: Sequence[int]) -> list[dict[str, Any]]:
        """The ``data`` of several tasks in the given order, in one query (media prefetch)."""
        if not task_ids:
            return []
        with self.store.session() as s:
            found = {tid: data for tid, data in s.execute(select(Task.id, Task.data)
                                                          .where(Task.id.in_(list(task_ids))))}
        return [found[i] or {} for i in task_ids if i in found]

    def find_task(self, project_id: int, server_id: int) -> int:
        """Local id of the task with this Label Studio id (or, for local-only tasks, this local id)."""
        with self.store.session() as s:
            tid = s.scalar(select(Task.id).where(Task.project_id == project_id, Task.server_id == server_id))
            if tid is None:
                tid = s.scalar(select(Task.id).where(Task.project_id == project_id, Task.id == server_id,
                                                     Task.server_id.is_(None)))
        if tid is None:
            raise LookupError(f"Project {project_id} has no task {server_id}.")
        return tid

    # -- writes ------------------------------------------------------------------------------
    def import_file(self, source: str | Path | IO[bytes], config_xml: str, title: str, *,
                    media_root: str | None = None, progress: Callable[[int], None] | None = None) -> ImportResult:
        summary = import_export(self.store, source, config_xml, title, media_root=media_root, progress=progress)
        return ImportResult(summary, Changes(projects=True, tasks=True, annotations=True, predictions=True,
                                             members=True))

    def export_file(self, project_id: int, out: str | Path,
                    progress: Callable[[int], None] | None = None) -> int:
        return export_project(self.store, project_id, out, progress=progress)

    def set_instructions(self, project_id: int, html_text: str | None) -> Changes:
        with self.store.transaction() as s:
            p = s.get(Project, project_id)
            if p is None:
                raise LookupError(f"No project {project_id} in this store.")
            p.expert_instruction = html_text
        return Changes(projects=True)

    def find_project_by_title(self, title: str) -> int | None:
        with self.store.session() as s:
            return s.scalar(select(Project.id).where(Project.title == title).order_by(Project.id).limit(1))
