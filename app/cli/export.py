"""``reviewdesk export``: a project's tasks, ground truth, decisions, metrics or consensus for pipelines.

Built on :func:`app.api.export`. ``--what tasks --format ls-json`` (the defaults) is the lossless Label
Studio export it always was; the tables' columns are in the README ("Exports") and ``app.services.exports.SCHEMAS``.
"""

from __future__ import annotations

import argparse
from typing import Any

from app.cli import CliError, command, emit, open_store


def register(sub: Any, add: Any) -> None:
    from app.services.exports import FORMATS, WHATS

    sp = add("export", "write a project's tasks (Label Studio JSON, lossless), ground truth, decisions, "
                       "metrics or consensus labels to a file")
    sp.add_argument("project", type=int)
    sp.add_argument("--what", default="tasks", choices=list(WHATS),
                    help="what to write (default: tasks)")
    sp.add_argument("--format", default="ls-json", choices=list(FORMATS),
                    help="ls-json (a Label Studio import file: tasks, ground-truth), csv or parquet "
                         "(default: ls-json)")
    sp.add_argument("-o", "--output", required=True, help="output file (written whole or not at all)")
    sp.add_argument("--as-of", metavar="EVENT_ID|TIMESTAMP",
                    help="export the project as it was right after this audit event (docs/adr/0015)")
    sp.add_argument("--progress", action="store_true",
                    help="show a progress bar on standard error even when it is not a terminal")


@command("export")
def cmd_export(args: argparse.Namespace) -> int:
    from app.api import AsOfError, ExportError, export
    from app.cli.progress import Progress

    bar = Progress(f"exporting {args.what}", enabled=True if args.progress else None)
    store = open_store(args)
    try:
        if bar.enabled and args.format == "ls-json":
            from app.services.projects import ProjectService

            bar.total = ProjectService(store).task_count(args.project)
        res = export(store, args.project, args.output, what=args.what, fmt=args.format, as_of=args.as_of,
                     progress=bar.update)
    except (LookupError, ExportError, AsOfError) as exc:
        raise CliError(str(exc).strip("'\"")) from exc
    except OSError as exc:
        raise CliError(f"Cannot write {args.output}: {exc.strerror or exc}") from exc
    finally:
        store.close()
        bar.close()
    unit = "tasks" if res.format == "ls-json" else "rows"
    emit(args, {"project_id": res.project_id, "what": res.what, "format": res.format, unit: res.rows,
                "output": res.output},
         f"Wrote {res.rows} {unit} to {args.output}.")
    return 0
