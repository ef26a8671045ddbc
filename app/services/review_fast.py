"""Plain-SQL reads for the review loop's hot path (issue 14.3): what every key press reads again.

Each returns exactly what the ORM query it replaces returned (tests/unit/test_review_fast_paths.py holds
them equal on the demo and on generated data); only the building of SQLAlchemy statements is skipped.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

TEAM_SQL = ("SELECT d.id, d.uuid, d.task_id, d.annotation_id, d.prediction_id, d.verdict, d.reason, d.comment, "
            "d.reviewer, d.role, d.created_at, d.origin, d.retracts, d.result, d.project_id, s.state "
            "FROM decisions AS d LEFT OUTER JOIN decision_sync AS s ON s.decision_id = d.id WHERE d.task_id = ?")


class TeamRow(NamedTuple):
    """One decision on a task with its delivery state (the columns ``task_decisions`` reads)."""

    id: int
    uuid: str
    task_id: int
    annotation_id: int | None
    prediction_id: int | None
    verdict: str
    reason: str | None
    comment: str | None
    reviewer: str
    role: str
    created_at: str
    origin: str | None
    retracts: str | None
    result: Any
    project_id: int
    state: str | None


def team_rows(session: Session, task_id: int) -> list[TeamRow]:
    """Every decision on the task (any order), its JSON result decoded as the ORM's JSON type does."""
    cur = session.connection().exec_driver_sql(TEAM_SQL, (task_id,))
    return [TeamRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
                    None if r[13] is None else json.loads(r[13]), r[14], r[15]) for r in cur]


def _json(v: Any) -> Any:
    return None if v is None else json.loads(v)


TASK_SQL = "SELECT id, project_id, server_id, position, data, meta, updated_at FROM tasks WHERE id = ?"
MEMBERS_SQL = "SELECT user_id, email, first_name, last_name FROM members WHERE project_id = ?"
ANNOTATIONS_SQL = ("SELECT id, server_id, completed_by, result, ground_truth, was_cancelled, lead_time, created_at, "
                   "updated_at FROM annotations WHERE task_id = ? AND deleted IS 0 ORDER BY position, id")
PREDICTIONS_SQL = ("SELECT id, server_id, model_version, score, result FROM predictions WHERE task_id = ? "
                   "ORDER BY position, id")


class TaskRows(NamedTuple):
    """A task's own columns, its project's members and its annotations and predictions (JSON decoded)."""

    task: tuple[Any, ...]
    members: list[tuple[Any, ...]]
    annotations: list[tuple[Any, ...]]
    predictions: list[tuple[Any, ...]]


def task_rows(session: Session, task_id: int) -> TaskRows | None:
    """The rows ``ProjectService.task_detail`` builds a task from (``None``: no such task), in four plain
    SQL reads; JSON columns decoded as the ORM's JSON type does."""
    c = session.connection()
    t = c.exec_driver_sql(TASK_SQL, (task_id,)).first()
    if t is None:
        return None
    task = (t[0], t[1], t[2], t[3], _json(t[4]), _json(t[5]), t[6])
    members = [tuple(m) for m in c.exec_driver_sql(MEMBERS_SQL, (t[1],))]
    anns = [(a[0], a[1], a[2], _json(a[3]), a[4], a[5], a[6], a[7], a[8])
            for a in c.exec_driver_sql(ANNOTATIONS_SQL, (task_id,))]
    preds = [(p[0], p[1], p[2], p[3], _json(p[4])) for p in c.exec_driver_sql(PREDICTIONS_SQL, (task_id,))]
    return TaskRows(task, members, anns, preds)
