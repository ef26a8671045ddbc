"""QA lead dashboard: heatmap, dimension difficulty, per-annotator quality, model leaderboard."""

from __future__ import annotations

import math
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
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
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
    disagreeing_tasks,
    export_csv,
    load_frames,
    refresh_dashboard,
)
from app.services.review import QueueFilter
from app.views.heatmap import HeatmapWidget, short_name
from app.views.worker import Job

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
        self._running: set[Job] = set()  # keeps superseded jobs alive until their thread ends
        self._stale = False
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.refresh)

        self.dimension = QComboBox()
        self.dimension.setObjectName("dimension")
        # a fixed minimum, not the longest item: a new dimension list must never widen the window
        self.dimension.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.dimension.setMinimumContentsLength(14)
        self.dimension.currentIndexChanged.connect(self._draw_matrix)
        self.mode = QComboBox()
        self.mode.setObjectName("mode")
        self.mode.addItem("Pairwise (mean over pairs)", "pairwise")
        self.mode.addItem("Consensus (vs. majority of the others)", "consensus")
        self.mode.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.mode.setMinimumContentsLength(12)
        self.mode.currentIndexChanged.connect(self.refresh)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setMinimumWidth(40)
        self.progress.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.progress.setRange(0, 0)
        self.progress.hide()
        self.status = QLabel()
        self.status.setObjectName("dashboardStatus")
        # captions wrap inside the width they are given; their length never sets the window's width
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status.setMinimumWidth(40)
        csv_btn = QPushButton("Export CSV…")
        csv_btn.clicked.connect(self.export_csv_dialog)
        png_btn = QPushButton("Export PNG…")
        png_btn.clicked.connect(self.export_png_dialog)
        top = QHBoxLayout()
        top.addWidget(QLabel("Dimension"))
        top.addWidget(self.dimension)
        top.addWidget(QLabel("Aggregation"))
        top.addWidget(self.mode)
        top.addWidget(self.progress)
        top.addWidget(self.status, 1)
        top.addWidget(csv_btn)
        top.addWidget(png_btn)

        self.heatmap = HeatmapWidget()
        self.heatmap.cellClicked.connect(self._drill_down)
        self.title = QLabel()
        self.title.setObjectName("heatmapTitle")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.difficulty = pg.PlotWidget(background="w")
        self.difficulty.setObjectName("difficulty")
        self.difficulty.setMenuEnabled(False)
        self.difficulty.setMouseEnabled(x=False, y=False)
        self.difficulty.hideButtons()
        self.difficulty.setTitle("Which dimensions are harder to align on?<br><span style='color:#4c78a8'>■</span>"
                                 " agreement %&nbsp;&nbsp;<span style='color:#f58518'>■</span> Krippendorff α",
                                 color="#222", size="10pt")

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
        hm = QWidget()
        hl = QVBoxLayout(hm)
        hl.setContentsMargins(0, 0, 0, 0)
        self.title.setWordWrap(True)
        hl.addWidget(self.title)
        hl.addWidget(self.heatmap, 1)
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

    # -- lifecycle --------------------------------------------------------------------------------
    def open_project(self, project_id: int | None) -> None:
        self.project_id = project_id
        self.data = None
        if project_id is not None and self.isVisible():
            self.refresh()
        else:
            self._stale = True

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._stale:
            self.refresh()

    def apply(self, changes: Changes) -> None:
        """Debounced refresh when decisions or a sync changed the numbers."""
        if changes.decisions or changes.annotations or changes.ground_truth or changes.tasks:
            if self.isVisible():
                self._debounce.start()
            else:
                self._stale = True

    def refresh(self, *, force: bool = False) -> None:
        """Paint the cached numbers at once (if any), then bring them up to date off the UI thread."""
        if self.project_id is None:
            return
        self._stale = False
        mode = self.mode.currentData()
        known = None
        if self.data is None or self.data.project_id != self.project_id or self.data.mode != mode:
            cached = cached_dashboard(self.store, self.project_id, mode, check=False)
            if cached is not None:
                self._show(cached)
                known = cached.version
        elif not force:
            known = None  # data changed (debounced refresh): recompute
        if self._job is not None:
            self._job.cancel()
        pid, store = self.project_id, self.store
        job = Job(lambda _progress, cancel: refresh_dashboard(store, pid, mode=mode, known=known, cancel=cancel))
        self._job = job
        self._running.add(job)
        self.progress.show()
        if self.data is None:
            self.status.setText("Computing agreement…")
        job.signals.finished.connect(lambda d: self._done(job, d))
        job.signals.failed.connect(lambda exc: self._failed(job, exc))
        job.start()
        if known is not None:
            self.status.setText("Showing the last computed numbers; checking for changes…")

    def busy(self) -> bool:
        return self._job is not None or getattr(self, "_filling", None) is not None

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
        self.status.setText(" · ".join(d.notes))
        self._draw_matrix()
        self.shown.emit()
        # the rest is filled in small steps so the event loop never waits long (large projects)
        self._filling = self._fill_steps(d)
        QTimer.singleShot(0, self._pump)

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
            if self._job is None:
                self.computed.emit()
            return
        QTimer.singleShot(0, self._pump)

    def _failed(self, job: Job, exc: BaseException) -> None:
        self._running.discard(job)
        if job is not self._job:
            return
        self._job = None
        self.progress.hide()
        self.status.setText(f"Could not compute the dashboard: {exc}")

    # -- drawing -------------------------------------------------------------------------------------
    def current_control(self) -> str | None:
        return self.dimension.currentData()

    def current_matrix(self) -> Any:
        if self.data is None:
            return None
        return self.data.matrices.get(self.current_control())

    def _draw_matrix(self) -> None:
        m = self.current_matrix()
        if m is None or self.data is None:
            return
        self.heatmap.set_matrix(m, min_overlap=self.data.min_overlap)
        n_e = len(m.evaluators)
        humans = sum(1 for e in m.evaluators if not e.startswith("model:"))
        what = self.current_control() or "all dimensions"
        self.title.setText(f"<b>Agreement — {what}</b> · {humans} annotators and {n_e - humans} model versions · "
                           f"rows scored against columns · grey: fewer than {self.data.min_overlap} shared tasks · "
                           "click a cell to review the disagreements")

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
            t = pg.TextItem(f"{a:.0f}%" + ("" if np.isnan(al) else f" · α {al / 100:.2f}"), color="#222",
                            anchor=(0, 0.5))
            t.setPos(max(np.nan_to_num(a), np.nan_to_num(al)) + 1, i)
            pw.addItem(t)
        ax = pw.getAxis("left")
        ax.setTicks([[(i, c) for i, c in enumerate(df["control"])]])
        pw.getPlotItem().invertY(True)
        pw.setXRange(0, 140, padding=0)
        pw.setYRange(-0.6, len(df) - 0.4, padding=0)
        pw.setLabel("bottom", "hardest first · agreement among annotators, %")

    def _fill_annotators(self) -> Any:
        """A generator: fills the table 20 rows per step."""
        d = self.data
        model = self.annotators
        model.clear()
        if d is None or d.quality.empty:
            return
        q = d.quality
        versions = [c for c in d.model_agreement.columns] if not d.model_agreement.empty else []
        headers = ["Evaluator", "Agreement", "Accuracy vs GT (95% CI)", *[f"vs {short_name(v)}" for v in versions],
                   "Accept", "Fix", "Reject", "Tasks", "Median s/task", "Drift", "Flags"]
        model.setHorizontalHeaderLabels(headers)
        for r in q.to_dict("records"):
            ev = str(r["evaluator"])
            cells: list[tuple[str, Any]] = [(short_name(ev), ev), (_pct(r["agreement"]), r["agreement"])]
            acc = r["accuracy"]
            ci = ("" if pd.isna(acc) else f"{_pct(acc)} ({_pct(r['accuracy_low'])}–{_pct(r['accuracy_high'])})")
            cells.append((ci, acc))
            for v in versions:
                val = d.model_agreement.loc[ev, v] if ev in d.model_agreement.index else np.nan
                cells.append((_pct(val), val))
            for k in ("accept_rate", "fix_rate", "reject_rate"):
                cells.append((_pct(r[k]), r[k]))
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
            mine = d.drift_series.get(ev)
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
        tasks = disagreeing_tasks(self.store, self.project_id, row, column, self.current_control())
        label = f"{short_name(row)} vs {short_name(column)}" + (
            f" on {self.current_control()}" if self.current_control() else "") + f": {len(tasks)} disagreements"
        self.status.setText(label)
        self.openQueue.emit(QueueFilter(task_ids=tuple(tasks), label=label, highlight=(row, column)))

    def _annotator_queue(self, index: Any) -> None:
        if self.project_id is None:
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
        path, _ = QFileDialog.getSaveFileName(self, "Export tables as CSV", "agreement.csv", "CSV (*.csv)")
        if path:
            files = export_csv(self.data, path, self.current_control())
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
        return (f"{title or 'Project'} — agreement on {self.current_control() or 'all dimensions'} · "
                f"{self.mode.currentText()} · {date.today():%Y-%m-%d}")

    def export_image(self) -> QPixmap:
        """The heatmap with a caption band on top (a picture that says what it is once it leaves the app)."""
        body = self.heatmap.grab()
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
