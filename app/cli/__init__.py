"""Command-line interface: ``reviewdesk SUBCOMMAND`` for scripts and training pipelines.

Every subcommand takes ``--json`` for machine-readable output and exits non-zero on failure
(1 = the operation failed, 2 = bad usage, 130 = interrupted). A failure, of any kind, is reported as
``{"error": "...", "kind": "..."}`` on standard output with ``--json``, and always as one plain line on
standard error -- never a traceback (``REVIEWDESK_DEBUG=1`` adds one, for bug reports). No Qt is imported here.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, NoReturn

from app import __version__
from app.models.config import ConfigError
from app.models.lsjson import LSFormatError
from app.models.store import Store, StoreError

Handler = Callable[[argparse.Namespace], Any]
_COMMANDS: dict[str, Handler] = {}


class CliError(Exception):
    """A failure to report to the user in one line (exit code 1)."""


def _json_default(o: Any) -> Any:
    if is_dataclass(o) and not isinstance(o, type):
        return asdict(o)
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, ensure_ascii=False, default=_json_default, indent=None))
    else:
        print(text)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def report_error(message: str, kind: str, *, as_json: bool) -> None:
    """The one way a failure is shown: JSON on stdout with ``--json``, and one line on stderr."""
    message = _one_line(message) or kind
    if as_json:
        print(json.dumps({"error": message, "kind": kind}, ensure_ascii=False))
    print(f"reviewdesk: error: {message}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors reported like every other failure (JSON with ``--json``, one line)."""

    wants_json = False  # set while parsing: ``--json`` is anywhere on the command line

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        argv = list(sys.argv[1:] if args is None else args)
        if "--json" in argv:
            _Parser.wants_json = True
        return super().parse_known_args(argv, namespace)

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # name the subcommand whose options these are not
            target: argparse.ArgumentParser = self
            for action in self._actions:
                if isinstance(action, argparse._SubParsersAction):
                    target = action.choices.get(getattr(parsed, "command", None) or "", self)
            target.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def error(self, message: str) -> NoReturn:
        report_error(f"{message} (see `{self.prog} --help`)", "UsageError", as_json=_Parser.wants_json)
        self.exit(2)


def build_parser() -> argparse.ArgumentParser:
    _Parser.wants_json = False
    p = _Parser(
        prog="reviewdesk",
        description="ReviewDesk: offline review of Label Studio annotations. Without a command, opens the app.",
    )
    p.add_argument("--version", action="version", version=f"reviewdesk {__version__}")
    p.add_argument("--data-dir", help="folder of the local store (default: $REVIEWDESK_DATA_DIR or the "
                                      "platform's user data folder)")
    p.add_argument("--demo", action="store_true", help="open the app on the bundled demo project")
    p.add_argument("--self-test", action="store_true",
                   help="open the demo in a temporary store, render each view once offscreen, print OK per view")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        sp.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return sp

    sp = add("import", "import a Label Studio JSON export as a new project")
    sp.add_argument("export", help="the export file (a JSON list of tasks)")
    sp.add_argument("--config", required=True, help="the project's labeling config (XML file)")
    sp.add_argument("--title", help="project title (default: the file name)")
    sp.add_argument("--media-root", help="folder that relative media paths resolve against "
                                         "(default: the export's folder)")
    sp.add_argument("--progress", action="store_true",
                    help="show a progress bar on standard error even when it is not a terminal")

    add("projects", "list the projects in the local store")

    sp = add("tasks", "list a project's tasks (queue order)")
    sp.add_argument("project", type=int)
    sp.add_argument("--limit", type=int, default=50)
    sp.add_argument("--offset", type=int, default=0)

    add("demo", "import the bundled demo project (once) and print its id")

    for name in EXTENSION_MODULES:
        importlib.import_module(name).register(sub, add)
    return p


# Capabilities register their subcommands from their own module of this package: each module has
# ``register(subparsers, add)`` and decorates its handlers with ``@command(NAME)``.
EXTENSION_MODULES: list[str] = ["app.cli.review", "app.cli.metrics", "app.cli.sync", "app.cli.media", "app.cli.backup",
                                "app.cli.audit", "app.cli.groundtruth", "app.cli.calibration",
                                "app.cli.webhook", "app.cli.export",
                                "app.cli.queues"]


