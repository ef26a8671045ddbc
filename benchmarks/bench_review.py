"""Decision key press -> next task displayed, on a 100k-task store, beside a bare SQLite commit.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_review.py [--tasks 100000] [--presses 1000]
        [--store DIR] [--profile [N]]

``--store DIR`` builds the store there on the first run and reuses it afterwards (the decisions of earlier
runs stay in it: each run reviews the tasks still open). ``--profile`` prints a cProfile of the press path:
the UI thread (press, finish, refresh, layout, paint) and, apart, the commit on the worker thread.

Drives the real window: a key press on the review panel, the decision written durably on the
worker thread (WAL, synchronous=FULL), then the next task rendered. The baseline is one INSERT +
COMMIT with the same PRAGMAs through sqlite3, measured in the same run on the same disk.
Two rows: "shown" stops when the panel has put the next task into its widgets; "painted" also
waits for Qt to lay it out and paint it (offscreen raster here), which is what the eye sees.
A third row, "settled", keeps processing events until a pass paints nothing: Qt lays nested layouts out
over several event-loop passes, and each pass that moves something paints again (those passes would
otherwise run during the next press's commit).
Goals (issue 14.3): shown p50 <= 8 ms; painted p50 <= 16 ms, p99 <= 33 ms (a quiet 2-core machine).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import table  # noqa: E402
from benchmarks.bench_import import CONFIG, generate  # noqa: E402


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))] * 1000


def bare_commit(folder: Path, n: int) -> list[float]:
    con = sqlite3.connect(folder / "bare.sqlite", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE d (id INTEGER PRIMARY KEY, uuid TEXT, verdict TEXT, at TEXT)")
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        con.execute("BEGIN")
        con.execute("INSERT INTO d (uuid, verdict, at) VALUES (?, 'accept', '2026')", (f"u{i}",))
        con.execute("COMMIT")
        out.append(time.perf_counter() - t0)
    con.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--presses", type=int, default=1000)
    ap.add_argument("--store", type=Path, default=None, help="build the store here once and reuse it")
    ap.add_argument("--profile", type=int, nargs="?", const=25, default=0,
                    help="print the N most expensive functions (cumulative) of the press path")
    args = ap.parse_args()

    from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QObject, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from app.models.store import Store
    from app.services.projects import ProjectService
    from app.views.main_window import MainWindow
    from app.views.review_panel import DecisionTimer

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store_dir = args.store or folder / "store"
        reuse = args.store is not None and (store_dir / "reviewdesk.sqlite").exists()
        store = Store.open(store_dir)
        t0 = time.perf_counter()
        if reuse:
            pid = ProjectService(store).list_projects()[0].id
        else:
            src = folder / "export.json"
            generate(src, args.tasks)
            pid = ProjectService(store).import_file(src, CONFIG, "bench").summary.project_id
        print(f"store with {args.tasks:,} tasks {'reused' if reuse else 'ready'} in {time.perf_counter() - t0:.1f} s"
              f"; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        app = QApplication.instance() or QApplication([])
        t0 = time.perf_counter()
        w = MainWindow(store, project_id=pid)
        w.resize(1400, 860)
        w.show()
        app.processEvents()
        print(f"window + review session open in {time.perf_counter() - t0:.2f} s")
        panel = w.review
        panel.setFocus()
        timer = DecisionTimer(panel)
        painted: list[float] = []
        settled: list[float] = []
        passes: list[int] = []

        class PaintCounter(QObject):
            n = 0

            def eventFilter(self, _obj: Any, event: Any) -> bool:  # noqa: N802 - Qt override
                if event.type() == QEvent.Type.Paint:
                    self.n += 1
                return False

        paints = PaintCounter()
        # wait like the application does (a blocking event loop), not a busy processEvents() spin that
        # would compete with the commit thread for the GIL
        loop = QEventLoop()
        panel.taskShown.connect(lambda _t: loop.quit())
        guard = QTimer()
        guard.setSingleShot(True)
        guard.timeout.connect(loop.quit)
        ui_prof = cProfile.Profile() if args.profile else None
        worker_prof = cProfile.Profile() if args.profile else None
        if worker_prof is not None:
            session_type = type(panel.session)
            plain_commit = session_type.commit

            def profiled_commit(self: Any, pending: Any) -> Any:
                return worker_prof.runcall(plain_commit, self, pending)

            session_type.commit = profiled_commit  # type: ignore[method-assign]
        gc_pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        gc_t0 = [0.0]

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                gc_t0[0] = time.perf_counter()
            else:
                gc_pauses[info["generation"]].append(time.perf_counter() - gc_t0[0])

        gc.callbacks.append(on_gc)
        if ui_prof is not None:
            ui_prof.enable()
        for _ in range(args.presses):
            timer.start()
            t0 = time.perf_counter()
            guard.start(5000)
            QTest.keyClick(panel, Qt.Key.Key_A)
            if timer._t0 is not None:
                loop.exec()
            guard.stop()
            # then let Qt lay out and paint the new task (what the reviewer actually sees), so the
            # next press does not overlap this task's painting with its own commit
            QCoreApplication.sendPostedEvents()
            app.processEvents()
            painted.append(time.perf_counter() - t0)
            # then the passes Qt still has queued (layout requests climbing the tree, delayed item layouts)
            app.installEventFilter(paints)
            done = time.perf_counter()
            n = 0
            for _pass in range(10):
                paints.n = 0
                QCoreApplication.sendPostedEvents()
                app.processEvents()
                if not paints.n:
                    break
                done = time.perf_counter()
                n += 1
            app.removeEventFilter(paints)
            settled.append(done - t0)
            passes.append(n + 1)
        gc.callbacks.remove(on_gc)
        if ui_prof is not None and worker_prof is not None:
            ui_prof.disable()
            type(panel.session).commit = plain_commit  # type: ignore[method-assign]
            for name, prof in (("UI thread", ui_prof), ("worker thread (commit)", worker_prof)):
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(args.profile)
                print(f"--- profile: {name}, {args.presses} presses ---")
                print(out.getvalue())
        samples = timer.samples
        decisions = panel.session.counters().made
        bare = bare_commit(folder, args.presses)
        rows = [("what", "n", "p50 ms", "p99 ms", "max ms"),
                ("key press -> committed -> next task shown", str(len(samples)), f"{pct(samples, 50):.2f}",
                 f"{pct(samples, 99):.2f}", f"{max(samples) * 1000:.2f}"),
                ("  ... -> next task laid out and painted", str(len(painted)), f"{pct(painted, 50):.2f}",
                 f"{pct(painted, 99):.2f}", f"{max(painted) * 1000:.2f}"),
                ("  ... -> settled (no pass paints any more)", str(len(settled)), f"{pct(settled, 50):.2f}",
                 f"{pct(settled, 99):.2f}", f"{max(settled) * 1000:.2f}"),
                ("baseline: bare sqlite3 INSERT+COMMIT (WAL, FULL)", str(len(bare)), f"{pct(bare, 50):.2f}",
                 f"{pct(bare, 99):.2f}", f"{max(bare) * 1000:.2f}")]
        print(table(rows))
        print(f"decisions recorded: {decisions}; mean {statistics.mean(samples) * 1000:.2f} ms; "
              f"issue 14 goals: shown p50 <= 8 ms -> {'met' if pct(samples, 50) <= 8 else 'MISSED'}, "
              f"painted p50 <= 16 ms -> {'met' if pct(painted, 50) <= 16 else 'MISSED'}, "
              f"painted p99 <= 33 ms -> {'met' if pct(painted, 99) <= 33 else 'MISSED'}")
        print(f"painting passes per press: p50 {statistics.median(passes):.0f}, max {max(passes)} "
              f"(1 = everything settled in the first)")
        print("cycle collector during the presses: " + "; ".join(
            f"gen {g}: {len(p)} passes, {sum(p) * 1000:.1f} ms, longest {max(p, default=0) * 1000:.1f} ms"
            for g, p in gc_pauses.items()) + f"; frozen objects {gc.get_freeze_count():,}")
        w.close()
        store.close()


if __name__ == "__main__":
    main()
