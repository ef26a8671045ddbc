"""``reviewdesk backup`` and ``reviewdesk restore``: copies of the local store, and putting one back.

    reviewdesk backup [--list] [--json]      # a copy now (SQLite online backup), or the list of backups
    reviewdesk restore [BACKUP] [--json]     # put a backup back (default: the newest); close ReviewDesk first

The store also backs itself up once a day when opened and before every schema upgrade; the newest few of
each kind are kept in ``backups/`` under the data folder. Restoring keeps the store as it was (as a
``before-restore`` backup, or moved aside when it is damaged), so a restore can itself be undone.
"""

from __future__ import annotations

import argparse
from typing import Any

from app.cli import command, emit, open_store
from app.models.store import BACKUP_DIRNAME, BackupInfo, list_backups, resolve_data_dir, restore_backup


def register(sub: Any, add: Any) -> None:
    sp = add("backup", "back up the local store now (or list the backups with --list)")
    sp.add_argument("--list", action="store_true", help="list the backups instead of making one")

    sp = add("restore", "put a backup back as the local store (close ReviewDesk first)")
    sp.add_argument("backup", nargs="?", help="backup file, or its name in the backups folder (default: the newest)")


def _info(b: BackupInfo) -> dict[str, Any]:
    return {"path": str(b.path), "created_at": b.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"), "kind": b.kind,
            "size": b.size}


def _mb(n: int) -> str:
    return f"{n / 1024**2:,.1f} MiB"


@command("backup")
def cmd_backup(args: argparse.Namespace) -> int:
    folder = resolve_data_dir(getattr(args, "data_dir", None))
    if args.list:
        backups = list_backups(folder)
        lines = [f"{b.created_at:%Y-%m-%d %H:%M:%S}  {b.kind:<9} {_mb(b.size):>10}  {b.path}" for b in backups]
        emit(args, {"folder": str(folder / BACKUP_DIRNAME), "backups": [_info(b) for b in backups]},
             "\n".join(lines) if lines else f"No backups yet in {folder / BACKUP_DIRNAME}.")
        return 0
    store = open_store(args)
    try:
        path = store.backup("manual")
    finally:
        store.close()
    made = next(b for b in list_backups(folder) if b.path == path)
    emit(args, {"backup": _info(made), "backups": len(list_backups(folder))},
         f"Backed up {store.path} to {path} ({_mb(made.size)}).")
    return 0


@command("restore")
def cmd_restore(args: argparse.Namespace) -> int:
    res = restore_backup(getattr(args, "data_dir", None), args.backup)
    if res.previous is None:
        before = "There was no store before."
    elif res.previous_damaged:
        before = f"The damaged store was moved aside to {res.previous}."
    else:
        before = f"The store as it was is saved as {res.previous}."
    emit(args, {"restored": str(res.restored), "store": str(res.store),
                "previous": str(res.previous) if res.previous else None, "previous_damaged": res.previous_damaged,
                "revision": res.revision},
         f"Restored {res.restored} into {res.store} (schema {res.revision}). {before}")
    return 0
