"""Task media without Qt: find a task's media, resolve each reference to a local file, check it, and
pre-digest what can be digested without Qt (audio envelopes, time series, sanitised HTML).

Resolution order for a reference found in task data (``"media/screen_03.png"``,
``"/abs/path.wav"``, ``"file:///abs/path.wav"``, ``"/data/local-files/?d=sub/x.png"``,
``"https://bucket/x.png"``...):

1. a content-addressed cache lookup, through hooks registered with :func:`register_cache_lookup`
   (the sync engine stores fetched media by SHA-256 and registers how to find them by URL);
2. ``file://`` URLs and absolute paths as they are;
3. relative paths (and Label Studio ``/data/local-files/?d=`` / ``/data/upload/`` URLs) under the
   project's ``media_root``; a relative path that climbs out of ``media_root`` is refused.

Nothing here touches the network: a remote URL with no cached copy is reported as not available
offline, with the reason a fetch failed when this process tried one (``app.sync.media.failure_reason``),
e.g. a cloud-storage URI the server has no storage for. Decoding images needs Qt and lives in
``app.views.renderers``; everything else is here.

The media cache itself (size, cap, eviction) is managed through :func:`media_cache_info` and
:func:`set_media_cache_cap` (the ``media_cache_cap_mb`` setting; GUI settings dialog and ``reviewdesk media``).
"""

from __future__ import annotations

import contextlib
import csv
import html as html_lib
import io
import math
import os
import re
import threading
import wave
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse
from urllib.request import url2pathname

import numpy as np

from app.models.config import ConfigTag, LabelingConfig

MEDIA_TAGS = {"Image": "image", "Audio": "audio", "AudioPlus": "audio", "Video": "video",
              "TimeSeries": "timeseries", "HyperText": "html", "Paragraphs": "paragraphs", "Text": "text"}
MAX_FILE_BYTES = 2 * 1024**3          # larger files are refused outright
MAX_DECODED_IMAGE_BYTES = 256 * 1024**2  # an image whose full decode exceeds this is only decoded scaled
MAX_DISPLAY_SIDE = 4096               # longest side of a decoded image kept for display

CacheLookup = Callable[[str], "str | os.PathLike[str] | None"]
_cache_lookups: list[CacheLookup] = []
_lock = threading.Lock()


def register_cache_lookup(fn: CacheLookup) -> Callable[[], None]:
    """Add a ``url -> local path | None`` hook (e.g. the SHA-256 media cache); returns an unregister function."""
    with _lock:
        _cache_lookups.append(fn)

    def unregister() -> None:
        with _lock:
            if fn in _cache_lookups:
                _cache_lookups.remove(fn)

    return unregister


@dataclass(frozen=True)
class MediaRef:
    object_name: str
    tag: str
    kind: str            # image | audio | video | timeseries | html | paragraphs | text
    ref: Any             # the task-data value (a string for files; inline data otherwise)

    @property
    def is_file(self) -> bool:
        if not isinstance(self.ref, str) or not self.ref.strip():
            return False
        if self.kind in ("html", "text", "paragraphs"):
            return False
        if self.kind == "timeseries":
            return "\n" not in self.ref
        return True


@dataclass(frozen=True)
class ResolvedMedia:
    ref: MediaRef
    path: str | None
    size: int = 0
    format: str | None = None   # sniffed: png, jpeg, gif, bmp, webp, tiff, wav, mp3, ogg, flac, csv...
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.path is not None

    @property
    def cache_key(self) -> tuple[str, int, int] | None:
        if not self.ok:
            return None
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (self.path, st.st_size, st.st_mtime_ns)


def media_refs(data: Mapping[str, Any], cfg: LabelingConfig) -> list[MediaRef]:
    """The objects of ``cfg`` with the task-data value each one shows (missing keys are skipped)."""
    out = []
    for obj in cfg.objects:
        kind = MEDIA_TAGS.get(obj.tag)
        key = obj.data_key
        if kind is None or key is None or key not in data:
            continue
        out.append(MediaRef(obj.name, obj.tag, kind, data[key]))
    return out


_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "png"), (b"\xff\xd8\xff", 0, "jpeg"), (b"GIF8", 0, "gif"), (b"BM", 0, "bmp"),
    (b"II*\x00", 0, "tiff"), (b"MM\x00*", 0, "tiff"), (b"ID3", 0, "mp3"), (b"OggS", 0, "ogg"),
    (b"fLaC", 0, "flac"), (b"\x1aE\xdf\xa3", 0, "webm"),
)
IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "bmp", "webp", "tiff", "svg"})
AUDIO_FORMATS = frozenset({"wav", "mp3", "ogg", "flac", "m4a", "webm"})


