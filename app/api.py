"""ReviewDesk's Python API: a small, typed surface for scripts, notebooks and training pipelines.

Everything here returns frozen dataclasses or plain data (dicts, lists, pandas frames) -- never ORM
objects -- and runs without Qt. The ``reviewdesk`` command's ``export`` and ``metrics`` are built on it.

>>> from app import api
>>> store = api.open_store("/tmp/my-reviewdesk")          # doctest: +SKIP
>>> [p.title for p in api.list_projects(store)]           # doctest: +SKIP

See the README section "Python API" for a runnable example (tests/unit/test_api.py runs it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from app.models.store import Store, StoreError
from app.services.asof import AsOf, AsOfError, resolve_as_of, snapshot
from app.services.decisions import DecisionError, DecisionInfo, DecisionRequest, DecisionService
from app.services.exports import (
    FORMATS,
    SCHEMAS,
    WHATS,
    ExportError,
    ExportResult,
    export_project_as,
    export_table,
)
from app.services.projects import ProjectService, ProjectSummary, TaskDetail, TaskRow

__all__ = [
    "FORMATS", "SCHEMAS", "WHATS", "AsOf", "AsOfError", "DecisionError", "DecisionInfo", "ExportError",
    "ExportResult", "Metrics", "ProjectSummary", "Store", "StoreError", "TaskDetail", "TaskRow", "compute_metrics",
    "demo_project", "export", "export_table", "import_project", "list_projects", "list_tasks", "metrics_snapshot",
    "open_store", "record_decision", "task_detail",
]

VERDICTS = ("accept", "fix", "reject", "escalate", "skip")


def open_store(data_dir: str | os.PathLike[str] | None = None) -> Store:
    """Open (checking, backing up and migrating as needed) the store in ``data_dir``.

    ``None``: ``$REVIEWDESK_DATA_DIR``, else the platform's user data folder -- the same store as the
    ``reviewdesk`` command. Close it with ``store.close()`` when done. Raises :class:`StoreError` (with a
    user-readable message) for a damaged or newer store."""
    return Store.open(data_dir)


def import_project(store: Store, export_file: str | os.PathLike[str], config_file: str | os.PathLike[str],
                   title: str | None = None) -> int:
    """Import a Label Studio JSON export (with its labeling config XML file) as a new project; its id.

    All or nothing: a malformed file raises ``LSFormatError`` naming the task at fault, and nothing is kept."""
    xml = Path(config_file).read_text(encoding="utf-8")
    res = ProjectService(store).import_file(Path(export_file), xml, title or Path(export_file).stem)
    return res.summary.project_id


def demo_project(store: Store) -> int:
    """The bundled demo project's id (imported on first use)."""
    from app.services.demo import ensure_demo

    return ensure_demo(store)


def list_projects(store: Store) -> tuple[ProjectSummary, ...]:
    """Every project in the store with its task, annotation, prediction and ground-truth counts."""
    return ProjectService(store).list_projects()


def list_tasks(store: Store, project_id: int, *, offset: int = 0, limit: int = 100) -> tuple[TaskRow, ...]:
    """One page of a project's tasks in queue order (``id`` is the local id, ``server_id`` Label Studio's).

    Raises ``LookupError`` for an unknown project."""
    svc = ProjectService(store)
    svc.project(project_id)
    return svc.task_page(project_id, offset, limit)


def task_detail(store: Store, task_id: int) -> TaskDetail:
    """One task with its data, meta, annotations (``id`` is what :func:`record_decision` takes) and
    predictions. Raises ``LookupError`` for an unknown task."""
    return ProjectService(store).task_detail(task_id)


def record_decision(store: Store, project_id: int, task_id: int, verdict: str, *, reviewer: str,
                    annotation_id: int | None = None, prediction_id: int | None = None,
                    result: Sequence[Any] | None = None, reason: str | None = None,
                    comment: str | None = None, role: str = "reviewer") -> DecisionInfo:
    """Record one verdict (``accept``, ``fix``, ``reject``, ``escalate``, ``skip``) on an annotation or
    prediction of a task (local ids), durably, with its audit event -- the same rules as the keyboard: a
    fix needs ``result`` fitting the labeling config, a reject a ``reason``. Raises :class:`DecisionError`
    with a readable message when the decision is refused."""
    if verdict not in VERDICTS:
        raise DecisionError(f"Unknown verdict {verdict!r}; one of: {', '.join(VERDICTS)}.")
    req = DecisionRequest(task_id=task_id, verdict=verdict, annotation_id=annotation_id,
                          prediction_id=prediction_id, result=result, reason=reason, comment=comment)
    return DecisionService(store).record(project_id, [req], reviewer=reviewer, role=role).decisions[0]


