"""The review panel: one task at a time, decided with the keyboard.

Keys come from the keymap (data). A decision is written on a worker thread; while it is being
written the session is in ``transition`` and further decision keys are swallowed. The next task is
shown only after the commit returns.

The right-hand side shows the task's history — everyone's decisions on it, other reviewers' (pulled from
the server, read-only) marked as such — above this session's own decisions. The panel refreshes from the
``Changes`` of the rest of the app (:meth:`ReviewPanel.apply_changes`: a pull, a push, a conflict resolution).
"""

from __future__ import annotations

import dataclasses
import html
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.models.config import LabelingConfig, validate_result
from app.models.store import StoreError
from app.services.changes import NOTHING, Changes
from app.services.compare import compare_annotations
from app.services.decisions import DecisionError, DecisionInfo
from app.services.describe import ago, past_tense
from app.services.keymap import Keymap
from app.services.projects import ProjectService, TaskDetail
from app.services.queues import (
    ORDERS,
    QueueError,
    QueueSpec,
    get_preset,
    inputs_ready,
    list_presets,
    plain_counts,
    queue_counts,
    queue_inputs,
)
from app.services.review import (
    Pending,
    QueueFilter,
    ReviewSession,
    SessionState,
    TeamDecision,
    moves_between_queues,
    read_session_state,
)
from app.services.settings import QueueState, load_queue_state, save_queue_state
from app.views.dialogs import FixJsonDialog, InstructionsDialog, ReasonDialog, keys_html
from app.views.queue_bar import QueueBar
from app.views.renderers import TaskView
from app.views.review_loop import BusyMark, GrowingLabel, SteadyTabs, settle_heap
from app.views.theme import tone
from app.views.worker import Cancelled, Job


def verdict_colour(verdict: str | None) -> str:
    """A verdict's colour in the theme in use (rich text cannot follow the palette by itself)."""
    t = tone()
    return {"accept": t.accept, "fix": t.fix, "reject": t.reject, "escalate": t.escalate}.get(verdict or "", t.muted)


VERDICT_MARK = {"accept": "✓", "fix": "✎", "reject": "✗", "escalate": "⚑", "skip": "»"}
SYNC_WORDS = {"pending": "not sent yet", "synced": "sent", "conflict": "in conflict", "local": "kept on this computer",
              "cancelled": "never sent"}
# Changes that can move tasks in or out of the queue or change what the history shows
RELOAD_ON = ("decisions", "queue", "tasks", "annotations", "members")
ESCALATION_REASONS = ("Edge case", "Annotators disagree", "Guideline unclear", "Needs domain expertise",
                      "Possible data problem")


class WrapDelegate(QStyledItemDelegate):
    """Item heights for word-wrapped list items, measured at the width the text really gets.

    A plain ``QListWidget`` with word wrap measures items wider than it then draws them, so a long entry
    lost its last line to an ellipsis. Measuring a little narrower than drawn never clips."""

    SAFETY = 14  # text margins and focus frame of the item, with room to spare

    def __init__(self, view: QListWidget) -> None:
        super().__init__(view)
        self.view = view
        self._memo: dict[tuple[str, int, str], QSize] = {}  # Qt asks again on every relayout of the list

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: N802
        text = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        width = max(80, self.view.viewport().width() - 2 * self.view.spacing() - self.SAFETY)
        font = index.data(Qt.ItemDataRole.FontRole)
        key = (text, width, font.key() if isinstance(font, QFont) else self.view.font().key())
        hit = self._memo.get(key)
        if hit is not None:
            return QSize(hit)
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        rect = QFontMetrics(opt.font).boundingRect(
            QRect(0, 0, width, 1_000_000), int(Qt.TextFlag.TextWordWrap), opt.text)
        size = QSize(width, rect.height() + 8)
        if len(self._memo) > 2000:
            self._memo.clear()
        self._memo[key] = size
        return QSize(size)


