"""Small helpers for the sync integration tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select


def local_project(store: Any, ls_project: int) -> int:
    from app.models.schema import Project

    with store.session() as s:
        pid = s.scalar(select(Project.id).where(Project.server_id == ls_project))
    assert pid is not None, f"project {ls_project} not pulled"
    return pid


def decide(store: Any, ls_project: int, task_sid: int, verdict: str, ann: int = 0, *,
           reviewer: str = "rev@example.com", role: str = "reviewer", **kw: Any) -> str:
    """Record one decision on the ``ann``-th annotation of server task ``task_sid``; return its UUID."""
    from app.services.decisions import DecisionRequest, DecisionService
    from app.services.projects import ProjectService

    pid = local_project(store, ls_project)
    ps = ProjectService(store)
    detail = ps.task_detail(ps.find_task(pid, task_sid))
    a = detail.annotations[ann]
    if verdict in ("reject", "escalate") and not (kw.get("reason") or kw.get("comment")):
        kw["reason"] = "Wrong label"
    rec = DecisionService(store).record(pid, [DecisionRequest(task_id=detail.id, verdict=verdict,
                                                              annotation_id=a.id, **kw)],
                                        reviewer=reviewer, role=role)
    return rec.decisions[0].uuid


def states(store: Any) -> dict[str, str]:
    from app.models.schema import Decision, DecisionSync

    with store.session() as s:
        return dict(s.execute(select(Decision.uuid, DecisionSync.state)
                              .join(DecisionSync, DecisionSync.decision_id == Decision.id)).all())


def server_uuid_counts(ls: Any, ls_project: int) -> dict[str, int]:
    """How many times each decision UUID appears in the task meta records of the project."""
    from app.sync.records import meta_records

    counts: dict[str, int] = {}
    for t in ls.tasks(ls_project):
        for r in meta_records(t.get("meta")):
            counts[r["uuid"]] = counts.get(r["uuid"], 0) + 1
    return counts


def fixed(label: str) -> list[dict[str, Any]]:
    return [{"id": "fx1", "from_name": "category", "to_name": "ticket", "type": "choices",
             "value": {"choices": [label]}}]
