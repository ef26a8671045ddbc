"""QA lead dashboard: heatmap, dimension difficulty, per-annotator quality, model leaderboard.

A statistic selector switches the upper half between percent agreement (the heatmap), Cohen's kappa per
evaluator pair (heatmap on a diverging −1..1 scale), Krippendorff's alpha and Fleiss' kappa per dimension (a
table). Kappa, alpha and Fleiss are computed off the UI thread by :mod:`app.services.statistics`, the numbers of
``reviewdesk metrics --stat kappa|alpha``.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.models.store import Store
from app.services.changes import Changes
from app.services.dashboard import (
    Dashboard,
    cached_dashboard,
    compute_dashboard,
    disagreeing_tasks,
    drill_tolerances,
    export_csv,
    load_frames,
    prewarm_metrics_process,
    refresh_dashboard,
)
from app.services.review import QueueFilter
from app.services.statistics import STATISTICS, Statistics, compute_statistics, export_statistics_csv
from app.views.calibration_panel import CalibrationResults
from app.views.heatmap import HeatmapWidget, short_name
from app.views.theme import tone
from app.views.worker import Job

log = logging.getLogger(__name__)
FIRST_STEP_MS = 40  # the pause between the heatmap's paint and the first step that fills the rest

DEBOUNCE_MS = 800


def sparkline(values: list[float], alarms: list[bool], width: int = 90, height: int = 20) -> QPixmap:
    pm = QPixmap(width, height)
    pm.fill(Qt.GlobalColor.transparent)
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if len(vals) < 2:
        return pm
    buckets = width - 4
    if len(values) > buckets:  # one point per pixel column: bucket means, alarm if any in the bucket
        arr = np.asarray(values, dtype=float)
        al = np.asarray(alarms, dtype=bool)
        edges = np.linspace(0, len(arr), buckets + 1).astype(int)
        values = [float(np.nanmean(arr[a:b])) if b > a else math.nan for a, b in zip(edges[:-1], edges[1:],
                                                                                     strict=True)]
        alarms = [bool(al[a:b].any()) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(QPen(QColor("#9aa4b2"), 1, Qt.PenStyle.DotLine))
    p.drawLine(0, 2, width, 2)  # 100 %
    n = len(values)
    pts = []
    for i, v in enumerate(values):
        x = 2 + (width - 4) * i / max(n - 1, 1)
        y = 2 + (height - 4) * (1 - (0 if v is None or math.isnan(v) else v))
        pts.append((x, y))
    p.setPen(QPen(QColor("#2f6fdf"), 1.4))
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        p.drawLine(int(x0), int(y0), int(x1), int(y1))
    first_alarm = next((i for i, a in enumerate(alarms) if a), None)
    if first_alarm is not None:
        x, y = pts[first_alarm]
        p.setPen(QPen(QColor("#c62828"), 1))
        p.setBrush(QColor("#c62828"))
        p.drawEllipse(int(x) - 3, int(y) - 3, 6, 6)
    p.end()
    return pm


def _pct(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * float(v):.1f}%"


def _rate(v: Any, n: Any) -> str:
    """A share with the count it is a share of: ``67% of 3`` (empty without any)."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or not n:
        return ""
    return f"{100 * float(v):.0f}% of {int(n)}"


