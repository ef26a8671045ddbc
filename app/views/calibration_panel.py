"""Calibration in the GUI (issue 15 point 6).

:class:`CalibrationPanel` takes the Review tab's place while the project requires a calibration round this
reviewer has not passed (the gate is in the main window: the production queue is not even opened). It shows
the round's ground-truth tasks one at a time -- one annotation each, no ground-truth marker, no history, no
predictions: the reference is hidden -- judged with the normal keys (accept, fix in place, reject; next and
previous move between the round's tasks). *Finish* scores the round per control; a pass emits ``unlocked``.

:class:`CalibrationResults` is the dashboard's *Calibration* tab: each reviewer's latest round, a column per
control.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.models.store import Store
from app.services.calibration import CalibrationError, CalibrationService, CalibrationStatus, RoundInfo
from app.services.changes import Changes
from app.services.keymap import Keymap
from app.services.projects import ProjectService
from app.views.renderers import TaskView
from app.views.theme import tone

VERDICT_MARK = {"accept": "✓ accepted", "fix": "✎ fixed", "reject": "✗ rejected"}


class CalibrationPanel(QWidget):
    unlocked = Signal()  # the reviewer passed: the production queue may open
    changed = Signal(object)  # Changes
    status = Signal(str)

    def __init__(self, store: Store, projects: ProjectService, keymap: Keymap, *, reviewer: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("calibrationPanel")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.store = store
        self.projects = projects
        self.svc = CalibrationService(store)
        self.keymap = keymap
        self.reviewer = reviewer
        self.project_id: int | None = None
        self.round: RoundInfo | None = None
        self.position = 0
        self._shortcuts: list[QShortcut] = []

        self.pages = QStackedWidget()
        # page 0: the introduction (and the last result)
        intro = QWidget()
        il = QVBoxLayout(intro)
        il.setContentsMargins(40, 30, 40, 30)
        self.intro = QLabel()
        self.intro.setObjectName("calibrationIntro")
        self.intro.setWordWrap(True)
        self.intro.setTextFormat(Qt.TextFormat.RichText)
        self.start_button = QPushButton("Start the calibration round")
        self.start_button.setObjectName("calibrationStart")
        self.start_button.clicked.connect(self.start)
        il.addWidget(self.intro)
        il.addWidget(self.start_button, 0, Qt.AlignmentFlag.AlignLeft)
        il.addStretch(1)
        # page 1: a task of the round
        work = QWidget()
        wl = QVBoxLayout(work)
        wl.setContentsMargins(6, 6, 6, 6)
        top = QHBoxLayout()
        self.header = QLabel()
        self.header.setObjectName("calibrationHeader")
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.finish_button = QPushButton("Finish and score")
        self.finish_button.setObjectName("calibrationFinish")
        self.finish_button.clicked.connect(self.finish)
        top.addWidget(self.header, 1)
        top.addWidget(self.finish_button)
        self.task_view = TaskView()
        self.task_view.fixSaved.connect(self._fix_saved)
        self.task_view.fixCancelled.connect(lambda: self.setFocus())
        self.hints = QLabel()
        self.hints.setObjectName("calibrationHints")
        wl.addLayout(top)
        wl.addWidget(self.task_view, 1)
        wl.addWidget(self.hints)
        self.pages.addWidget(intro)
        self.pages.addWidget(work)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.pages)
        self._install_shortcuts()

    # -- keys ---------------------------------------------------------------------------------------------------
    def set_keymap(self, keymap: Keymap) -> None:
        self.keymap = keymap
        self._install_shortcuts()

    def _install_shortcuts(self) -> None:
        for sc in self._shortcuts:
            sc.setEnabled(False)
            sc.deleteLater()
        self._shortcuts = []
        handlers: dict[str, Callable[[], Any]] = {
            "accept": lambda: self.judge("accept"),
            "reject": lambda: self.judge("reject"),
            "fix": self.fix,
            "next": lambda: self.go(self.position + 1),
            "previous": lambda: self.go(self.position - 1),
        }
        for action, fn in handlers.items():
            for seq in self.keymap.keys(action):
                sc = QShortcut(QKeySequence(seq), self)
                sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                sc.setAutoRepeat(False)
                sc.activated.connect(fn)
                self._shortcuts.append(sc)
        self.task_view.set_fix_keys(self.keymap.keys("save", "fix"), self.keymap.keys("cancel", "fix"))
        parts = [f"<b>{html.escape(self.keymap.keys(a)[0])}</b> {a}" for a in ("accept", "fix", "reject", "next",
                                                                               "previous") if self.keymap.keys(a)]
        self.hints.setText(" · ".join(parts) + " · the reference is hidden until the round is scored")

    # -- the round ----------------------------------------------------------------------------------------------
    def open_project(self, project_id: int | None, reviewer: str | None = None) -> None:
        if reviewer is not None:
            self.reviewer = reviewer
        self.project_id = project_id
        self.round = None
        if project_id is None:
            return
        st = self.svc.status(project_id, self.reviewer)
        if st.open_round is not None:  # resume where the reviewer stopped
            self.round = self.svc.round(st.open_round)
            self.go(self.round.next_position or 0)
            return
        self._show_intro(st)

    def _show_intro(self, st: CalibrationStatus) -> None:
        t = tone()
        r = st.requirement
        text = (f"<h2>Calibration round</h2><p>Before you review production tasks of this project, judge "
                f"<b>{r.n_tasks}</b> ground-truth tasks as you normally would. You are scored per dimension against "
                f"the reference (which stays hidden); every dimension needs <b>{r.threshold:.0%}</b> to pass.</p>"
                "<p>Calibration judgements are not decisions: they never reach the project or the server.</p>")
        if st.last is not None:
            verdict = (f"<b style='color:{t.accept}'>passed</b>" if st.last.passed
                       else f"<b style='color:{t.reject}'>not passed</b>")
            when = (st.last.finished_at or "")[:16].replace("T", " ")
            text += f"<p>Your last round ({when}): {verdict}</p>"
            text += scores_html(st.last)
        self.intro.setText(text)
        self.start_button.setText("Start another round" if st.last is not None else "Start the calibration round")
        self.pages.setCurrentIndex(0)
        self.start_button.setFocus()

    def start(self) -> None:
        if self.project_id is None:
            return
        try:
            self.round = self.svc.start_round(self.project_id, self.reviewer)
        except CalibrationError as exc:
            self.status.emit(str(exc))
            return
        self.changed.emit(Changes(calibration=True))
        self.go(self.round.next_position or 0)

    def go(self, position: int) -> None:
        r = self.round
        if r is None or not r.items:
            return
        if self.task_view.in_fix_mode():
            return
        self.position = max(0, min(position, len(r.items) - 1))
        item = r.items[self.position]
        detail = self.projects.task_detail(item.task_id)
        # only the annotation being judged, never marked as the reference
        anns = tuple(dataclasses.replace(a, ground_truth=False) for a in detail.annotations
                     if a.id == item.annotation_id)
        shown = dataclasses.replace(detail, annotations=anns, predictions=())
        self.task_view.show_task(shown, self.projects.config(r.project_id), self.projects.media_root(r.project_id),
                                 focus_annotation_id=item.annotation_id)
        self._draw_header()
        self.pages.setCurrentIndex(1)
        self.setFocus()

    def _draw_header(self) -> None:
        r = self.round
        if r is None:
            return
        t = tone()
        item = r.items[self.position]
        mark = VERDICT_MARK.get(item.verdict or "", "")
        done = f" · <b style='color:{t.fix}'>{mark}</b>" if mark else ""
        self.header.setText(f"<span style='font-size:13pt'><b>Calibration</b></span> &nbsp;task {self.position + 1} "
                            f"of {len(r.items)} · judged {r.judged} of {len(r.items)}{done}")
        self.finish_button.setEnabled(r.judged == len(r.items))

    def judge(self, verdict: str, result: list[Any] | None = None) -> None:
        r = self.round
        if r is None or self.pages.currentIndex() != 1 or r.finished_at is not None:
            return
        try:
            self.svc.judge(r.round_id, self.position, verdict, reviewer=self.reviewer, result=result)
        except CalibrationError as exc:
            self.status.emit(str(exc))
            return
        self.round = self.svc.round(r.round_id)
        self.changed.emit(Changes(calibration=True))
        nxt = self.round.next_position
        if nxt is not None:
            self.go(nxt)
        else:
            self._draw_header()
            self.status.emit("Every task of the round is judged: Finish to be scored (you can still change one).")
            self.finish_button.setFocus()

    def fix(self) -> None:
        r = self.round
        if r is None or self.pages.currentIndex() != 1:
            return
        self.task_view.start_fix(r.items[self.position].annotation_id)

    def _fix_saved(self, result: list[Any]) -> None:
        self.setFocus()
        self.judge("fix", result)

    def finish(self) -> RoundInfo | None:
        r = self.round
        if r is None or self.project_id is None:
            return None
        try:
            done = self.svc.finish(r.round_id, reviewer=self.reviewer)
        except CalibrationError as exc:
            self.status.emit(str(exc))
            return None
        self.round = None
        self.changed.emit(Changes(calibration=True))
        st = self.svc.status(self.project_id, self.reviewer)
        if st.locked:
            self._show_intro(st)
            self.status.emit("Calibration round not passed: see the scores per dimension, then try another round.")
        else:
            self.status.emit("Calibration passed: the review queue is open.")
            self.unlocked.emit()
        return done


def scores_html(r: RoundInfo) -> str:
    t = tone()
    rows = "".join(
        f"<tr><td>{html.escape(c.control)}</td><td align='right' style='color:"
        f"{t.accept if c.score >= r.threshold else t.reject}'><b>{c.score:.0%}</b></td>"
        f"<td align='right' style='color:{t.muted}'>{c.n} task{'s' if c.n != 1 else ''}</td></tr>" for c in r.scores)
    return (f"<table cellspacing='0' cellpadding='4'><tr><th align='left'>Dimension</th><th>Score</th><th></th></tr>"
            f"{rows}</table><p style='color:{t.muted}'>pass at {r.threshold:.0%} on every dimension</p>")


class CalibrationResults(QWidget):
    """The dashboard's Calibration tab: each reviewer's latest round, scores per control."""

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("calibrationResults")
        self.svc = CalibrationService(store)
        self.project_id: int | None = None
        self.note = QLabel()
        self.note.setObjectName("calibrationNote")
        self.note.setWordWrap(True)
        self.model = QStandardItemModel(self)
        self.view = QTableView()
        self.view.setObjectName("calibrationTable")
        self.view.setModel(self.model)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.verticalHeader().setVisible(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        lay.addWidget(self.note)
        lay.addWidget(self.view, 1)

    def open_project(self, project_id: int | None) -> None:
        self.project_id = project_id
        self.reload()

    def apply(self, changes: Changes) -> None:
        if changes.calibration:
            self.reload()

    def reload(self) -> None:
        self.model.clear()
        if self.project_id is None:
            self.note.setText("")
            return
        req = self.svc.requirement(self.project_id)
        rounds = self.svc.latest_results(self.project_id)
        self.note.setText(
            (f"Required before production review: {req.n_tasks} ground-truth tasks, pass at {req.threshold:.0%} per "
             "dimension." if req.required else "Calibration is not required for this project "
             "(reviewdesk calibration PROJECT --require N).")
            + (" Each reviewer's latest round:" if rounds else " No finished rounds yet."))
        controls: list[str] = []
        for r in rounds:
            for score in r.scores:
                if score.control not in controls:
                    controls.append(score.control)
        self.model.setHorizontalHeaderLabels(["Reviewer", "Result", "Overall", "Rounds", "Finished", *controls])
        counts: dict[str, int] = {}
        for r in self.svc.results(self.project_id):
            counts[r.reviewer.lower()] = counts.get(r.reviewer.lower(), 0) + 1
        t = tone()
        for r in rounds:
            by = {c.control: c for c in r.scores}
            result = QStandardItem("✓ passed" if r.passed else "✗ not passed")
            result.setForeground(_brush(t.accept if r.passed else t.reject))
            cells = [QStandardItem(r.reviewer), result,
                     QStandardItem(f"{r.overall:.0%}" if r.overall is not None else "—"),
                     QStandardItem(str(counts.get(r.reviewer.lower(), 1))),
                     QStandardItem((r.finished_at or "")[:16].replace("T", " "))]
            for name in controls:
                sc = by.get(name)
                item = QStandardItem(f"{sc.score:.0%} (n={sc.n})" if sc else "—")
                if sc is not None:
                    item.setForeground(_brush(t.accept if sc.score >= r.threshold else t.reject))
                cells.append(item)
            for cell in (cells[2], cells[3], *cells[5:]):
                cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.model.appendRow(cells)
        self.view.resizeColumnsToContents()

    def cell(self, row: int, column: str) -> str:
        """Text of a cell by column title (tests)."""
        for c in range(self.model.columnCount()):
            if self.model.headerData(c, Qt.Orientation.Horizontal) == column:
                item = self.model.item(row, c)
                return item.text() if item is not None else ""
        raise KeyError(column)


def _brush(colour: str) -> Any:
    from PySide6.QtGui import QBrush, QColor

    return QBrush(QColor(colour))
