"""Shared helpers of the GUI tests."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QApplication

from app.views.main_window import MainWindow

PRIYA = "priya.shah@example.com"  # the second reviewer of the team tests (user 9001 in ``team_store``)


def wait_for(pred, timeout: float = 60.0) -> None:
    """Spin the event loop with GIL-releasing sleeps until ``pred()`` (QTest.qWait starves worker threads)."""
    app = QApplication.instance()
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError("condition not met")
        app.processEvents()
        time.sleep(0.01)


def reviewed(w: MainWindow) -> None:
    """Wait until the Review tab's session has taken the state a ``Changes`` refresh re-reads in a worker."""
    wait_for(lambda: not w.review.reloading())


def shown_window(qtbot, store, project_id: int | None, size: tuple[int, int] = (1400, 860)) -> MainWindow:
    """The main window on ``project_id``, at ``size``, shown and exposed."""
    w = MainWindow(store, project_id=project_id)
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    qtbot.waitExposed(w)
    return w
