"""A virtualised task-list model: row count from the store, rows fetched one page at a time.

Filtering and sorting happen in SQL through :mod:`app.services.taskfilter` (the service the queues use too):
the model holds a :class:`TaskFilter`, asks the service for the number of rows and for pages of 200 rows,
and never loads the whole project. A header click re-sorts on the server side (:meth:`TaskTableModel.sort`).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from app.services import taskfilter as tf
from app.services.projects import ProjectService
from app.views.theme import tone

PAGE = 200
MAX_PAGES = 50
COLUMNS = ("#", "Task", "Status", "Text", "Ann.", "Pred.", "GT")
SORT_KEYS = ("position", "task", "status", "text", "annotations", "predictions", "ground_truth")  # per column
STATUS_COLUMN = 2
TEXT_COLUMN = 3
def status_colour(status: str) -> str:
    """The status glyph's colour in the theme in use (contrast on a light or a dark list)."""
    t = tone()
    return {"undecided": t.muted, "partly": t.fix, "decided": t.accept, "escalated": t.escalate,
            "conflict": t.reject}.get(status, t.ink)
STATUS_TIPS = {
    "undecided": "No annotation of this task has a verdict yet",
    "partly": "Some annotations have a verdict (accept, fix or reject), not all",
    "decided": "Every annotation has a verdict",
    "escalated": "Escalated to an expert; no expert verdict yet",
    "conflict": "A decision is in conflict with the server: resolve it (Sync → Conflicts)",
}
HEADER_TIPS = ("Position in the queue", "Label Studio task id (Ctrl+G goes to one)",
               "Review status: ○ undecided · ◐ partly · ✓ decided · ⚑ escalated · ⚠ conflict",
               "The task's text", "Annotations of the task", "Predictions of the task",
               "Has a ground-truth annotation")

_Index = QModelIndex | QPersistentModelIndex


class TaskTableModel(QAbstractTableModel):
    def __init__(self, service: ProjectService, parent: Any = None) -> None:
        super().__init__(parent)
        self._svc = service
        self._store = service.store
        self._project: int | None = None
        self._filter = tf.TaskFilter()
        self._agreement: tf.AgreementIndex | None = None
        self._count = 0
        self._total = 0
        self._pages: OrderedDict[int, tuple[tf.TaskListRow, ...]] = OrderedDict()
        self.page_loads = 0  # visible to tests: proves rows are fetched lazily

    # -- what is listed ----------------------------------------------------------------------------------------
    def set_project(self, project_id: int | None) -> None:
        """Another project: its filters (annotators, dimensions) do not carry over; the sort does."""
        self._project = project_id
        self._agreement = None
        self.set_filter(self._filter.cleared())

    def set_filter(self, f: tf.TaskFilter, agreement: tf.AgreementIndex | None = None) -> None:
        """List the tasks ``f`` keeps. A control or disagreement filter needs ``agreement`` (computed off the
        UI thread by the caller); without one the last given is used."""
        if agreement is not None:
            self._agreement = agreement
        if f.needs_index and self._agreement is None:
            raise ValueError("a control or disagreement filter needs the agreement index")
        self.beginResetModel()
        self._filter = f
        self._pages.clear()
        self._recount()
        self.endResetModel()

    def _recount(self) -> None:
        if self._project is None:
            self._count = self._total = 0
            return
        self._total = tf.count(self._store, self._project, tf.TaskFilter())
        self._count = (tf.count(self._store, self._project, self._filter, index=self._agreement)
                       if self._filter.active else self._total)

    def refresh(self) -> None:
        """Re-read after a change (a decision, a sync). Same number of rows: the rows are redrawn in place (the
        selection stays); otherwise the list is rebuilt."""
        if self._project is None:
            return
        before = self._count
        self._pages.clear()
        self._recount()
        if self._count == before:
            if self._count:
                self.dataChanged.emit(self.index(0, 0), self.index(self._count - 1, len(COLUMNS) - 1))
        else:
            self.beginResetModel()
            self.endResetModel()

    @property
    def project_id(self) -> int | None:
        return self._project

    @property
    def filter(self) -> tf.TaskFilter:
        return self._filter

    @property
    def agreement(self) -> tf.AgreementIndex | None:
        return self._agreement

    @property
    def total(self) -> int:
        """Tasks of the project, unfiltered."""
        return self._total

    def locate(self, task_key: int, f: tf.TaskFilter | None = None) -> int | None:
        """Row of the task shown as ``task_key`` (Label Studio id, else local id) under the current filter."""
        if self._project is None:
            return None
        return tf.locate(self._store, self._project, f or self._filter, task_key, index=self._agreement)

    # -- Qt model ----------------------------------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._count

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Header click: ORDER BY in SQL (the service), never a sort over loaded rows."""
        if not 0 <= column < len(SORT_KEYS):
            return
        f = dataclasses.replace(self._filter, sort=SORT_KEYS[column],
                                descending=order == Qt.SortOrder.DescendingOrder)
        if f != self._filter:
            self.set_filter(f)

    def row(self, r: int) -> tf.TaskListRow | None:
        if self._project is None or not 0 <= r < self._count:
            return None
        page_no = r // PAGE
        page = self._pages.get(page_no)
        if page is None:
            page = tf.page(self._store, self._project, self._filter, page_no * PAGE, PAGE, index=self._agreement)
            self.page_loads += 1
            self._pages[page_no] = page
            while len(self._pages) > MAX_PAGES:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(page_no)
        i = r - page_no * PAGE
        return page[i] if i < len(page) else None

    def loaded_rows(self) -> int:
        return sum(len(p) for p in self._pages.values())

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.row(index.row())
        if row is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (str(row.position + 1), str(row.server_id if row.server_id is not None else f"local {row.id}"),
                    row.status_label, row.preview, str(row.annotations), str(row.predictions),
                    "✓" if row.ground_truth else "")[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == TEXT_COLUMN:
                return row.preview
            if col == STATUS_COLUMN:
                return STATUS_TIPS[row.status]
            return None
        if role == Qt.ItemDataRole.ForegroundRole and col == STATUS_COLUMN:
            return QBrush(QColor(status_colour(row.status)))
        if role == Qt.ItemDataRole.AccessibleTextRole and col == STATUS_COLUMN:
            return row.status_label[2:]
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (0, 1, 4, 5, 6):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter) if col != 6 else int(
                Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.UserRole:
            return row.id
        if role == Qt.ItemDataRole.UserRole + 1:
            return row.status
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS[section] + " — click to sort"
        return None
