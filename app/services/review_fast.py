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
