"""``reviewdesk --self-test``: open the demo in a temporary store, render each view once offscreen, report.

Made for installers (docs/adr/0016): a frozen build that is missing a Qt plugin, a resource, a migration or a
lazily imported module fails here with a message instead of on a reviewer's desk. Prints one ``OK`` line per
view and exits 0, or one ``FAIL`` line naming the view and the reason and exits 1. Nothing outside a
temporary folder is touched (the user's store and settings are not opened).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any, TextIO

VIEW_TIMEOUT_S = 120.0


class SelfTestError(Exception):
    pass


def _wait(pred: Callable[[], bool], what: str, timeout: float = VIEW_TIMEOUT_S) -> None:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise SelfTestError(f"{what} did not happen within {timeout:.0f} s")
        assert app is not None
        app.processEvents()
        time.sleep(0.01)


def _painted(widget: object, what: str) -> str:
    """Render ``widget`` into an image; it must have a size and more than one colour (not a blank rectangle)."""
    from PySide6.QtWidgets import QWidget

    assert isinstance(widget, QWidget)
    img = widget.grab().toImage()
    if img.isNull() or img.width() < 50 or img.height() < 50:
        raise SelfTestError(f"{what} rendered no image ({img.width()}x{img.height()})")
    step_x, step_y = max(1, img.width() // 40), max(1, img.height() // 40)
    colours = {img.pixel(x, y) for x in range(0, img.width(), step_x) for y in range(0, img.height(), step_y)}
    if len(colours) < 3:
        raise SelfTestError(f"{what} rendered a blank image")
    return f"{img.width()}x{img.height()} px"


# the offscreen platform's note when a window is shown; says nothing about the app
_OFFSCREEN_NOTES = ("This plugin does not support propagateSizeHints()",)


def _quiet_offscreen_notes() -> Any:
    """Drop the offscreen plugin's known notes; every other Qt message goes to the previous handler."""
    from PySide6.QtCore import qInstallMessageHandler

    previous: list[Any] = []

    def handler(mode: object, context: object, message: str) -> None:
        if message in _OFFSCREEN_NOTES:
            return
        if callable(previous[0]):
            previous[0](mode, context, message)
        else:
            print(message, file=sys.stderr)

    previous.append(qInstallMessageHandler(handler))
    return previous[0]


def _settle(app: object) -> None:
    from PySide6.QtCore import QThreadPool
    from PySide6.QtWidgets import QApplication

    assert isinstance(app, QApplication)
    for _ in range(3):
        QThreadPool.globalInstance().waitForDone(30_000)
        app.processEvents()


def run_self_test(out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from app import __version__

    started = time.monotonic()
    view = "start"
    previous = _quiet_offscreen_notes()
    try:
        existing = QApplication.instance()
        app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
        from app.models.store import Store
        from app.services.demo import ensure_demo
        from app.views.main_window import MainWindow

        with tempfile.TemporaryDirectory(prefix="reviewdesk-selftest-") as tmp:
            view = "store"
            t0 = time.monotonic()
            store = Store.open(tmp)
            window = None
            try:
                project_id = ensure_demo(store)
                print(f"OK store: demo project imported into a temporary store ({time.monotonic() - t0:.1f} s)",
                      file=out, flush=True)
                view = "window"
                window = MainWindow(store, project_id=project_id)
                window.resize(1280, 800)
                window.show()
                _steps(app, window, out)
            finally:
                _settle(app)  # background jobs (sync status, dashboard, media) finish before the store closes
                if window is not None:
                    window.close()
                    window.deleteLater()
                _settle(app)
                store.close()
    except Exception as exc:  # noqa: BLE001 - the self-test reports every failure in one line
        if os.environ.get("REVIEWDESK_DEBUG"):
            traceback.print_exc(file=err)
        print(f"FAIL {view}: {type(exc).__name__}: {exc}", file=err, flush=True)
        return 1
    finally:
        from PySide6.QtCore import qInstallMessageHandler

        qInstallMessageHandler(previous)
    print(f"OK self-test: reviewdesk {__version__}, Qt platform {QApplication.platformName()}, "
          f"{time.monotonic() - started:.1f} s", file=out, flush=True)
    return 0


def _steps(app: object, window: object, out: TextIO) -> None:
    from app.views.main_window import MainWindow

    assert isinstance(window, MainWindow)
    # Review: the first task of the demo, drawn by its renderers (text, image, audio waveform)
    t0 = time.monotonic()
    window.tabs.setCurrentWidget(window.review)
    _wait(lambda: bool(window.review.task_view.renderers), "the review view showing a task")
    kinds = sorted({type(r).__name__ for r in window.review.task_view.renderers.values()})
    size = _painted(window.review, "the review view")
    print(f"OK review: {', '.join(kinds)} ({size}, {time.monotonic() - t0:.1f} s)", file=out, flush=True)
    # Tasks: the virtualised list of the project
    t0 = time.monotonic()
    window.tabs.setCurrentWidget(window.browse)
    _wait(lambda: window.task_model.rowCount() > 0, "the task list filling")
    size = _painted(window.browse, "the task list")
    print(f"OK tasks: {window.task_model.rowCount()} rows ({size}, {time.monotonic() - t0:.1f} s)", file=out,
          flush=True)
    # Dashboard: agreement numbers computed off the UI thread, heatmap painted
    t0 = time.monotonic()
    done: list[bool] = []
    window.dashboard.computed.connect(lambda: done.append(True))
    window.tabs.setCurrentWidget(window.dashboard)
    window.dashboard.refresh(force=True)
    _wait(lambda: bool(done), "the dashboard computing its numbers")
    size = _painted(window.dashboard, "the dashboard")
    print(f"OK dashboard: computed and painted ({size}, {time.monotonic() - t0:.1f} s)", file=out, flush=True)
    # the whole window once more, with menus and status bar
    size = _painted(window, "the main window")
    print(f"OK window: {size}", file=out, flush=True)