@dataclass(frozen=True)
class Metrics:
    """The ``reviewdesk metrics --json`` report of a project (``report``: plain JSON-able data).

    ``event_id``: the audit event the numbers reflect -- the last one when they were computed (read just
    before the data), or the cut-off; cite it, and ``compute_metrics(..., as_of=event_id)`` gives the same
    report later. ``as_of``: the resolved cut-off and what was rewound (``None``: computed on the store as is)."""

    project_id: int
    report: dict[str, Any]
    event_id: int | None
    as_of: AsOf | None = None


@contextmanager
def metrics_snapshot(store: Store, as_of: str | int, project_id: int | None = None) -> Iterator[tuple[Store, AsOf]]:
    """The store as it was right after audit event ``as_of`` (an event id, or an ISO 8601 time: the last
    event at or before it), as a temporary read-only copy, with the resolved cut-off and what was rewound
    (docs/adr/0015). Raises :class:`AsOfError` for an unknown event, a bad or future time, or a project
    that did not exist yet."""
    cut = resolve_as_of(store, as_of)
    with snapshot(store, cut, project_id) as pair:
        yield pair


Mode = Literal["pairwise", "consensus"]


def compute_metrics(store: Store, project_id: int, *, control: str | None = None, mode: Mode = "pairwise",
                    as_of: str | int | None = None) -> Metrics:
    """The agreement matrix, per-annotator quality and alpha of a project -- the report of ``reviewdesk
    metrics --json`` -- now, or ``as_of`` an audit point (see :func:`metrics_snapshot`).

    Raises ``LookupError`` for an unknown project or control."""
    if as_of is None:
        with store.session() as s:
            head = s.connection().exec_driver_sql("SELECT max(id) FROM audit_events").scalar()
        return Metrics(project_id, _report(store, project_id, control, mode), head)
    with metrics_snapshot(store, as_of, project_id) as (snap, cut):
        return Metrics(project_id, _report(snap, project_id, control, mode), cut.event_id, cut)


def _report(store: Store, project_id: int, control: str | None, mode: Mode) -> dict[str, Any]:
    from app.services.dashboard import load_frames

    return report_of_frames(load_frames(store, project_id), project_id, control, mode)


def report_of_frames(frames: Any, project_id: int, control: str | None, mode: Mode) -> dict[str, Any]:
    """The report of :func:`compute_metrics` on frames already loaded (the CLI's one read of the store)."""
    from app.metrics import metrics_report, to_jsonable

    if control is not None and control not in frames.controls:
        raise LookupError(f"Project {project_id} has no control {control!r}; its controls are: "
                          f"{', '.join(frames.controls)}")
    if frames.annotations.empty:
        return {"control": control, "mode": mode, "evaluators": [], "per_annotator": [], "alpha": None,
                "note": f"Project {project_id} has no annotations to compare yet."}
    gt = frames.ground_truth if not frames.ground_truth.empty else None
    decisions = frames.decisions if not frames.decisions.empty else None
    report = metrics_report(frames.annotations, gt, frames.params, control=control, mode=mode,
                            decisions=decisions)
    out: dict[str, Any] = to_jsonable(report)
    return out


def export(store: Store, project_id: int, out: str | os.PathLike[str], *, what: str = "tasks",
           fmt: str = "ls-json", as_of: str | int | None = None,
           progress: Callable[[int], None] | None = None) -> ExportResult:
    """Write ``what`` (one of :data:`WHATS`) of a project to the file ``out`` as ``fmt`` (one of
    :data:`FORMATS`; ``ls-json`` only for ``tasks`` and ``ground-truth``), atomically: a failure leaves no
    partial file. Column names and types of CSV/Parquet: :data:`SCHEMAS`. ``as_of``: export the state at
    that audit point. Raises :class:`ExportError` (bad combination), ``LookupError`` (unknown project),
    ``OSError`` (cannot write), :class:`AsOfError`."""
    if as_of is None:
        return export_project_as(store, project_id, Path(out), what=what, fmt=fmt, progress=progress)
    with metrics_snapshot(store, as_of, project_id) as (snap, _cut):
        return export_project_as(snap, project_id, Path(out), what=what, fmt=fmt, progress=progress)
