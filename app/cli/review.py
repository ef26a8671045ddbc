"""``reviewdesk decide`` and ``reviewdesk decisions``: the review loop for scripts and pipelines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from app.cli import CliError, command, emit, open_store
from app.services.decisions import DecisionError, DecisionRequest, DecisionService


def register(sub: Any, add: Any) -> None:
    sp = add("decide", "record a decision on one annotation of a task")
    sp.add_argument("project", type=int)
    sp.add_argument("task", type=int, help="task id (Label Studio id; local id for tasks without one)")
    sp.add_argument("--annotation", type=int, required=True, help="annotation id (Label Studio id or local id)")
    verdict = sp.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--accept", action="store_true")
    verdict.add_argument("--reject", action="store_true")
    verdict.add_argument("--fix", metavar="RESULT.json", help="file with the fixed Label Studio result (a list)")
    verdict.add_argument("--escalate", action="store_true")
    sp.add_argument("--reason", help="reason (required with --reject and --escalate)")
    sp.add_argument("--comment", help="optional comment")
    sp.add_argument("--reviewer", default=None, help="reviewer email (default: from settings)")
    sp.add_argument("--role", choices=["reviewer", "expert"], default="reviewer")

    sp = add("decisions", "list a project's decisions (append-only history, undo included)")
    sp.add_argument("project", type=int)

    sp = add("escalations", "list a project's open escalations from every reviewer (local and pulled)")
    sp.add_argument("project", type=int)


@command("decide")
def cmd_decide(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from app.models.schema import Annotation
    from app.services.projects import ProjectService
    from app.services.settings import load_settings

    if (args.reject or args.escalate) and not args.reason:
        raise CliError("--reject and --escalate need --reason TEXT")
    result = None
    if args.fix:
        try:
            result = json.loads(Path(args.fix).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CliError(f"Cannot read {args.fix}: {exc.strerror}") from exc
        except ValueError as exc:
            raise CliError(f"{args.fix} is not valid JSON: {exc}") from exc
        if isinstance(result, dict) and isinstance(result.get("result"), list):
            result = result["result"]  # an annotation object is accepted too
    verdict = "accept" if args.accept else "reject" if args.reject else "fix" if args.fix else "escalate"
    store = open_store(args)
    try:
        projects = ProjectService(store)
        try:
            projects.project(args.project)
            task_id = projects.find_task(args.project, args.task)
        except LookupError as exc:
            raise CliError(str(exc)) from exc
        with store.session() as s:
            ann_id = s.scalar(select(Annotation.id).where(Annotation.task_id == task_id,
                                                          Annotation.server_id == args.annotation))
            if ann_id is None:
                ann_id = s.scalar(select(Annotation.id).where(Annotation.task_id == task_id,
                                                              Annotation.id == args.annotation))
        if ann_id is None:
            raise CliError(f"Task {args.task} has no annotation {args.annotation}.")
        reviewer = args.reviewer or load_settings(store.data_dir).reviewer
        from app.services.calibration import CalibrationService

        if not CalibrationService(store).production_unlocked(args.project, reviewer):
            raise CliError(f"{reviewer} has not passed this project's calibration round yet: production review "
                           f"opens after it (`reviewdesk calibration {args.project} --status --reviewer {reviewer}`; "
                           "the round is judged in the app).")
        try:
            rec = DecisionService(store).record(
                args.project,
                [DecisionRequest(task_id=task_id, verdict=verdict, annotation_id=ann_id, result=result,
                                 reason=args.reason, comment=args.comment)],
                reviewer=reviewer, role=args.role)
        except DecisionError as exc:
            raise CliError(str(exc)) from exc
    finally:
        store.close()
    d = rec.decisions[0]
    emit(args, _decision_json(d), f"Recorded {d.verdict} on task {args.task}, annotation {args.annotation} "
                                  f"({d.uuid}).")
    return 0


def _decision_json(d: Any) -> dict[str, Any]:
    return {"uuid": d.uuid, "task": d.task_server_id if d.task_server_id is not None else d.task_id,
            "annotation": d.annotation_server_id if d.annotation_server_id is not None else d.annotation_id,
            "verdict": d.verdict, "reviewer": d.reviewer, "role": d.role, "created_at": d.created_at,
            "sync_state": d.sync_state, "reason": d.reason, "comment": d.comment, "retracts": d.retracts,
            "retracted": d.retracted, "result": list(d.result) if d.result is not None else None,
            "origin": d.origin}


def _project_read(args: argparse.Namespace, read: Any) -> Any:
    """``read(DecisionService)`` on the store, after checking ``args.project`` exists (a clean CLI error)."""
    from app.services.projects import ProjectService

    store = open_store(args)
    try:
        try:
            ProjectService(store).project(args.project)
        except LookupError as exc:
            raise CliError(str(exc)) from exc
        return read(DecisionService(store))
    finally:
        store.close()


@command("decisions")
def cmd_decisions(args: argparse.Namespace) -> int:
    decisions = _project_read(args, lambda svc: svc.list_decisions(args.project))
    rows = [_decision_json(d) for d in decisions]
    lines = [f"{r['created_at'][:19]}  {r['verdict']:<8}  task {r['task']:<6} ann {r['annotation']!s:<6} "
             f"{r['reviewer']}  [{r['sync_state']}]" + ("  (undone)" if r["retracted"] else "")
             + ("  (pulled)" if r["origin"] == "server" else "") for r in rows]
    emit(args, rows, "\n".join(lines) or "No decisions yet.")
    return 0


@command("escalations")
def cmd_escalations(args: argparse.Namespace) -> int:
    """Open escalations for the expert: ``{"items": [{task, annotation, reviewer, reason, created_at, origin}]}``."""
    escalations = _project_read(args, lambda svc: svc.escalations(args.project))
    items = [{"uuid": d.uuid, "task": d.task_server_id if d.task_server_id is not None else d.task_id,
              "annotation": d.annotation_server_id if d.annotation_server_id is not None else d.annotation_id,
              "reviewer": d.reviewer, "reason": d.reason, "comment": d.comment, "created_at": d.created_at,
              "origin": d.origin, "sync_state": d.sync_state} for d in escalations]
    lines = [f"{i['created_at'][:19]}  task {i['task']:<6} ann {i['annotation']!s:<6} {i['reviewer']}: "
             f"{i['reason'] or i['comment'] or ''}" + ("  (pulled)" if i["origin"] == "server" else "")
             for i in items]
    emit(args, {"project": args.project, "count": len(items), "items": items},
         "\n".join(lines) or "No open escalations.")
    return 0
