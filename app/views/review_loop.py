"""Small helpers that keep work off the review loop's key press -> next task path (issue 14.3).

- :func:`settle_heap`: once a large queue is open, what the session and the window hold is long-lived;
  moved out of the cycle collector's sight (``gc.freeze``), a full collection during the loop no longer
  walks it (measured: one ~150 ms pause per few hundred presses on a 100k-task queue).
- :class:`BusyMark`: the "writing" look (the header greyed out) only when a commit takes longer than
  ``BUSY_AFTER_MS``; a normal press no longer repaints the header twice.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

LARGE_QUEUE = 10_000  # below this the full collections are short; tests open many small sessions
BUSY_AFTER_MS = 80


def settle_heap(queue_size: int, *, threshold: int = LARGE_QUEUE) -> bool:
    """Collect what is garbage now, then freeze the rest out of later full collections.

    Unfreezes first, so what an earlier freeze kept is looked at again (nothing frozen leaks for good:
    reference counting still frees it; only reference cycles wait for the next settle). Only the young
    generations are collected here: a full collection of a 100k-task heap blocked the UI thread for
    0.1-0.7 s at queue open (issue 14.2's limit is 50 ms); what is old garbage already is frozen with the
    rest until the next settle. Returns whether it ran (a queue of at least ``threshold`` tasks)."""
    if queue_size < threshold:
        return False
    gc.unfreeze()
    gc.collect(1)
    gc.freeze()
    return True


class BusyMark(QObject):
    """Calls ``show(True)`` when a commit is still running after ``after_ms``, ``show(False)`` when done."""

    def __init__(self, show: Callable[[bool], None], parent: QObject | None = None, *,
                 after_ms: int = BUSY_AFTER_MS) -> None:
        super().__init__(parent)
        self._show = show
        self.shown = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(after_ms)
        self._timer.timeout.connect(self._late)

    def _late(self) -> None:
        self.shown = True
        self._show(True)

    def set(self, busy: bool) -> None:
        if busy:
            self._timer.start()
            return
        self._timer.stop()
        if self.shown:
            self.shown = False
            self._show(False)