def sniff(path: str | os.PathLike[str]) -> str | None:
    """The file format from its first bytes (``None`` when unknown)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "m4a" if head[8:11] in (b"M4A", b"mp4", b"iso") else "mp4"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "mp3"
    for magic, off, fmt in _MAGIC:
        if head[off:off + len(magic)] == magic:
            return fmt
    text = head.lstrip().lower()
    if text.startswith((b"<svg", b"<?xml")):
        return "svg"
    if text and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "csv" if b"," in head or b"\t" in head else "text"
    return None


_EXPECTED = {"image": IMAGE_FORMATS, "audio": AUDIO_FORMATS, "video": frozenset({"mp4", "webm"}),
             "timeseries": frozenset({"csv", "text"})}


_RESOLVER_LINK = re.compile(r"^/(?:tasks|projects)/\d+/(?:resolve|presign)/")


def _not_cached(ref: str) -> str:
    """Why a remote reference has no local copy, in the reviewer's words."""
    from app.sync.media import failure_reason, is_storage_uri, storage_uri_of

    known = failure_reason(ref)
    if known:
        return known
    uri = ref if is_storage_uri(ref) else storage_uri_of(ref)
    if uri is not None:
        return (f"{uri} is not in the offline media cache: a pull fetches cloud-storage files through the "
                "Label Studio server, which needs that storage connected to the project (Settings → Cloud "
                "Storage).")
    return f"{ref} is not in the offline media cache (a pull with media fetches it)"


def _local_candidate(ref: str, media_root: str | None) -> tuple[Path | None, str | None]:
    """A local path for ``ref`` (or an error message)."""
    parsed = urlparse(ref)
    if parsed.scheme == "file":
        return Path(url2pathname(unquote(parsed.path))), None
    if parsed.scheme.lower() in ("http", "https", "s3", "gs", "azure-blob", "ftp") or _RESOLVER_LINK.match(ref):
        return None, _not_cached(ref)
    if len(parsed.scheme) > 1:  # one letter: a Windows drive
        return None, f"unsupported media reference scheme {parsed.scheme!r}"
    rel: str | None = None
    if ref.startswith("/data/local-files/"):
        rel = (parse_qs(parsed.query).get("d") or [""])[0]
    elif ref.startswith("/data/upload/"):
        rel = ref[len("/data/upload/"):]
    elif os.path.isabs(ref):
        return Path(ref), None
    else:
        rel = unquote(ref)
    if not media_root:
        if ref.startswith(("/data/upload/", "/data/local-files/")):
            return None, _not_cached(ref)
        return None, f"{ref} is a relative path but the project has no media folder"
    root = Path(media_root).resolve()
    cand = (root / rel).resolve()
    if ref.startswith("/data/upload/") and not cand.exists():
        cand = (root / Path(rel).name).resolve()
    if root != cand and root not in cand.parents:
        return None, f"{ref} points outside the project's media folder"
    return cand, None


def resolve_media(ref: MediaRef, media_root: str | None, *,
                  cache_lookup: CacheLookup | None = None, max_bytes: int = MAX_FILE_BYTES) -> ResolvedMedia:
    """Find ``ref``'s bytes on this machine and check them (exists, not empty, not too big, right type)."""
    if not ref.is_file:
        return ResolvedMedia(ref, None, error=None if ref.kind in ("html", "text", "paragraphs", "timeseries")
                             else f"no media reference for {ref.object_name}")
    s = str(ref.ref).strip()
    path: Path | None = None
    error: str | None = None
    for fn in ([cache_lookup] if cache_lookup else []) + list(_cache_lookups):
        try:
            hit = fn(s)
        except Exception:  # noqa: BLE001 - a broken hook must not hide a local file
            hit = None
        if hit:
            path = Path(hit)
            break
    if path is None:
        path, error = _local_candidate(s, media_root)
    if path is None:
        return ResolvedMedia(ref, None, error=error)
    try:
        st = path.stat()
    except FileNotFoundError:
        return ResolvedMedia(ref, str(path), error=f"file not found: {path}")
    except OSError as exc:
        return ResolvedMedia(ref, str(path), error=f"cannot read {path}: {exc.strerror or exc}")
    if not path.is_file():
        return ResolvedMedia(ref, str(path), error=f"not a file: {path}")
    if st.st_size == 0:
        return ResolvedMedia(ref, str(path), 0, error=f"the file is empty (0 bytes): {path.name}")
    if st.st_size > max_bytes:
        return ResolvedMedia(ref, str(path), st.st_size,
                             error=f"the file is too large ({st.st_size / 1024**2:.0f} MB): {path.name}")
    try:
        fmt = sniff(path)
    except OSError as exc:
        return ResolvedMedia(ref, str(path), st.st_size, error=f"cannot read {path.name}: {exc}")
    expected = _EXPECTED.get(ref.kind)
    if expected is not None and fmt not in expected:
        what = fmt or "an unknown format"
        return ResolvedMedia(ref, str(path), st.st_size, fmt,
                             error=f"{path.name} is {what}, not a supported {ref.kind} file")
    return ResolvedMedia(ref, str(path), st.st_size, fmt)


