"""Decode task media off the UI thread and keep the results in a byte-bounded LRU.

Images are read with ``QImageReader`` at display size (``setScaledSize``; JPEG decodes scaled
natively). An image whose *full* decode would exceed the allocation budget is not decoded at all
when its format can only be scaled after a full decode (PNG, ...): the reviewer gets a message
and a blank canvas of the right aspect ratio, so overlays still show. Audio is reduced to a
min/max envelope (``app.services.media.read_wav_envelope``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QSize, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader

from app.services.media import (
    MAX_DECODED_IMAGE_BYTES,
    Envelope,
    MediaError,
    ResolvedMedia,
    display_size,
    read_wav_envelope,
)
from app.views.worker import Job

NATIVE_SCALED = frozenset({"jpeg"})  # handlers that decode straight to a smaller size


@dataclass(frozen=True)
class DecodedImage:
    image: QImage | None        # None when the image could not be decoded (see ``error``)
    original_width: int
    original_height: int
    error: str | None = None

    @property
    def nbytes(self) -> int:
        return 0 if self.image is None else int(self.image.sizeInBytes())


@dataclass(frozen=True)
class DecodedAudio:
    envelope: Envelope | None
    error: str | None = None

    @property
    def nbytes(self) -> int:
        return 0 if self.envelope is None else self.envelope.nbytes


Decoded = DecodedImage | DecodedAudio


def decode_image(path: str, fmt: str | None, cancel: threading.Event | None = None) -> DecodedImage:
    """Decode ``path`` at display size (runs on a worker thread; QImage is safe off the UI thread)."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    size = reader.size()
    if not size.isValid() or size.isEmpty():
        return DecodedImage(None, 0, 0, f"cannot read the image: {reader.errorString()}")
    w, h = size.width(), size.height()
    dw, dh = display_size(w, h)
    if (dw, dh) != (w, h):
        if fmt not in NATIVE_SCALED and 4 * w * h > MAX_DECODED_IMAGE_BYTES:
            mb = 4 * w * h / 1024**2
            return DecodedImage(None, w, h, f"The image is {w}×{h} px ({mb:,.0f} MB decoded), too large to decode "
                                            "safely; regions are drawn on a blank canvas of its size.")
        reader.setScaledSize(QSize(dw, dh))
    if cancel is not None and cancel.is_set():
        return DecodedImage(None, w, h, "cancelled")
    img = reader.read()
    if img.isNull():
        return DecodedImage(None, w, h, f"cannot decode the image ({reader.errorString()}); the file may be "
                                        "truncated or corrupt.")
    if img.format() not in (QImage.Format.Format_ARGB32_Premultiplied, QImage.Format.Format_RGB32):
        img = img.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied if img.hasAlphaChannel()
                                  else QImage.Format.Format_RGB32)
    return DecodedImage(img, w, h)


def decode_audio(path: str, fmt: str | None, cancel: threading.Event | None = None) -> DecodedAudio:
    if fmt != "wav":
        return DecodedAudio(None, f"No waveform for {fmt or 'this'} audio (WAV only); playback may still work.")
    try:
        return DecodedAudio(read_wav_envelope(path, cancel=cancel))
    except MediaError as exc:
        return DecodedAudio(None, f"cannot read the audio: {exc}")
    except OSError as exc:
        return DecodedAudio(None, f"cannot read the audio: {exc}")


class MediaCache(QObject):
    """Byte-bounded LRU of decoded media plus a small pool that decodes misses in the background."""

    ready = Signal(object, object)  # key, Decoded

    def __init__(self, budget_bytes: int = 768 * 1024**2, threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.budget = budget_bytes
        self._lru: OrderedDict[Any, Decoded] = OrderedDict()
        self._bytes = 0
        self._pending: dict[Any, Job] = {}
        self._waiters: dict[Any, list[Callable[[Decoded], None]]] = {}
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max(1, threads))
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(res: ResolvedMedia) -> Any:
        return (res.ref.kind, res.cache_key)

    def get(self, res: ResolvedMedia) -> Decoded | None:
        k = self.key(res)
        hit = self._lru.get(k)
        if hit is not None:
            self._lru.move_to_end(k)
            self.hits += 1
        return hit

    def _put(self, k: Any, value: Decoded) -> None:
        if k in self._lru:
            self._bytes -= self._lru.pop(k).nbytes
        self._lru[k] = value
        self._bytes += value.nbytes
        while self._bytes > self.budget and len(self._lru) > 1:
            _, old = self._lru.popitem(last=False)
            self._bytes -= old.nbytes

    @property
    def used_bytes(self) -> int:
        return self._bytes

    def request(self, res: ResolvedMedia, callback: Callable[[Decoded], None] | None = None) -> Decoded | None:
        """The decoded media now if cached; otherwise start decoding and call ``callback`` when done."""
        hit = self.get(res)
        if hit is not None:
            return hit
        k = self.key(res)
        if callback is not None:
            self._waiters.setdefault(k, []).append(callback)
        if k in self._pending:
            return None
        self.misses += 1
        path, fmt, kind = res.path or "", res.format, res.ref.kind

        def work(_progress: Any, cancel: threading.Event) -> Decoded:
            return decode_image(path, fmt, cancel) if kind == "image" else decode_audio(path, fmt, cancel)

        job = Job(work)
        job.signals.finished.connect(lambda value, k=k: self._done(k, value))
        job.signals.failed.connect(lambda exc, k=k, kind=kind: self._done(
            k, DecodedImage(None, 0, 0, f"cannot decode: {exc}") if kind == "image"
            else DecodedAudio(None, f"cannot decode: {exc}")))
        self._pending[k] = job
        job.start(self.pool)
        return None

    def _done(self, k: Any, value: Decoded) -> None:
        self._pending.pop(k, None)
        self._put(k, value)
        for cb in self._waiters.pop(k, []):
            cb(value)
        self.ready.emit(k, value)

    def forget_waiters(self) -> None:
        """Drop callbacks of a task no longer shown (decodes still finish into the cache)."""
        self._waiters.clear()

    def wait_idle(self, msecs: int = 30000) -> bool:
        return self.pool.waitForDone(msecs)
