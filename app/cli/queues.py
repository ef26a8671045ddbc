"""``reviewdesk queue``, ``coverage``, ``queue-preset``, ``queue-assign`` and ``expert-threshold``: review queues."""

from __future__ import annotations

import argparse
from typing import Any

from app.cli import CliError, command, emit, open_store
from app.services.queues import ORDERS, ROLES, QueueError, QueueSpec


def _rules(sp: argparse.ArgumentParser) -> None:
    g = sp.add_argument_group("eligibility rules (combinable: every rule given must hold)")
    g.add_argument("--agreement-below", type=float, metavar="X", help="task agreement below X (0-1)")
    g.add_argument("--annotator", type=int, action="append", default=None, metavar="USER_ID",
                   help="tasks annotated by this user (server user id; repeatable: any of them)")
    g.add_argument("--control", help="the control for --value (and for --agreement-below: agreement on it)")
    g.add_argument("--value", help="tasks where an annotator answered VALUE on --control")
    g.add_argument("--confidence-below", type=float, metavar="X", help="model confidence below X (0-1)")
    g.add_argument("--model", help="model version (for --confidence-below and --disagrees-with-model)")
    g.add_argument("--disagrees-with-model", action="store_true",
                   help="the --model's answer differs from the Dawid-Skene consensus")
    g.add_argument("--not-reviewed", action="store_true", help="no live accept/fix/reject from anyone yet")
    g.add_argument("--ground-truth", choices=["any", "only", "exclude"], default=None)
    g.add_argument("--sample", type=float, metavar="PCT", help="a seeded random sample of PCT%% of the tasks")
    g.add_argument("--seed", type=int, default=None, help="seed of --sample and --order random (default 0)")
    sp.add_argument("--order", choices=ORDERS, default=None, help="default: agreement (lowest first)")
    sp.add_argument("--role", choices=ROLES, default=None, help="default: reviewer")


def register(sub: Any, add: Any) -> None:
    sp = add("queue", "list a project's review queue: eligible tasks, in order, with the reasons")
    sp.add_argument("project", type=int)
    sp.add_argument("--preset", help="a saved queue preset (options given here override its fields)")
    _rules(sp)
    sp.add_argument("--limit", type=int, default=None, help="show the first N tasks only")

    sp = add("coverage", "review coverage: reviewed / eligible annotations per annotator, control, reviewer")
    sp.add_argument("project", type=int)
    sp.add_argument("--preset", help="eligible tasks: those of this queue preset (default: every task)")

    sp = add("queue-preset", "save, list or delete a project's named queue presets")
    sp.add_argument("action", choices=["save", "list", "delete"])
    sp.add_argument("project", type=int)
    sp.add_argument("name", nargs="?", help="preset name (save, delete)")
    _rules(sp)

    sp = add("queue-assign", "assign reviewers to a project's queues (a role or a preset), or list them")
    sp.add_argument("project", type=int)
    sp.add_argument("reviewer", nargs="?", help="reviewer e-mail (omit to list the assignments)")
    sp.add_argument("queue", nargs="?", help="reviewer, expert or a preset name")
    sp.add_argument("--remove", action="store_true", help="take the assignment back")

    sp = add("expert-threshold", "show or set the agreement below which tasks go to the expert queue")
    sp.add_argument("project", type=int)
    sp.add_argument("value", nargs="?", help="a number in 0-1, or 'off'")


_FIELDS = {"agreement_below": "agreement_below", "annotator": "annotators", "control": "control", "value": "value",
           "confidence_below": "confidence_below", "model": "model_version",
           "disagrees_with_model": "disagrees_with_model", "not_reviewed": "not_reviewed",
           "ground_truth": "ground_truth", "sample": "sample_pct", "seed": "seed", "order": "order", "role": "role"}


def _spec(args: argparse.Namespace, base: QueueSpec | None = None) -> QueueSpec:
    kw: dict[str, Any] = {}
    for opt, name in _FIELDS.items():
        v = getattr(args, opt, None)
        if v is None or v is False:
            continue
        kw[name] = tuple(v) if name == "annotators" else v
    try:
        return (base or QueueSpec()).with_(**kw)
    except QueueError as exc:
        raise CliError(str(exc)) from exc


def _actor(store: Any) -> str:
    from app.services.settings import load_settings

    return load_settings(store.data_dir).reviewer


def _check(store: Any, project: int) -> None:
    from app.services.projects import ProjectService

    try:
        ProjectService(store).project(project)
    except LookupError as exc:
        raise CliError(str(exc)) from exc


def _fmt(x: float | None) -> str:
    return "   -" if x is None else f"{x:.2f}"


