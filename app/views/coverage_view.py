"""Review coverage as a small table (Review → Coverage): reviewed / eligible annotations per annotator, control
and reviewer, and overall -- every reviewer's decisions, made here or pulled. Computed off the UI thread."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.models.store import Store
from app.services.coverage import Coverage, coverage
from app.services.describe import evaluator_name
from app.views.worker import Job

HEADERS = ("", "reviewed", "eligible", "share", "pulled")


class CoverageTable(QTableWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(HEADERS), parent)
        self.setObjectName("coverageTable")
        self.setHorizontalHeaderLabels(list(HEADERS))
        self.verticalHeader().hide()
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)

    def show_coverage(self, cov: Coverage) -> None:
        groups = [("Overall (annotations)", (cov.overall,)), ("Tasks (every annotation reviewed)", (cov.tasks,)),
                  ("Per annotator", cov.annotators), ("Per control", cov.controls),
                  ("Per reviewer (of all eligible)", cov.reviewers)]
        self.setRowCount(0)
        for title, rows in groups:
            r = self.rowCount()
            self.insertRow(r)
            head = QTableWidgetItem(title)
            f = head.font()
            f.setBold(True)
            head.setFont(f)
            self.setItem(r, 0, head)
            single = rows[0].key in ("overall", "tasks")  # one line: the numbers beside the title
            for row in rows:
                if not single:
                    r = self.rowCount()
                    self.insertRow(r)
                share = "–" if row.share is None else f"{row.share:.1%}"
                person = title.startswith(("Per annotator", "Per reviewer"))
                label = title if single else f"  {evaluator_name(row.key) if person else row.key}"
                for c, text in enumerate((label, f"{row.reviewed:,}", f"{row.eligible:,}", share,
                                          f"{row.origin_server:,}")):
                    if single and c == 0:
                        continue
                    item = QTableWidgetItem(text)
                    if c == 0 and person:
                        item.setToolTip(row.key)  # the e-mail (the JSON's key) behind the display name
                    if c:
                        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    self.setItem(r, c, item)
        self.resizeColumnsToContents()
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)


class CoverageDialog(QDialog):
    """The coverage of one project; ``ready`` is set once the table is filled (tests wait for it)."""

    def __init__(self, store: Store, project_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.resize(600, 520)
        lay = QVBoxLayout(self)
        self.setWindowTitle("Review coverage (counting…)")
        self.note = QLabel("Reviewed: a live accept, fix or reject by anyone, made here or pulled from the server\n"
                           "(pulled: how many of those came from the server).")
        lay.addWidget(self.note)
        self.table = CoverageTable()
        lay.addWidget(self.table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.ready = False
        self._job = Job(lambda _p, _c: coverage(store, project_id))
        self._job.signals.finished.connect(self._done)
        self._job.signals.failed.connect(lambda exc: self.note.setText(f"Coverage could not be counted: {exc}"))
        self._job.start()

    def _done(self, cov: Any) -> None:
        self.table.show_coverage(cov)
        self.setWindowTitle("Review coverage")
        self.ready = True


__all__ = ["CoverageTable", "CoverageDialog"]
