"""Sync in the GUI: a "Sync" menu, a login dialog, a status area, background sync and the conflict view.

``attach_sync(window, store, on_changes)`` is the only entry point: it adds the menu and the status widgets
to a ``QMainWindow`` and returns the controller. All network work runs in :class:`app.views.worker.Job`
off the UI thread (progress + cancel); the reviewer keeps reviewing meanwhile. A refused or expired token
opens the login dialog again; nothing queued is lost. Views never touch HTTP or SQL: they call
:class:`app.services.sync.SyncService` and refresh from the returned ``Changes``.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.models.store import Store
from app.services.changes import Changes
from app.services.describe import ago, describe_result, past_tense
from app.services.projects import ProjectService
from app.services.sync import ConflictInfo, SyncService, SyncStatus
from app.sync.errors import AuthError
from app.views.theme import tone
from app.views.worker import Cancelled, Job

STATUS_REFRESH_MS = 15_000
ONLINE_CHECK_MS = 60_000


def plain_error(text: str | None) -> str:
    """An error as a reviewer reads it: no ``[Errno 111]``, no ``<urlopen error …>`` wrapper."""
    if not text:
        return ""
    out = re.sub(r"\[Errno -?\d+\]\s*", "", str(text))
    out = re.sub(r"<urlopen error (.*)>", r"\1", out)
    return out.strip()


def status_text(st: SyncStatus) -> str:
    """The sync status as a few readable lines (the Sync status panel)."""
    servers = ", ".join(s.url for s in st.servers) or "none — use Sync → Log in… to connect one"
    lines = [f"Server: {servers}",
             f"Decisions waiting to be sent: {st.pending:,}",
             f"Conflicts to resolve: {st.conflicts:,}",
             f"Last pull: {_ago(st.last_pull_at)}",
             f"Last push: {_ago(st.last_push_at)}"]
    if st.last_error:
        lines.append(f"Last error: {plain_error(st.last_error)}")
    return "\n".join(lines)


def _ago(stamp: str | None) -> str:
    if not stamp:
        return "never"
    try:
        then = datetime.strptime(stamp.rstrip("Z")[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
    except ValueError:
        return stamp
    secs = int((datetime.now(UTC) - then).total_seconds())
    if secs < 60:
        return "just now"
    if secs < 3600:
        return f"{secs // 60} min ago"
    if secs < 86400:
        return f"{secs // 3600} h ago"
    return then.strftime("%Y-%m-%d %H:%M")


class LoginDialog(QDialog):
    """Server URL, API token (hidden), optional CA bundle. Checks the token before closing."""

    def __init__(self, controller: SyncController, parent: QWidget | None = None, url: str = "",
                 message: str | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Connect to Label Studio")
        self.url = QLineEdit(url)
        self.url.setObjectName("loginUrl")
        self.url.setPlaceholderText("https://labelstudio.example.org")
        self.token = QLineEdit()
        self.token.setObjectName("loginToken")
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("Account & Settings → Access token (legacy or personal)")
        self.ca = QLineEdit()
        self.ca.setObjectName("loginCa")
        self.ca.setPlaceholderText("optional: your organisation's CA bundle (PEM)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        ca_row = QHBoxLayout()
        ca_row.addWidget(self.ca)
        ca_row.addWidget(browse)
        self.error = QLabel(message or "")
        self.error.setObjectName("loginError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color:{tone().reject}")
        # every field wide enough for its hint: a clipped "Account & Settings → Acc" helps nobody
        for edit in (self.url, self.token, self.ca):
            hint = edit.fontMetrics().horizontalAdvance(edit.placeholderText() or edit.text())
            edit.setMinimumWidth(hint + 24)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.addRow("Server URL", self.url)
        form.addRow("API token", self.token)
        form.addRow("CA bundle", ca_row)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Log in")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(QLabel("The token is kept in your system keyring only."))
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)
        self.result_info: Any = None

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "CA bundle", "", "PEM (*.pem *.crt);;All files (*)")
        if path:
            self.ca.setText(path)

    def submit(self) -> None:
        url, token = self.url.text().strip(), self.token.text().strip()
        if not url or not token:
            self.error.setText("Enter the server URL and an API token.")
            return
        self.buttons.setEnabled(False)
        self.error.setText("Checking…")
        ca = self.ca.text().strip() or None

        def work(_progress: Callable[[int], None], _cancel: threading.Event) -> Any:
            return self.controller.service.login(url, token, ca_bundle=ca)

        def done(res: Any) -> None:
            self.token.clear()
            self.result_info = res[0]
            self.controller.logged_in(res)
            self.accept()

        def failed(exc: BaseException) -> None:
            self.buttons.setEnabled(True)
            self.error.setText(str(exc))

        self.controller.run_job(work, done, failed, label=None)


class ConflictDialog(QDialog):
    """Each conflict side by side: what I decided (and saw) vs the server's version; then resolve."""

    def __init__(self, controller: SyncController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Sync conflicts")
        self.resize(1000, 560)
        self.items = QListWidget()
        self.items.setObjectName("conflictList")
        self.items.currentRowChanged.connect(self._show)
        self.mine = QTextBrowser()
        self.mine.setObjectName("conflictMine")
        self.theirs = QTextBrowser()
        self.theirs.setObjectName("conflictTheirs")
        self.summary = QLabel()
        self.summary.setObjectName("conflictSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        sides = QSplitter(Qt.Orientation.Horizontal)
        for title, w in (("Mine", self.mine), ("Theirs (server now)", self.theirs)):
            box = QWidget()
            v = QVBoxLayout(box)
            v.setContentsMargins(0, 0, 0, 0)
            v.addWidget(QLabel(f"<b>{title}</b>"))
            v.addWidget(w)
            sides.addWidget(box)
        self.rereview_btn = QPushButton("Re-review")
        self.rereview_btn.setToolTip("Drop my decision and open the task in the Review tab, as it is on the "
                                     "server now")
        self.keep_btn = QPushButton("Keep mine")
        self.keep_btn.setToolTip("Push my decision anyway (recorded as forced)")
        self.discard_btn = QPushButton("Discard mine")
        self.discard_btn.setToolTip("Retract my decision (recorded); it is never sent")
        for b, name, fn in ((self.rereview_btn, "rereview", self._rereview), (self.keep_btn, "keepMine", self._keep),
                            (self.discard_btn, "discardMine", self._discard)):
            b.setObjectName(name)
            b.clicked.connect(fn)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.rereview_btn)
        row.addWidget(self.keep_btn)
        row.addWidget(self.discard_btn)
        self.items.setWordWrap(True)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.summary)
        rv.addWidget(sides, 1)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.items)
        top.addWidget(right)
        top.setSizes([300, 700])
        lay = QVBoxLayout(self)
        lay.addWidget(top)
        lay.addLayout(row)
        self.conflicts: tuple[ConflictInfo, ...] = ()
        self._names: dict[int, dict[str, str]] = {}
        self.reload()

    def name(self, project_id: int, email: Any) -> str:
        """A reviewer as the project's members call them (name when the server gave one, else the e-mail)."""
        if not email:
            return "another reviewer"
        if project_id not in self._names:
            self._names[project_id] = ProjectService(self.controller.store).reviewer_names(project_id)
        return self._names[project_id].get(str(email).strip().lower(), str(email))

    def headline(self, c: ConflictInfo) -> str:
        """One line naming both sides, e.g. ``You: reject · Priya Shah: accept``."""
        if c.kind == "other_reviewer":
            t = c.theirs or {}
            return f"You: {c.verdict} · {self.name(c.project_id, t.get('reviewer'))}: {t.get('verdict', '?')}"
        return f"You: {c.verdict} · the annotation {'changed' if c.kind == 'changed' else 'is gone'}"

    def reload(self) -> None:
        self._names = {}
        self.conflicts = self.controller.service.conflicts()
        self.items.clear()
        for c in self.conflicts:
            QListWidgetItem(f"Task {c.task_server_id} · {self.headline(c)}\n{c.message}", self.items)
        has = bool(self.conflicts)
        for b in (self.rereview_btn, self.keep_btn, self.discard_btn):
            b.setEnabled(has)
        if has:
            self.items.setCurrentRow(0)
        else:
            self.summary.setText("")
            self.mine.setHtml("<p>No conflicts. Everything you decided can be sent as it is.</p>")
            self.theirs.clear()

    def current(self) -> ConflictInfo | None:
        row = self.items.currentRow()
        return self.conflicts[row] if 0 <= row < len(self.conflicts) else None

    def _show(self, _row: int) -> None:
        c = self.current()
        if c is None:
            return
        e = html.escape

        def lines(result: Any) -> str:
            if result is None:
                return "<i>(none)</i>"
            return "<br>".join(e(x) for x in describe_result(list(result)))

        t = c.theirs or {}
        if c.kind == "other_reviewer":
            who = self.name(c.project_id, t.get("reviewer"))
            self.summary.setText(
                f"<b>Two reviewers disagree on task {e(str(c.task_server_id))}</b>: you "
                f"<b>{e(past_tense(c.verdict))}</b> the annotation, {e(who)} "
                f"<b>{e(past_tense(str(t.get('verdict', '?'))))}</b> it. Keep mine, discard mine, or re-review it.")
        else:
            self.summary.setText(f"<b>Task {e(str(c.task_server_id))}</b>: you <b>{e(c.verdict)}</b> — "
                                 f"{e(c.message)}")
        mine = [f"<p><b>{e(c.verdict)}</b> by you ({e(c.reviewer)}) {e(ago(c.created_at))}</p>"]
        if c.reason or c.comment:
            mine.append(f"<p>{e(' — '.join(x for x in (c.reason, c.comment) if x))}</p>")
        if c.verdict == "fix":
            mine.append(f"<h4>My fixed result</h4><p>{lines(c.mine_result)}</p>")
        mine.append(f"<h4>The annotation as I saw it</h4><p>{lines(c.seen_result)}</p>")
        self.mine.setHtml("".join(mine))
        theirs = [f"<p style='color:{tone().reject}'>{e(c.message)}</p>"]
        if c.kind == "other_reviewer":
            who = self.name(c.project_id, t.get("reviewer"))
            email = f" ({e(str(t.get('reviewer')))})" if who != t.get("reviewer") and t.get("reviewer") else ""
            role = " — expert" if t.get("role") == "expert" else ""
            theirs.append(f"<p><b>{e(str(t.get('verdict')))}</b> by {e(who)}{email}{role} "
                          f"{e(ago(str(t.get('at'))) if t.get('at') else '')}</p>")
            if t.get("reason") or t.get("comment"):
                theirs.append(f"<p>{e(' — '.join(str(t[k]) for k in ('reason', 'comment') if t.get(k)))}</p>")
        elif t.get("result") is not None:
            theirs.append(f"<p>Changed at {e(str(t.get('updated_at')))}</p>")
        now = t.get("result") if c.kind == "changed" and t.get("result") is not None else c.current_result
        if c.kind in ("deleted", "task_deleted"):
            now = None
        theirs.append(f"<h4>The annotation on the server now</h4><p>{lines(now)}</p>")
        self.theirs.setHtml("".join(theirs))

    def _resolve(self, action: str) -> None:
        c = self.current()
        if c is None:
            return
        ctl = self.controller
        if action == "keep":
            changes = ctl.service.keep_mine(c.uuid, actor=ctl.reviewer())
        elif action == "discard":
            changes = ctl.service.discard_mine(c.uuid, actor=ctl.reviewer())
        else:
            task_id, changes = ctl.service.rereview(c.uuid, actor=ctl.reviewer())
            ctl.changed(changes)  # the queue and history know the retraction before the task opens
            if ctl.open_task(task_id):
                self.accept()  # the task is open in the Review tab, in front
                return
            self.reload()
            return
        ctl.changed(changes)
        self.reload()

    def _keep(self) -> None:
        self._resolve("keep")

    def _discard(self) -> None:
        self._resolve("discard")

    def _rereview(self) -> None:
        self._resolve("rereview")