def prefetch_plan(datas: Iterable[Mapping[str, Any]], cfg: LabelingConfig, media_root: str | None, *,
                  limit: int = 3) -> list[ResolvedMedia]:
    """Media files of the next ``limit`` tasks worth decoding ahead (resolved, ok ones only)."""
    out: list[ResolvedMedia] = []
    seen: set[str] = set()
    for i, data in enumerate(datas):
        if i >= limit:
            break
        for ref in media_refs(data, cfg):
            if ref.kind not in ("image", "audio") or not ref.is_file:
                continue
            r = resolve_media(ref, media_root)
            if r.ok and r.path not in seen:
                assert r.path is not None
                seen.add(r.path)
                out.append(r)
    return out


# -- image sizing ------------------------------------------------------------------------------------


def display_size(width: int, height: int, *, max_side: int = MAX_DISPLAY_SIDE,
                 max_bytes: int = MAX_DECODED_IMAGE_BYTES) -> tuple[int, int]:
    """The size to decode an image at: at most ``max_side`` on the long side and ``max_bytes`` as ARGB32."""
    if width <= 0 or height <= 0:
        return width, height
    scale = min(1.0, max_side / max(width, height), math.sqrt(max_bytes / (4.0 * width * height)))
    return max(1, int(width * scale)), max(1, int(height * scale))


# -- audio -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """Min/max per bin of the first channel, normalised to -1..1, for drawing a waveform."""
    duration: float
    sample_rate: int
    channels: int
    mins: np.ndarray
    maxs: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.mins.nbytes + self.maxs.nbytes)


class MediaError(Exception):
    """Media that cannot be shown; the message is for the reviewer."""


def read_wav_envelope(path: str | os.PathLike[str], bins: int = 4000, *,
                      cancel: threading.Event | None = None) -> Envelope:
    """Stream a PCM WAV file into a ``bins``-point min/max envelope (bounded memory for long files)."""
    try:
        wf = wave.open(str(path), "rb")  # noqa: SIM115 - closed by the with below
    except (wave.Error, EOFError) as exc:
        raise MediaError(f"not a readable PCM WAV file ({exc or 'truncated'})") from exc
    with wf:
        ch, width, rate, n = wf.getnchannels(), wf.getsampwidth(), wf.getframerate(), wf.getnframes()
        if n <= 0 or rate <= 0:
            raise MediaError("the WAV file has no audio frames")
        if width not in (1, 2, 3, 4):
            raise MediaError(f"unsupported WAV sample width ({width} bytes)")
        bins = max(1, min(bins, n))
        per_bin = math.ceil(n / bins)
        chunk_frames = per_bin * max(1, 262144 // per_bin)
        mins, maxs = [], []
        scale = float(2 ** (8 * width - 1))
        while True:
            if cancel is not None and cancel.is_set():
                raise MediaError("cancelled")
            raw = wf.readframes(chunk_frames)
            if not raw:
                break
            usable = len(raw) - len(raw) % (width * ch)
            a = _pcm(raw[:usable], width)[::ch] / scale
            if a.size == 0:
                break
            pad = (-a.size) % per_bin
            if pad:
                a = np.concatenate([a, np.full(pad, a[-1])])
            a = a.reshape(-1, per_bin)
            mins.append(a.min(axis=1))
            maxs.append(a.max(axis=1))
        if not mins:
            raise MediaError("the WAV file has no audio frames")
        return Envelope(n / rate, rate, ch, np.concatenate(mins).astype(np.float32),
                        np.concatenate(maxs).astype(np.float32))


def _pcm(raw: bytes, width: int) -> np.ndarray:
    if width == 1:
        return np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0
    if width == 2:
        return np.frombuffer(raw, "<i2").astype(np.float32)
    if width == 4:
        return np.frombuffer(raw, "<i4").astype(np.float32)
    b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
    v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    return np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.float32)


