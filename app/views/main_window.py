"""The main window: projects, a virtualised task list and the selected task."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app import __version__
from app.models.store import Store
from app.services.calibration import CalibrationService
from app.services.changes import Changes
from app.services.describe import describe_result
from app.services.keymap import KeymapError, load_keymap
from app.services.notifications import Notification, NotificationService
from app.services.projects import ProjectService, TaskDetail
from app.services.review import QueueFilter
from app.services.settings import Settings, load_settings, save_settings
from app.views import theme
from app.views.calibration_panel import CalibrationPanel
from app.views.dashboard import DashboardPanel, prewarm_in_background
from app.views.dialogs import KeymapDialog, SettingsDialog
from app.views.groundtruth_tab import GroundTruthTab
from app.views.notifications import NotificationBar, TrayNotifier
from app.views.review_loop import SteadyTabs
from app.views.review_panel import ReviewPanel
from app.views.tasks_tab import TasksTab
from app.views.theme import tone
from app.views.worker import Cancelled, Job


def _panel(title: str, widget: QWidget) -> QWidget:
    box = QWidget()
    lay = QVBoxLayout(box)
    lay.setContentsMargins(6, 6, 6, 6)
    label = QLabel(f"<b>{html.escape(title)}</b>")
    lay.addWidget(label)
    lay.addWidget(widget)
    return box


def task_html(detail: TaskDetail) -> str:
    """The task as readable HTML (every user-supplied string escaped)."""
    e = html.escape
    parts = [f"<h3>Task {e(str(detail.server_id if detail.server_id is not None else detail.id))}</h3>"]
    parts.append("<h4>Data</h4><table cellspacing='2'>")
    for k, v in detail.data.items():
        text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        parts.append(f"<tr><td valign='top'><b>{e(str(k))}</b></td><td>{e(text)}</td></tr>")
    parts.append("</table>")
    parts.append(f"<h4>Annotations ({len(detail.annotations)})</h4>")
    for a in detail.annotations:
        flags = []
        if a.ground_truth:
            flags.append(f"<span style='color:{tone().accept}'>ground truth</span>")
        if a.was_cancelled:
            flags.append(f"<span style='color:{tone().reject}'>skipped</span>")
        if a.lead_time is not None:
            flags.append(f"{a.lead_time:.0f} s")
        parts.append(f"<p><b>{e(a.evaluator)}</b> {' · '.join(flags)}<br>"
                     + "<br>".join(e(line) for line in describe_result(list(a.result))) + "</p>")
    if detail.predictions:
        parts.append(f"<h4>Predictions ({len(detail.predictions)})</h4>")
        for p in detail.predictions:
            score = f" · score {p.score:.2f}" if p.score is not None else ""
            lines = describe_result(None if p.result is None else list(p.result))
            parts.append(f"<p><b>model {e(p.model_version or '?')}</b>{score}<br>"
                         + "<br>".join(e(line) for line in lines) + "</p>")
    return "".join(parts)


class MainWindow(QMainWindow):
    def __init__(self, store: Store, project_id: int | None = None) -> None:
        super().__init__()
        self.store = store
        # before anything else: a large project's metrics process starts while this window is built (its
        # interpreter start and imports take about a second; the Dashboard tab may be opened at once)
        prewarm_in_background(store, project_id)
        self._prewarmed = project_id  # asked for once per project (its size check reads the store)
        self.projects = ProjectService(store)
        self.settings: Settings = load_settings(store.data_dir)
        try:
            self.keymap = load_keymap(self.settings.keymap_overrides)
        except KeymapError:
            self.keymap = load_keymap()
        self.setWindowTitle("ReviewDesk")
        self.resize(1280, 800)

        self.project_list = QListWidget()
        self.project_list.setObjectName("projectList")
        self.project_list.currentItemChanged.connect(self._project_selected)

        self.tasks_tab = TasksTab(self.projects)
        self.task_model = self.tasks_tab.model
        self.task_view = self.tasks_tab.view
        self.tasks_tab.currentTaskChanged.connect(self._task_selected)
        self.tasks_tab.openTask.connect(self.review_task)
        self.tasks_tab.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.tasks_tab.goto_button.clicked.connect(self.go_to_task_dialog)

        self.task_pane = QTextBrowser()
        self.task_pane.setObjectName("taskPane")
        self.task_pane.setOpenLinks(False)

        self.review = ReviewPanel(self.projects, self.keymap, reviewer=self.settings.reviewer,
                                  role=self.settings.role, auto_advance=self.settings.auto_advance,
                                  show_decided_by_others=self.settings.show_decided_by_others,
                                  show_predictions=self.settings.show_predictions)
        self.review.changed.connect(lambda changes: self.apply(changes, from_review=True))
        self.review.status.connect(lambda text: self.statusBar().showMessage(text, 8000))
        # the calibration gate (issue 15): while the project requires a round this reviewer has not passed, the
        # Review tab shows the round instead of the production queue (which is not even opened)
        self.calibration = CalibrationPanel(store, self.projects, self.keymap, reviewer=self.settings.reviewer)
        self.calibration.unlocked.connect(self._update_gate)
        self.calibration.changed.connect(self.apply)
        self.calibration.status.connect(lambda text: self.statusBar().showMessage(text, 8000))

        browse = QSplitter(Qt.Orientation.Horizontal)
        browse.addWidget(self.tasks_tab)
        browse.addWidget(_panel("Task", self.task_pane))
        browse.setStretchFactor(0, 3)
        browse.setStretchFactor(1, 2)
        browse.setSizes([700, 380])
        self.browse = browse
        self.tabs = QTabWidget()
        self.tabs.setObjectName("mainTabs")
        SteadyTabs.install(self.tabs)  # the review loop: see app/views/review_loop.py
        self.tabs.addTab(self.review, "Review")
        self.tabs.addTab(browse, "Tasks")
        self.ground_truth = GroundTruthTab(store)
        self.ground_truth.openTask.connect(self.review_task)
        self.tabs.addTab(self.ground_truth, "Ground truth")
        self.dashboard = DashboardPanel(store)
        self.dashboard.openQueue.connect(self.open_queue)
        self.dashboard.message.connect(lambda text: self.statusBar().showMessage(text, 10000))
        self.tabs.addTab(self.dashboard, "Dashboard")
        self.tabs.currentChanged.connect(self._tab_changed)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(_panel("Projects", self.project_list))
        split.addWidget(self.tabs)
        split.setSizes([220, 1060])
        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        self.notification_bar = NotificationBar()
        self.notification_bar.opened.connect(self.open_notification)
        cl.addWidget(self.notification_bar)
        cl.addWidget(split, 1)
        self.setCentralWidget(central)

        self.status_label = QLabel()
        store_label = QLabel(f"Store: {Path(str(store.path)).name}")  # the whole path would crowd out messages
        store_label.setToolTip(str(store.path))
        # what the store found on open and could not fix by itself: a broken audit chain (ADR 0012), a daily
        # backup that could not be written; shown in the status bar for as long as the window is open
        warnings = [w for w in (getattr(store, "audit_warning", None), getattr(store, "backup_warning", None)) if w]
        self.store_warning = QLabel("⚠ " + " · ".join(warnings) if warnings else "")
        self.store_warning.setObjectName("storeWarning")
        self.store_warning.setStyleSheet(f"color: {tone().reject}; font-weight: 600")
        self.store_warning.setToolTip("\n".join(warnings))
        self.store_warning.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.store_warning.setVisible(bool(warnings))
        self.statusBar().addPermanentWidget(self.store_warning, 1)
        self.statusBar().addPermanentWidget(store_label)
        self.statusBar().addWidget(self.status_label)
        self._build_menu()
        from app.views.sync_ui import attach_sync

        self.sync = attach_sync(self, store, self.apply)
        self.tray = TrayNotifier(self)
        self.tray.opened.connect(self.open_notification)
        self.sync.finished.connect(lambda _out: self.check_notifications())
        self.reload_projects(select=project_id)
        self._jobs: list[Job] = []
        if self.settings.font_size:
            self._apply_font_size()
        self.check_notifications()

    # -- menu ------------------------------------------------------------------------------
    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        imp = QAction("&Import Label Studio export…", self)
        imp.setShortcut(QKeySequence("Ctrl+I"))
        imp.triggered.connect(self.import_dialog)
        file_menu.addAction(imp)
        exp = QAction("&Export project…", self)
        exp.setShortcut(QKeySequence("Ctrl+E"))
        exp.triggered.connect(self.export_dialog)
        file_menu.addAction(exp)
        file_menu.addSeparator()
        quit_ = QAction("&Quit", self)
        quit_.setShortcut(QKeySequence.StandardKey.Quit)
        quit_.triggered.connect(self.close)
        file_menu.addAction(quit_)
        review_menu = self.menuBar().addMenu("&Review")
        act = QAction("Review &settings…", self)
        act.triggered.connect(self.settings_dialog)
        review_menu.addAction(act)
        act = QAction("&Keys…", self)
        act.triggered.connect(self.keymap_dialog)
        review_menu.addAction(act)
        act = QAction("&Reject reasons for this project…", self)
        act.triggered.connect(self.reject_reasons_dialog)
        review_menu.addAction(act)
        review_menu.addSeparator()
        self.others_action = QAction("Show tasks &other reviewers already decided", self)
        self.others_action.setObjectName("showDecidedByOthers")
        self.others_action.setCheckable(True)
        self.others_action.setChecked(self.settings.show_decided_by_others)
        self.others_action.setToolTip("Off: a task another reviewer judged (brought by a sync) leaves your queue")
        self.others_action.toggled.connect(self.set_show_decided_by_others)
        review_menu.addAction(self.others_action)
        act = QAction("Show the &whole queue", self)
        act.triggered.connect(self.review.back_to_full_queue)
        review_menu.addAction(act)
        act = QAction("Review &coverage…", self)
        act.setObjectName("coverageAction")
        act.triggered.connect(self.coverage_dialog)
        review_menu.addAction(act)
        review_menu.addSeparator()
        act = QAction("Open the newest &notification", self)
        act.setObjectName("openNotification")
        act.triggered.connect(self.notification_bar_open)
        review_menu.addAction(act)
        self.notification_action = act
        self._apply_window_keys()
        view_menu = self.menuBar().addMenu("&View")
        goto = QAction("&Go to task…", self)
        goto.setObjectName("goToTaskAction")
        goto.setShortcut(QKeySequence("Ctrl+G"))
        goto.triggered.connect(self.go_to_task_dialog)
        view_menu.addAction(goto)
        view_menu.addSeparator()
        for text, seqs, step in (("&Larger text", ("Ctrl++", "Ctrl+="), 1), ("&Smaller text", ("Ctrl+-",), -1),
                                 ("&Default text size", ("Ctrl+0",), 0)):
            act = QAction(text, self)
            act.setShortcuts([QKeySequence(k) for k in seqs])
            act.triggered.connect(lambda _checked=False, step=step: self.change_font_size(step))
            view_menu.addAction(act)
        view_menu.addSeparator()
        theme_menu = view_menu.addMenu("&Theme")
        self.theme_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        group.setExclusive(True)
        for mode_, text in (("system", "Follow the &system"), ("light", "&Light"), ("dark", "&Dark")):
            act = QAction(text, self)
            act.setCheckable(True)
            act.setChecked(self.settings.theme == mode_)
            act.setObjectName(f"theme:{mode_}")
            act.triggered.connect(lambda _checked=False, m=mode_: self.set_theme(m))
            group.addAction(act)
            theme_menu.addAction(act)
            self.theme_actions[mode_] = act
        help_menu = self.menuBar().addMenu("&Help")
        keys = QAction("&Keys", self)
        keys.triggered.connect(self.review.show_keys)
        help_menu.addAction(keys)
        about = QAction("&About ReviewDesk", self)
        about.triggered.connect(lambda: QMessageBox.about(
            self, "ReviewDesk", f"ReviewDesk {__version__}\nOffline review of Label Studio annotations."))
        help_menu.addAction(about)

    # -- refresh from Changes ----------------------------------------------------------------
    def apply(self, changes: Changes, *, from_review: bool = False) -> None:
        """Refresh from a service call's ``Changes``. The review panel already drew its own decisions
        (``from_review``); anything else that changes decisions or the queue (a pull bringing other reviewers'
        decisions, a push, a conflict resolution) refreshes its queue and the task history in place."""
        if changes.projects:
            self.reload_projects(select=self.current_project())
        if changes.tasks or changes.annotations or changes.decisions or changes.sync:
            self.tasks_tab.refresh()  # counts and statuses (a decision, a pull, a resolved conflict)
        if not from_review:
            self.review.apply_changes(changes)
        self.dashboard.apply(changes)
        self.ground_truth.apply(changes)
        if changes.calibration and not from_review:
            self._update_gate()
        if changes.decisions and from_review:
            self.statusBar().showMessage("Decision saved.", 2000)

    def reload_projects(self, select: int | None = None) -> None:
        """Rebuild the project list; the selected project stays open (its review session is not reset)."""
        before = self.current_project()
        self.project_list.blockSignals(True)
        self.project_list.clear()
        chosen = None
        for p in self.projects.list_projects(counts=False):
            origin = "from a server" if p.server_id is not None else "imported file"
            item = QListWidgetItem(f"{p.title}\n{p.tasks:,} tasks · {origin}")
            item.setData(Qt.ItemDataRole.UserRole, p.id)
            item.setToolTip(f"Project {p.id}, created {p.created_at[:10]}")
            self.project_list.addItem(item)
            if chosen is None or p.id == select:
                chosen = item
        if chosen is not None and before is not None and int(chosen.data(Qt.ItemDataRole.UserRole)) == before:
            self.project_list.setCurrentItem(chosen)  # same project: keep the queue, position and history
            self.project_list.blockSignals(False)
            return
        self.project_list.blockSignals(False)
        if chosen is not None:
            self.project_list.setCurrentItem(chosen)
        else:
            self.tasks_tab.open_project(None)
            self.task_pane.setHtml("<p>No projects yet. Use <b>File → Import</b> (Ctrl+I) to import a "
                                   "Label Studio export, or start with <code>reviewdesk --demo</code>.</p>")

    def current_project(self) -> int | None:
        item = self.project_list.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def _project_selected(self, item: QListWidgetItem | None, _prev: Any = None) -> None:
        pid = None if item is None else int(item.data(Qt.ItemDataRole.UserRole))
        if pid is not None and pid != self._prewarmed:  # first: it starts while the tabs below open
            self._prewarmed = pid
            prewarm_in_background(self.store, pid)
        self.tasks_tab.open_project(pid)
        self._update_gate()  # first: a locked project's production queue is never opened
        self.review.open_project(pid)
        self.dashboard.open_project(pid)
        self.ground_truth.open_project(pid)
        if self.tabs.currentWidget() is self.review:
            self._focus_review()
        self.status_label.setText(f"{self.task_model.total:,} tasks")
        if self.task_model.rowCount():
            self.tasks_tab.select_row(0)
        else:
            self.task_pane.clear()

    def _task_selected(self, task_id: int | None) -> None:
        if task_id is None:
            self.task_pane.clear()
            return
        self.show_task(task_id)

    def _tab_changed(self, _index: int) -> None:
        if self.tabs.currentWidget() is self.review:
            self._focus_review()

    def go_to_task_dialog(self) -> None:
        """Ctrl+G: ask for a task id (as the Task column shows it) and select it in the Tasks tab."""
        if self.current_project() is None:
            return
        self.tabs.setCurrentWidget(self.browse)
        text, ok = QInputDialog.getText(self, "Go to task", "Task id (as in the Task column):")
        digits = "".join(ch for ch in text if ch.isdigit())
        if not ok or not digits:
            return
        self.go_to_task(int(digits))

    def go_to_task(self, task_key: int) -> bool:
        """Select the task shown as ``task_key`` in the Tasks tab. Hidden by the filters: say so in the status
        bar and offer to clear them."""
        self.tabs.setCurrentWidget(self.browse)
        outcome = self.tasks_tab.go_to(task_key)
        if outcome == "filtered":
            answer = QMessageBox.question(
                self, "Go to task", f"Task {task_key} is hidden by the filters. Clear the filters and show it?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
            if answer == QMessageBox.StandardButton.Yes:
                self.tasks_tab.clear_filters()
                outcome = self.tasks_tab.go_to(task_key)
        return outcome == "found"

    def coverage_dialog(self) -> Any:
        """Reviewed / eligible per annotator, control and reviewer for the open project (a worker counts)."""
        from app.views.coverage_view import CoverageDialog

        pid = self.current_project()
        if pid is None:
            return None
        dlg = CoverageDialog(self.store, pid, self)
        dlg.show()
        return dlg

    def review_task(self, task_id: int) -> bool:
        """Open this task in the Review tab and switch to it (re-review from the conflicts view, a double
        click in the task list) — even a task the queue leaves out, e.g. one another reviewer decided."""
        try:
            detail = self.projects.task_detail(task_id)
        except LookupError:
            self.statusBar().showMessage(f"Task {task_id} is no longer in this store.", 8000)
            return False
        if self.current_project() != detail.project_id:
            for i in range(self.project_list.count()):
                item = self.project_list.item(i)
                if int(item.data(Qt.ItemDataRole.UserRole)) == detail.project_id:
                    self.project_list.setCurrentItem(item)
                    break
        self.tabs.setCurrentWidget(self.review)
        if self.calibration_locked():
            self.statusBar().showMessage("Pass the calibration round first: the review queue opens after it.", 8000)
            return False
        opened = self.review.open_task(task_id)
        if not opened:
            self.statusBar().showMessage(f"Task {detail.server_id or task_id} cannot be reviewed here.", 8000)
        return opened

    # -- calibration gate and notifications (issue 15) ------------------------------------------------------------
    def calibration_locked(self) -> bool:
        pid = self.current_project()
        return pid is not None and not CalibrationService(self.store).production_unlocked(pid, self.settings.reviewer)

    def _focus_review(self) -> None:
        (self.calibration if self.review.gated else self.review).setFocus()

    def _update_gate(self) -> None:
        """Show the calibration round instead of the production queue while this reviewer has not passed it."""
        pid = self.current_project()
        locked = self.calibration_locked()
        if locked:
            if not self.review.gated or self.calibration.project_id != pid:
                self.calibration.open_project(pid, self.settings.reviewer)
            self.review.set_gate(self.calibration)
        else:
            self.notification_bar.drop(lambda n: n.kind == "calibration" and n.project_id == pid)
            self.review.set_gate(None)
        if self.tabs.currentWidget() is self.review:
            self._focus_review()

    def check_notifications(self) -> tuple[Notification, ...]:
        """After a sync (and on start): what is new for this reviewer goes to the bar and the tray."""
        svc = NotificationService(self.store)
        notes = svc.new(self.settings.reviewer, self.settings.role)
        if notes:
            svc.mark_seen(notes)
            self.notification_bar.show_notes(notes)
            self.tray.notify(notes)
        return notes

    def notification_bar_open(self) -> None:
        if self.notification_bar.open_newest() is None:
            self.statusBar().showMessage("No new notifications.", 3000)

    def open_notification(self, n: Notification) -> bool:
        if n.task_id is None:  # a calibration request: the project's Review tab shows the round
            self._select_project(n.project_id)
            self.tabs.setCurrentWidget(self.review)
            self._update_gate()
            return True
        return self.open_task(n.task_id, n.role)

    def open_task(self, task_id: int, role: str | None = None) -> bool:
        """Open a task for review in the queue of ``role`` (``reviewer`` / ``expert``; None: the current one).
        The entry point for notifications; queue routing can go through here."""
        if role is not None and role != self.review.role:
            if self.review.session is not None:
                self.review.set_role(role)  # the queue bar's switch: session, history and undo stay
            if self.review.role != role:  # no session yet (or busy): open the project in that role
                self.review.role = role
                self.review.open_project(self.current_project())
        return self.review_task(task_id)

    def _select_project(self, project_id: int) -> None:
        if self.current_project() == project_id:
            return
        for i in range(self.project_list.count()):
            item = self.project_list.item(i)
            if int(item.data(Qt.ItemDataRole.UserRole)) == project_id:
                self.project_list.setCurrentItem(item)
                break

    def set_show_decided_by_others(self, on: bool) -> None:
        """The setting (Review menu, settings dialog): tasks other reviewers decided in or out of my queue."""
        if self.others_action.isChecked() != on:
            self.others_action.blockSignals(True)
            self.others_action.setChecked(on)
            self.others_action.blockSignals(False)
        if self.settings.show_decided_by_others != on:
            self.settings = self.settings.with_(show_decided_by_others=on)
            save_settings(self.store.data_dir, self.settings)
        self.review.set_show_decided_by_others(on)

    def open_queue(self, queue: QueueFilter) -> None:
        """Show the review queue filtered (drill-down from the dashboard, an annotator, …)."""
        self.tabs.setCurrentWidget(self.review)
        if self.calibration_locked():
            self.statusBar().showMessage("Pass the calibration round first: the review queue opens after it.", 8000)
            return
        self.review.set_queue(queue)
        self.review.setFocus()

    def change_font_size(self, step: int) -> None:
        """Ctrl++ / Ctrl+− / Ctrl+0: the text size of the whole window, remembered in the settings."""
        app = QApplication.instance()
        if not isinstance(app, QApplication):
            return
        if not hasattr(self, "_system_pt"):
            self._system_pt = QApplication.font().pointSize()
        now = self.settings.font_size or self._system_pt
        size = 0 if step == 0 else max(7, min(24, now + step))
        self.settings = self.settings.with_(font_size=size)
        save_settings(self.store.data_dir, self.settings)
        self._apply_font_size()
        self.statusBar().showMessage(f"Text size {size or self._system_pt} pt", 3000)

    def _apply_font_size(self) -> None:
        if not hasattr(self, "_system_pt"):
            self._system_pt = QApplication.font().pointSize()
        f = QApplication.font()
        f.setPointSize(self.settings.font_size or self._system_pt)
        QApplication.setFont(f)

    def set_theme(self, mode_: str) -> None:
        """Switch to the ``system``/``light``/``dark`` theme now and remember it."""
        app = QApplication.instance()
        if not isinstance(app, QApplication):
            return
        dark = theme.apply(app, mode_)
        self.settings = self.settings.with_(theme=theme.mode())
        save_settings(self.store.data_dir, self.settings)
        for m, act in self.theme_actions.items():
            act.setChecked(m == theme.mode())
        self.review.restyle()  # rich text takes the new tones when it is drawn again
        self.dashboard.restyle()
        self.statusBar().showMessage(f"Theme: {'dark' if dark else 'light'}"
                                     + (" (following the system)" if theme.mode() == "system" else ""), 3000)

    def settings_dialog(self) -> None:
        dlg = SettingsDialog(self.settings, self)
        if dlg.exec():
            self.settings = dlg.value()
            save_settings(self.store.data_dir, self.settings)
            self.review.reviewer = self.settings.reviewer
            self.review.role = self.settings.role
            self.review.auto_advance = self.settings.auto_advance
            self.review.show_decided_by_others = self.settings.show_decided_by_others
            self.review.show_predictions = self.settings.show_predictions
            self.others_action.blockSignals(True)
            self.others_action.setChecked(self.settings.show_decided_by_others)
            self.others_action.blockSignals(False)
            self.review.open_project(self.current_project())
            self.calibration.reviewer = self.settings.reviewer
            self._update_gate()
            self.check_notifications()

    def reject_reasons_dialog(self) -> None:
        from app.services.decisions import DecisionError, DecisionService

        pid = self.current_project()
        if pid is None:
            return
        svc = DecisionService(self.store)
        current = "\n".join(svc.reject_reasons(pid))
        text, ok = QInputDialog.getMultiLineText(
            self, "Reject reasons", "One reason per line (up to 9; the reviewer picks them with 1-9).\n"
            "Cite the labeling instructions where you can, e.g. “Breaks guideline 3: product names”.", current)
        if not ok:
            return
        try:
            self.apply(svc.set_reject_reasons(pid, text.splitlines()))
        except DecisionError as exc:
            QMessageBox.warning(self, "Reject reasons", str(exc))

    def keymap_dialog(self) -> None:
        dlg = KeymapDialog(self.keymap, self)
        if dlg.exec():
            base = load_keymap()
            self.keymap = dlg.result_keymap
            self.settings = self.settings.with_(keymap_overrides=self.keymap.overrides_against(base))
            save_settings(self.store.data_dir, self.settings)
            self.review.set_keymap(self.keymap)
            self.calibration.set_keymap(self.keymap)
            self._apply_window_keys()

    def _apply_window_keys(self) -> None:
        """Window-wide actions bound from the keymap (rebindable, checked for conflicts with the review keys)."""
        self.notification_action.setShortcuts([QKeySequence(k) for k in self.keymap.keys("open_notification")])

    def show_task(self, task_id: int) -> None:
        self.task_pane.setHtml(task_html(self.projects.task_detail(task_id)))

    # -- import / export -----------------------------------------------------------------------
    def import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Label Studio JSON export", "", "JSON (*.json);;All files (*)")
        if not path:
            return
        cfg, _ = QFileDialog.getOpenFileName(self, "Labeling config (XML)", str(Path(path).parent),
                                             "XML (*.xml);;All files (*)")
        if not cfg:
            return
        title, ok = QInputDialog.getText(self, "Project title", "Title:", text=Path(path).stem)
        if not ok:
            return
        try:
            config = Path(cfg).read_text(encoding="utf-8")
        except OSError as exc:
            QMessageBox.warning(self, "Import", f"Cannot read {cfg}: {exc.strerror}")
            return
        self.run_import(path, config, title or Path(path).stem)

    def run_import(self, path: str, config: str, title: str) -> Job:
        dialog = QProgressDialog("Importing tasks…", "Cancel", 0, 0, self)
        dialog.setWindowTitle("Import")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(300)
        job = Job(lambda progress, _cancel: self.projects.import_file(path, config, title, progress=progress))
        job.signals.progress.connect(lambda n: dialog.setLabelText(f"Imported {n:,} tasks…"))
        dialog.canceled.connect(job.cancel)

        def done(result: Any) -> None:
            dialog.reset()
            self._jobs.remove(job)
            self.apply(result.changes)
            self.reload_projects(select=result.summary.project_id)
            self.statusBar().showMessage(f"Imported {result.summary.tasks:,} tasks into “{title}”.", 8000)

        def failed(exc: BaseException) -> None:
            dialog.reset()
            self._jobs.remove(job)
            if isinstance(exc, Cancelled):
                self.statusBar().showMessage("Import cancelled; nothing was imported.", 8000)
            else:
                QMessageBox.warning(self, "Import failed", f"{exc}\n\nNothing was imported.")

        job.signals.finished.connect(done)
        job.signals.failed.connect(failed)
        self._jobs.append(job)
        job.start()
        return job

    def export_dialog(self) -> None:
        pid = self.current_project()
        if pid is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export as Label Studio JSON", "export.json", "JSON (*.json)")
        if not path:
            return
        try:
            n = self.projects.export_file(pid, path)
        except OSError as exc:
            QMessageBox.warning(self, "Export failed", f"Cannot write {path}: {exc.strerror}")
            return
        self.statusBar().showMessage(f"Exported {n:,} tasks to {path}.", 8000)
