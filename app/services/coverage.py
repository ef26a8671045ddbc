"""Review coverage (Qt-free): where review capacity went, as reviewed / eligible annotations.

The unit is the annotation (what a decision judges). *Eligible*: an annotation that counts (not cancelled,
not deleted) of a task the queue rules admit (:class:`app.services.queues.QueueSpec`, without routing:
every role's tasks; default every task). *Reviewed*: it has a live accept/fix/reject -- anyone's, made here
(``origin`` local) or pulled from the server (``origin`` server); a retracted judgement does not count, the
one before it comes back into force. Its *reviewer* is the one whose judgement is live (the latest, in
decision time then arrival order). Cut four ways:

* per annotator: that annotator's eligible annotations, how many are reviewed;
* per control: eligible annotations with an answer on that control, how many are reviewed;
* per reviewer: how many eligible annotations that reviewer's live judgement covers (of all eligible);
* overall, with the task count too (a task is reviewed when every annotation of it is).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import text

from app.models.store import Store
from app.services.decisions import JUDGEMENTS
from app.services.describe import parse_stamp

_JUDGED = ", ".join(f"'{v}'" for v in JUDGEMENTS)


@dataclass(frozen=True)
class CoverageRow:
    key: str  # annotator name, control name, reviewer e-mail or ``overall``
    reviewed: int
    eligible: int
    origin_server: int = 0  # of ``reviewed``: live judgements pulled from the server

    @property
    def share(self) -> float | None:
        return self.reviewed / self.eligible if self.eligible else None

    def as_json(self) -> dict[str, object]:
        share = self.share
        return {"key": self.key, "reviewed": self.reviewed, "eligible": self.eligible,
                "share": None if share is None else round(share, 4), "pulled": self.origin_server}


@dataclass(frozen=True)
class Coverage:
    project_id: int
    overall: CoverageRow
    tasks: CoverageRow  # tasks whose every annotation is reviewed / eligible tasks
    annotators: tuple[CoverageRow, ...]
    controls: tuple[CoverageRow, ...]
    reviewers: tuple[CoverageRow, ...]

    def as_json(self) -> dict[str, object]:
        return {"project": self.project_id, "overall": self.overall.as_json(), "tasks": self.tasks.as_json(),
                "annotators": [r.as_json() for r in self.annotators],
                "controls": [r.as_json() for r in self.controls],
                "reviewers": [r.as_json() for r in self.reviewers]}


def coverage(store: Store, project_id: int, spec: object | None = None) -> Coverage:
    """Coverage of the project's review (``spec``: a :class:`QueueSpec` whose rules pick the eligible tasks)."""
    from app.services.projects import ProjectService, member_name
    from app.services.queues import QueueSpec, build_queue

    projects = ProjectService(store)
    projects.project(project_id)  # LookupError for an unknown project
    eligible_tasks: np.ndarray | None = None
    if spec is not None:
        assert isinstance(spec, QueueSpec)
        eligible_tasks = build_queue(store, project_id, spec, route=False).task_ids
    with store.session() as s:
        conn = s.connection()
        anns = conn.execute(text(
            "SELECT a.id, a.task_id, a.completed_by FROM annotations a JOIN tasks t ON t.id = a.task_id "
            "WHERE t.project_id = :p AND t.deleted = 0 AND a.deleted = 0 AND a.was_cancelled = 0"),
            {"p": project_id}).all()
        decs = conn.execute(text(
            f"SELECT id, annotation_id, reviewer, origin, created_at FROM decisions WHERE project_id = :p "
            f"AND verdict IN ({_JUDGED}) AND annotation_id IS NOT NULL AND uuid NOT IN ("
            "SELECT retracts FROM decisions WHERE project_id = :p AND retracts IS NOT NULL)"),
            {"p": project_id}).all()
        controls = conn.execute(text(
            "SELECT DISTINCT row_id, control FROM result_values WHERE project_id = :p AND kind = 'a' "
            "AND control IS NOT NULL"), {"p": project_id}).all()
        members = conn.execute(text("SELECT user_id, email, first_name, last_name FROM members "
                                    "WHERE project_id = :p"), {"p": project_id}).all()
    names = {m[0]: member_name(m[1], m[2], m[3], m[0]) for m in members}
    if eligible_tasks is not None:
        keep = set(eligible_tasks.tolist())
        anns = [a for a in anns if a[1] in keep]
    # the live judgement of each annotation: latest in decision time, then arrival order
    live: dict[int, tuple[str, str]] = {}

    def when(d: tuple) -> tuple[float, int]:
        t = parse_stamp(d[4])
        return (t.timestamp() if t is not None else 0.0, d[0])

    for d in sorted(decs, key=when):
        live[d[1]] = (str(d[2]).lower(), d[3] or "local")
    ann_ids = {a[0] for a in anns}
    overall = _row("overall", [a[0] for a in anns], live)
    by_annotator: dict[str, list[int]] = {}
    task_anns: dict[int, list[int]] = {}
    for a_id, t_id, user in anns:
        who = names.get(user) or member_name(None, None, None, user)
        by_annotator.setdefault(who, []).append(a_id)
        task_anns.setdefault(t_id, []).append(a_id)
    by_control: dict[str, list[int]] = {}
    for a_id, control in controls:
        if a_id in ann_ids:
            by_control.setdefault(str(control), []).append(a_id)
    order = {c.name: i for i, c in enumerate(projects.config(project_id).controls)}
    reviewers: dict[str, list[int]] = {}
    pulled: dict[str, int] = {}
    for a_id in ann_ids:
        if a_id in live:
            who, origin = live[a_id]
            reviewers.setdefault(who, []).append(a_id)
            pulled[who] = pulled.get(who, 0) + (origin == "server")
    done_tasks = sum(1 for ids in task_anns.values() if all(a in live for a in ids))
    return Coverage(
        project_id, overall, CoverageRow("tasks", done_tasks, len(task_anns)),
        tuple(_row(k, v, live) for k, v in sorted(by_annotator.items(), key=lambda kv: kv[0].lower())),
        tuple(_row(k, v, live) for k, v in sorted(by_control.items(), key=lambda kv: (order.get(kv[0], 99), kv[0]))),
        tuple(CoverageRow(k, len(v), len(ann_ids), pulled.get(k, 0))
              for k, v in sorted(reviewers.items(), key=lambda kv: (-len(kv[1]), kv[0]))))


def _row(key: str, ann_ids: list[int], live: dict[int, tuple[str, str]]) -> CoverageRow:
    hits = [live[a] for a in ann_ids if a in live]
    return CoverageRow(key, len(hits), len(ann_ids), sum(1 for h in hits if h[1] == "server"))


__all__ = ["Coverage", "CoverageRow", "coverage"]
