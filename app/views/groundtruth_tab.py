"""The ground-truth browser (issue 15 point 5): every reference of the project with its provenance, and the
history of the selected task's reference.

A virtualised model over :class:`app.services.groundtruth.GroundTruthService`: the row count from the service's
cached index, rows fetched a page at a time, so 100k references scroll without being loaded. Keys: arrows move,
``Enter`` opens the task in Review, ``Ctrl+H`` moves the focus to the history list and back.
"""

from __future__ import annotations

import html
from collections import OrderedDict
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.models.store import Store
from app.services.changes import Changes
from app.services.describe import ago
from app.services.groundtruth import GroundTruthService, Reference
from app.views.theme import tone
from app.views.worker import Job

PAGE = 200
MAX_PAGES = 20
COLUMNS = ("Task", "Reference", "Source", "By", "When", "Revisions")
SOURCE_LABEL = {"decision": "decision", "server-flag": "server flag", "import": "import"}
_Index = QModelIndex | QPersistentModelIndex


class GroundTruthModel(QAbstractTableModel):
    def __init__(self, service: GroundTruthService, parent: Any = None) -> None:
        super().__init__(parent)
        self.svc = service
        self.project_id: int | None = None
        self._count = 0
        self._pages: OrderedDict[int, tuple[Reference, ...]] = OrderedDict()
        self.page_loads = 0  # for tests: rows are fetched lazily

    def set_project(self, project_id: int | None, count: int | None = None) -> None:
        """Show ``project_id``'s references; ``count``: already known (read off the UI thread), else asked."""
        self.beginResetModel()
        self.project_id = project_id
        self._pages.clear()
        if count is None:
            count = self.svc.count(project_id) if project_id is not None else 0
        self._count = count
        self.endResetModel()

    def refresh(self) -> None:
        self.set_project(self.project_id)

    def reference(self, r: int) -> Reference | None:
        if self.project_id is None or not 0 <= r < self._count:
            return None
        page_no = r // PAGE
        page = self._pages.get(page_no)
        if page is None:
            # the index of the last reload (views refresh from Changes): no version check per page
            page = self.svc.references(self.project_id, page_no * PAGE, PAGE, check=False)
            self.page_loads += 1
            self._pages[page_no] = page
            while len(self._pages) > MAX_PAGES:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(page_no)
        i = r - page_no * PAGE
        return page[i] if i < len(page) else None

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._count

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        ref = self.reference(index.row())
        if ref is None:
            return None
        col = index.column()
        p = ref.provenance
        if role == Qt.ItemDataRole.DisplayRole:
            by = p.reviewer or "—"
            src = SOURCE_LABEL.get(p.source, p.source)
            return (str(ref.task_key), ref.summary, f"{p.verdict} ({src})" if p.verdict else src,
                    by, ago(p.at) if p.at else "—", str(ref.revisions))[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 1:
                return ref.summary
            if col in (2, 3, 4):
                lines = [f"source: {p.source}"]
                if p.decision_uuid:
                    lines.append(f"decision {p.decision_uuid} ({p.origin or 'local'})")
                if p.at:
                    lines.append(p.at)
                return "\n".join(lines)
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (0, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.UserRole:
            return ref.task_id
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(
                COLUMNS):
            return COLUMNS[section]
        return None


class GroundTruthTab(QWidget):
    openTask = Signal(int)  # local task id: review it

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("groundTruthTab")
        self.svc = GroundTruthService(store)
        self.model = GroundTruthModel(self.svc, self)
        self.summary = QLabel()
        self.summary.setObjectName("groundTruthSummary")
        self.summary.setWordWrap(True)
        self.view = QTableView()
        self.view.setObjectName("groundTruthView")
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setWordWrap(False)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(self.view.fontMetrics().height() + 8)
        hdr = self.view.horizontalHeader()
        hdr.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hdr.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for col, width in ((0, 70), (2, 130), (3, 170), (4, 115), (5, 80)):
            self.view.setColumnWidth(col, width)
        self.view.activated.connect(self._open)  # Enter / double-click
        self.view.selectionModel().currentRowChanged.connect(self._row_changed)
        self.history = QTextBrowser()
        self.history.setObjectName("groundTruthHistory")
        self.history.setOpenLinks(False)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.view)
        split.addWidget(self.history)
        split.setSizes([480, 220])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.summary)
        lay.addWidget(split, 1)
        sc = QShortcut(QKeySequence("Ctrl+H"), self)
        sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        sc.activated.connect(self._toggle_focus)
        self._stale = False
        self._job: Job | None = None
        self.loading = False  # a reload's worker is reading the index (tests wait on it)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def open_project(self, project_id: int | None) -> None:
        if project_id != self.model.project_id:  # empty until the worker has read the new project's references
            self.model.set_project(project_id, 0)
        if self.isVisible():
            self.reload()
        else:
            self._stale = True

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._stale:
            self.reload()

    def apply(self, changes: Changes) -> None:
        if changes.ground_truth or changes.decisions or changes.annotations or changes.sync or changes.tasks:
            if self.isVisible():
                self.reload(keep=True)
            else:
                self._stale = True

    def reload(self, keep: bool = False) -> None:
        """Re-read the references: the index (its version check, and its rebuild after a change: ~0.7 s at 100k
        tasks) is read in a worker; the table keeps showing the last one meanwhile."""
        self._stale = False
        current = self.current_task() if keep else None
        pid = self.model.project_id
        if pid is None:
            self._job = None
            self.loading = False
            self.model.set_project(None, 0)
            self.summary.setText("Select a project.")
            self.history.clear()
            return
        svc = self.svc
        job = Job(lambda _p, _c: (pid, svc.counts(pid)))
        self._job = job
        self.loading = True
        if not self.model.rowCount():
            self.summary.setText("Reading the ground truth…")
        job.signals.finished.connect(lambda res, job=job: self._loaded(res, job, current))
        job.signals.failed.connect(lambda exc, job=job: self._failed(exc, job))
        job.start()

    def _failed(self, exc: BaseException, job: Job) -> None:
        if job is self._job:
            self.loading = False
            self.summary.setText(f"The ground truth could not be read: {exc}")

    def _loaded(self, res: Any, job: Job, current: int | None) -> None:
        pid, c = res
        if job is not self._job or pid != self.model.project_id:
            return  # an older request, or another project since
        self.loading = False
        self.model.set_project(pid, c.references)
        by = ", ".join(f"{n:,} {SOURCE_LABEL.get(s, s)}" for s, n in c.by_source) or "none yet"
        self.summary.setText(f"<b>{c.references:,}</b> of {c.tasks:,} tasks have a reference ({by}); "
                             f"{c.revised:,} changed at least once. <span style='color:{tone().muted}'>Enter: review "
                             "the task · Ctrl+H: history</span>")
        row = 0
        if current is not None:
            for r in range(min(self.model.rowCount(), PAGE)):
                if self.model.data(self.model.index(r, 0), Qt.ItemDataRole.UserRole) == current:
                    row = r
                    break
        if self.model.rowCount():
            self.view.setCurrentIndex(self.model.index(row, 0))
        else:
            self.history.setHtml(f"<p style='color:{tone().muted}'>No references yet: an accept or a fix folds "
                                 "the result into the ground truth.</p>")

    # -- selection and history ---------------------------------------------------------------------------------
    def current_task(self) -> int | None:
        idx = self.view.currentIndex()
        return self.model.data(self.model.index(idx.row(), 0), Qt.ItemDataRole.UserRole) if idx.isValid() else None

    def _row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        tid = self.model.data(self.model.index(current.row(), 0), Qt.ItemDataRole.UserRole) if current.isValid() \
            else None
        if tid is None or self.model.project_id is None:
            self.history.clear()
            return
        self.history.setHtml(self.history_html(self.model.project_id, tid))

    def history_html(self, project_id: int, task_id: int) -> str:
        e = html.escape
        t = tone()
        entries = self.svc.history(project_id, task_id, check=False)
        parts = [f"<b>History of the reference</b> <span style='color:{t.muted}'>(newest first; the metrics use "
                 "the current one)</span><ul>"]
        for h in entries:
            p = h.provenance
            mark = (f"<b style='color:{t.accept}'>current</b> " if h.current else
                    f"<span style='color:{t.reject}'>undone</span> " if h.retracted else
                    f"<span style='color:{t.muted}'>replaced</span> ")
            who = e(p.reviewer or "unknown")
            how = e(p.verdict or SOURCE_LABEL.get(p.source, p.source))
            where = " (another reviewer, via the server)" if p.origin == "server" else ""
            parts.append(f"<li>{mark}{e(h.summary)} — {how} by {who}{where} {e(ago(p.at) if p.at else '')}</li>")
        parts.append("</ul>")
        return "".join(parts)

    def _open(self, index: QModelIndex) -> None:
        tid = self.model.data(self.model.index(index.row(), 0), Qt.ItemDataRole.UserRole)
        if tid is not None:
            self.openTask.emit(int(tid))

    def _toggle_focus(self) -> None:
        (self.view if self.history.hasFocus() else self.history).setFocus()
