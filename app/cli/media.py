"""The offline media cache: ``reviewdesk media [--cap-mb N] [--json]``.

Without options: how many files and bytes the cache holds, how many URLs name them, and the cap.
``--cap-mb N`` saves the cap (the ``media_cache_cap_mb`` setting, also in the GUI's settings dialog) and
evicts the least recently used files down to it at once; later pulls keep the cache under it.
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


def _mb(n: int) -> str:
    return f"{n / 1024**2:,.1f} MiB"


@command("media")
def cmd_media(args: argparse.Namespace) -> int:
    from app.services.media import media_cache_info, set_media_cache_cap

    store = open_store(args)
    try:
        removed = 0
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
    emit(args, {**asdict(info), "removed": removed}, text)
    return 0