def _coef(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


STAT_TITLES = {
    "kappa": "Cohen's κ",
    "alpha": "Krippendorff's α",
    "fleiss": "Fleiss' κ",
}


MODE_TIP = ("Aggregation (Alt+A): Pairwise = the mean over the tasks both evaluators answered; Consensus = each "
            "evaluator against the majority of the others")

def prewarm_in_background(store: Store, project_id: int | None) -> None:
    """Start the metrics process of a large project (``prewarm_metrics_process``) from a plain thread: its
    size check reads the store, and the shared worker pool is busy with the window's first jobs (the review
    session, the queue counts) exactly when a project opens. ``None``: the project a new window opens first
    (the first of the project list). Idempotent; errors are logged, never shown."""

    def run() -> None:
        try:
            pid = project_id
            if pid is None:
                from app.services.projects import ProjectService

                first = ProjectService(store).list_projects(counts=False)[:1]
                pid = first[0].id if first else None
            if pid is not None:
                prewarm_metrics_process(store, pid)
        except Exception:  # noqa: BLE001 - an optimisation: the dashboard computes without it
            log.debug("metrics process not started ahead", exc_info=True)

    threading.Thread(target=run, name="reviewdesk-prewarm", daemon=True).start()


class DashboardPanel(QWidget):
    openQueue = Signal(object)  # QueueFilter
    computed = Signal()  # numbers are current
    shown = Signal()  # numbers painted (maybe from the cache, still being checked)
    message = Signal(str)  # for the window's status bar ("Wrote …"): never an inline label that widens the window

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dashboardPanel")
        self.store = store
        self.project_id: int | None = None
        self.data: Dashboard | None = None
        self._job: Job | None = None
        # (mode, version) of cached numbers on screen, checked once the screen is filled (_pump)
        self._pending_check: tuple[str, tuple[Any, ...]] | None = None
        self._running: set[Job] = set()  # keeps superseded jobs alive until their thread ends
        self._stale = False
        self.as_of: str | None = None  # an audit event id or time: numbers as they were then (ADR 0015)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.refresh)

        self.dimension = QComboBox()
        self.dimension.setObjectName("dimension")
        # a fixed minimum, not the longest item: a new dimension list must never widen the window
        self.dimension.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.dimension.setMinimumContentsLength(14)
        self.dimension.currentIndexChanged.connect(self._dimension_changed)
        self.statistic = QComboBox()
        self.statistic.setObjectName("statistic")
        for key, label in STATISTICS:
            self.statistic.addItem(label, key)
        self.statistic.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.statistic.setMinimumContentsLength(16)
        self.statistic.setToolTip("Which statistic the upper half shows (Alt+S)")
        self.statistic.currentIndexChanged.connect(self._statistic_changed)
        self.stats: Statistics | None = None
        self._stats_job: Job | None = None
        self._stats_again = False
        self.mode = QComboBox()
        self.mode.setObjectName("mode")
        # short names that fit the combo at 1024 px; what each means is on hover
        self.mode.addItem("Pairwise", "pairwise")
        self.mode.setItemData(0, "Each cell: the mean agreement over the tasks both evaluators answered",
                              Qt.ItemDataRole.ToolTipRole)
        self.mode.addItem("Consensus", "consensus")
        self.mode.setItemData(1, "Each evaluator against the majority answer of the others",
                              Qt.ItemDataRole.ToolTipRole)
        self.mode.setToolTip(MODE_TIP)
        self.mode.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.mode.setMinimumContentsLength(12)
        self.mode.currentIndexChanged.connect(self.refresh)
        self.progress = QProgressBar()
        # a fixed slot kept while hidden: showing it no longer relayouts the row, which painted the bar over
        # the "Computing…" caption (or, before the first layout, as a large block at the top left)
        self.progress.setFixedWidth(56)
        policy = QSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        policy.setRetainSizeWhenHidden(True)
        self.progress.setSizePolicy(policy)
        self.progress.setTextVisible(False)
        self.progress.setRange(0, 0)
        self.progress.hide()
        self.status = QLabel()
        self.status.setObjectName("dashboardStatus")
        # captions wrap inside the width they are given; their length never sets the window's width
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status.setMinimumWidth(40)
        # one button with a menu: the top row stays narrow enough for a 1024-pixel window
        export_btn = QPushButton("&Export")
        export_btn.setObjectName("exportButton")
        export_menu = QMenu(export_btn)
        export_menu.addAction("Tables as &CSV…", self.export_csv_dialog)
        export_menu.addAction("Picture as &PNG…", self.export_png_dialog)
        export_menu.addSeparator()
        # reproduce reported numbers from the audit trail; in the Export menu so the top row stays narrow
        export_menu.addAction("Numbers &as of an audit point…", self.as_of_dialog)
        self.now_action = export_menu.addAction("Back to the numbers &now", lambda: self.set_as_of(None))
        self.now_action.setEnabled(False)
        export_btn.setMenu(export_menu)
        export_btn.setToolTip("Export the tables as CSV files, or what the upper half shows as a PNG picture")
        self.export_button = export_btn
        top = QHBoxLayout()
        top.addWidget(self._buddy("&Statistic", self.statistic))
        top.addWidget(self.statistic)
        top.addWidget(self._buddy("&Dimension", self.dimension))
        top.addWidget(self.dimension)
        top.addWidget(self._buddy("&Aggregation", self.mode))
        top.addWidget(self.mode)
        top.addWidget(self.progress)
        top.addWidget(self.status, 1)
        top.addWidget(export_btn)

        self.heatmap = HeatmapWidget()
        self.heatmap.cellClicked.connect(self._drill_down)
        self.title = QLabel()
        self.title.setObjectName("heatmapTitle")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.difficulty = pg.PlotWidget(background=tone().card)
        self.difficulty.setObjectName("difficulty")
        self.difficulty.setMenuEnabled(False)
        self.difficulty.setMouseEnabled(x=False, y=False)
        self.difficulty.hideButtons()
        self._title_difficulty()
        for side in ("left", "bottom"):
            ax = self.difficulty.getAxis(side)
            ax.setPen(pg.mkPen(tone().muted))
            ax.setTextPen(pg.mkPen(tone().ink))

        self.annotators = QStandardItemModel(self)
        self.annotator_view = QTableView()
        self.annotator_view.setObjectName("annotatorTable")
        proxy = QSortFilterProxyModel(self)
        proxy.setSourceModel(self.annotators)
        proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.annotator_proxy = proxy
        self.annotator_view.setModel(proxy)
        self.annotator_view.setSortingEnabled(True)
        self.annotator_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.annotator_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.annotator_view.verticalHeader().setVisible(False)
        self.annotator_view.doubleClicked.connect(self._annotator_queue)
        self.models = QStandardItemModel(self)
        self.model_view = QTableView()
        self.model_view.setObjectName("leaderboard")
        self.model_view.setModel(self.models)
        self.model_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.model_view.verticalHeader().setVisible(False)

        tables = QTabWidget()
        tables.addTab(self.annotator_view, "Annotators (double-click: review their work)")
        tables.addTab(self.model_view, "Model versions vs ground truth")
        self.calibration = CalibrationResults(store)  # issue 15: each reviewer's calibration, per dimension
        tables.addTab(self.calibration, "Calibration")
        self.tables = tables
        # alpha and Fleiss' kappa: one row per dimension (and overall)
        self.stat_model = QStandardItemModel(self)
        self.stat_table = QTableView()
        self.stat_table.setObjectName("statTable")
        self.stat_table.setModel(self.stat_model)
        self.stat_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.stat_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.stat_table.verticalHeader().setVisible(False)
        self.stat_table.setWordWrap(False)
        self.stat_table.horizontalHeader().setStretchLastSection(True)
        self.stat_note = QLabel()  # a dimension kappa is not computed on, or "computing…"
        self.stat_note.setObjectName("statNote")
        self.stat_note.setWordWrap(True)
        self.stat_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stat_note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.heatmap)
        self.stack.addWidget(self.stat_table)
        self.stack.addWidget(self.stat_note)
        hm = QWidget()
        hl = QVBoxLayout(hm)
        hl.setContentsMargins(0, 0, 0, 0)
        self.title.setWordWrap(True)
        hl.addWidget(self.title)
        hl.addWidget(self.stack, 1)
        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.addWidget(tables)
        lower.addWidget(self.difficulty)
        lower.setSizes([800, 400])
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(hm)
        split.addWidget(lower)
        split.setSizes([520, 320])
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(split, 1)
        # keyboard order follows the top row left to right, then the statistic's view, then the tables
        order: list[QWidget] = [self.statistic, self.dimension, self.mode, export_btn, self.heatmap,
                                self.stat_table, tables, self.annotator_view]
        for a, b in zip(order, order[1:], strict=False):
            QWidget.setTabOrder(a, b)

    @staticmethod
    def _buddy(text: str, widget: QWidget) -> QLabel:
        label = QLabel(text)
        label.setBuddy(widget)  # Alt + the underlined letter focuses the selector
        return label

    # -- lifecycle --------------------------------------------------------------------------------
    def open_project(self, project_id: int | None) -> None:
        self.project_id = project_id
        self.data = None
        self._pending_check = None
        self.calibration.open_project(project_id)
        if project_id is not None and self.isVisible():
            self.refresh()
        else:
            self._stale = True

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._stale:
            self.refresh()

    def apply(self, changes: Changes) -> None:
        """Debounced refresh when decisions or a sync changed the numbers (not while showing them as of a
        past audit point: those do not change)."""
        self.calibration.apply(changes)
        if self.as_of is not None:
            return
        if changes.decisions or changes.annotations or changes.ground_truth or changes.tasks:
            if self.isVisible():
                self._debounce.start()
            else:
                self._stale = True

    def refresh(self, *, force: bool = False) -> None:
        """Paint the cached numbers first (if any), then bring them up to date off the UI thread."""
        if self.project_id is None:
            return
        self._stale = False
        mode = self.mode.currentData()
        if self.as_of is not None:
            self._refresh_as_of(mode, self.as_of)
            return
        if self.data is None or self.data.project_id != self.project_id or self.data.mode != mode:
            self._read_cached(mode)
            return
        self._recompute(mode, None)  # data changed (debounced refresh) or asked for: recompute

    def _read_cached(self, mode: str) -> None:
        """The last computed numbers from the on-disk cache, unpickled in a worker (12+ ms on the UI thread for
        a 1M-annotation project), painted as soon as they are read; then checked or computed."""
        self._pending_check = None
        if self._job is not None:
            self._job.cancel()
        pid, store = self.project_id, self.store
        assert pid is not None
        job = Job(lambda _progress, _cancel: cached_dashboard(store, pid, mode, check=False))
        self._job = job
        self._running.add(job)
        self.progress.show()
        if self.data is None:
            self._waiting("Opening the last computed numbers…")
        job.signals.finished.connect(lambda d: self._cached_read(job, pid, mode, d))
        job.signals.failed.connect(lambda exc: self._failed(job, exc))
        job.start()

    def _waiting(self, text: str) -> None:
        """Nothing to show yet: say what is being done where the numbers will be (not empty axes)."""
        self.status.setText(text)
        self.title.setText("")
        self.stack.setCurrentWidget(self.stat_note)
        self.stat_note.setText(text)

    def _cached_read(self, job: Job, pid: int, mode: str, cached: Dashboard | None) -> None:
        self._running.discard(job)
        if job is not self._job:
            return  # a newer refresh replaced this one
        self._job = None
        if pid != self.project_id or mode != self.mode.currentData() or self.as_of is not None:
            self.progress.hide()
            return  # another project, aggregation or cut-off since: its own refresh reads its numbers
        if cached is not None:
            # painted first; checked for changes when the screen is filled: the check's reads in a worker
            # while the first paints ran made the longest UI gap of a warm open (issue 14)
            self._pending_check = (mode, cached.version)
            self._show(cached)
            if getattr(self, "_filling", None) is None:
                self._start_pending_check()
        else:
            self._recompute(mode, None)

    def _start_pending_check(self) -> None:
        pending, self._pending_check = self._pending_check, None
        if pending is not None and self.as_of is None and pending[0] == self.mode.currentData():
            self._recompute(*pending)

    def _recompute(self, mode: str, known: tuple[Any, ...] | None) -> None:
        """Compute the numbers in a worker, unless the data still has version ``known`` (what is painted)."""
        self._pending_check = None  # superseded
        if self._job is not None:
            self._job.cancel()
        pid, store = self.project_id, self.store
        assert pid is not None
        job = Job(lambda _progress, cancel: refresh_dashboard(store, pid, mode=mode, known=known, cancel=cancel))
        self._job = job
        self._running.add(job)
        self.progress.show()
        if self.data is None:
            self._waiting("Computing agreement…")
        job.signals.finished.connect(lambda d: self._done(job, d))
        job.signals.failed.connect(lambda exc: self._failed(job, exc))
        job.start()
        if known is not None:
            self.status.setText("Showing the last computed numbers; checking for changes…")

    def as_of_dialog(self) -> None:
        """Ask for an audit event id or an ISO 8601 time and show the numbers as they were right after it."""
        from PySide6.QtWidgets import QInputDialog

        text, ok = QInputDialog.getText(
            self, "Numbers as of an audit point",
            "Audit event id (reviewdesk audit log) or time, e.g. 2026-12-05T08:00:00Z:", text=self.as_of or "")
        if ok and text.strip():
            self.set_as_of(text.strip())

    def set_as_of(self, spec: str | None) -> None:
        """Show the numbers as of an audit point (``None``: as they are now) and recompute."""
        self.as_of = spec
        self.now_action.setEnabled(spec is not None)
        self.data = None
        self.stats = None
        if self.project_id is not None:
            self.refresh(force=True)

    def _refresh_as_of(self, mode: str, spec: str) -> None:
        if self._job is not None:
            self._job.cancel()
        pid, store = self.project_id, self.store
        assert pid is not None
        job = Job(lambda _progress, _cancel: compute_dashboard(store, pid, mode=mode, save=False, as_of=spec))
        self._job = job
        self._running.add(job)
        self.progress.show()
        self.status.setText(f"Computing the numbers as of {spec}…")
        job.signals.finished.connect(lambda d: self._done(job, d))
        job.signals.failed.connect(lambda exc: self._failed(job, exc))
        job.start()

    def _as_of_note(self, d: Dashboard) -> str:
        a = d.as_of
        if not a:
            return ""
        note = f"As of audit event {a['event_id']} ({a['at']})"
        return note + ("" if a["exact"] else " — not exact: later pulls changed annotations the store cannot rewind")

    def busy(self) -> bool:
        return (self._job is not None or self._stats_job is not None or self._pending_check is not None
                or getattr(self, "_filling", None) is not None)

    def _done(self, job: Job, d: Dashboard | None) -> None:
        self._running.discard(job)
        if job is not self._job:
            return
        self._job = None
        self.progress.hide()
        if d is None:  # the painted numbers are current
            self.status.setText(" · ".join(self.data.notes) if self.data else "")
            if getattr(self, "_filling", None) is None:
                self.computed.emit()
            return
        self._show(d)

    def _show(self, d: Dashboard) -> None:
        self.data = d
        current = self.dimension.currentData()
        self.dimension.blockSignals(True)
        self.dimension.clear()
        self.dimension.addItem("All dimensions (mean)", None)
        for c in d.controls:
            if c in d.matrices:
                self.dimension.addItem(c, c)
        idx = self.dimension.findData(current)
        self.dimension.setCurrentIndex(max(idx, 0))
        self.dimension.blockSignals(False)
        self.status.setText(" · ".join(x for x in (self._as_of_note(d), *d.notes) if x))
        self._draw_current()
        self.shown.emit()
        # the rest is filled in small steps so the event loop never waits long (large projects); the first
        # after a pause, so the heatmap is laid out and painted in a pass of its own
        self._filling = self._fill_steps(d)
        QTimer.singleShot(FIRST_STEP_MS, self, self._pump)  # cancelled with the panel

    def _dimension_changed(self) -> None:
        self._draw_current()
        if self.data is not None:  # the annotator table follows the dimension
            restart = getattr(self, "_filling", None) is None
            self._filling = self._fill_steps(self.data)
            if restart:
                QTimer.singleShot(0, self, self._pump)  # cancelled with the panel

    def _fill_steps(self, d: Dashboard) -> Any:
        self._draw_difficulty()
        yield
        self._fill_models()
        yield
        yield from self._fill_annotators()

    def _pump(self) -> None:
        steps = getattr(self, "_filling", None)
        if steps is None:
            return
        try:
            next(steps)
        except StopIteration:
            self._filling = None
            if self._pending_check is not None:
                self._start_pending_check()
            if self._job is None:
                self.computed.emit()
            return
        QTimer.singleShot(0, self, self._pump)  # cancelled with the panel

    def _failed(self, job: Job, exc: BaseException) -> None:
        self._running.discard(job)
        if job is not self._job:
            return
        self._job = None
        self.progress.hide()
        self.status.setText(f"Could not compute the dashboard: {exc}")
        if self.as_of is not None:  # a bad cut-off: the numbers shown (if any) are not as of it
            self.as_of = None
            self.now_action.setEnabled(False)

    # -- drawing -------------------------------------------------------------------------------------
    def current_control(self) -> str | None:
        return self.dimension.currentData()

    def current_matrix(self) -> Any:
        if self.data is None:
            return None
        return self.data.matrices.get(self.current_control())

    def current_statistic(self) -> str:
        return str(self.statistic.currentData() or "agreement")

    def _statistic_changed(self) -> None:
        agreement = self.current_statistic() == "agreement"
        self.mode.setEnabled(agreement)
        self.mode.setToolTip(MODE_TIP if agreement else "Aggregation applies to percent agreement only")
        self._draw_current()

    def _draw_current(self) -> None:
        stat = self.current_statistic()
        if stat == "agreement":
            self.stack.setCurrentWidget(self.heatmap)
            self._draw_matrix()
            return
        if self.project_id is None:
            return
        st = self.stats
        if st is None or st.project_id != self.project_id or (self.data is not None and st.version != self.data.version):
            self._request_stats()
            return
        if stat == "kappa":
            self._draw_kappa(st)
        else:
            self._draw_stat_table(st, stat)

    def _request_stats(self) -> None:
        """Compute kappa/alpha/Fleiss off the UI thread (once per data version); draw when they arrive."""
        if self.project_id is None:
            return
        if self._stats_job is not None:  # asked again while computing (new data, other project): once more after
            self._stats_again = True
            return
        self._stats_again = False
        self.stack.setCurrentWidget(self.stat_note)
        self.stat_note.setText(f"Computing {STAT_TITLES.get(self.current_statistic(), 'the statistic')}…")
        self.title.setText(f"<b>{STAT_TITLES.get(self.current_statistic(), '')}</b>")
        pid, store, as_of = self.project_id, self.store, self.as_of
        job = Job(lambda _progress, _cancel: _statistics(store, pid, as_of))
        self._stats_job = job
        self._running.add(job)
        self.progress.show()
        job.signals.finished.connect(lambda st: self._stats_done(job, st))
        job.signals.failed.connect(lambda exc: self._stats_failed(job, exc))
        job.start()

    def _stats_done(self, job: Job, st: Statistics) -> None:
        self._running.discard(job)
        if job is not self._stats_job:
            return
        self._stats_job = None
        if self._job is None:
            self.progress.hide()
        if self._stats_again and self.current_statistic() != "agreement":
            self._stats_again = False
            self.stats = st if st.project_id == self.project_id else self.stats
            self._draw_current()  # computes again only when what was asked for is not what arrived
            if self._stats_job is None and self._job is None and getattr(self, "_filling", None) is None:
                self.computed.emit()
            return
        if st.project_id != self.project_id:
            return
        self.stats = st
        if self.current_statistic() != "agreement":
            stat = self.current_statistic()
            if stat == "kappa":
                self._draw_kappa(st)
            else:
                self._draw_stat_table(st, stat)
        if self._job is None and getattr(self, "_filling", None) is None:
            self.computed.emit()

    def _stats_failed(self, job: Job, exc: BaseException) -> None:
        self._running.discard(job)
        if job is not self._stats_job:
            return
        self._stats_job = None
        if self._job is None:
            self.progress.hide()
        self.stack.setCurrentWidget(self.stat_note)
        self.stat_note.setText(f"Could not compute {STAT_TITLES.get(self.current_statistic(), 'it')}: {exc}")

    def _draw_kappa(self, st: Statistics) -> None:
        control = self.current_control()
        view = st.kappa.get(control)
        what = control or "all categorical dimensions (mean)"
        if view is None or view.matrix is None:
            self.stack.setCurrentWidget(self.stat_note)
            why = view.note if view is not None else "no categorical dimension"
            self.title.setText(f"<b>Cohen's κ — {what}</b>")
            self.stat_note.setText(f"Cohen's κ is not computed on {what}: {why}.")
            return
        self.stack.setCurrentWidget(self.heatmap)
        self.heatmap.set_matrix(view.matrix, min_overlap=self.data.min_overlap if self.data else 1,
                                reasons=view.reasons)
        extra = "" if control else f" ({', '.join(st.kappa_controls)})"
        self.title.setText(f"<b>Cohen's κ — {what}</b>{extra} · unweighted, row vs column over the tasks both "
                           "answered · 0 = chance, 1 = perfect, below 0 = worse than chance · n/a: undefined "
                           "(hover for why) · as <tt>reviewdesk metrics --stat kappa</tt>")

    def _draw_stat_table(self, st: Statistics, stat: str) -> None:
        self.stack.setCurrentWidget(self.stat_table)
        model = self.stat_model
        model.clear()
        n_models = sum(1 for e in st.evaluators if e.startswith("model:"))
        who = f"{len(st.evaluators) - n_models} annotators and {n_models} model versions"
        rows: list[list[QStandardItem]] = []
        if stat == "alpha":
            headers = [("Dimension", ""), ("Scale", "Level of measurement Krippendorff's α uses"),
                       ("α, all evaluators", f"Over all {who}, as reviewdesk metrics --stat alpha"),
                       ("α, annotators only", "Over the annotators only: the α of the difficulty chart below"),
                       ("Why n/a", "")]
            for dim in st.dimensions:
                why = dim.alpha_reason or dim.alpha_annotators_reason or ""
                rows.append(self._stat_row([dim.control, dim.level or "—", (_coef(dim.alpha), dim.alpha_reason),
                                            (_coef(dim.alpha_annotators), dim.alpha_annotators_reason), why]))
            overall = self._stat_row(["Overall", "mean", (_coef(st.overall_alpha), st.overall_alpha_reason),
                                      (_coef(st.overall_alpha_annotators), None),
                                      st.overall_alpha_reason or st.overall_method])
            for it in overall:
                f = it.font()
                f.setBold(True)
                it.setFont(f)
            rows.append(overall)
            self.title.setText(f"<b>Krippendorff's α per dimension and overall</b> · {who} · nominal for single "
                               "choices, ordinal for ratings, interval for numbers; empty answers are missing · "
                               "overall: mean of the defined dimensions · as <tt>reviewdesk metrics --stat alpha</tt>")
        else:
            headers = [("Dimension", ""), ("Type", ""), ("Fleiss' κ", f"Over all {who}"),
                       ("Raters per task", "Fleiss' κ needs the same number on every task"), ("Why n/a", "")]
            for dim in st.dimensions:
                rows.append(self._stat_row([dim.control, dim.type, (dim.fleiss_text, dim.fleiss_reason),
                                            dim.raters_text,
                                            dim.fleiss_reason or ""]))
            self.title.setText("<b>Fleiss' κ per dimension</b> · defined where the design is complete: every task "
                               "rated by the same number of raters · categorical dimensions only · as the "
                               "<tt>Fleiss k</tt> column of <tt>reviewdesk metrics --stat alpha</tt>")
        for i, (h, tip) in enumerate(headers):
            hi = QStandardItem(h)
            if tip:
                hi.setToolTip(tip)
            model.setHorizontalHeaderItem(i, hi)
        for items in rows:
            model.appendRow(items)
        self.stat_table.resizeColumnsToContents()  # long reasons: the last (stretching) column and the tooltip
        for c in range(len(headers) - 1):
            self.stat_table.setColumnWidth(c, self.stat_table.columnWidth(c) + 16)
        control = self.current_control()
        if control is not None:
            for r in range(model.rowCount()):
                if model.item(r, 0).text() == control:
                    self.stat_table.selectRow(r)

    @staticmethod
    def _stat_row(cells: list[Any]) -> list[QStandardItem]:
        items = []
        for cell in cells:
            text, tip = cell if isinstance(cell, tuple) else (cell, None)
            it = QStandardItem(text)
            it.setToolTip(tip or text)
            if isinstance(cell, tuple) and (text == "n/a" or text.lstrip("-").replace(".", "", 1).isdigit()):
                it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            items.append(it)
        return items

    def _draw_matrix(self) -> None:
        m = self.current_matrix()
        if m is None or self.data is None:
            return
        self.heatmap.set_matrix(m, min_overlap=self.data.min_overlap)
        n_e = len(m.evaluators)
        humans = sum(1 for e in m.evaluators if not e.startswith("model:"))
        what = self.current_control() or "all dimensions"
        gt = ("" if self.current_control() else " · Ground truth column: mean of the dimensions' cells (the "
              "Annotators table's accuracy is pooled instead)")
        self.title.setText(f"<b>Agreement — {what}</b> · {humans} annotators and {n_e - humans} model versions · "
                           f"rows scored against columns · grey: fewer than {self.data.min_overlap} shared tasks · "
                           f"click a cell to review the disagreements{gt}")

    def _title_difficulty(self) -> None:
        self.difficulty.setTitle("Hardest dimensions first<br><span style='color:#4c78a8'>■</span>"
                                 " agreement %&nbsp;&nbsp;<span style='color:#f58518'>■</span> α",
                                 color=tone().ink, size="10pt")
        self.difficulty.setToolTip("Which dimensions are harder to align on: agreement among annotators (%) and "
                                   "Krippendorff's α among annotators only, hardest first")

    def restyle(self) -> None:
        """Charts in the theme in use (pyqtgraph draws with its own colours, not the widget palette)."""
        self.heatmap.restyle()
        self.difficulty.setBackground(tone().card)
        for side in ("left", "bottom"):
            ax = self.difficulty.getAxis(side)
            ax.setPen(pg.mkPen(tone().muted))
            ax.setTextPen(pg.mkPen(tone().ink))
        self._title_difficulty()
        if self.data is not None:
            self._draw_current()
            self._draw_difficulty()

    def _draw_difficulty(self) -> None:
        d = self.data
        pw = self.difficulty
        pw.clear()
        if d is None or d.difficulty.empty:
            return
        df = d.difficulty
        y = np.arange(len(df))
        agree = df["agreement"].to_numpy(dtype=float) * 100
        alpha = df["alpha"].to_numpy(dtype=float) * 100
        pw.addItem(pg.BarGraphItem(x0=0, y=y - 0.18, height=0.34, width=np.nan_to_num(agree), brush="#4c78a8",
                                   name="agreement %"))
        pw.addItem(pg.BarGraphItem(x0=0, y=y + 0.18, height=0.34, width=np.nan_to_num(alpha), brush="#f58518",
                                   name="Krippendorff α ×100"))
        for i, (a, al) in enumerate(zip(agree, alpha, strict=True)):
            # each bar labelled at its end, short enough for a narrow chart
            for value, text_, dy in ((a, f"{a:.0f}%", -0.18), (al, f"α {al / 100:.2f}", 0.18)):
                if np.isnan(value):
                    continue
                t = pg.TextItem(text_, color=tone().ink, anchor=(0, 0.5))
                t.setPos(float(value) + 1, i + dy)
                pw.addItem(t)
        ax = pw.getAxis("left")
        ax.setTicks([[(i, c) for i, c in enumerate(df["control"])]])
        pw.getPlotItem().invertY(True)
        pw.setXRange(0, 128, padding=0)
        pw.setYRange(-0.6, len(df) - 0.4, padding=0)
        pw.setLabel("bottom", "agreement among annotators, %")

    def _fill_annotators(self) -> Any:
        """A generator: fills the table 20 rows per step."""
        d = self.data
        model = self.annotators
        model.clear()
        control = self.current_control()
        qv = d.quality_view(control) if d is not None else None
        if d is None or qv is None or qv.table.empty:
            return
        q, model_agreement = qv.table, qv.model_agreement
        versions = [c for c in model_agreement.columns] if not model_agreement.empty else []
        pooled = control is None
        where = "all dimensions, pooled" if pooled else control
        headers = ["Evaluator", "Agreement", "Accuracy vs GT, pooled (95% CI)" if pooled else "Accuracy vs GT (95% CI)",
                   *[f"vs {short_name(v)}" for v in versions],
                   "Accept", "Fix", "Reject", "Tasks", "Median s/task", "Drift", "Flags"]
        tips = {
            1: f"Mean score against the other annotators on shared tasks ({where})",
            2: ("Score against the ground truth pooled over every (task, dimension) compared, with a 95% Wilson "
                "interval and the number of comparisons. The heatmap's Ground truth column on All dimensions is "
                "a different measure: the unweighted mean of the per-dimension cells (so the two can differ)"
                if pooled else
                f"Score against the ground truth on {control} over the tasks compared (95% Wilson interval): "
                "the heatmap's Ground truth cell for this dimension"),
        }
        for i, h in enumerate(headers):
            hi = QStandardItem(h)
            if i in tips:
                hi.setToolTip(tips[i])
            elif h in ("Accept", "Fix", "Reject"):
                hi.setToolTip(f"{h} share of the review decisions on this evaluator's work, of how many decisions")
            model.setHorizontalHeaderItem(i, hi)
        for r in q.to_dict("records"):
            ev = str(r["evaluator"])
            cells: list[tuple[str, Any]] = [(short_name(ev), ev), (_pct(r["agreement"]), r["agreement"])]
            acc = r["accuracy"]
            ci = ("" if pd.isna(acc) else
                  f"{_pct(acc)} of {int(r['accuracy_n'])} ({_pct(r['accuracy_low'])}–{_pct(r['accuracy_high'])})")
            cells.append((ci, acc))
            for v in versions:
                val = model_agreement.loc[ev, v] if ev in model_agreement.index else np.nan
                cells.append((_pct(val), val))
            for k in ("accept_rate", "fix_rate", "reject_rate"):
                cells.append((_rate(r[k], r["n_decisions"]), r[k]))
            cells.append((str(int(r["volume"])), int(r["volume"])))
            mlt = r["median_lead_time"]
            cells.append(("" if pd.isna(mlt) else f"{mlt:.0f}", mlt))
            cells.append(("⚠ drift" if r["drift_alarm"] else "", bool(r["drift_alarm"])))
            flags = []
            if r.get("fast_flag"):
                flags.append("much faster than peers")
            if r.get("low_entropy_flag"):
                flags.append("near-constant answers")
            cells.append(("; ".join(flags), len(flags)))
            items = []
            for text, sort in cells:
                it = QStandardItem(text)
                it.setData(-1e9 if sort is None or (isinstance(sort, float) and math.isnan(sort)) else sort,
                           Qt.ItemDataRole.UserRole)
                items.append(it)
            items[0].setData(ev, Qt.ItemDataRole.UserRole + 1)
            items[0].setToolTip(ev)  # one name format everywhere; the e-mail on hover
            mine = qv.drift_series.get(ev)
            if mine is not None and not r["is_model"]:
                pm = sparkline(list(mine[0]), list(mine[1]))
                items[-2].setData(pm, Qt.ItemDataRole.DecorationRole)
                items[-2].setToolTip("Rolling accuracy on ground-truth tasks over time; red dot = CUSUM alarm")
            if r["drift_alarm"]:
                items[-2].setForeground(QColor("#c62828"))
            model.appendRow(items)
            if model.rowCount() % 10 == 0:
                yield
        self.annotator_view.resizeColumnsToContents()
        self.annotator_view.setColumnWidth(len(headers) - 2, 150)

    def _fill_models(self) -> None:
        d = self.data
        model = self.models
        model.clear()
        if d is None or d.leaderboard.empty:
            return
        lb = d.leaderboard
        model.setHorizontalHeaderLabels(["Model version", *[str(c) for c in lb.columns]])
        for version, row in lb.iterrows():
            items = [QStandardItem(str(version))] + [QStandardItem(_pct(v)) for v in row.to_numpy()]
            model.appendRow(items)
        self.model_view.resizeColumnsToContents()

    # -- drill-down --------------------------------------------------------------------------------------
    def _drill_down(self, row: str, column: str) -> None:
        if self.project_id is None:
            return
        if self.as_of is not None:
            self.status.setText("These are past numbers; the review queue holds today's tasks. "
                                "Export → Back to the numbers now, then click the cell.")
            return
        control = self.current_control()
        tasks = disagreeing_tasks(self.store, self.project_id, row, column, control)
        tol = drill_tolerances(self.store, self.project_id)
        near = (f" (beyond a {tol[control]:.0%} tolerance)" if control and tol.get(control) else
                " (numeric and region scores within their tolerance pass)" if not control and any(tol.values())
                else "")
        label = (f"{short_name(row)} vs {short_name(column)}" + (f" on {control}" if control else "")
                 + f": {len(tasks)} disagreements{near}")
        self.status.setText(label)
        self.openQueue.emit(QueueFilter(task_ids=tuple(tasks), label=label, highlight=(row, column)))

    def _annotator_queue(self, index: Any) -> None:
        if self.project_id is None or self.as_of is not None:
            return
        src = self.annotator_proxy.mapToSource(index)
        ev = self.annotators.item(src.row(), 0).data(Qt.ItemDataRole.UserRole + 1)
        frames = load_frames(self.store, self.project_id)
        uid = next((u for u, name in frames.members.items() if name == ev), None)
        if uid is None:
            self.status.setText(f"{ev} is a model version: its outputs are predictions, not a review queue.")
            return
        self.openQueue.emit(QueueFilter(evaluator_user_id=uid, label=f"work of {short_name(ev)}"))

    # -- export ---------------------------------------------------------------------------------------------
    def export_csv_dialog(self) -> None:
        if self.data is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export tables as CSV", "dashboard.csv", "CSV (*.csv)")
        if path:
            try:
                files = export_csv(self.data, path, self.current_control())
                st = self.stats
                if st is not None and st.project_id == self.project_id and st.version == self.data.version:
                    files += export_statistics_csv(st, path)  # kappa and alpha, once they were computed
            except OSError as exc:
                QMessageBox.warning(self, "Export failed", f"Could not write {path}: {exc.strerror or exc}")
                return
            self.message.emit(f"Wrote {', '.join(files)}")

    def png_caption(self) -> str:
        """What an exported picture shows: project, dimension, aggregation and date."""
        from datetime import date

        from app.services.projects import ProjectService

        title = ""
        if self.project_id is not None:
            p = next((p for p in ProjectService(self.store).list_projects(counts=False) if p.id == self.project_id),
                     None)
            title = getattr(p, "title", "") or ""
        if self.data is not None and self.data.as_of:
            title = f"{title or 'Project'} (as of audit event {self.data.as_of['event_id']})"
        stat = self.current_statistic()
        if stat == "agreement":
            return (f"{title or 'Project'} — agreement on {self.current_control() or 'all dimensions'} · "
                    f"{self.mode.currentText()} · {date.today():%Y-%m-%d}")
        if stat == "kappa":
            return (f"{title or 'Project'} — Cohen's κ on {self.current_control() or 'all categorical dimensions'}"
                    f" · {date.today():%Y-%m-%d}")
        return f"{title or 'Project'} — {STAT_TITLES[stat]} per dimension · {date.today():%Y-%m-%d}"

    def export_image(self) -> QPixmap:
        """The heatmap with a caption band on top (a picture that says what it is once it leaves the app)."""
        body = (self.stack.currentWidget() or self.heatmap).grab()
        band = 34
        out = QPixmap(body.width(), body.height() + band)
        out.fill(QColor("white"))
        painter = QPainter(out)
        painter.setPen(QPen(QColor("#1f2430")))
        f = painter.font()
        f.setPointSize(11)
        f.setBold(True)
        painter.setFont(f)
        painter.drawText(10, 0, body.width() - 20, band, int(Qt.AlignmentFlag.AlignVCenter), self.png_caption())
        painter.drawPixmap(0, band, body)
        painter.end()
        return out

    def export_png_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export heatmap as PNG", "agreement.png", "PNG (*.png)")
        if path and not self.export_image().save(path):
            QMessageBox.warning(self, "Export failed", f"Could not write {path}.")
        elif path:
            self.message.emit(f"Wrote {path}")


def _statistics(store: Store, project_id: int, as_of: str | None) -> Statistics:
    """Kappa/alpha/Fleiss now, or on the store rewound to ``as_of`` (the same cut-off as the heatmap)."""
    if as_of is None:
        return compute_statistics(store, project_id)
    from app.services.asof import resolve_as_of, snapshot

    with snapshot(store, resolve_as_of(store, as_of), project_id) as (snap, _cut):
        return compute_statistics(snap, project_id)
