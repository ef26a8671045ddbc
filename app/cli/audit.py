"""``reviewdesk audit``: check the hash-chained audit trail, and read it in plain words.

    reviewdesk audit verify [--json]                      # the whole chain; exit 1 and the first bad event
    reviewdesk audit log PROJECT [--task ID] [--json]     # a project's events, oldest first

See docs/adr/0012-audit-chain.md for what the chain detects and what it cannot.
"""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import select

from app.cli import CliError, command, emit, open_store
from app.models.audit import check_store
from app.models.schema import AuditEvent, Project, Task


def register(sub: Any, add: Any) -> None:
    sp = add("audit", "check the tamper-evident audit trail (verify) or list a project's events (log)")
    asub = sp.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    v = asub.add_parser("verify", help="hash the whole chain; name the first edited, removed or reordered event")
    v.add_argument("--json", action="store_true", help="machine-readable output")
    lg = asub.add_parser("log", help="a project's audit events in plain words, oldest first")
    lg.add_argument("project", type=int)
    lg.add_argument("--task", type=int, help="only the events about this task (local id)")
    lg.add_argument("--json", action="store_true", help="machine-readable output")


def _fmt(v: Any) -> str:
    if v is None:
        return "nothing"
    if isinstance(v, list | dict):
        return "a result" if isinstance(v, list) else "a change"
    return str(v)


def describe(kind: str, p: dict[str, Any]) -> str:
    """One event in plain words."""
    if kind == "decision.recorded":
        what = f"annotation {p.get('annotation')}" if p.get("annotation") else f"prediction {p.get('prediction')}"
        words = f"{p.get('verdict')} on task {p.get('task')} ({what}), was {_fmt(p.get('from'))}"
        if "comment" in p:
            words += f"; comment: {p['comment'].get('to')!r}"
        if "ground_truth" in p:
            words += "; ground truth " + ("set" if p["ground_truth"].get("from") is None else "changed")
        return words
    if kind == "decision.retracted":
        return f"undid the {p.get('from')} on task {p.get('task')}"
    if kind == "sync.pulled":
        return (f"pulled from the server: {p.get('new', 0)} new, {p.get('updated', 0)} updated, "
                f"{p.get('deleted', 0)} deleted tasks, {len(p.get('changes') or [])} annotation changes, "
                f"{p.get('server_decisions', 0)} decisions by others")
    if kind == "sync.server_decisions":
        return f"{p.get('count')} decisions made by others on the server applied"
    if kind.startswith("sync.conflict."):
        how = kind.rsplit(".", 1)[1].replace("_", " ")
        frm, to = p.get("from") or {}, p.get("to") or {}
        if not frm:  # events written before from -> to was recorded
            return f"conflict on decision {p.get('uuid')} resolved: {how}"
        after = "pushed anyway" if to.get("force") else ("withdrawn, task back to review" if to.get("rereview")
                                                        else "withdrawn")
        return (f"conflict on task {p.get('task')} resolved ({how}): my {frm.get('verdict')} "
                f"({frm.get('kind')} on the server) {frm.get('state')} -> {to.get('state')}, {after}")
    if kind in ("settings.changed", "settings.keymap"):
        ch = p.get("changes") or {}
        return "settings: " + ", ".join(f"{k} {_fmt(v.get('from'))} -> {_fmt(v.get('to'))}" for k, v in ch.items())
    if kind == "project.reject_reasons":
        return f"reject reasons set to {', '.join(p.get('to') or p.get('reasons') or [])}"
    if kind == "project.imported":
        return "project imported"
    return kind.replace(".", " ").replace("_", " ")


def _about(p: dict[str, Any], project_id: int, tasks: set[int]) -> bool:
    if p.get("project_id") == project_id:
        return True
    t = p.get("task")
    return isinstance(t, int) and t in tasks


@command("audit")
def cmd_audit(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        if args.audit_command == "verify":
            with store.transaction() as s:
                rep = check_store(s, full=True)
            text = (f"The audit trail holds: {rep.events} events, verified through event {rep.verified_through}."
                    if rep.ok else f"The audit trail is broken at event {rep.first_bad}: {rep.reason}.")
            emit(args, rep.as_json(), text)
            return 0 if rep.ok else 1
        with store.session() as s:
            if s.get(Project, args.project) is None:
                raise CliError(f"No project {args.project} in this store.")
            tasks = set(s.scalars(select(Task.id).where(Task.project_id == args.project)))
            if args.task is not None and args.task not in tasks:
                raise CliError(f"Task {args.task} is not in project {args.project}.")
            rows = []
            for ev in s.scalars(select(AuditEvent).order_by(AuditEvent.id)):
                p = ev.payload if isinstance(ev.payload, dict) else {}
                if args.task is not None:
                    if p.get("task") != args.task and not any(
                            c.get("task") == args.task for c in p.get("changes") or [] if isinstance(c, dict)):
                        continue
                elif not _about(p, args.project, tasks):
                    continue
                rows.append({"id": ev.id, "at": ev.at, "actor": ev.actor, "kind": ev.kind,
                             "what": describe(ev.kind, p), "payload": p})
    finally:
        store.close()
    lines = [f"#{r['id']:<6} {r['at']}  {r['actor']}: {r['what']}" for r in rows]
    emit(args, {"project_id": args.project, "task": args.task, "events": rows},
         "\n".join(lines) if lines else "No audit events for that yet.")
    return 0
