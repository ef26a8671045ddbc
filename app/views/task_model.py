"""A virtualised task-list model: row count from the store, rows fetched one page at a time."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from app.services.projects import ProjectService, TaskRow

PAGE = 200
MAX_PAGES = 50
COLUMNS = ("#", "Task", "Text", "Annotations", "Predictions", "GT")

_Index = QModelIndex | QPersistentModelIndex


class TaskTableModel(QAbstractTableModel):
    def __init__(self, service: ProjectService, parent: Any = None) -> None:
        super().__init__(parent)
        self._svc = service
        self._project: int | None = None
        self._count = 0
        self._pages: OrderedDict[int, tuple[TaskRow, ...]] = OrderedDict()
        self.page_loads = 0  # visible to tests: proves rows are fetched lazily

    def set_project(self, project_id: int | None) -> None:
        self.beginResetModel()
        self._project = project_id
        self._pages.clear()
        self._count = self._svc.task_count(project_id) if project_id is not None else 0
        self.endResetModel()

    def refresh(self) -> None:
        self.set_project(self._project)

    @property
    def project_id(self) -> int | None:
        return self._project

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._count

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def row(self, r: int) -> TaskRow | None:
        if self._project is None or not 0 <= r < self._count:
            return None
        page_no = r // PAGE
        page = self._pages.get(page_no)
        if page is None:
            page = self._svc.task_page(self._project, page_no * PAGE, PAGE)
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
                    row.preview, str(row.annotations), str(row.predictions), "✓" if row.ground_truth else "")[col]
        if role == Qt.ItemDataRole.ToolTipRole and col == 2:
            return row.preview
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (0, 1, 3, 4, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter) if col != 5 else int(
                Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.UserRole:
            return row.id
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None