def registered_commands() -> dict[str, Handler]:
    """Every subcommand with its handler (after :func:`build_parser` imported the extension modules)."""
    return dict(_COMMANDS)


def command(name: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        _COMMANDS[name] = fn
        return fn

    return deco


def open_store(args: argparse.Namespace) -> Store:
    return Store.open(getattr(args, "data_dir", None))


@command("import")
def cmd_import(args: argparse.Namespace) -> int:
    from app.services.projects import ProjectService

    try:
        config = Path(args.config).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"Cannot read the labeling config {args.config}: {exc.strerror}") from exc
    from app.cli.progress import Progress

    bar = Progress("importing tasks", enabled=True if args.progress else None)
    store = open_store(args)
    try:
        res = ProjectService(store).import_file(args.export, config, args.title or Path(args.export).stem,
                                                media_root=args.media_root, progress=bar.update)
    finally:
        store.close()
        bar.close()
    s = res.summary
    note = (f" ({s.predictions_ids_only} predictions were ids only: the export did not include their results)"
            if s.predictions_ids_only else "")
    if s.legacy_tasks:
        note += (f" ({s.legacy_tasks} tasks in the format of Label Studio before 1.0: their completions were read "
                 "as annotations)")
    emit(args, {"project_id": s.project_id, "tasks": s.tasks, "annotations": s.annotations,
                "predictions": s.predictions, "predictions_ids_only": s.predictions_ids_only,
                "predictions_embedded": s.predictions_embedded, "legacy_tasks": s.legacy_tasks,
                "members": s.members},
         f"Imported project {s.project_id}: {s.tasks} tasks, {s.annotations} annotations, "
         f"{s.predictions} predictions, {s.members} members{note}.")
    return 0


@command("projects")
def cmd_projects(args: argparse.Namespace) -> int:
    from app.services.projects import ProjectService

    store = open_store(args)
    try:
        projects = ProjectService(store).list_projects()
    finally:
        store.close()
    lines = [f"{'id':>4}  {'tasks':>7}  {'annotations':>11}  {'GT tasks':>8}  title"]
    lines += [f"{p.id:>4}  {p.tasks:>7}  {p.annotations:>11}  {p.ground_truth_tasks:>8}  {p.title}" for p in projects]
    emit(args, [asdict(p) for p in projects], "\n".join(lines) if projects else "No projects yet.")
    return 0


@command("tasks")
def cmd_tasks(args: argparse.Namespace) -> int:
    from app.services.projects import ProjectService

    store = open_store(args)
    try:
        svc = ProjectService(store)
        svc.project(args.project)
        rows = svc.task_page(args.project, args.offset, args.limit)
    except LookupError as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()
    text = "\n".join(f"{r.server_id or r.id:>7}  {r.annotations} ann  {'GT ' if r.ground_truth else '   '}{r.preview}"
                     for r in rows)
    emit(args, [asdict(r) for r in rows], text or "No tasks.")
    return 0


@command("demo")
def cmd_demo(args: argparse.Namespace) -> int:
    from app.services.demo import ensure_demo

    store = open_store(args)
    try:
        pid = ensure_demo(store)
    finally:
        store.close()
    emit(args, {"project_id": pid}, f"Demo project: {pid}")
    return 0


def _describe(exc: BaseException) -> str:
    if isinstance(exc, CliError | StoreError | ConfigError | LSFormatError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        return f"{exc.strerror or exc}{':' if where else ''}{where}" if exc.strerror else str(exc)
    return (f"unexpected {type(exc).__name__}: {exc} (this is a bug in ReviewDesk; run again with "
            "REVIEWDESK_DEBUG=1 to see where)")


def run(args: argparse.Namespace) -> int:
    handler = _COMMANDS.get(args.command)
    as_json = bool(getattr(args, "json", False))
    if handler is None:
        report_error(f"unknown command {args.command!r}", "UsageError", as_json=as_json)
        return 2
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        report_error("interrupted", "KeyboardInterrupt", as_json=as_json)
        return 130
    except BrokenPipeError:  # the reader went away (`reviewdesk ... | head`): nothing left to tell it
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line (or one JSON object)
        if os.environ.get("REVIEWDESK_DEBUG"):
            traceback.print_exc(file=sys.stderr)
        report_error(_describe(exc), type(exc).__name__, as_json=as_json)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        report_error("no command given (the app itself starts from app.main)", "UsageError", as_json=False)
        return 2
    return run(args)