class SyncStatusWidget(QWidget):
    """online/offline · pending · conflicts · last sync · progress with Cancel."""

    conflicts_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.online = QLabel("○ offline")
        self.online.setObjectName("syncOnline")
        self.pending = QLabel("0 pending")
        self.pending.setObjectName("syncPending")
        self.conflicts = QPushButton("0 conflicts")
        self.conflicts.setObjectName("syncConflicts")
        self.conflicts.setFlat(True)
        self.conflicts.clicked.connect(self.conflicts_clicked.emit)
        self.last = QLabel("last sync: never")
        self.last.setObjectName("syncLast")
        self.progress = QProgressBar()
        self.progress.setObjectName("syncProgress")
        self.progress.setMaximumWidth(140)
        self.progress.setVisible(False)
        self.cancel = QPushButton("Cancel")
        self.cancel.setObjectName("syncCancel")
        self.cancel.setVisible(False)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.online, self.pending, self.conflicts, self.last, self.progress, self.cancel):
            lay.addWidget(w)

    def show_status(self, st: SyncStatus, online: bool | None) -> None:
        if not st.servers:
            self.online.setText("○ no server")
            self.online.setToolTip("Sync → Log in… to connect a Label Studio server")
        elif online:
            self.online.setText("● online")
            self.online.setToolTip(", ".join(s.url for s in st.servers))
        else:
            self.online.setText("○ offline")
            self.online.setToolTip("Decisions are kept and sent when the server is reachable again")
        self.pending.setText(f"{st.pending} pending")
        self.pending.setToolTip(st.last_error or "")
        self.conflicts.setText(f"{st.conflicts} conflict" + ("" if st.conflicts == 1 else "s"))
        self.conflicts.setStyleSheet(f"color:{tone().reject}; font-weight:bold" if st.conflicts else "")
        self.last.setText(f"last sync: {_ago(st.last_sync_at)}")

    def busy(self, text: str | None) -> None:
        self.progress.setVisible(text is not None)
        self.cancel.setVisible(text is not None)
        if text is not None:
            self.progress.setRange(0, 0)
            self.progress.setFormat(text)


