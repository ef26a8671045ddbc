"""The offline media cache: ``reviewdesk media [--cap-mb N] [--fetch PROJECT] [--json]``.

Without options: how many files and bytes the cache holds, how many URLs name them, and the cap.
``--cap-mb N`` saves the cap (the ``media_cache_cap_mb`` setting, also in the GUI's settings dialog) and
evicts the least recently used files down to it at once; later pulls keep the cache under it.
``--fetch PROJECT`` fetches every not yet cached media file of a pulled project (a pull fetches those of the
tasks it changed) and says why any file is not available. Exit code 1 when some file could not be fetched.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from app.cli import CliError, command, emit, open_store


def register(sub: Any, add: Any) -> None:
    sp = add("media", "show the offline media cache, or set its size cap")
    sp.add_argument("--cap-mb", type=int, metavar="MIB",
                    help="cache size cap in MiB; least recently used files beyond it are removed")
    sp.add_argument("--fetch", type=int, metavar="PROJECT",
                    help="fetch the missing media of this (local) project from its server")


def _mb(n: int) -> str:
    return f"{n / 1024**2:,.1f} MiB"


@command("media")
def cmd_media(args: argparse.Namespace) -> int:
    from app.services.media import media_cache_info, set_media_cache_cap

    store = open_store(args)
    fetched = None
    try:
        removed = 0
        if args.fetch is not None:
            from app.services.media import fetch_project_media
            from app.sync.errors import SyncError

            try:
                fetched = fetch_project_media(store, args.fetch)
            except (LookupError, SyncError) as exc:
                raise CliError(str(exc)) from exc
        if args.cap_mb is not None:
            try:
                info, removed, _changes = set_media_cache_cap(store, args.cap_mb)
            except ValueError as exc:
                raise CliError(str(exc)) from exc
        else:
            info = media_cache_info(store)
    finally:
        store.close()
    text = (f"Media cache: {info.files} files, {_mb(info.bytes)} of {info.cap_mb:,} MiB cap "
            f"({info.urls} URLs) in {info.folder}")
    if args.cap_mb is not None:
        text += f"\nCap set to {info.cap_mb:,} MiB" + (f"; {removed} least recently used files removed." if removed
                                                        else ".")
    payload: dict[str, Any] = {**asdict(info), "removed": removed}
    if fetched is not None:
        payload["fetch"] = asdict(fetched)
        text = (f"Project {args.fetch}: {fetched.fetched} files fetched, {fetched.reused} already cached under "
                f"another name, {fetched.failed} not available"
                + "".join(f"\n  - {m}" for m in fetched.messages) + "\n" + text)
    emit(args, payload, text)
    return 1 if fetched is not None and fetched.failed else 0
