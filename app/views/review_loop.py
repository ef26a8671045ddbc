"""Small helpers that keep work off the review loop's key press -> next task path (issue 14.3).

- :func:`settle_heap`: once a large queue is open, what the session and the window hold is long-lived;
  moved out of the cycle collector's sight (``gc.freeze``), a full collection during the loop no longer
  walks it (measured: one ~150 ms pause per few hundred presses on a 100k-task queue).
- :class:`BusyMark`: the "writing" look (the header greyed out) only when a commit takes longer than
  ``BUSY_AFTER_MS``; a normal press no longer repaints the header twice.
- :class:`SteadyTabs`: a tab widget lays itself out again (and repaints ALL of its page) on every layout request
  that climbs to it. Every text change below it sends one (``QLayout::activate`` calls ``updateGeometry`` on its
  widget whether or not anything changed), so each key press repainted the whole review panel two or three more
  times after the first paint, one layout level per event-loop pass. A request that finds nothing the tab widget
  lays out changed is dropped.
- :class:`GrowingLabel`: the counters' width only grows; digits of another width no longer move the splitter
  (and re-wrap every card at a new width) on every press.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer
from PySide6.QtWidgets import QLabel, QTabWidget, QWidget

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


class SteadyTabs(QObject):
    """Event filter on a ``QTabWidget``: drops a ``LayoutRequest`` when nothing its layout reads has changed since
    the last one it let through (its size, the tab bar's and the pages' size hints and limits, the corner widgets,
    the tabs). Install with :meth:`install`; ``dropped`` counts what it saved (tests)."""

    def __init__(self, tabs: QTabWidget) -> None:
        super().__init__(tabs)
        self.tabs = tabs
        self.dropped = 0
        self._last: tuple[Any, ...] | None = None

    @classmethod
    def install(cls, tabs: QTabWidget) -> SteadyTabs:
        f = cls(tabs)
        tabs.installEventFilter(f)
        return f

    def _state(self) -> tuple[Any, ...]:
        t = self.tabs
        bar = t.tabBar()
        stack = t.findChild(QWidget, "qt_tabwidget_stackedwidget")
        corners = tuple((c.sizeHint(), c.minimumSizeHint(), c.isVisibleTo(t)) if c is not None else None
                        for c in (t.cornerWidget(Qt.Corner.TopLeftCorner), t.cornerWidget(Qt.Corner.TopRightCorner)))
        pages = (stack.sizeHint(), stack.minimumSizeHint(), stack.maximumSize()) if stack is not None else ()
        return (t.size(), t.count(), t.currentIndex(), t.tabPosition(), t.documentMode(), bar.sizeHint(),
                bar.minimumSizeHint(), bar.isVisibleTo(t), pages, corners)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if obj is self.tabs and event.type() == QEvent.Type.LayoutRequest:
            state = self._state()
            if state == self._last:
                self.dropped += 1
                return True
            self._last = state
        return False


class GrowingLabel(QLabel):
    """A one-line label whose width hints never shrink (numbers that change on every key press)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._width = 0

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        s = super().sizeHint()
        self._width = max(self._width, s.width())
        return QSize(self._width, s.height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        s = super().minimumSizeHint()
        return QSize(max(self._width, s.width()), s.height())