class SyncController(QObject):
    auth_required = Signal(str)
    finished = Signal(object)

    def __init__(self, window: QMainWindow, store: Store, on_changes: Callable[[Changes], None],
                 service: SyncService | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.store = store
        self.on_changes = on_changes
        self.service = service or SyncService(store)
        self.widget = SyncStatusWidget()
        self.widget.conflicts_clicked.connect(self.show_conflicts)
        self.widget.cancel.clicked.connect(self.cancel)
        self.online: bool | None = None
        self.job: Job | None = None
        self._jobs: list[Job] = []
        self.last_message = ""
        self.auth_required.connect(self._ask_login)
        self.ask_login_on_auth = True
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.refresh_status)
        self._timer.start(STATUS_REFRESH_MS)
        self._online_timer = QTimer(self)
        self._online_timer.timeout.connect(self.check_online)
        self._online_timer.start(ONLINE_CHECK_MS)
        self.menu: QMenu | None = None  # the "Sync" menu, once install() added it
        self.unregister_media: Callable[[], None] | None = None

    # -- plumbing ------------------------------------------------------------------------------------------
    def reviewer(self) -> str:
        try:
            from app.services.settings import load_settings

            return load_settings(self.store.data_dir).reviewer
        except Exception:  # noqa: BLE001 - settings are optional here
            return "local"

    def changed(self, changes: Changes) -> None:
        if changes:
            self.on_changes(changes)
        self.refresh_status()

    def open_task(self, task_id: int) -> bool:
        """Open the task for review in the window's Review tab (``review_task``); a window without one shows
        it (``show_task``). True when it is open in the Review tab."""
        review = getattr(self.window, "review_task", None)
        if callable(review):
            return bool(review(task_id))
        show = getattr(self.window, "show_task", None)
        if callable(show):
            show(task_id)
        return False

    def run_job(self, fn: Callable[[Callable[[int], None], threading.Event], Any], done: Callable[[Any], None],
                failed: Callable[[BaseException], None], label: str | None) -> Job:
        job = Job(fn)

        def finished(result: Any) -> None:
            if not shiboken6.isValid(self.widget):  # the window closed while the job ran: nobody to tell
                return
            self._forget(job)  # first: the callback may start the next job
            done(result)

        def errored(exc: BaseException) -> None:
            if not shiboken6.isValid(self.widget):
                return
            self._forget(job)
            failed(exc)

        job.signals.finished.connect(finished)
        job.signals.failed.connect(errored)
        if label is not None:
            self.job = job
            self.widget.busy(label)
            job.signals.progress.connect(self._progress)
        self._jobs.append(job)
        job.start()
        return job

    def _forget(self, job: Job) -> None:
        if job is self.job:
            self.job = None
            self.widget.busy(None)
        if job in self._jobs:
            self._jobs.remove(job)

    def _progress(self, pct: int) -> None:
        self.widget.progress.setRange(0, 100)
        self.widget.progress.setValue(pct)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.widget.progress.setFormat("cancelling…")

    def busy(self) -> bool:
        return self.job is not None

    def refresh_status(self) -> None:
        self.widget.show_status(self.service.status(), self.online)

    def check_online(self) -> None:
        def work(_p: Callable[[int], None], _c: threading.Event) -> bool:
            return self.service.check_online()

        def done(ok: bool) -> None:
            self.online = bool(ok)
            self.refresh_status()

        self.run_job(work, done, lambda _e: None, label=None)

    def _wrap(self, progress: Callable[[int], None], cancel: threading.Event) -> Callable[[int, int | None], None]:
        def cb(done: int, total: int | None) -> None:
            if not cancel.is_set() and total:
                progress(int(100 * min(done, total) / max(total, 1)))

        return cb

    def _failed(self, what: str) -> Callable[[BaseException], None]:
        def handler(exc: BaseException) -> None:
            if isinstance(exc, Cancelled) or type(exc).__name__ == "Cancelled":
                self.last_message = f"{what} cancelled; what was done is kept."
            elif isinstance(exc, AuthError):
                self.last_message = str(exc)
                self.auth_required.emit(str(exc))
            else:
                self.last_message = f"{what} failed: {plain_error(str(exc))}"
                self.online = False if "reach" in str(exc) or "DNS" in str(exc) else self.online
            self._status_message(self.last_message)
            self.refresh_status()
            self.finished.emit(exc)

        return handler

    def _status_message(self, text: str) -> None:
        bar = self.window.statusBar() if hasattr(self.window, "statusBar") else None
        if bar is not None:
            bar.showMessage(text, 15_000)

    # -- actions -------------------------------------------------------------------------------------------
    def login_dialog(self, message: str | None = None) -> LoginDialog:
        servers = self.service.servers()
        dlg = LoginDialog(self, self.window, url=servers[0].url if servers else "", message=message)
        dlg.setModal(True)
        return dlg

    def _ask_login(self, message: str) -> None:
        if self.ask_login_on_auth:
            self.login_dialog(message + "\nLog in again; your queued decisions are kept.").open()

    def logged_in(self, res: Any) -> None:
        info, changes = res
        self.online = True
        msg = f"Connected to {info.url} as {info.email} ({info.edition})."
        if info.warning:
            msg += " " + info.warning
        self.last_message = msg
        self._status_message(msg)
        self.changed(changes)

    def sync_now(self) -> Job | None:
        if self.busy():
            return None
        if not self.service.status().servers:
            self.last_message = "No server to sync with: use Sync → Log in… to connect one first."
            self._status_message(self.last_message)
            return None

        def work(progress: Callable[[int], None], cancel: threading.Event) -> Any:
            return self.service.sync(progress=self._wrap(progress, cancel), cancel=cancel)

        def done(out: Any) -> None:
            self.online = not any("reach" in e for e in out.errors)
            if out.auth_required:
                self.auth_required.emit("The server refused the API token.")
            self.last_message = (f"Sync: {out.push.synced} sent, {out.push.conflicts} conflicts, "
                                 f"{sum(p.tasks_new + p.tasks_updated for p in out.pulls)} tasks updated"
                                 + (f"; {plain_error(out.errors[0])}" if out.errors else "") + ".")
            self._status_message(self.last_message)
            self.changed(out.changes)
            self.finished.emit(out)

        return self.run_job(work, done, self._failed("Sync"), label="syncing…")

    def push_now(self) -> Job | None:
        if self.busy():
            return None

        def work(progress: Callable[[int], None], cancel: threading.Event) -> Any:
            return self.service.push(progress=self._wrap(progress, cancel), cancel=cancel)

        def done(out: Any) -> None:
            if out.auth_required:
                self.auth_required.emit("The server refused the API token.")
            errors = [e for _u, r in out.reports for e in r.errors]
            self.online = not any("reach" in e for e in errors) if out.reports else self.online
            self.last_message = f"Push: {out.synced} sent, {out.conflicts} conflicts, {out.failed} still queued."
            self._status_message(self.last_message)
            self.changed(out.changes)
            self.finished.emit(out)

        return self.run_job(work, done, self._failed("Push"), label="sending…")

    def pull_project(self, url: str, project: int) -> Job | None:
        if self.busy():
            return None

        def work(progress: Callable[[int], None], cancel: threading.Event) -> Any:
            return self.service.pull(url, project, progress=self._wrap(progress, cancel), cancel=cancel)

        def done(out: Any) -> None:
            self.online = True
            r = out.report
            self.last_message = (f"Pulled {r.title}: {r.tasks_new} new, {r.tasks_updated} updated"
                                 + (f", {r.conflicts} conflicts" if r.conflicts else "") + ".")
            self._status_message(self.last_message)
            self.changed(out.changes)
            self.finished.emit(out)

        return self.run_job(work, done, self._failed("Pull"), label="pulling…")

    def pull_dialog(self) -> None:
        servers = self.service.servers()
        if not servers:
            self.login_dialog("Log in to a server first.").open()
            return
        project, ok = QInputDialog.getInt(self.window, "Pull a project",
                                          f"Label Studio project id on {servers[0].url}:", 1, 1)
        if ok:
            self.pull_project(servers[0].url, project)

    def show_conflicts(self) -> ConflictDialog:
        dlg = ConflictDialog(self, self.window)
        dlg.open()
        return dlg

    def show_details(self) -> None:
        st = self.service.status()
        box = QMessageBox(QMessageBox.Icon.Information, "Sync status", status_text(st), parent=self.window)
        box.setObjectName("syncStatusBox")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.open()
        self.status_box = box


