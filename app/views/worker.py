"""Run a Qt-free callable off the UI thread; results and errors come back by signal."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class Cancelled(Exception):
    """Raised inside a job when the user cancelled it."""


class WorkerSignals(QObject):
    progress = Signal(int)
    finished = Signal(object)
    failed = Signal(object)


_LIVE: set[Job] = set()  # running jobs stay referenced until the UI thread has seen their end


class Job(QRunnable):
    """``fn(progress, cancel_event)`` runs on the pool; connect to ``signals`` before ``start``."""

    def __init__(self, fn: Callable[[Callable[[int], None], threading.Event], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = WorkerSignals()
        self.cancel_event = threading.Event()
        self.setAutoDelete(False)

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> None:
        def progress(n: int) -> None:
            if self.cancel_event.is_set():
                raise Cancelled()
            self.signals.progress.emit(int(n))

        try:
            result = self.fn(progress, self.cancel_event)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the UI thread
            self._emit(self.signals.failed, exc)
        else:
            self._emit(self.signals.finished, result)

    @staticmethod
    def _emit(signal: Any, value: object) -> None:
        # the signals object may have gone with its window (closed, or the app quitting): no one to tell
        with contextlib.suppress(RuntimeError):
            signal.emit(value)

    def start(self, pool: QThreadPool | None = None) -> None:
        _LIVE.add(self)
        # released on the UI thread, after the worker is done with the object (never on the worker thread)
        self.signals.finished.connect(self._release)
        self.signals.failed.connect(self._release)
        (pool or QThreadPool.globalInstance()).start(self)

    def _release(self, *_args: object) -> None:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(50, lambda: _LIVE.discard(self))