# -- HTML --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SanitizedHtml:
    html: str
    blocked_remote: int   # remote resources (img src, srcset...) neutralised
    changed: bool         # the sanitizer removed something (scripts, handlers, styles with urls...)


_HTML_TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div", "dl", "dt",
              "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol",
              "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot",
              "th", "thead", "tr", "u", "ul"}
_HTML_ATTRS = {"*": {"title", "class", "lang", "dir"}, "a": {"href"}, "img": {"src", "alt", "width", "height"},
               "td": {"colspan", "rowspan", "align"}, "th": {"colspan", "rowspan", "align"}}


def sanitize_html(raw: str) -> SanitizedHtml:
    """Sanitise task HTML with nh3 (ammonia): no scripts, handlers or styles, and no remote loads.

    Only inline ``data:image/...`` images survive; any other ``img src`` is dropped and the image
    replaced by its alt text marker, so showing the HTML never contacts a server.
    """
    import nh3

    blocked = 0

    def attr_filter(tag: str, attr: str, value: str) -> str | None:
        nonlocal blocked
        if tag == "img" and attr == "src":
            if value.strip().lower().startswith("data:image/"):
                return value
            blocked += 1
            return None
        if tag == "a" and attr == "href" and not value.strip().lower().startswith(("http:", "https:", "mailto:", "#")):
            return None
        return value

    clean = nh3.clean(raw, tags=_HTML_TAGS, attributes=_HTML_ATTRS, attribute_filter=attr_filter,
                      url_schemes={"http", "https", "mailto", "data"}, link_rel="noopener noreferrer",
                      strip_comments=True, clean_content_tags={"script", "style"})
    if blocked:
        clean = _IMG_NO_SRC.sub(_blocked_marker, clean)
    return SanitizedHtml(clean, blocked, clean != raw)