def attach_sync(window: QMainWindow, store: Store, on_changes: Callable[[Changes], None], *,
                service: SyncService | None = None) -> SyncController:
    """Add a "Sync" menu and the sync status area to ``window``; returns the controller."""
    ctl = SyncController(window, store, on_changes, service)
    menu = window.menuBar().addMenu("&Sync")
    menu.setObjectName("syncMenu")

    def action(text: str, fn: Callable[[], Any], shortcut: str | None = None, name: str | None = None) -> QAction:
        a = QAction(text, window)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        a.triggered.connect(lambda _checked=False: fn())
        if name:
            a.setObjectName(name)
        menu.addAction(a)
        return a

    action("&Log in…", lambda: ctl.login_dialog().open(), name="syncLogin")
    action("&Sync now", ctl.sync_now, "F5", name="syncNow")
    action("Send &decisions", ctl.push_now, name="syncPush")
    action("&Pull a project…", ctl.pull_dialog, name="syncPull")
    menu.addSeparator()
    action("&Conflicts…", ctl.show_conflicts, name="syncConflicts")
    action("&Cancel sync", ctl.cancel, name="syncCancel")
    action("Sync s&tatus…", ctl.show_details, name="syncStatus")
    window.statusBar().addPermanentWidget(ctl.widget)
    ctl.menu = menu
    # media fetched by pulls are found by the task view through the content-addressed cache
    ctl.unregister_media = ctl.service.register_media_lookup()
    ctl.destroyed.connect(lambda *_: ctl.unregister_media and ctl.unregister_media())
    ctl.refresh_status()
    QTimer.singleShot(0, ctl.check_online)
    return ctl
