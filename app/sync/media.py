"""Content-addressed media cache: what a reviewer sees offline.

Files live in ``<data dir>/media/<sha256[:2]>/<sha256>``; rows in ``media_cache`` (sha256, first url, size,
content type, fetched/last used) and, for every URL or URI that named the same bytes, in the side table
``media_urls`` (url -> sha256; see :func:`ensure_url_index`). Files are written to a temporary name and
renamed (a crash never leaves a half-written file under its hash). A size cap (the ``media_cache_cap_mb``
setting) evicts the least recently used files; a cache hit through :func:`lookup` counts as a use.
Presigned URLs expire; cached bytes do not.

What a pull fetches, per media reference in task data (:func:`plan_source`):

* files uploaded to Label Studio (``/data/upload/...``), Local Storage files served by the server
  (``/data/local-files/?d=...``) and any other URL on the server's origin, relative or absolute: fetched
  with the token;
* ``s3://``, ``gs://``, ``azure-blob://`` URIs: through the server's own resolver,
  ``GET /tasks/<task id>/resolve/?fileuri=<urlsafe base64 of the URI>`` (Label Studio 1.23.2,
  ``io_storages/proxy_api.py``; ``/presign/`` is its older alias). The server answers ``303`` to a
  presigned link (followed without the token), ``200`` with the bytes when the storage proxies, ``404``
  when no storage connected to the project matches the URI, ``403`` without permission and ``424`` when the
  storage failed to stream. Resolver links the server already wrote into task data
  (``/tasks/<id>/resolve/?fileuri=...``) are the same thing;
* URLs on other hosts: fetched without the token.

A reference that cannot be fetched never fails the pull; the reason is kept (:func:`failure_reason`) for the
review view and the ``media`` command.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

from sqlalchemy import Column, MetaData, String, Table, delete, func, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.models.schema import MediaCache, Project, Task
from app.models.store import Store, now_iso
from app.sync.auth import token_allowed
from app.sync.client import LSClient
from app.sync.errors import AuthError, Cancelled, NotFoundError, SyncError

log = logging.getLogger("reviewdesk.sync.media")

DEFAULT_CAP_BYTES = 2 * 1024**3
MIN_CAP_MB = 16
MAX_FILE_BYTES = 512 * 1024**2
MEDIA_TAGS = frozenset({"Image", "Audio", "AudioPlus", "Video", "TimeSeries", "HyperText", "Paragraphs"})
MEDIA_DIR = "media"
SETTINGS_FILE = "settings.json"  # app.services.settings owns the format; only media_cache_cap_mb is read here
STORAGE_SCHEMES = ("s3", "gs", "azure-blob")
_RESOLVER = re.compile(r"^/(?:tasks|projects)/\d+/(?:resolve|presign)/?$")

# Side table: every URL/URI of the same bytes (media_cache keeps one url per sha256). Created here with
# IF NOT EXISTS until the schema owner adopts it in a migration (same DDL, IF NOT EXISTS).
_side = MetaData()
media_urls = Table(
    "media_urls", _side,
    Column("url", String, primary_key=True),
    Column("sha256", String, nullable=False),
    Column("seen_at", String, nullable=False),
)
# No foreign key on purpose: a later batch migration that rebuilds media_cache (drop + rename, with
# foreign_keys=ON) would cascade-delete every name. Eviction deletes the names itself; reads join media_cache,
# so a stray name never resolves to a file that is gone.
_URL_DDL = (
    "CREATE TABLE IF NOT EXISTS media_urls (url VARCHAR NOT NULL PRIMARY KEY, sha256 VARCHAR NOT NULL, "
    "seen_at VARCHAR NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_media_urls_sha256 ON media_urls (sha256)",
    "INSERT OR IGNORE INTO media_urls (url, sha256, seen_at) SELECT url, sha256, fetched_at FROM media_cache",
)
_ready: set[tuple[int, str]] = set()
_ready_lock = threading.Lock()


def ensure_url_index(store: Store) -> None:
    """Create ``media_urls`` when the store has none yet, bringing in the URL of every existing cache row.

    Checked once per store and process, with a read: when the table exists nothing is written (a first cache
    lookup on the UI thread never waits for a pull's write lock).
    """
    key = (id(store.engine), str(store.path))
    with _ready_lock:
        if key in _ready:
            return
        with store.engine.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM sqlite_master WHERE type='table' AND name='media_urls'"
                                       )).first() is not None
        if not exists:
            with store.engine.begin() as conn:
                for stmt in _URL_DDL:
                    conn.execute(text(stmt))
        _ready.add(key)


def media_dir(store: Store) -> Path:
    return store.data_dir / MEDIA_DIR


def path_for(store: Store, sha256: str) -> Path:
    return media_dir(store) / sha256[:2] / sha256


def absolute_url(server_url: str, ref: str) -> str | None:
    """``ref`` as an absolute URL: itself when it is one; on ``server_url`` when it is a server path."""
    scheme = urlsplit(ref).scheme.lower()
    if scheme in ("http", "https"):
        return ref
    if ref.startswith("//"):
        return urljoin(server_url, ref)
    if ref.startswith("/"):
        return server_url.rstrip("/") + ref
    return None


def is_storage_uri(ref: str) -> bool:
    return urlsplit(ref).scheme.lower() in STORAGE_SCHEMES and "://" in ref


def resolver_path(uri: str, *, task_id: int | None, project_id: int | None) -> str | None:
    """The server path that resolves a storage URI (what Label Studio itself writes into task data)."""
    b64 = base64.urlsafe_b64encode(uri.encode()).decode()
    if task_id is not None:
        return f"/tasks/{task_id}/resolve/?fileuri={b64}"
    if project_id is not None:
        return f"/projects/{project_id}/resolve/?fileuri={b64}"
    return None


def storage_uri_of(url: str) -> str | None:
    """The storage URI inside a resolver link (``.../tasks/5/resolve/?fileuri=<base64>``), if it is one."""
    parts = urlsplit(url)
    if not _RESOLVER.match(parts.path):
        return None
    raw = (parse_qs(parts.query).get("fileuri") or [""])[0]
    if not raw:
        return None
    try:
        uri = base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        uri = unquote(raw)
    return uri if is_storage_uri(uri) else None


@dataclass(frozen=True)
class MediaSource:
    """How to fetch one reference: the URL to GET and every name to record for its bytes."""
    ref: str
    fetch_url: str
    aliases: tuple[str, ...]
    storage_uri: str | None = None
    tag: str = "Image"


def plan_source(ref: str, server_url: str, *, task_id: int | None = None, project_id: int | None = None,
                tag: str = "Image") -> MediaSource | None:
    """Where to fetch ``ref`` from (None: not something a server serves, e.g. a local path)."""
    ref = ref.strip()
    if not ref:
        return None
    if is_storage_uri(ref):
        path = resolver_path(ref, task_id=task_id, project_id=project_id)
        if path is None:
            return None
        fetch = server_url.rstrip("/") + path
        return MediaSource(ref, fetch, (ref, fetch), ref, tag)
    absu = absolute_url(server_url, ref)
    if absu is None:
        return None
    uri = storage_uri_of(absu)
    if uri is not None:
        # a resolver link: ask *this* server (the task names it; a link to another host gets no token anyway)
        path = resolver_path(uri, task_id=task_id, project_id=project_id)
        fetch = absu if token_allowed(server_url, absu) or path is None else server_url.rstrip("/") + path
        return MediaSource(ref, fetch, tuple(dict.fromkeys((absu, uri, fetch))), uri, tag)
    return MediaSource(ref, absu, (absu,), None, tag)


def media_refs(project_xml_objects: list[tuple[str, str]], data: dict[str, Any]) -> list[str]:
    """References in ``data`` shown by media object tags (``value="$key"``) that a server may serve."""
    return [ref for _tag, ref in _tagged_refs(project_xml_objects, data)]


def _tagged_refs(objs: list[tuple[str, str]], data: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for tag, value in objs:
        if not value.startswith("$"):
            continue
        v = data.get(value[1:])
        if not isinstance(v, str):
            continue
        v = v.strip()
        if urlsplit(v).scheme.lower() in ("http", "https") or v.startswith("/") or is_storage_uri(v):
            out.append((tag, v))
    return out


# -- failures (process-local: what the review view can say about a reference that is not cached) ----------
_failures: dict[str, str] = {}
_failures_lock = threading.Lock()


def failure_reason(ref: str) -> str | None:
    """Why the last fetch of ``ref`` (as in task data, or absolute) failed in this process, if it did."""
    with _failures_lock:
        return _failures.get(ref.strip())


def _note_failure(src: MediaSource, message: str) -> None:
    with _failures_lock:
        for k in (src.ref, *src.aliases):
            _failures[k] = message


def _clear_failure(src: MediaSource) -> None:
    with _failures_lock:
        for k in (src.ref, *src.aliases):
            _failures.pop(k, None)


def explain(src: MediaSource, exc: SyncError) -> str:
    """A reviewer-facing sentence for a failed fetch."""
    if src.storage_uri is not None:
        where = urlsplit(src.fetch_url).path
        if isinstance(exc, NotFoundError):
            return (f"{src.storage_uri} is not available: no cloud storage connected to this project on the "
                    f"server can serve it (Label Studio answered 404 at {where}). Connect that bucket under the "
                    "project's Settings → Cloud Storage in Label Studio, then pull again.")
        if isinstance(exc, AuthError) and exc.status == 403:
            return (f"{src.storage_uri} is not available: this account may not read the project's storage "
                    "(403). Ask a project administrator for access.")
        if getattr(exc, "status", None) == 424:
            return (f"{src.storage_uri} is not available: the server's cloud storage failed to stream it "
                    f"(424). {exc}")
        return f"{src.storage_uri} could not be fetched through the server: {exc}"
    return f"{src.ref} could not be fetched: {exc}"


# -- cache rows ---------------------------------------------------------------------------------------------
def _existing(store: Store, urls: Iterable[str]) -> dict[str, str]:
    """url -> sha256 for the URLs already cached (with their file present)."""
    urls = list(dict.fromkeys(urls))
    if not urls:
        return {}
    ensure_url_index(store)
    out: dict[str, str] = {}
    with store.session() as s:
        for i in range(0, len(urls), 500):
            chunk = urls[i:i + 500]
            for url, sha in s.execute(select(media_urls.c.url, media_urls.c.sha256)
                                      .join(MediaCache, MediaCache.sha256 == media_urls.c.sha256)
                                      .where(media_urls.c.url.in_(chunk))):
                out[url] = sha
            for url, sha in s.execute(select(MediaCache.url, MediaCache.sha256).where(MediaCache.url.in_(chunk))):
                out.setdefault(url, sha)
    return {u: sha for u, sha in out.items() if path_for(store, sha).exists()}


def lookup(store: Store, url: str, server_urls: list[str] | None = None) -> Path | None:
    """The cached file for ``url`` (as in task data: absolute, a server path tried on ``server_urls``, a
    storage URI or a resolver link), if any. A hit counts as a use for LRU eviction."""
    url = url.strip()
    candidates = [url]
    if url.startswith("/"):
        candidates += [u for s in (server_urls or []) if (u := absolute_url(s, url))]
    for c in list(candidates):
        uri = storage_uri_of(c)
        if uri:
            candidates.append(uri)
    hits = _existing(store, candidates)
    for c in candidates:
        sha = hits.get(c)
        if sha is not None:
            _touches.note(store, sha)
            return path_for(store, sha)
    return None


def store_bytes(store: Store, url: str | Sequence[str], body: bytes, content_type: str | None,
                lock: threading.Lock | None = None) -> str:
    """Put ``body`` in the cache under its SHA-256 and record every name in ``url`` for it."""
    names = [url] if isinstance(url, str) else list(dict.fromkeys(url))
    assert names, "at least one URL"
    ensure_url_index(store)
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
                s.add(MediaCache(sha256=sha, url=names[0], size=len(body), content_type=content_type,
                                 fetched_at=now, last_used_at=now))
                s.flush()
            else:
                row.last_used_at = now
            _record_names(s, sha, names, now)
    finally:
        if lock:
            lock.release()
    return sha


def _record_names(s: Any, sha: str, names: Sequence[str], now: str) -> None:
    for name in names:
        stmt = sqlite_insert(media_urls).values(url=name, sha256=sha, seen_at=now)
        s.execute(stmt.on_conflict_do_update(index_elements=["url"], set_={"sha256": sha, "seen_at": now}))


def add_names(store: Store, sha: str, names: Sequence[str]) -> None:
    """Record more names for bytes already cached (another task naming the same file)."""
    ensure_url_index(store)
    with store.transaction() as s:
        if s.get(MediaCache, sha) is not None:
            _record_names(s, sha, names, now_iso())


def urls_for(store: Store, sha256: str) -> list[str]:
    """Every URL/URI recorded for these bytes."""
    ensure_url_index(store)
    with store.session() as s:
        names = list(s.scalars(select(media_urls.c.url).where(media_urls.c.sha256 == sha256)
                               .order_by(media_urls.c.seen_at, text("media_urls.rowid"))))
        first = s.scalar(select(MediaCache.url).where(MediaCache.sha256 == sha256))
    if first and first not in names:
        names.insert(0, first)
    return names


# -- least recently used ------------------------------------------------------------------------------------
class _Touches:
    """Cache hits noted on the UI thread and written in one small transaction a moment later (off it)."""

    def __init__(self, delay: float = 1.0) -> None:
        self.delay = delay
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[Store, dict[str, str]]] = {}
        self._timer: threading.Timer | None = None

    def note(self, store: Store, sha: str) -> None:
        with self._lock:
            self._pending.setdefault(id(store), (store, {}))[1][sha] = now_iso()
            if self._timer is None:
                self._timer = threading.Timer(self.delay, self._flush_all)
                self._timer.daemon = True
                self._timer.start()

    def _flush_all(self) -> None:
        with self._lock:
            self._timer = None
            stores = [st for st, _ in self._pending.values()]
        for st in stores:
            self.flush(st)

    def flush(self, store: Store) -> int:
        with self._lock:
            entry = self._pending.pop(id(store), None)
        if not entry:
            return 0
        try:
            with store.transaction() as s:
                for sha, stamp in entry[1].items():
                    s.execute(update(MediaCache).where(MediaCache.sha256 == sha, MediaCache.last_used_at < stamp)
                              .values(last_used_at=stamp))
        except Exception:  # noqa: BLE001 - a busy or closed store: the use is not recorded, nothing breaks
            log.debug("media cache: could not record %d uses", len(entry[1]), exc_info=True)
            return 0
        return len(entry[1])


_touches = _Touches()


def flush_touches(store: Store) -> int:
    """Write the cache hits noted so far (done automatically about a second after a hit)."""
    return _touches.flush(store)


def touch(store: Store, sha256: str) -> None:
    with store.transaction() as s:
        row = s.get(MediaCache, sha256)
        if row is not None:
            row.last_used_at = now_iso()


def evict(store: Store, cap_bytes: int) -> int:
    """Remove least recently used files until the cache is within ``cap_bytes``. Returns files removed."""
    ensure_url_index(store)
    flush_touches(store)
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
            s.execute(delete(media_urls).where(media_urls.c.sha256 == row.sha256))
            s.delete(row)
            removed += 1
    return removed


@dataclass(frozen=True)
class CacheUsage:
    files: int
    bytes: int
    urls: int
    cap_bytes: int
    folder: str


def usage(store: Store) -> CacheUsage:
    ensure_url_index(store)
    with store.session() as s:
        files, size = s.execute(select(func.count(), func.coalesce(func.sum(MediaCache.size), 0))
                                .select_from(MediaCache)).one()
        urls = s.scalar(select(func.count()).select_from(media_urls)) or 0
    return CacheUsage(int(files), int(size), int(urls), effective_cap_bytes(store), str(media_dir(store)))


def effective_cap_bytes(store: Store, cap_bytes: int | None = None) -> int:
    """``cap_bytes`` when given; else the ``media_cache_cap_mb`` setting beside the store; else 2 GiB."""
    if cap_bytes:
        return max(cap_bytes, 1)
    try:
        raw = json.loads((store.data_dir / SETTINGS_FILE).read_text(encoding="utf-8"))
        mb = raw.get("media_cache_cap_mb") if isinstance(raw, dict) else None
    except (OSError, ValueError):
        mb = None
    if isinstance(mb, int) and not isinstance(mb, bool) and mb >= MIN_CAP_MB:
        return mb * 1024**2
    return DEFAULT_CAP_BYTES


# -- fetching -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MediaFetchReport:
    fetched: int = 0          # files downloaded
    reused: int = 0           # references whose bytes were already cached under another name
    failed: int = 0
    evicted: int = 0
    messages: tuple[str, ...] = field(default=())  # one per failed reference, for the reviewer


def _objects(store: Store, project_id: int) -> tuple[list[tuple[str, str]], int | None]:
    from app.models.config import parse_config

    with store.session() as s:
        project = s.get(Project, project_id)
        assert project is not None
        xml = project.label_config
        server_project = project.server_id
    cfg = parse_config(xml)
    objs = [(t.tag, t.value) for t in cfg.all_tags if t.tag in MEDIA_TAGS and t.value]
    return objs, server_project


def plan_project(store: Store, server_url: str, project_id: int, task_ids: list[int]) -> list[MediaSource]:
    """The sources to fetch for these tasks' media, one per file (a storage URI once for all its tasks)."""
    objs, server_project = _objects(store, project_id)
    if not objs:
        return []
    by_key: dict[str, MediaSource] = {}
    with store.session() as s:
        for i in range(0, len(task_ids), 500):
            rows = s.execute(select(Task.server_id, Task.data).where(Task.id.in_(task_ids[i:i + 500])))
            for sid, data in rows:
                for tag, ref in _tagged_refs(objs, data or {}):
                    src = plan_source(ref, server_url, task_id=sid, project_id=server_project, tag=tag)
                    if src is None:
                        continue
                    key = src.storage_uri or src.fetch_url
                    old = by_key.get(key)
                    by_key[key] = src if old is None else MediaSource(
                        old.ref, old.fetch_url, tuple(dict.fromkeys(old.aliases + src.aliases)), old.storage_uri,
                        old.tag)
    return list(by_key.values())


def fetch_media(store: Store, client: LSClient, project_id: int, task_ids: list[int], *,
                cap_bytes: int | None = None, cancel: threading.Event | None = None,
                workers: int = 4) -> MediaFetchReport:
    """Download the media of these tasks that are not cached yet, then evict down to the cap. Never raises
    for a single file (a missing image must not fail the pull); :class:`Cancelled` stops it."""
    cap = effective_cap_bytes(store, cap_bytes)
    sources = plan_project(store, client.url, project_id, task_ids)
    if not sources:
        return MediaFetchReport()
    have = _existing(store, [a for src in sources for a in src.aliases])
    todo: list[MediaSource] = []
    reused = 0
    for src in sources:
        known = next((have[a] for a in src.aliases if a in have), None)
        if known is None:
            todo.append(src)
        elif any(a not in have for a in src.aliases):
            add_names(store, known, src.aliases)
            reused += 1
    lock = threading.Lock()

    def one(src: MediaSource) -> str | None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("Media download cancelled.")
        try:
            body, ctype = client.download(src.fetch_url, min(MAX_FILE_BYTES, cap))
        except Cancelled:
            raise
        except SyncError as exc:
            msg = explain(src, exc)
            _note_failure(src, msg)
            log.info("media: %s", msg)
            return msg
        if ctype and ctype.split(";")[0].strip().lower() == "text/html" and src.tag != "HyperText":
            msg = (f"{src.ref} could not be fetched: the server answered with a web page instead of the file "
                   "(a login page or a proxy may be in the way).")
            _note_failure(src, msg)
            return msg
        store_bytes(store, src.aliases, body, ctype, lock)
        _clear_failure(src)
        return None

    messages: list[str] = []
    fetched = 0
    if todo:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="media") as pool:
            for msg in pool.map(one, todo):
                if msg is None:
                    fetched += 1
                else:
                    messages.append(msg)
    evicted = evict(store, cap)
    return MediaFetchReport(fetched, reused, len(messages), evicted, tuple(messages))


def fetch_project_media(store: Store, client: LSClient, project_id: int, task_ids: list[int], *,
                        cap_bytes: int | None = None, cancel: threading.Event | None = None,
                        workers: int = 4) -> tuple[int, int]:
    """:func:`fetch_media` as ``(fetched, failed)`` (what a pull reports)."""
    rep = fetch_media(store, client, project_id, task_ids, cap_bytes=cap_bytes, cancel=cancel, workers=workers)
    return rep.fetched, rep.failed