_IMG_NO_SRC = re.compile(r"<img\b(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
_ALT = re.compile(r'\balt="([^"]*)"', re.IGNORECASE)


def _blocked_marker(m: re.Match[str]) -> str:
    alt = _ALT.search(m.group(0))
    label = html_lib.escape(html_lib.unescape(alt.group(1))) if alt and alt.group(1) else "image"
    return f'<span class="blocked" title="remote image not loaded">[remote {label} not loaded]</span>'


# -- time series -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeSeriesSpec:
    time_column: str | None
    value_type: str                 # "url" (CSV file) or "json" (inline columns)
    channels: tuple[tuple[str, str, str | None], ...]  # (column, legend, colour)
    sep: str = ","


def timeseries_spec(cfg: LabelingConfig, obj: ConfigTag) -> TimeSeriesSpec:
    """Read the ``<Channel>`` children of a ``<TimeSeries>`` tag (the config parser keeps only named tags)."""
    from defusedxml.ElementTree import fromstring

    channels: list[tuple[str, str, str | None]] = []
    try:
        root = fromstring(cfg.xml)
        for el in root.iter("TimeSeries"):
            if el.attrib.get("name") != obj.name:
                continue
            for ch in el.iter("Channel"):
                col = ch.attrib.get("column")
                if col:
                    channels.append((col, ch.attrib.get("legend") or col, ch.attrib.get("strokeColor")))
    except Exception:  # noqa: BLE001 - a config the parser accepted; channels are best effort
        pass
    return TimeSeriesSpec(obj.attrs.get("timeColumn"), obj.attrs.get("valueType", "url"), tuple(channels),
                          obj.attrs.get("sep", ","))


@dataclass(frozen=True)
class TimeSeriesData:
    time: np.ndarray
    columns: Mapping[str, np.ndarray]


def load_timeseries(value: Any, spec: TimeSeriesSpec, media_root: str | None, obj_name: str = "ts",
                    ) -> TimeSeriesData:
    """Columns of a time series from inline JSON columns, inline CSV text or a CSV file."""
    table: dict[str, list[Any]]
    if isinstance(value, Mapping):
        table = {str(k): list(v) for k, v in value.items() if isinstance(v, Sequence) and not isinstance(v, str)}
    elif isinstance(value, str):
        text = value
        if "\n" not in value:
            r = resolve_media(MediaRef(obj_name, "TimeSeries", "timeseries", value), media_root)
            if not r.ok:
                raise MediaError(r.error or "time series not found")
            assert r.path is not None
            text = Path(r.path).read_text(encoding="utf-8", errors="replace")
        rows = list(csv.reader(io.StringIO(text), delimiter=spec.sep))
        if len(rows) < 2:
            raise MediaError("the time series has no rows")
        header = [h.strip() for h in rows[0]]
        table = {h: [row[i] if i < len(row) else "" for row in rows[1:]] for i, h in enumerate(header)}
    else:
        raise MediaError("the time series value is neither columns nor a CSV file")

    def num(col: list[Any]) -> np.ndarray:
        out = np.full(len(col), np.nan)
        for i, v in enumerate(col):
            with contextlib.suppress(TypeError, ValueError):
                out[i] = float(v)
        return out

    if not table:
        raise MediaError("the time series has no columns")
    wanted = [c for c, _, _ in spec.channels] or [k for k in table if k != spec.time_column]
    missing = [c for c in wanted if c not in table]
    if missing:
        raise MediaError(f"the time series has no column {missing[0]!r}")
    n = len(next(iter(table.values())))
    time = num(table[spec.time_column]) if spec.time_column and spec.time_column in table else np.arange(n, dtype=float)
    return TimeSeriesData(time, {c: num(table[c]) for c in wanted})


# -- the media cache (size cap, eviction) -------------------------------------------------------------------


@dataclass(frozen=True)
class MediaCacheInfo:
    files: int
    bytes: int
    urls: int          # URLs/URIs recorded for those files (the same bytes may have several names)
    cap_mb: int
    folder: str


MAX_CAP_MB = 1024 * 1024  # 1 TiB


def media_cache_info(store: Any) -> MediaCacheInfo:
    """Size of the offline media cache and its cap (the ``media_cache_cap_mb`` setting)."""
    from app.sync.media import usage

    u = usage(store)
    return MediaCacheInfo(u.files, u.bytes, u.urls, u.cap_bytes // 1024**2, u.folder)


def validate_cap_mb(cap_mb: int) -> int:
    from app.sync.media import MIN_CAP_MB

    if isinstance(cap_mb, bool) or not isinstance(cap_mb, int) or not MIN_CAP_MB <= cap_mb <= MAX_CAP_MB:
        raise ValueError(f"The media cache cap must be a whole number of MiB between {MIN_CAP_MB} and "
                         f"{MAX_CAP_MB}.")
    return cap_mb


def set_media_cache_cap(store: Any, cap_mb: int) -> tuple[MediaCacheInfo, int, Any]:
    """Save the cap in the settings and evict least recently used files down to it.

    Returns the cache after eviction, the number of files removed and the :class:`Changes`.
    """
    from app.services.changes import Changes
    from app.services.settings import load_settings, save_settings
    from app.sync.media import evict

    validate_cap_mb(cap_mb)
    settings = load_settings(store.data_dir)
    if settings.media_cache_cap_mb != cap_mb:
        save_settings(store.data_dir, settings.with_(media_cache_cap_mb=cap_mb))
    removed = evict(store, cap_mb * 1024**2)
    return media_cache_info(store), removed, Changes(settings=True)


def apply_media_cache_cap(store: Any) -> int:
    """Evict down to the saved cap (after the settings dialog changed it). Returns files removed."""
    from app.sync.media import effective_cap_bytes, evict

    return evict(store, effective_cap_bytes(store))


def fetch_project_media(store: Any, project_id: int, *, client_factory: Any = None,
                        cancel: threading.Event | None = None) -> Any:
    """Fetch the media of every task of a pulled project that is not cached yet (a pull fetches only the
    media of tasks it changed: this retries the rest, e.g. after a storage was connected on the server).

    Returns :class:`app.sync.media.MediaFetchReport` (``messages`` say why a file is not available).
    Raises ``LookupError`` for a project that did not come from a server.
    """
    from sqlalchemy import select

    from app.models.schema import Project, Server, Task
    from app.services.sync import SyncService
    from app.sync.media import fetch_media

    with store.session() as s:
        project = s.get(Project, project_id)
        if project is None:
            raise LookupError(f"No project {project_id}.")
        server = s.get(Server, project.server_ref) if project.server_ref is not None else None
        if server is None:
            raise LookupError(f"Project {project_id} was not pulled from a server; its media are local files.")
        ids = list(s.scalars(select(Task.id).where(Task.project_id == project_id, Task.deleted.is_(False))))
    svc = SyncService(store, client_factory=client_factory) if client_factory else SyncService(store)
    client = svc.client(server)
    if cancel is not None:
        client.cancel_event = cancel
    return fetch_media(store, client, project_id, ids, cancel=cancel)
