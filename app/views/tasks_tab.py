"""The Tasks tab's list: a filter bar over the virtualised task table.

Filters (status, annotator, dimension, disagreements only, a text search) and the sort are a
:class:`app.services.taskfilter.TaskFilter` applied in SQL; the agreement the dimension and disagreement
filters need is computed off the UI thread (once per data version) and applied when it arrives.
Keys: every filter is reachable with Tab; Ctrl+F searches, Ctrl+G goes to a task, Enter (or a double
click) opens the selected task in the Review tab, Esc in the search box clears it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QModelIndex, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.services import taskfilter as tf
from app.services.projects import ProjectService
from app.views.task_model import COLUMNS, TEXT_COLUMN, TaskTableModel
from app.views.worker import Job

SEARCH_DELAY_MS = 250
STATUS_CHOICES: tuple[tuple[str, frozenset[str]], ...] = (
    ("All statuses", frozenset()),
    ("○ Undecided", frozenset({"undecided"})),
    ("◐ Partly decided", frozenset({"partly"})),
    ("✓ Decided", frozenset({"decided"})),
    ("⚑ Escalated", frozenset({"escalated"})),
    ("⚠ Conflict", frozenset({"conflict"})),
    ("Not done (○ + ◐)", frozenset({"undecided", "partly"})),
    ("Needs attention (⚑ + ⚠)", frozenset({"escalated", "conflict"})),
)


def _combo(name: str, tip: str, min_chars: int) -> QComboBox:
    c = QComboBox()
    c.setObjectName(name)
    c.setToolTip(tip)
    # a long annotator name must not widen the window
    c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    c.setMinimumContentsLength(min_chars)
    c.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
    return c


class TasksTab(QWidget):
    """Filter bar + task table. Signals: the current task (local id) changed; open a task in Review; a
    message for the status bar."""

    currentTaskChanged = Signal(object)  # local task id or None
    openTask = Signal(int)
    message = Signal(str)

    def __init__(self, projects: ProjectService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.projects = projects
        self.store = projects.store
        self._job: Job | None = None
        self._wanted: tf.TaskFilter | None = None  # a filter waiting for the agreement index
        self._stale = False  # changes arrived while hidden

        self.status_combo = _combo("statusFilter", "Show tasks by review status (Tab moves between filters)", 8)
        for label, statuses in STATUS_CHOICES:
            self.status_combo.addItem(label, statuses)
        self.annotator_combo = _combo("annotatorFilter", "Show tasks an annotator worked on", 8)
        self.control_combo = _combo("controlFilter", "Dimension (control): tasks answered on it; with "
                                    "“Disagreements only”, tasks whose annotators disagree on it", 8)
        self.disagree_check = QCheckBox("Disagreements only")
        self.disagree_check.setObjectName("disagreementFilter")
        self.disagree_check.setToolTip("Tasks whose annotators do not all agree (on the chosen dimension, else on "
                                       "any) — agreement as on the dashboard")
        self.search = QLineEdit()
        self.search.setObjectName("taskSearch")
        self.search.setPlaceholderText("Search the task text (Ctrl+F)")
        self.search.setToolTip("Words that must all occur in the task's data (Ctrl+F; Esc clears)")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(120)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("clearFilters")
        self.clear_button.setToolTip("Clear every filter (the sort stays)")
        self.goto_button = QPushButton("Go to…")
        self.goto_button.setObjectName("goToTask")
        self.goto_button.setToolTip("Go to a task by its id (Ctrl+G)")
        self.count_label = QLabel()
        self.count_label.setObjectName("taskCount")
        self.count_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.count_label.setMinimumWidth(80)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(SEARCH_DELAY_MS)
        self._debounce.timeout.connect(self.apply_filters)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        self.search.returnPressed.connect(self.apply_filters)
        self.status_combo.currentIndexChanged.connect(lambda _i: self.apply_filters())
        self.annotator_combo.currentIndexChanged.connect(lambda _i: self.apply_filters())
        self.control_combo.currentIndexChanged.connect(lambda _i: self.apply_filters())
        self.disagree_check.toggled.connect(lambda _on: self.apply_filters())
        self.clear_button.clicked.connect(self.clear_filters)

        self.model = TaskTableModel(projects, self)
        self.view = QTableView()
        self.view.setObjectName("taskList")
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(24)
        self.view.setToolTip("Enter or double click: open in Review · Ctrl+G: go to a task · click a header to sort")
        hh = self.view.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setSectionResizeMode(TEXT_COLUMN, QHeaderView.ResizeMode.Stretch)
        hh.setMinimumSectionSize(28)
        for col, width in ((0, 50), (1, 60), (2, 116), (4, 48), (5, 48), (6, 34)):
            self.view.setColumnWidth(col, width)
        hh.setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        hh.setSortIndicatorShown(True)
        self.view.setSortingEnabled(True)
        self.view.selectionModel().currentRowChanged.connect(self._current_changed)
        self.view.doubleClicked.connect(self._open_at)
        self.model.modelReset.connect(self._update_count)
        for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            sc = QShortcut(QKeySequence(key), self.view)
            sc.setContext(Qt.ShortcutContext.WidgetShortcut)
            sc.activated.connect(lambda: self._open_at(self.view.currentIndex()))
        find = QShortcut(QKeySequence("Ctrl+F"), self)
        find.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        find.activated.connect(self.focus_search)
        self.search.installEventFilter(self)  # Esc clears the search

        # two rows, so that the bar never dictates the window's minimum width
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.setSpacing(6)
        bar.addWidget(self.status_combo, 1)
        bar.addWidget(self.annotator_combo, 1)
        bar.addWidget(self.control_combo, 1)
        bar.addWidget(self.disagree_check)
        bar2 = QHBoxLayout()
        bar2.setContentsMargins(0, 0, 0, 0)
        bar2.setSpacing(6)
        bar2.addWidget(self.search, 1)
        bar2.addWidget(self.clear_button)
        bar2.addWidget(self.goto_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(4)
        head = QHBoxLayout()
        title = QLabel("<b>Tasks</b>")
        head.addWidget(title)
        head.addWidget(self.count_label, 1)
        lay.addLayout(head)
        lay.addLayout(bar)
        lay.addLayout(bar2)
        lay.addWidget(self.view, 1)
        self.setTabOrder(self.status_combo, self.annotator_combo)
        self.setTabOrder(self.annotator_combo, self.control_combo)
        self.setTabOrder(self.control_combo, self.disagree_check)
        self.setTabOrder(self.disagree_check, self.search)
        self.setTabOrder(self.search, self.clear_button)
        self.setTabOrder(self.clear_button, self.goto_button)
        self.setTabOrder(self.goto_button, self.view)
        self._fill_choices(None)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if self._stale:
            self.refresh()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if (obj is self.search and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent)
                and event.key() == Qt.Key.Key_Escape and self.search.text()):
            self.search.clear()
            self.apply_filters()
            return True
        return super().eventFilter(obj, event)

    # -- project and choices -----------------------------------------------------------------------------------
    def open_project(self, project_id: int | None) -> None:
        self._cancel_job()
        self._stale = False
        self._wanted = None
        self._fill_choices(project_id)
        self.model.set_project(project_id)

    def _fill_choices(self, project_id: int | None) -> None:
        widgets = (self.status_combo, self.annotator_combo, self.control_combo, self.disagree_check, self.search)
        for w in widgets:
            w.blockSignals(True)
        self.status_combo.setCurrentIndex(0)
        self.annotator_combo.clear()
        self.annotator_combo.addItem("All annotators", None)
        self.control_combo.clear()
        self.control_combo.addItem("Any dimension", None)
        self.disagree_check.setChecked(False)
        self.search.clear()
        if project_id is not None:
            for a in tf.annotators(self.store, project_id):
                self.annotator_combo.addItem(a.name, a.user_id)
                self.annotator_combo.setItemData(self.annotator_combo.count() - 1, f"user id {a.user_id}",
                                                 Qt.ItemDataRole.ToolTipRole)
            try:
                for c in tf.controls(self.store, project_id):
                    self.control_combo.addItem(c, c)
            except LookupError:
                pass
        for w in widgets:
            w.blockSignals(False)

    # -- filters -----------------------------------------------------------------------------------------------
    def current_filter(self) -> tf.TaskFilter:
        """The filter the bar shows (the sort is the table's)."""
        user = self.annotator_combo.currentData()
        control = self.control_combo.currentData()
        base = self.model.filter
        return tf.TaskFilter(statuses=self.status_combo.currentData() or frozenset(),
                             annotators=frozenset() if user is None else frozenset({int(user)}),
                             control=control, agreement_below=1.0 if self.disagree_check.isChecked() else None,
                             search=self.search.text().strip(), sort=base.sort, descending=base.descending)

    def apply_filters(self) -> None:
        self._debounce.stop()
        if self.model.project_id is None:
            return
        f = self.current_filter()
        if f == self.model.filter:
            return
        if f.needs_index:
            cached = self.model.agreement or tf.cached_agreement_index(self.store, self.model.project_id)
            self._start_agreement(f)  # recomputed when the data changed; applied when it arrives
            if cached is None or cached.project_id != self.model.project_id:
                self._wanted = f
                self.count_label.setText("Computing agreement…")
                return
            self._set(f, cached)
        else:
            self._wanted = None
            self._set(f)

    def _set(self, f: tf.TaskFilter, agreement: tf.AgreementIndex | None = None) -> None:
        current = self.current_task_id()
        self.model.set_filter(f, agreement)
        if current is not None:
            self._reselect(current)

    def _start_agreement(self, f: tf.TaskFilter) -> None:
        pid = self.model.project_id
        if pid is None:
            return
        self._wanted = f
        if self._job is not None:
            return  # one at a time; its result serves the latest wanted filter
        job = Job(lambda _progress, _cancel: tf.agreement_index(self.store, pid))
        self._job = job

        def done(index: Any) -> None:
            if self._job is job:
                self._job = None
            if index.project_id != self.model.project_id:
                return
            wanted, self._wanted = self._wanted, None
            target = wanted if wanted is not None and wanted == self.current_filter() else self.model.filter
            if target.needs_index and (index is not self.model.agreement or target != self.model.filter):
                self._set(target, index)
            else:
                self._update_count()

        def failed(exc: BaseException) -> None:
            if self._job is job:
                self._job = None
            self._wanted = None
            self._update_count()
            self.message.emit(f"Could not compute the agreement: {exc}")

        job.signals.finished.connect(done)
        job.signals.failed.connect(failed)
        job.start()

    def _cancel_job(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self._job = None

    def agreement_pending(self) -> bool:
        return self._job is not None

    def clear_filters(self) -> None:
        for w in (self.status_combo, self.annotator_combo, self.control_combo, self.disagree_check, self.search):
            w.blockSignals(True)
        self.status_combo.setCurrentIndex(0)
        self.annotator_combo.setCurrentIndex(0)
        self.control_combo.setCurrentIndex(0)
        self.disagree_check.setChecked(False)
        self.search.clear()
        for w in (self.status_combo, self.annotator_combo, self.control_combo, self.disagree_check, self.search):
            w.blockSignals(False)
        self._wanted = None
        self.apply_filters()

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def refresh(self) -> None:
        """After a change (decisions, a sync, an import): statuses and counts re-read; the agreement too when
        a filter uses it. While the tab is hidden (a reviewer deciding in the Review tab) only marked stale
        and re-read when shown: the review loop pays nothing for the list."""
        if not self.isVisible():
            self._stale = True
            return
        self._stale = False
        self.model.refresh()
        self._update_count()
        if self.model.filter.needs_index:
            self._start_agreement(self.model.filter)

    def _update_count(self) -> None:
        m = self.model
        if m.project_id is None:
            self.count_label.setText("")
        elif m.filter.active:
            self.count_label.setText(f"{m.rowCount():,} of {m.total:,} tasks")
        else:
            self.count_label.setText(f"{m.total:,} tasks")
        self.clear_button.setEnabled(m.filter.active)

    # -- selection, go to, open ----------------------------------------------------------------------------------
    def current_task_id(self) -> int | None:
        idx = self.view.currentIndex()
        row = self.model.row(idx.row()) if idx.isValid() else None
        return None if row is None else row.id

    def _reselect(self, task_id: int) -> None:
        row = self.model.row(self.view.currentIndex().row()) if self.view.currentIndex().isValid() else None
        if row is not None and row.id == task_id:
            return
        if self.model.rowCount():
            self.select_row(0)

    def select_row(self, r: int) -> None:
        idx = self.model.index(r, 0)
        self.view.setCurrentIndex(idx)
        self.view.selectRow(r)
        self.view.scrollTo(idx, QAbstractItemView.ScrollHint.PositionAtCenter)

    def go_to(self, task_key: int) -> str:
        """Select the task shown as ``task_key``: ``found``, ``filtered`` (in the project, not under the filters)
        or ``missing``."""
        r = self.model.locate(task_key)
        if r is not None:
            self.select_row(r)
            self.view.setFocus(Qt.FocusReason.ShortcutFocusReason)
            self.message.emit(f"Task {task_key}: row {r + 1:,}.")
            return "found"
        if self.model.filter.active and self.model.locate(task_key, self.model.filter.cleared()) is not None:
            self.message.emit(f"Task {task_key} is hidden by the filters.")
            return "filtered"
        self.message.emit(f"No task {task_key} in this project.")
        return "missing"

    def _current_changed(self, current: QModelIndex, _prev: QModelIndex) -> None:
        row = self.model.row(current.row()) if current.isValid() else None
        self.currentTaskChanged.emit(None if row is None else row.id)

    def _open_at(self, index: QModelIndex) -> None:
        row = self.model.row(index.row()) if index.isValid() else None
        if row is not None:
            self.openTask.emit(row.id)


__all__ = ["TasksTab", "STATUS_CHOICES", "COLUMNS"]