class ReviewPanel(QWidget):
    changed = Signal(object)  # Changes, for the rest of the window
    taskShown = Signal(int)  # local task id, after it is on screen
    status = Signal(str)  # a short message for the window's status bar ("Undone: ...")

    def __init__(self, projects: ProjectService, keymap: Keymap, *, reviewer: str, role: str = "reviewer",
                 auto_advance: bool = True, show_decided_by_others: bool = False,
                 show_predictions: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reviewPanel")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.projects = projects
        self.keymap = keymap
        self.reviewer = reviewer
        self.role = role
        self.auto_advance = auto_advance
        self.show_decided_by_others = show_decided_by_others
        self.show_predictions = show_predictions  # the setting: model predictions as extra layers
        self._stale = False  # Changes arrived while a decision was being written: reload after it
        self.session: ReviewSession | None = None
        self.config: LabelingConfig | None = None
        self.instructions: str | None = None
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # decisions are written strictly in order
        self._jobs: list[Job] = []
        self._shortcuts: list[QShortcut] = []
        self.dialog_factory: Callable[..., Any] | None = None  # tests replace dialogs
        self.last_error: str | None = None
        self._gate: QWidget | None = None  # shown instead of the queue (issue 15: a calibration round)
        self._busy_mark = BusyMark(lambda on: self.header.setEnabled(not on), self)  # only a slow commit shows

        self.header = QLabel()
        self.header.setObjectName("reviewHeader")
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.banner = QLabel()
        self.banner.setObjectName("escalationBanner")
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(Qt.TextFormat.PlainText)
        self.banner.setStyleSheet("background:#fff4e5; color:#4a3000; border:1px solid #f0b45b; padding:6px;")
        self.banner.hide()
        self.compare = QTextBrowser()
        self.compare.setObjectName("comparePane")
        self.compare.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.history = QListWidget()
        self.history.setObjectName("historyList")
        self.history.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.history.itemActivated.connect(self._reopen_history)
        # entries wrap instead of being cut off at the column's edge
        self.history.setWordWrap(True)
        self.history.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.history.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.history.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.history.setItemDelegate(WrapDelegate(self.history))
        self.history.itemSelectionChanged.connect(lambda: self._only_one_selected(self.history))
        self.task_history = QListWidget()
        self.task_history.setObjectName("taskHistoryList")
        self.task_history.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.task_history.setWordWrap(True)
        self.task_history.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.task_history.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.task_history.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.task_history.setSpacing(1)
        self.task_history.setItemDelegate(WrapDelegate(self.task_history))
        self.task_history.itemActivated.connect(self._focus_history_annotation)
        self.task_history.itemSelectionChanged.connect(lambda: self._only_one_selected(self.task_history))
        self.undo_selected = QPushButton("Undo selected")
        self.undo_selected.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.undo_selected.clicked.connect(self._undo_selected)
        self.counters = GrowingLabel()  # the side column keeps its width as the numbers change
        self.counters.setObjectName("counters")
        self.preview = QLabel()
        self.preview.setObjectName("shiftAPreview")
        self.preview.setTextFormat(Qt.TextFormat.PlainText)
        # one line, never wrapped (hot path: a wrapped label is measured again on every task) nor widening
        self.preview.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.preview.setStyleSheet(f"color:{tone().muted}")
        self.hints = QLabel()
        self.hints.setObjectName("keyHints")
        self.hints.setWordWrap(True)
        self.hints.setStyleSheet(f"color:{tone().muted}")

        self.queue_bar = QueueBar()
        self.queue_bar.roleChanged.connect(self.set_role)
        self.queue_bar.queueChanged.connect(self.set_queue_key)
        self.queue_key = ""  # "" (project order), "order:NAME" or "preset:NAME": the bar's choice
        self._counts_job: Job | None = None  # the count running now (one at a time)
        self._counts_again = False  # counts asked for while one ran
        self._build_job: Job | None = None
        self.counts_pool = QThreadPool(self)  # queue counts: read-only, beside the decision writer
        self.counts_pool.setMaxThreadCount(1)
        self._reload_job: Job | None = None
        self.reload_pool = QThreadPool(self)  # the session's state re-read after a Changes refresh
        self.reload_pool.setMaxThreadCount(1)

        self.full_queue = QPushButton("← Back to the full queue")
        self.full_queue.setObjectName("backToFullQueue")
        self.full_queue.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.full_queue.clicked.connect(self._back_to_full_queue)
        self.full_queue.hide()
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(self.header, 1)
        head.addWidget(self.full_queue)
        ll.addLayout(head)
        ll.addWidget(self.banner)
        self.task_view = TaskView()
        self.task_view.setObjectName("taskView")
        self.task_view.fixSaved.connect(self.save_fix)
        self.task_view.fixCancelled.connect(self._fix_cancelled)
        self.views = QTabWidget()
        self.views.setObjectName("reviewViews")
        self.views.tabBar().setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.views.addTab(self.task_view, "Task")
        self.views.addTab(self.compare, "Side by side (table)")
        self.views.currentChanged.connect(self._views_changed)
        SteadyTabs.install(self.views)  # a text change inside no longer repaints the whole tab widget
        self._last_view: Any = None
        self._history_key: tuple[Any, ...] = ()
        self._task_history_key: tuple[Any, ...] = ()
        self._shown_task: int | None = None
        self._remembered: tuple[int, int] | None = None
        ll.addWidget(self.views, 1)
        ll.addWidget(self.preview)
        ll.addWidget(self.hints)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        self.task_title = QLabel()
        self._title_task_history()
        self.task_title.setWordWrap(True)
        rl.addWidget(self.task_title)
        rl.addWidget(self.task_history, 3)
        title = QLabel("<b>This session</b> — yours, newest first (Enter re-opens)")
        title.setWordWrap(True)
        rl.addWidget(title)
        rl.addWidget(self.history, 2)
        rl.addWidget(self.undo_selected)
        rl.addWidget(self.counters)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        split.setSizes([1040, 250])
        split.setCollapsible(0, False)
        split.setCollapsible(1, True)  # the history pane folds away on small screens (H, or drag it shut)
        self.split = split
        self.side = right
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(2)
        lay.addWidget(self.queue_bar)
        lay.addWidget(split, 1)
        self._install_shortcuts()
        self._render_empty("Select a project to start reviewing.")

    # -- keys ------------------------------------------------------------------------------------
    def _install_shortcuts(self) -> None:
        for sc in self._shortcuts:
            sc.setEnabled(False)
            sc.deleteLater()
        self._shortcuts = []
        handlers: dict[str, Callable[[], Any]] = {
            "accept": lambda: self.decide("accept"),
            "fix": self.fix,
            "reject": self.reject,
            "escalate": self.escalate,
            "skip": lambda: self.decide("skip"),
            "undo": self.undo,
            "redo": self.redo,
            "next": lambda: self._nav(lambda s: s.next()),
            "previous": lambda: self._nav(lambda s: s.previous()),
            "next_annotation": lambda: self._nav(lambda s: s.cycle_annotation(1)),
            "previous_annotation": lambda: self._nav(lambda s: s.cycle_annotation(-1)),
            "accept_focused_reject_others": lambda: self.decide("accept", others="reject"),
            "instructions": self.show_instructions,
            "help": self.show_keys,
            "toggle_history": self.toggle_history,
            "reviewer_queue": lambda: self.set_role("reviewer"),
            "expert_queue": lambda: self.set_role("expert"),
        }
        for action, fn in handlers.items():
            for seq in self.keymap.keys(action):
                sc = QShortcut(QKeySequence(seq), self)
                sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                sc.setAutoRepeat(False)
                sc.setEnabled(self._gate is None)
                sc.activated.connect(fn)
                self._shortcuts.append(sc)
        self.task_view.set_fix_keys(self.keymap.keys("save", "fix"), self.keymap.keys("cancel", "fix"))
        parts = []
        for action in ("accept", "fix", "reject", "escalate", "skip", "undo", "next", "previous",
                       "next_annotation", "accept_focused_reject_others", "instructions", "help", "toggle_history"):
            keys = self.keymap.keys(action)
            if keys:
                parts.append(f"<b>{html.escape(keys[0])}</b> {action.replace('_', ' ')}")
        self.hints.setText(" · ".join(parts))

    def toggle_history(self) -> None:
        """Hide the history pane (the task gets its width) or bring it back."""
        self.side.setVisible(not self.side.isVisible())
        if self.side.isVisible() and self.split.sizes()[1] == 0:
            total = sum(self.split.sizes())
            self.split.setSizes([total - 250, 250])
        self.setFocus()

    def set_keymap(self, keymap: Keymap) -> None:
        self.keymap = keymap
        self._install_shortcuts()

    # -- session -----------------------------------------------------------------------------------
    def open_project(self, project_id: int | None, queue: QueueFilter | None = None) -> None:
        """Open a project's queue; deferred until the panel is shown (large queues cost a moment)."""
        if project_id is not None and (not self.isVisible() or self._gate is not None):
            self._deferred: tuple[int, QueueFilter | None] | None = (project_id, queue)
            self.session = None
            return
        self._deferred = None
        self._open_now(project_id, queue)

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        pending = getattr(self, "_deferred", None)
        if pending is not None and self._gate is None:
            self._deferred = None
            self._open_now(*pending)

    def ensure_open(self) -> None:
        """Open a deferred project now (scripts and tests that drive a hidden panel)."""
        pending = getattr(self, "_deferred", None)
        if pending is not None and self._gate is None:
            self._deferred = None
            self._open_now(*pending)

    def set_gate(self, gate: QWidget | None) -> None:
        """Show ``gate`` in place of the queue (the calibration round, issue 15), or the queue again (None).
        While gated the production queue is closed (no session: it opens when the gate lifts) and the review
        keys are off; the gate brings its own."""
        if gate is self._gate:
            return
        lay = self.layout()
        assert lay is not None
        if self._gate is not None:
            lay.removeWidget(self._gate)
            self._gate.hide()
        self._gate = gate
        if gate is not None:
            lay.addWidget(gate)
            gate.show()
            if self.session is not None:
                self._deferred = (self.session.project_id, None)
                self.session = None
        self.split.setVisible(gate is None)
        self.queue_bar.setVisible(gate is None)  # no production queue to switch or count while gated
        for sc in self._shortcuts:
            sc.setEnabled(gate is None)
        if gate is None and self.isVisible():
            self.ensure_open()

    @property
    def gated(self) -> bool:
        return self._gate is not None

    def _open_now(self, project_id: int | None, queue: QueueFilter | None) -> None:
        if project_id is None:
            self.session = None
            self._render_empty("Select a project to start reviewing.")
            return
        self.config = self.projects.config(project_id)
        self.instructions = self.projects.instructions(project_id)
        saved = load_queue_state(self.projects.store.data_dir, project_id)
        self.role = saved.role if saved.role in ("reviewer", "expert") else self.role
        self.queue_key = saved.queue
        spec = self._spec_for(project_id, saved.queue)
        if spec is None:
            self.queue_key = ""
        warm = None
        if queue is None and spec is not None:
            if inputs_ready(self.projects.store, project_id):
                queue = QueueFilter(spec=spec)
            else:
                warm = spec  # the project order until the per-task scores are read off the UI thread
        self.session = ReviewSession(self.projects, project_id, reviewer=self.reviewer, role=self.role,
                                     queue=queue, auto_advance=self.auto_advance,
                                     show_decided_by_others=self.show_decided_by_others)
        if saved.task_id is not None and (queue is None or queue.task_ids is None):
            self.session.go_to_task(saved.task_id)  # where this queue was left
        self.queue_bar.set_presets(tuple(p.name for p in list_presets(self.projects.store, project_id)))
        self.queue_bar.set_queue_key(self.queue_key)
        self.queue_bar.set_role(self.role)
        self.queue_bar.set_counts(None, None)
        if warm is not None:
            self._build_then(warm, saved.task_id)
        self._refresh_counts()
        self.history.clear()
        self._history_key = ()
        self._task_history_key = ()
        self._stale = False
        self._shown_task = None  # settings (predictions shown, names) may have changed: draw the task again
        self.refresh()
        settle_heap(len(self.session.task_ids))  # a large queue's objects out of the review loop's collections

    # -- refresh from the rest of the app ------------------------------------------------------------
    def apply_changes(self, changes: Changes) -> None:
        """Refresh from another part of the app's ``Changes`` (a pull bringing others' decisions, a push, a
        conflict resolution): the queue and the task's history update in place, the task on screen stays."""
        if self.session is None or not any(getattr(changes, name) for name in RELOAD_ON):
            return
        if self.busy() or self.session.state != "idle":
            self._stale = True  # reloaded once the decision being written is committed
            return
        s = self.session
        if s.queue.spec is not None and not inputs_ready(self.projects.store, s.project_id):
            # a pull may have changed the annotations: re-score in a worker, then rebuild the queue
            store, pid = self.projects.store, s.project_id
            job = Job(lambda _p, _c: queue_inputs(store, pid))
            job.signals.finished.connect(lambda _r: self._reload() if self.session is s else None)
            job.signals.failed.connect(lambda exc: self.status.emit(f"The queue could not be built: {exc}"))
            job.start(self.counts_pool)
            return
        self._reload()

    def _reload(self) -> None:
        """Read the session's queue and verdict state again in a worker (every task and verdict of the project:
        tens of ms at 5k tasks, too long for the UI thread) and install it here when it arrives; the task on
        screen stays meanwhile. A newer request drops an older one's result."""
        s = self.session
        if s is None:
            return
        if self._stale:  # after a commit (the reread was put off while it was written): draw its outcome now
            self._stale = False
            self.refresh()
        req = s.reload_request()
        projects = self.projects

        def read(_progress: Any, cancel: Any) -> SessionState:
            if cancel.is_set():
                raise Cancelled()
            return read_session_state(projects, req)

        if self._reload_job is not None:
            self._reload_job.cancel()  # not started yet: it ends at once; running: its result is dropped
        job = Job(read)
        self._reload_job = job
        job.signals.finished.connect(lambda state, job=job, s=s: self._reloaded(job, s, state))
        job.signals.failed.connect(lambda exc, job=job: self._reload_failed(job, exc))
        job.start(self.reload_pool)

    def reloading(self) -> bool:
        """The session's state is being read again in the background (tests wait for the end)."""
        return self._reload_job is not None

    def _reloaded(self, job: Job, s: ReviewSession, state: SessionState) -> None:
        if job is not self._reload_job:
            return  # an older request: the newer one's result is the one to show
        self._reload_job = None
        if self.session is not s:
            return  # another project (or session) since
        if self.busy() or s.state != "idle":
            self._stale = True  # a decision is being written: read again once it is committed
            return
        before = s.current
        if not s.install(state):
            self._reload()  # the queue, the task on screen or this session's decisions moved on: read again
            return
        if s.current != before and not self.task_view.in_fix_mode():
            self._shown_task = None  # the annotations on screen changed (or another task): draw again
        self._history_key = ()
        self._task_history_key = ()
        self.refresh()
        self._refresh_counts()

    def _reload_failed(self, job: Job, exc: BaseException) -> None:
        if job is not self._reload_job:
            return
        self._reload_job = None
        if not isinstance(exc, Cancelled):
            self.status.emit(f"The queue could not be read again: {exc}")

    def open_task(self, task_id: int) -> bool:
        """Show this task for review even when the queue would leave it out (re-review of a conflict)."""
        self.ensure_open()
        s = self.session
        if s is None:
            return False
        s.open_task(task_id)
        self.refresh()
        self.setFocus()
        return s.current is not None and s.current.id == task_id

    def set_show_decided_by_others(self, on: bool) -> None:
        """The setting: tasks another reviewer already decided come back into (or leave) the queue."""
        self.show_decided_by_others = on
        s = self.session
        if s is not None and s.show_decided_by_others != on:
            s.show_decided_by_others = on
            if self.busy() or s.state != "idle":
                self._stale = True
            else:
                self._reload()

    def set_queue(self, queue: QueueFilter | None) -> None:
        """Filter the queue or go back to the full one; the session (history, counters, undo) is kept."""
        pending = getattr(self, "_deferred", None)
        if pending is not None:
            self._deferred = (pending[0], queue)
        elif self.session is not None:
            if self.busy() or self.session.state != "idle":
                self.open_project(self.session.project_id, queue)
                return
            self.session.set_queue(queue)
            self._shown_task = None
            self.refresh()

    def back_to_full_queue(self) -> None:
        """Leave a drill-down: the whole queue (the built one, when a queue is picked in the bar)."""
        self._back_to_full_queue()

    def _back_to_full_queue(self) -> None:
        s = self.session
        spec = s.queue.spec if s is not None else None
        self.set_queue(QueueFilter(spec=spec) if spec is not None else None)
        self.setFocus()

    # -- queues: role, which queue, counts, where the session was --------------------------------------
    def _spec_for(self, project_id: int, key: str) -> QueueSpec | None:
        """The queue definition of a bar key (None: project order, or a preset that is gone)."""
        if key.startswith("order:"):
            order = key.split(":", 1)[1]
            return QueueSpec(order=order) if order in ORDERS else None
        if key.startswith("preset:"):
            try:
                return get_preset(self.projects.store, project_id, key.split(":", 1)[1])
            except (QueueError, LookupError):
                return None
        return None

    def set_role(self, role: str) -> None:
        """Work the reviewer or the expert queue (Ctrl+1 / Ctrl+2); the session's history and undo stay."""
        s = self.session
        if role not in ("reviewer", "expert") or s is None or self.busy() or s.state != "idle":
            return
        self.role = role
        self.queue_bar.set_role(role)
        if s.set_role(role):
            self._shown_task = None
            self.refresh()
        self._remember()
        self.setFocus()

    def set_queue_key(self, key: str) -> None:
        """Work another queue: ``order:NAME`` (every task in that order), ``preset:NAME`` or ``""``."""
        s = self.session
        if s is None:
            return
        spec = self._spec_for(s.project_id, key)
        self.queue_key = key if spec is not None else ""
        self.queue_bar.set_queue_key(self.queue_key)
        if spec is not None and not inputs_ready(self.projects.store, s.project_id):
            self._build_then(spec, None)
        else:
            self.set_queue(QueueFilter(spec=spec) if spec is not None else None)
        self._remember()
        self._refresh_counts()
        self.setFocus()

    def _build_then(self, spec: QueueSpec, task_id: int | None) -> None:
        """Read the project's per-task scores in a worker (the metrics engine, seconds on a big project), then
        walk the queue ``spec`` builds; the bar says so meanwhile. A newer choice supersedes this one."""
        s = self.session
        if s is None:
            return
        store, pid, key = self.projects.store, s.project_id, self.queue_key
        self.queue_bar.set_reasons(("building the queue…",))
        job = Job(lambda _p, _c: queue_inputs(store, pid))
        self._build_job = job

        def done(_inputs: Any) -> None:
            cur = self.session
            if job is not self._build_job or cur is None or cur.project_id != pid or self.queue_key != key:
                return
            self.set_queue(QueueFilter(spec=spec))
            self._refresh_counts()  # the counts asked for before the build were the plain queue's
            if task_id is not None and cur.go_to_task(task_id):
                self._shown_task = None
                self.refresh()

        job.signals.finished.connect(done)
        job.signals.failed.connect(lambda exc: self.status.emit(f"The queue could not be built: {exc}"))
        job.start(self.counts_pool)

    def queue_building(self) -> bool:
        """A queue's scores are being read in the background (tests wait for the end)."""
        s = self.session
        return self._build_job is not None and s is not None and (s.queue.spec is None) == bool(self.queue_key)

    def _remember(self) -> None:
        """The queue and the task on screen, per project, for the next start (settings service)."""
        s = self.session
        if s is None:
            return
        current = s.current.id if s.current is not None else None
        save_queue_state(self.projects.store.data_dir, s.project_id,
                         QueueState(role=self.role, queue=self.queue_key, task_id=current), actor=self.reviewer)

    def _refresh_counts(self) -> None:
        """How many tasks each role's queue holds, off the UI thread (the first build of a big project's
        per-task scores runs the metrics engine)."""
        s = self.session
        if s is None:
            return
        if self._counts_job is not None:
            # one count at a time (each reads the whole project): asked again while one runs, it runs once more
            # after it, with the state of then -- never a backlog of stale counts competing with the review loop
            self._counts_again = True
            return
        store, pid = self.projects.store, s.project_id
        spec = s.queue.spec
        # project order routes escalations only (the plain session, no metrics); a built queue also the threshold
        job = Job(lambda _p, _c: (pid, queue_counts(store, pid, spec) if spec is not None else plain_counts(store, pid)))
        self._counts_job = job
        job.signals.finished.connect(lambda res, job=job: self._counts_ready(res, job))
        job.signals.failed.connect(lambda _exc, job=job: self._counts_ready(None, job))
        job.start(self.counts_pool)

    def _counts_ready(self, res: Any, job: Job) -> None:
        if job is not self._counts_job:
            return
        self._counts_job = None
        s = self.session
        if res is not None and s is not None and res[0] == s.project_id:  # else failed, or another project since
            counts = res[1]
            self.queue_bar.set_counts(counts.reviewer, counts.expert)
        if self._counts_again:
            self._counts_again = False
            self._refresh_counts()  # asked while this one ran: its answer may be out of date

    def _nav(self, fn: Callable[[ReviewSession], Changes]) -> None:
        if self.session is None:
            return
        if fn(self.session):
            self.refresh()

    # -- deciding ------------------------------------------------------------------------------------
    def decide(self, verdict: str, **kw: Any) -> Pending | None:
        s = self.session
        if s is None:
            return None
        pending = s.begin(verdict, **kw)
        if pending is None:
            return None
        self._set_busy(True)
        job = Job(lambda _p, _c: s.commit(pending))
        job.signals.finished.connect(lambda rec: self._committed(pending, rec, job))
        job.signals.failed.connect(lambda exc: self._failed(pending, exc, job))
        self._jobs.append(job)
        job.start(self.pool)
        return pending

    def _committed(self, pending: Pending, recorded: Any, job: Job) -> None:
        self._jobs.remove(job)
        assert self.session is not None
        changes = self.session.finish(pending, recorded)
        self._set_busy(False)
        self.last_error = None
        if self._stale:
            self._reload()
        else:
            self.refresh()
            if changes.decisions and recorded is not None and moves_between_queues(
                    recorded.decisions, built=self.session.queue.spec is not None):
                self._refresh_counts()  # an escalation or an expert's verdict moves tasks between the queues
        self.changed.emit(changes)

    def _failed(self, pending: Pending, exc: BaseException, job: Job) -> None:
        self._jobs.remove(job)
        assert self.session is not None
        self.session.abort(pending)
        self._set_busy(False)
        if isinstance(exc, DecisionError | StoreError):
            self.last_error = str(exc)
        else:
            self.last_error = f"The decision was not saved: {exc}"
        if self._stale:
            self._reload()
        else:
            self.refresh()

    def _set_busy(self, busy: bool) -> None:
        self._busy_mark.set(busy)

    def busy(self) -> bool:
        return bool(self._jobs)

    def _dialog(self, kind: str, *args: Any) -> Any:
        if self.dialog_factory is not None:
            return self.dialog_factory(kind, *args)
        return None

    def reject(self) -> None:
        s = self.session
        if s is None or s.state != "idle" or s.focused_annotation() is None:
            return
        answer = self._dialog("reject")
        if answer is None:
            dlg = ReasonDialog("Reject — why?", s.decisions.reject_reasons(s.project_id), self,
                               subject=self._subject("Reject", tone().reject))
            if dlg.exec() != QDialog.DialogCode.Accepted:
                return
            answer = (dlg.reason(), dlg.comment_text())
        if answer:
            self.decide("reject", reason=answer[0], comment=answer[1])

    def _subject(self, verb: str, colour: str, to: str = "") -> str:
        """``Reject Tom Becker's annotation · task 1001``: the verdict and whose annotation, for a popup."""
        s = self.session
        if s is None or s.current is None:
            return verb
        a = s.focused_annotation()
        whose = (f"<b>{html.escape(s.evaluator_name(a.evaluator))}</b>'s annotation" if a is not None
                 else "this task")
        t = s.current
        return (f"<b style='color:{colour}'>{verb}</b> {whose}{to} · task {t.server_id or t.id}")

    def shift_a_preview(self) -> str:
        """What Shift+A would do on the task on screen: whom it accepts and whom it rejects."""
        s = self.session
        if s is None or s.current is None or len(s.current.annotations) < 2:
            return ""
        a = s.focused_annotation()
        if a is None:
            return ""
        others = [s.evaluator_name(o.evaluator) for o in s.current.annotations if o.id != a.id]
        keys = self.keymap.keys("accept_focused_reject_others")
        key = keys[0] if keys else "Shift+A"
        return f"{key}: accept {s.evaluator_name(a.evaluator)}, reject {', '.join(others)}"

    def escalate(self) -> None:
        s = self.session
        if s is None or s.state != "idle" or s.current is None:
            return
        answer = self._dialog("escalate")
        if answer is None:
            dlg = ReasonDialog("Escalate to an expert — why?", ESCALATION_REASONS, self,
                               subject=self._subject("Escalate", tone().escalate, to=" to an expert"))
            if dlg.exec() != QDialog.DialogCode.Accepted:
                return
            answer = (dlg.reason(), dlg.comment_text())
        if answer:
            self.decide("escalate", reason=answer[0], comment=answer[1])

    def fix(self) -> None:
        s = self.session
        if s is None or s.state != "idle" or self.config is None:
            return
        ann = s.focused_annotation()
        if ann is None:
            return
        cfg = self.config
        result = self._dialog("fix", list(ann.result))
        if result is None and self.views.currentWidget() is self.task_view:
            self.task_view.start_fix(ann.id)  # in place; Enter saves (fixSaved), Esc cancels
            return
        if result is None:
            dlg = FixJsonDialog(list(ann.result), lambda v: validate_result(cfg, v, strict=True), self)
            if dlg.exec() != QDialog.DialogCode.Accepted or dlg.value is None:
                return
            result = dlg.value
        self.decide("fix", result=result)

    def save_fix(self, result: list[Any]) -> Pending | None:
        """Called when an in-place editor saves (Enter / Ctrl+Enter)."""
        self.setFocus()
        self._shown_task = None  # redraw the task once the decision is committed
        return self.decide("fix", result=result)

    def _fix_cancelled(self) -> None:
        self.setFocus()

    def undo(self, decision_uuid: str | None = None) -> None:
        s = self.session
        if s is None:
            return
        try:
            changes = s.undo(decision_uuid)
        except (DecisionError, StoreError) as exc:
            self.last_error = str(exc)
            self.status.emit(str(exc))
            changes = NOTHING
        self.refresh()
        if changes:
            self.changed.emit(changes)
            self.status.emit("Undone: " + self._describe_group(s.last_undone()))

    def _describe_group(self, group: tuple[DecisionInfo, ...]) -> str:
        """``accept of Anna K's annotation and 2 rejects (task 12)``."""
        if not group:
            return "nothing"
        first = group[0]
        text = f"{first.verdict} of {self._whose(first.annotation_id)}"
        if len(group) > 1:
            text += f" and {len(group) - 1} {group[1].verdict}{'s' if len(group) > 2 else ''}"
        return text + f" (task {first.task_server_id or first.task_id})"

    def _whose(self, annotation_id: int | None) -> str:
        s = self.session
        if annotation_id is None or s is None or s.current is None:
            return "the task" if annotation_id is None else "an annotation"
        a = next((a for a in s.current.annotations if a.id == annotation_id), None)
        return f"{s.evaluator_name(a.evaluator)}'s annotation" if a is not None else "an annotation"

    def redo(self) -> None:
        s = self.session
        if s is None:
            return
        changes = s.redo()
        self.refresh()
        if changes:
            self.changed.emit(changes)
            self.status.emit("Redone.")

    def show_instructions(self) -> None:
        if self._dialog("instructions") is None:
            InstructionsDialog(self.instructions, self).exec()

    def show_keys(self) -> None:
        if self._dialog("keys") is not None:
            return
        dlg = QDialog(self)
        dlg.setWindowTitle("Keys")
        lay = QVBoxLayout(dlg)
        label = QLabel(keys_html(self.keymap))
        label.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(label)
        dlg.exec()

    # -- history -----------------------------------------------------------------------------------------
    def _reopen_history(self, item: QListWidgetItem) -> None:
        uuid = item.data(Qt.ItemDataRole.UserRole)
        s = self.session
        if s is None:
            return
        for d in s.history():
            if d.uuid == uuid:
                s.go_to_task(d.task_id)
                self.refresh()
                self.setFocus()
                return

    def _undo_selected(self) -> None:
        """Undo the decision selected in either list; another reviewer's is refused with a message."""
        item = None
        for lst in (self.task_history, self.history):
            if lst.selectedItems():
                item = lst.currentItem()
                break
        if item is not None:
            self.undo(item.data(Qt.ItemDataRole.UserRole))
            self.setFocus()

    def _only_one_selected(self, lst: QListWidget) -> None:
        """Undo acts on one selection: selecting in one list clears the other."""
        if lst.selectedItems():
            other = self.history if lst is self.task_history else self.task_history
            other.blockSignals(True)
            other.clearSelection()
            other.blockSignals(False)

    def _focus_history_annotation(self, item: QListWidgetItem) -> None:
        s = self.session
        ann = item.data(Qt.ItemDataRole.UserRole + 1)
        if s is not None and ann is not None and s.focus_annotation(int(ann)):
            self.refresh()
        self.setFocus()

    def _title_task_history(self) -> None:
        self.task_title.setText("<b>This task</b> — everyone's decisions, newest first; "
                                f"<span style='background:{tone().server_bg}'>another reviewer's</span> are read-only")

    def restyle(self) -> None:
        """Draw the open task again in the current theme (rich text takes its colours when it is built)."""
        self._title_task_history()
        self.preview.setStyleSheet(f"color:{tone().muted}")
        self.hints.setStyleSheet(f"color:{tone().muted}")
        if not self.task_view.in_fix_mode():
            self.task_view.rebuild_on_next_show()
            self._shown_task = None
        self.refresh()

    # -- drawing -------------------------------------------------------------------------------------------
    def _render_empty(self, message: str) -> None:
        self.header.setText("<b>Review</b>")
        self.compare.setHtml(f"<p style='color:{tone().muted}'>{html.escape(message)}</p>")
        self.counters.setText("")

    def refresh(self) -> None:
        s = self.session
        if s is None:
            return
        view = s.view()
        c = view.counters
        if c is not None:
            others = ""
            if c.hidden_by_others:
                # short lines: the label does not wrap (hot path), and a long one would widen the side column
                others = (f"<br><span style='color:{tone().muted}'>{c.hidden_by_others:,} decided by others, hidden"
                          "</span>")
            elif c.decided_by_others:
                others = f"<br><span style='color:{tone().muted}'>{c.decided_by_others:,} decided by others</span>"
            self.counters.setToolTip("Tasks another reviewer already judged leave your queue unless Review → "
                                     "Show tasks other reviewers already decided is on" if c.hidden_by_others else "")
            pace = f"<br><span style='color:{tone().muted}'>{c.pace}</span>" if c.pace else ""
            self.counters.setText(f"Decisions: <b>{c.made}</b> · pending sync: <b>{c.pending_sync}</b><br>"
                                  f"Remaining: <b>{c.remaining}</b> of {c.total} tasks{others}{pace}")
        filtered = dataclasses.replace(s.queue, spec=None) != QueueFilter()
        if self.full_queue.isVisible() != filtered:
            self.full_queue.setVisible(filtered)
        if view.task is None:
            label = "expert queue" if self.role == "expert" else "queue"
            self._render_empty(f"The {label} is empty." + (" Nothing was escalated yet." if self.role == "expert"
                                                            else ""))
            self._render_task_history(None, ())
            self._render_history()
            return
        t = view.task
        queue_label = "Expert queue" if self.role == "expert" else "Review queue"
        if s.queue.label:
            queue_label += f" — {html.escape(s.queue.label)}"
        elif s.queue.spec is not None:
            queue_label += f" — {html.escape(self.queue_bar.queue_text())}"
        err = (f"<br><span style='color:{tone().reject}'>{html.escape(self.last_error)}</span>"
               if self.last_error else "")
        n_ann = len(t.annotations)
        done = view.decided
        decided = (f" · <b style='color:{tone().accept if done == n_ann else tone().fix}'>{done} of {n_ann} "
                   f"annotation{'s' if n_ann != 1 else ''} decided</b>") if n_ann else ""
        self.header.setText(
            f"<span style='font-size:14pt'><b>Task {html.escape(str(t.server_id or t.id))}</b></span>"
            f"&nbsp;&nbsp;{view.position + 1} of {view.total}{decided} · {queue_label}{err}")
        if view.escalation is not None:
            e = view.escalation
            where = " (another reviewer, via the server)" if e.from_server else ""
            who = "you" if not e.from_server and e.reviewer.lower() == self.reviewer.lower() else e.reviewer_name
            # plain text: the reviewer's note is never read as markup
            self.banner.setText(f"⚑ Escalated by {who}{where} {ago(e.created_at)}: {e.note}")
            self.banner.setToolTip(f"{e.reviewer} · {e.created_at}")
            self.banner.show()
        else:
            self.banner.hide()
        assert self.config is not None
        self._last_view = view
        if self.views.currentWidget() is self.compare:  # the table is drawn only when it is looked at
            self.compare.setHtml(self._task_html(view))
        focused = s.focused_annotation()
        if self._shown_task != t.id or self.task_view.in_fix_mode():
            if not self.task_view.in_fix_mode():
                root = self.projects.media_root(s.project_id)
                self.task_view.show_task(t, self.config, root, focus_annotation_id=focused.id if focused else None,
                                         show_predictions=self.show_predictions, names=view.evaluator_names,
                                         slots=view.evaluator_slots, statuses=view.statuses,
                                         compared=self._compared(t))
                self._shown_task = t.id
                if self.task_view.has_media():
                    # after this task is painted: the next tasks' media decode in the background
                    nxt = list(s.task_ids[s.index + 1:s.index + 4])
                    QTimer.singleShot(0, self, lambda: self.task_view.prefetch_data(self.projects.task_data(nxt), root))
        else:
            self.task_view.set_focus_annotation(focused.id if focused else None, statuses=view.statuses)
        preview = self.shift_a_preview()
        if preview != self.preview.text():
            self.preview.setText(preview)
            self.preview.setToolTip(preview)
        self._render_history()
        self._render_task_history(t, view.team)
        reasons = s.queue_reasons(t.id)
        if not reasons and view.escalation is not None and self.role == "expert":
            reasons = ("escalated",)
        self.queue_bar.set_reasons(reasons)
        self.taskShown.emit(t.id)
        if self._remembered != (s.project_id, t.id):  # a settings file written: after the task is on screen
            self._remembered = (s.project_id, t.id)
            self._remember()

    def _compared(self, t: TaskDetail) -> frozenset[int]:
        """The annotations of the evaluators a drill-down compares (marked ⇄ on chips and cards)."""
        s = self.session
        wanted = {e.lower() for e in s.queue.highlight} if s is not None else set()
        return frozenset(a.id for a in t.annotations if a.evaluator.lower() in wanted)

    def _views_changed(self, _index: int) -> None:
        if self.views.currentWidget() is self.compare and self._last_view is not None and self.config:
            self.compare.setHtml(self._task_html(self._last_view))
        self.setFocus()

    def _render_history(self) -> None:
        s = self.session
        if s is None:
            return
        items = s.history(20)
        key = tuple((d.uuid, d.retracted) for d in items)
        if key == self._history_key:
            return
        old, self._history_key = self._history_key, key
        if key and key[1:] == old[:len(key) - 1] and self.history.count() == len(old):
            # one new decision on top (the hot path): insert it, drop the oldest beyond n; no rebuild
            self.history.insertItem(0, self._history_item(items[0]))
            while self.history.count() > len(key):
                self.history.takeItem(self.history.count() - 1)
            return
        self.history.clear()
        for d in items:
            self.history.addItem(self._history_item(d))

    def _render_task_history(self, task: TaskDetail | None, team: tuple[TeamDecision, ...]) -> None:
        """Everyone's decisions on the task on screen; another reviewer's are tinted and read-only."""
        if task is not None and not team:
            key: tuple[Any, ...] = ("no decisions",)  # the common case in the hot path: nothing to redraw
        else:
            key = (task.id if task else None, tuple((d.uuid, d.retracted, d.sync_state) for d in team),
                   int(time.time() // 60))  # the relative times move on
        if key == self._task_history_key:
            return
        self._task_history_key = key
        self.task_history.clear()
        if task is None:
            return
        if not team:
            item = QListWidgetItem("No decisions on this task yet.")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.task_history.addItem(item)
            return
        s = self.session
        evaluators = {a.id: s.evaluator_name(a.evaluator) if s is not None else a.evaluator for a in task.annotations}
        for d in team:
            self.task_history.addItem(self._task_history_item(d, evaluators, len(task.annotations)))

    def _task_history_item(self, d: TeamDecision, evaluators: dict[int, str], n_annotations: int
                           ) -> QListWidgetItem:
        if d.annotation_id is not None:
            target = "this annotation" if n_annotations <= 1 else f"{evaluators.get(d.annotation_id, 'an')}'s annotation"
        elif d.prediction_id is not None:
            target = "the model's prediction"
        else:
            target = "this task"
        mark = VERDICT_MARK.get(d.verdict, "•")
        text = f"{mark} {d.sentence(target, me=self.reviewer)}"
        if d.from_server:
            text += "\n☁ another reviewer · read-only"
        else:
            whose = "yours" if d.reviewer.lower() == self.reviewer.lower() else f"made here by {d.reviewer_name}"
            text += f"\n{whose} · {SYNC_WORDS.get(d.sync_state, d.sync_state)}"
        if d.retracted:
            text += " · undone"
        item = QListWidgetItem(text)
        item.setData(Qt.ItemDataRole.UserRole, d.uuid)
        item.setData(Qt.ItemDataRole.UserRole + 1, d.annotation_id)
        item.setToolTip(f"{d.verdict} by {d.reviewer} ({d.role}) at {d.created_at}"
                        + (" — another reviewer's decision, brought from the server by a sync; read-only here"
                           if d.from_server else ""))
        if d.from_server:
            item.setBackground(QBrush(QColor(tone().server_bg)))
        if d.retracted:
            f = QFont(self.task_history.font())  # the list's own font: a default QFont measured wrong (elided)
            f.setStrikeOut(True)
            item.setFont(f)
            item.setForeground(Qt.GlobalColor.gray)
        return item

    def _history_item(self, d: DecisionInfo) -> QListWidgetItem:
        """``✗ rejected Tom Becker's annotation · task 1001 — Wrong label · 15:46`` (a fix names its controls)."""
        s = self.session
        label = f"{VERDICT_MARK.get(d.verdict, '•')} {past_tense(d.verdict)}"
        whose = s.whose(d.annotation_id) if s is not None else ""
        changed = s.controls_changed(d) if s is not None else ()
        what = f" ({', '.join(changed)})" if changed else ""
        note = " — ".join(x for x in (d.reason, d.comment) if x)
        extra = f" — {note}" if note else ""
        text = f"{label} {whose}{what} · task {d.task_server_id or d.task_id}{extra} · {d.created_at[11:16]}"
        item = QListWidgetItem(text + ("  (undone)" if d.retracted else ""))
        item.setData(Qt.ItemDataRole.UserRole, d.uuid)
        item.setToolTip(text)
        if d.retracted:
            f = QFont(self.history.font())
            f.setStrikeOut(True)
            item.setFont(f)
            item.setForeground(Qt.GlobalColor.gray)
        return item

    def _task_html(self, view: Any) -> str:
        e = html.escape
        tn = tone()
        t = view.task
        assert self.config is not None
        parts = []
        for obj in self.config.objects:
            key = obj.data_key
            if key and key in t.data:
                v = t.data[key]
                if obj.tag in ("Text", "HyperText", "Paragraphs") and isinstance(v, str):
                    parts.append(f"<p style='font-size:12pt; background:{tone().raised}; padding:8px'>{e(v)}</p>")
                else:
                    parts.append(f"<p><b>{e(obj.name)}</b> ({e(obj.tag)}): <code>{e(str(v))}</code></p>")
        statuses = getattr(view, "statuses", {})
        cmp_ = compare_annotations(t, self.config, getattr(view, "team", ()), me=self.reviewer,
                                   fixed={a: st.fixed for a, st in statuses.items() if st.fixed is not None},
                                   names=getattr(view, "evaluator_names", None))
        if not cmp_.evaluators:
            parts.append("<p><i>This task has no annotations to review.</i></p>")
            return "".join(parts)
        focus_id = None
        if t.annotations:
            focus_id = t.annotations[view.focus % len(t.annotations)].id
        head = ["<th align='left' style='padding:4px'>Control</th>"]
        notes = cmp_.notes or tuple(() for _ in cmp_.annotation_ids)
        for name, aid, ann_notes in zip(cmp_.evaluators, cmp_.annotation_ids, notes, strict=True):
            st = statuses.get(aid)
            badge = ""
            if st is not None:
                color = verdict_colour(st.verdict)
                badge = f"<br><span style='color:{color}'>{e(st.label)}</span>"
            else:
                badge = f"<br><span style='color:{tn.muted}'>○ undecided</span>"
            for n in ann_notes:
                color = verdict_colour(n.verdict)
                tag = (f" <span style='background:{tn.server_bg}; color:{tn.server_ink}'>&nbsp;server&nbsp;</span>"
                       if n.from_server else "")
                badge += (f"<br><small style='font-weight:normal; color:{color}'>"
                          f"{e(VERDICT_MARK.get(n.verdict, '•'))} {e(n.text)}</small>{tag}")
            style = (f"background:{tn.focus_bg}; border:2px solid {tn.focus_border};" if aid == focus_id
                     else f"background:{tn.raised};")
            marker = "▶ " if aid == focus_id else ""
            head.append(f"<th align='left' style='padding:4px; {style}'>{marker}{e(name)}{badge}</th>")
        rows = ["<tr>" + "".join(head) + "</tr>"]
        for r in cmp_.rows:
            bg = f" bgcolor='{tn.differs_bg}'" if r.differs else ""
            cells = [f"<td style='padding:4px'><b>{e(r.control)}</b>"
                     + (f"<br><small style='color:{tn.fix}'>differs</small>" if r.differs else "") + "</td>"]
            for aid, lines in zip(cmp_.annotation_ids, r.cells, strict=True):
                style = f"border:2px solid {tn.focus_border};" if aid == focus_id else ""
                cells.append(f"<td style='padding:4px; {style}' valign='top'>" + "<br>".join(e(x) for x in lines)
                             + "</td>")
            rows.append(f"<tr{bg}>" + "".join(cells) + "</tr>")
        parts.append("<table border='1' cellspacing='0' cellpadding='4' width='100%' "
                     f"style='border-color:{tn.border}; border-collapse:collapse'>" + "".join(rows) + "</table>")
        parts.append(f"<p style='color:{tn.muted}'>{cmp_.disagreements} of {len(cmp_.rows)} controls differ between "
                     "annotators (highlighted).</p>")
        return "".join(parts)


class DecisionTimer(QObject):
    """Measures key press -> next task displayed (used by the benchmark and tests)."""

    def __init__(self, panel: ReviewPanel) -> None:
        super().__init__(panel)
        self.samples: list[float] = []
        self._t0: float | None = None
        panel.taskShown.connect(self._shown)

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def _shown(self, _task: int) -> None:
        if self._t0 is not None:
            self.samples.append(time.perf_counter() - self._t0)
            self._t0 = None
