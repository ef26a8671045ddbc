"""Sync subcommands: ``login``, ``pull``, ``push``, ``sync``, ``conflicts``.

    reviewdesk login URL [--token-stdin] [--ca-bundle PEM]
    reviewdesk pull URL --project ID [--full] [--no-media] [--json]
    reviewdesk push [--url URL] [--json]
    reviewdesk sync [--url URL] [--json]                      # push, then pull every known project
    reviewdesk conflicts [--project ID] [--keep-mine UUID | --discard-mine UUID] [--json]

The token is read from stdin (``--token-stdin``) or typed without echo, kept in the OS keyring only, and
never printed. Exit codes: 0 done, 1 failed (offline, refused, conflicts left unresolved are not failures).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from dataclasses import asdict
from typing import Any

from app.cli import CliError, command, emit, open_store
from app.services import webhook
from app.sync.errors import SyncError

# A CLI push/sync about to exit gives the push webhook's first delivery this long; the rest stays queued (0016).
WEBHOOK_GRACE_S = 5.0


def register(sub: Any, add: Any) -> None:
    sp = add("login", "log in to a Label Studio server (the token goes to the OS keyring)")
    sp.add_argument("url", help="server URL, e.g. https://labelstudio.example.org")
    sp.add_argument("--token-stdin", action="store_true", help="read the API token from standard input")
    sp.add_argument("--ca-bundle", help="PEM file of a custom certificate authority (TLS stays verified)")

    sp = add("pull", "pull a Label Studio project (incremental; resumes after an interruption)")
    sp.add_argument("url", help="server URL (logged in before, or REVIEWDESK_TOKEN set)")
    sp.add_argument("--project", type=int, required=True, help="the project's id on the server")
    sp.add_argument("--full", action="store_true", help="ignore the cursor and read every task again")
    sp.add_argument("--no-media", action="store_true", help="do not download images/audio into the cache")

    sp = add("push", "send queued decisions to their servers (in order, exactly once)")
    sp.add_argument("--url", help="only this server")

    sp = add("sync", "push queued decisions, then pull every project of the server(s)")
    sp.add_argument("--url", help="only this server")

    sp = add("conflicts", "list decisions in conflict with the server, or resolve one")
    sp.add_argument("--project", type=int, help="local project id")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--keep-mine", metavar="UUID", help="push my decision anyway (recorded as forced)")
    g.add_argument("--discard-mine", metavar="UUID", help="retract my decision (recorded); it is never sent")
    sp.add_argument("--reviewer", default=None, help="who resolves (default: the settings' reviewer)")


def _service(args: argparse.Namespace) -> Any:
    from app.services.sync import SyncService

    store = open_store(args)
    return store, SyncService(store)


def _stderr_progress(args: argparse.Namespace) -> Any:
    if getattr(args, "json", False) or not sys.stderr.isatty():
        return None

    def progress(done: int, total: int | None) -> None:
        sys.stderr.write(f"\r  {done}" + (f"/{total}" if total else "") + " ")
        sys.stderr.flush()

    return progress


@command("login")
def cmd_login(args: argparse.Namespace) -> int:
    if args.token_stdin:
        token = sys.stdin.readline().strip()
    else:
        try:
            token = getpass.getpass("API token (Label Studio: Account & Settings): ")
        except (EOFError, KeyboardInterrupt) as exc:
            raise CliError("No token given.") from exc
    if not token:
        raise CliError("No token given.")
    store, svc = _service(args)
    try:
        res, _ = svc.login(args.url, token, ca_bundle=args.ca_bundle)
    except SyncError as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()
    where = "the OS keyring" if res.token_stored == "keyring" else "nowhere (set REVIEWDESK_TOKEN)"
    text = (f"Logged in to {res.url} as {res.email} ({res.edition} edition, {res.token_kind} token; "
            f"token kept in {where}).")
    if res.warning:
        print(res.warning, file=sys.stderr)
    emit(args, asdict(res), text)
    return 0


@command("pull")
def cmd_pull(args: argparse.Namespace) -> int:
    store, svc = _service(args)
    try:
        out = svc.pull(args.url, args.project, full=args.full, media=not args.no_media,
                       progress=_stderr_progress(args))
    except (SyncError, LookupError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()
    r = out.report
    text = (f"Pulled project {r.server_project_id} ({r.title}) into local project {r.project_id}: "
            f"{r.tasks_new} new, {r.tasks_updated} updated, {r.tasks_deleted} deleted tasks; "
            f"{r.media_fetched} media files" + (f" ({r.media_failed} failed)" if r.media_failed else "")
            + (f"; {r.conflicts} decisions now in conflict (see `reviewdesk conflicts`)" if r.conflicts else "")
            + (f"; {r.server_decisions} decisions by other reviewers" if r.server_decisions else "")
            + (f"; {r.lost} of your decisions were erased on the server by another client and are queued "
               "again (run `reviewdesk push`)" if r.lost else "")
            + ".")
    emit(args, asdict(r), text)
    return 0


def _push_text(out: Any) -> str:
    if not out.reports:
        return "Nothing to push."
    lines = []
    for url, r in out.reports:
        line = f"{url}: {r.synced} sent"
        if r.already_on_server:
            line += f" ({r.already_on_server} were already there)"
        if r.conflicts:
            line += f", {r.conflicts} in conflict"
        if r.cancelled:
            line += f", {r.cancelled} cancelled by undo"
        if r.failed:
            line += f", {r.failed} still queued"
        if r.reappended:
            line += f", {r.reappended} written again after another client's write erased them"
        lines.append(line + ".")
        lines += [f"  {e}" for e in r.errors]
        if r.auth_required:
            lines.append(f"  Log in again: reviewdesk login {url}")
    return "\n".join(lines)


@command("push")
def cmd_push(args: argparse.Namespace) -> int:
    store, svc = _service(args)
    try:
        out = svc.push(args.url, progress=_stderr_progress(args))
    except (SyncError, LookupError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()
    webhook.settle(store.data_dir, WEBHOOK_GRACE_S)
    emit(args, {"servers": [{"url": u, **asdict(r)} for u, r in out.reports], "synced": out.synced,
                "conflicts": out.conflicts, "failed": out.failed}, _push_text(out))
    return 1 if out.failed or out.auth_required else 0


@command("sync")
def cmd_sync(args: argparse.Namespace) -> int:
    store, svc = _service(args)
    try:
        out = svc.sync(args.url, progress=_stderr_progress(args))
    except (SyncError, LookupError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()
    webhook.settle(store.data_dir, WEBHOOK_GRACE_S)
    text = _push_text(out.push) + "\n" + "\n".join(
        f"Pulled {p.title}: {p.tasks_new} new, {p.tasks_updated} updated, {p.tasks_deleted} deleted"
        + (f", {p.conflicts} conflicts" if p.conflicts else "")
        + (f", {p.server_decisions} decisions by other reviewers" if p.server_decisions else "")
        + (f", {p.lost} of yours erased by another client (written again)" if p.lost else "") for p in out.pulls)
    if out.errors:
        text += "\n" + "\n".join(out.errors)
    emit(args, {"push": {"servers": [{"url": u, **asdict(r)} for u, r in out.push.reports]},
                "pulls": [asdict(p) for p in out.pulls], "errors": list(out.errors), "rounds": out.rounds,
                "reappended": out.reappended}, text.strip())
    return 1 if out.errors or out.push.failed else 0


@command("conflicts")
def cmd_conflicts(args: argparse.Namespace) -> int:
    store, svc = _service(args)
    try:
        reviewer = args.reviewer
        if reviewer is None:
            try:
                from app.services.settings import load_settings

                reviewer = load_settings(store.data_dir).reviewer
            except ImportError:
                reviewer = "local"
        if args.keep_mine:
            svc.keep_mine(args.keep_mine, actor=reviewer)
            emit(args, {"uuid": args.keep_mine, "resolution": "keep_mine"},
                 f"Decision {args.keep_mine} will be pushed anyway at the next push.")
            return 0
        if args.discard_mine:
            svc.discard_mine(args.discard_mine, actor=reviewer)
            emit(args, {"uuid": args.discard_mine, "resolution": "discard_mine"},
                 f"Decision {args.discard_mine} was retracted; it will not be sent.")
            return 0
        items = svc.conflicts(args.project)
    except LookupError as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()
    lines = [f"{c.uuid}  task {c.task_server_id}  {c.verdict:<8} {c.kind:<14} {c.message}" for c in items]
    emit(args, [asdict(c) for c in items], "\n".join(lines) if lines else "No conflicts.")
    return 0