@command("queue")
def cmd_queue(args: argparse.Namespace) -> int:
    from app.services.queues import build_queue, get_preset

    if args.limit is not None and args.limit < 0:
        raise CliError("--limit must be 0 or more")
    store = open_store(args)
    try:
        _check(store, args.project)
        try:
            base = get_preset(store, args.project, args.preset) if args.preset else None
        except QueueError as exc:
            raise CliError(str(exc)) from exc
        spec = _spec(args, base)
        queue = build_queue(store, args.project, spec)
        items = queue.items(0, args.limit)
    finally:
        store.close()
    lines = [f"{spec.role} queue, {len(queue)} tasks, by {spec.order}:"]
    lines += [f"{i.task:>7}  agr {_fmt(i.agreement)}  conf {_fmt(i.confidence)}  unc {_fmt(i.uncertainty)}  "
              + "; ".join(i.reasons) for i in items]
    emit(args, {"project": args.project, "role": spec.role, "order": spec.order, "count": len(queue),
                "items": [i.as_json() for i in items]},
         "\n".join(lines) if len(queue) else f"The {spec.role} queue is empty.")
    return 0


@command("coverage")
def cmd_coverage(args: argparse.Namespace) -> int:
    from app.services.coverage import coverage
    from app.services.queues import get_preset

    store = open_store(args)
    try:
        _check(store, args.project)
        try:
            spec = get_preset(store, args.project, args.preset) if args.preset else None
        except QueueError as exc:
            raise CliError(str(exc)) from exc
        cov = coverage(store, args.project, spec)
    finally:
        store.close()

    def block(title: str, rows: Any) -> list[str]:
        return [title] + [f"  {r.key:<40} {r.reviewed:>6} / {r.eligible:<6}"
                          + (f" ({r.share:.0%})" if r.share is not None else "")
                          + (f"  {r.origin_server} pulled" if r.origin_server else "") for r in rows]

    lines = block("overall (annotations)", [cov.overall]) + block("tasks", [cov.tasks])
    lines += block("per annotator", cov.annotators) + block("per control", cov.controls)
    lines += block("per reviewer (of all eligible)", cov.reviewers)
    emit(args, cov.as_json(), "\n".join(lines))
    return 0


@command("queue-preset")
def cmd_queue_preset(args: argparse.Namespace) -> int:
    from app.services.queues import delete_preset, list_presets, save_preset

    if args.action != "list" and not args.name:
        raise CliError(f"queue-preset {args.action} needs a NAME")
    store = open_store(args)
    try:
        _check(store, args.project)
        try:
            if args.action == "save":
                spec = _spec(args)
                save_preset(store, args.project, args.name, spec, actor=_actor(store))
                emit(args, {"project": args.project, "name": args.name, "spec": spec.to_json()},
                     f"Saved queue preset {args.name!r}.")
            elif args.action == "delete":
                delete_preset(store, args.project, args.name, actor=_actor(store))
                emit(args, {"project": args.project, "name": args.name, "deleted": True},
                     f"Deleted queue preset {args.name!r}.")
            else:
                presets = list_presets(store, args.project)
                emit(args, {"project": args.project, "items": [{"name": p.name, "spec": p.spec.to_json(),
                                                                "updated_at": p.updated_at} for p in presets]},
                     "\n".join(f"{p.name}: {p.spec.role}, by {p.spec.order}" for p in presets)
                     or "No queue presets.")
        except QueueError as exc:
            raise CliError(str(exc)) from exc
    finally:
        store.close()
    return 0


@command("queue-assign")
def cmd_queue_assign(args: argparse.Namespace) -> int:
    from app.services.queues import assign, assignments

    store = open_store(args)
    try:
        _check(store, args.project)
        if args.reviewer is not None:
            if not args.queue:
                raise CliError("queue-assign needs REVIEWER and QUEUE (reviewer, expert or a preset name)")
            try:
                assign(store, args.project, args.reviewer, args.queue, actor=_actor(store), remove=args.remove)
            except QueueError as exc:
                raise CliError(str(exc)) from exc
        rows = assignments(store, args.project)
    finally:
        store.close()
    emit(args, {"project": args.project, "items": [{"reviewer": a.reviewer, "queue": a.queue, "source": a.source}
                                                   for a in rows]},
         "\n".join(f"{a.queue:<16} {a.reviewer}  ({a.source})" for a in rows) or "No assignments.")
    return 0


@command("expert-threshold")
def cmd_expert_threshold(args: argparse.Namespace) -> int:
    from app.services.queues import get_expert_threshold, set_expert_threshold

    value: float | None = None
    if args.value is not None and args.value.lower() != "off":
        try:
            value = float(args.value)
        except ValueError as exc:
            raise CliError(f"the expert threshold must be a number in 0-1 or 'off' (got {args.value!r})") from exc
    store = open_store(args)
    try:
        _check(store, args.project)
        if args.value is not None:
            try:
                set_expert_threshold(store, args.project, value, actor=_actor(store))
            except QueueError as exc:
                raise CliError(str(exc)) from exc
        now = get_expert_threshold(store, args.project)
    finally:
        store.close()
    emit(args, {"project": args.project, "expert_threshold": now},
         "No expert threshold." if now is None else f"Tasks with agreement below {now:g} go to the expert queue.")
    return 0
