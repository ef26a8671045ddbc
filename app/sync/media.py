"""Content-addressed media cache: what a reviewer sees offline.

Files live in ``<data dir>/media/<sha256[:2]>/<sha256>`` and rows in ``media_cache`` (sha256, url, size,
content type, fetched/last used). Written to a temporary file and renamed (a crash never leaves a
half-written file under its hash). A size cap evicts the least recently used files. Presigned URLs expire;
cached bytes do not. Cloud-storage URIs (``s3://``, ``gs://``, ``azure-blob://``) are not fetchable directly
and are skipped.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from app.models.schema import MediaCache, Project, Task
from app.models.store import Store, now_iso
from app.sync.client import LSClient
from app.sync.errors import Cancelled, SyncError

DEFAULT_CAP_BYTES = 2 * 1024**3
MAX_FILE_BYTES = 512 * 1024**2
MEDIA_TAGS = frozenset({"Image", "Audio", "AudioPlus", "Video", "TimeSeries", "HyperText", "Paragraphs"})
MEDIA_DIR = "media"


def media_dir(store: Store) -> Path:
    return store.data_dir / MEDIA_DIR


def path_for(store: Store, sha256: str) -> Path:
    return media_dir(store) / sha256[:2] / sha256


def absolute_url(server_url: str, ref: str) -> str | None:
    if ref.startswith(("http://", "https://")):
        return ref
    if ref.startswith("/"):
        return server_url.rstrip("/") + ref
    return None


def media_refs(project_xml_objects: list[tuple[str, str]], data: dict[str, Any]) -> list[str]:
    """URLs/paths in ``data`` referenced by media object tags (``value="$key"``)."""
    out = []
    for _tag, value in project_xml_objects:
        if not value.startswith("$"):
            continue
        v = data.get(value[1:])
        if isinstance(v, str) and (v.startswith(("http://", "https://")) or v.startswith("/data/")):
            out.append(v)
    return out


def lookup(store: Store, url: str, server_urls: list[str] | None = None) -> Path | None:
    """The cached file for ``url`` (absolute, or server-relative with ``server_urls`` to try), if any."""
    candidates = [url] + [absolute_url(s, url) or url for s in (server_urls or []) if url.startswith("/")]
    with store.session() as s:
        sha = s.scalar(select(MediaCache.sha256).where(MediaCache.url.in_(candidates)).limit(1))
    if sha is None:
        return None
    p = path_for(store, sha)
    return p if p.exists() else None


def _objects(store: Store, project_id: int) -> tuple[list[tuple[str, str]], str | None]:
    from app.models.config import parse_config
    from app.models.schema import Server

    with store.session() as s:
        project = s.get(Project, project_id)
        assert project is not None
        server = s.get(Server, project.server_ref) if project.server_ref else None
        xml = project.label_config
    cfg = parse_config(xml)
    objs = [(t.tag, t.value) for t in cfg.all_tags if t.tag in MEDIA_TAGS and t.value]
    return objs, server.url if server else None


def fetch_project_media(store: Store, client: LSClient, project_id: int, task_ids: list[int], *,
                        cap_bytes: int | None = None, cancel: threading.Event | None = None,
                        workers: int = 4) -> tuple[int, int]:
    """Download media of these tasks that are not cached yet. Returns (fetched, failed); never raises for
    a single file (a missing image must not fail the pull)."""
    objs, _server_url = _objects(store, project_id)
    if not objs:
        return 0, 0
    urls: dict[str, str] = {}
    with store.session() as s:
        for i in range(0, len(task_ids), 500):
            for (data,) in s.execute(select(Task.data).where(Task.id.in_(task_ids[i:i + 500]))):
                for ref in media_refs(objs, data or {}):
                    absu = absolute_url(client.url, ref)
                    if absu:
                        urls[absu] = ref
        cached = set(s.scalars(select(MediaCache.url).where(MediaCache.url.in_(list(urls) or [""]))))
    todo = [u for u in urls if u not in cached]
    if not todo:
        return 0, 0
    cap = cap_bytes or DEFAULT_CAP_BYTES
    fetched = failed = 0
    lock = threading.Lock()

    def one(url: str) -> bool:
        if cancel is not None and cancel.is_set():
            raise Cancelled("Media download cancelled.")
        try:
            body, ctype = client.download(url, min(MAX_FILE_BYTES, cap))
        except Cancelled:
            raise
        except SyncError:
            return False
        store_bytes(store, url, body, ctype, lock)
        return True

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="media") as pool:
        for ok in pool.map(one, todo):
            if ok:
                fetched += 1
            else:
                failed += 1
    evict(store, cap)
    return fetched, failed


def store_bytes(store: Store, url: str, body: bytes, content_type: str | None,
                lock: threading.Lock | None = None) -> str:
    sha = hashlib.sha256(body).hexdigest()
    target = path_for(store, sha)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{sha}.{os.getpid()}.{threading.get_ident()}.part")
        with tmp.open("wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    now = now_iso()
    if lock:
        lock.acquire()
    try:
        with store.transaction() as s:
            row = s.get(MediaCache, sha)
            if row is None:
                s.add(MediaCache(sha256=sha, url=url, size=len(body), content_type=content_type, fetched_at=now,
                                 last_used_at=now))
            else:
                row.last_used_at = now
    finally:
        if lock:
            lock.release()
    return sha


def touch(store: Store, sha256: str) -> None:
    with store.transaction() as s:
        row = s.get(MediaCache, sha256)
        if row is not None:
            row.last_used_at = now_iso()


def evict(store: Store, cap_bytes: int) -> int:
    """Remove least recently used files until the cache is within ``cap_bytes``. Returns files removed."""
    removed = 0
    with store.transaction() as s:
        total = s.scalar(select(func.coalesce(func.sum(MediaCache.size), 0))) or 0
        if total <= cap_bytes:
            return 0
        for row in s.scalars(select(MediaCache).order_by(MediaCache.last_used_at, MediaCache.sha256)):
            if total <= cap_bytes:
                break
            path_for(store, row.sha256).unlink(missing_ok=True)
            total -= row.size
            s.delete(row)
            removed += 1
    return removed
