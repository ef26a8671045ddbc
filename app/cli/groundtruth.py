"""``reviewdesk ground-truth``: the project's ground-truth set -- one reference per task, with provenance.

    reviewdesk ground-truth PROJECT [--limit N] [--offset N] [--json]   # counts and a page of references
    reviewdesk ground-truth PROJECT --task ID [--history] [--json]      # one task's reference (or its history)

``--json``: ``{"counts": {...}, "items": [{task, result, summary, source, decision, reviewer, at, ...}]}``;
with ``--task``: ``{"task": ID, "reference": {...} | null}``; with ``--history``: ``{"task": ID, "history":
[...]}`` newest first, ``current`` marking the reference the metrics use.
"""

from __future__ import annotations

import argparse
from typing import Any

from app.cli import CliError, command, emit, open_store


def register(sub: Any, add: Any) -> None:
    sp = add("ground-truth", "the project's ground-truth set: references with provenance, and their history")
    sp.add_argument("project", type=int)
    sp.add_argument("--task", type=int, help="one task (Label Studio id; local id for tasks without one)")
    sp.add_argument("--history", action="store_true", help="with --task: every reference the task has had")
    sp.add_argument("--limit", type=int, default=50)
    sp.add_argument("--offset", type=int, default=0)


def _line(d: dict[str, Any]) -> str:
    who = d.get("reviewer") or "?"
    how = d.get("verdict") or d["source"]
    return f"{how} by {who} {d.get('at') or ''}".strip()


@command("ground-truth")
def cmd_ground_truth(args: argparse.Namespace) -> int:
    from app.services.groundtruth import GroundTruthService, history_json, reference_json
    from app.services.projects import ProjectService

    if args.history and args.task is None:
        raise CliError("--history needs --task ID")
    if args.limit < 0 or args.offset < 0:
        raise CliError("--limit and --offset must not be negative")
    store = open_store(args)
    try:
        gt = GroundTruthService(store)
        projects = ProjectService(store)
        try:
            if args.task is None:
                c = gt.counts(args.project)
                items = [reference_json(r) for r in gt.references(args.project, args.offset, args.limit)]
                counts = {"tasks": c.tasks, "references": c.references, "by_source": dict(c.by_source),
                          "revised": c.revised}
                lines = [f"{c.references:,} of {c.tasks:,} tasks have a reference ("
                         + (", ".join(f"{n:,} {s}" for s, n in c.by_source) or "none") + f"); {c.revised:,} revised"]
                lines += [f"{d['task']:>8}  {d['summary'][:60]:<60}  {_line(d)}" for d in items]
                emit(args, {"counts": counts, "items": items}, "\n".join(lines))
                return 0
            task_id = projects.find_task(args.project, args.task)
            if args.history:
                hist = [history_json(h) for h in gt.history(args.project, task_id)]
                emit(args, {"task": args.task, "history": hist},
                     "\n".join(f"{'*' if h['current'] else ' '}{' (undone)' if h['retracted'] else ''} "
                               f"{h['summary']}  —  {_line(h)}" for h in hist)
                     or f"Task {args.task} has no reference.")
                return 0
            ref = gt.reference(args.project, task_id)
        except LookupError as exc:
            raise CliError(str(exc)) from exc
    finally:
        store.close()
    d = reference_json(ref) if ref is not None else None
    emit(args, {"task": args.task, "reference": d},
         f"Task {args.task}: {d['summary']}  —  {_line(d)}" if d else f"Task {args.task} has no reference.")
    return 0
