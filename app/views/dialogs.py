"""Small keyboard-first dialogs of the review loop: reasons, fix (JSON), instructions, keys, settings."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

import nh3
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QKeySequenceEdit,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.services.keymap import ACTION_LABELS, Keymap, KeymapError
from app.services.settings import Settings
from app.views.theme import tone


class ReasonDialog(QDialog):
    """Pick a reason with its digit (or arrows), then type an optional comment; Enter records, Esc cancels.

    ``subject`` says what is being decided (``Reject <b>Tom Becker</b>'s annotation · task 1001``). The digit
    moves the cursor into the comment box; whatever is typed after it lands there (it used to go to the
    list's type-ahead search and was lost)."""

    def __init__(self, title: str, reasons: Sequence[str], parent: QWidget | None = None, *,
                 require_comment: bool = False, subject: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.require_comment = require_comment
        lay = QVBoxLayout(self)
        self.subject = QLabel(subject or html.escape(title))
        self.subject.setObjectName("reasonSubject")
        self.subject.setTextFormat(Qt.TextFormat.RichText)
        self.subject.setWordWrap(True)
        self.subject.setStyleSheet("font-size: 12pt;")
        lay.addWidget(self.subject)
        self.reasons = list(reasons[:9])
        n = len(self.reasons)
        keys = "<b>1</b>" if n == 1 else f"<b>1</b>–<b>{n}</b>"
        self.help = QLabel(f"Press {keys} for a reason, then type an optional comment; "
                           "<b>Enter</b> records, <b>Esc</b> cancels." if n else
                           "Type a comment; <b>Enter</b> records, <b>Esc</b> cancels.")
        self.help.setObjectName("reasonHelp")
        self.help.setWordWrap(True)
        lay.addWidget(self.help)
        self.list = QListWidget()
        self.list.setObjectName("reasons")
        for i, r in enumerate(self.reasons, start=1):
            self.list.addItem(QListWidgetItem(f"{i}  {r}"))
        self.list.setCurrentRow(0)
        self.list.installEventFilter(self)
        lay.addWidget(self.list)
        self.comment = QLineEdit()
        self.comment.setObjectName("comment")
        self.comment.setPlaceholderText("Comment (optional) — Enter records")
        self.comment.returnPressed.connect(self.accept)
        lay.addWidget(self.comment)
        self.resize(460, 340)

    def _digit(self, text: str) -> bool:
        return len(text) == 1 and text.isdigit() and 1 <= int(text) <= len(self.reasons)

    def _route(self, event: QKeyEvent) -> bool:
        """A key typed outside the comment box: a reason digit picks the reason and moves to the comment;
        other text goes into the comment (nothing typed is lost); Enter records."""
        text = event.text()
        if self._digit(text):
            self.list.setCurrentRow(int(text) - 1)
            self.comment.setFocus()
            return True
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.accept()
            return True
        if text and text.isprintable() and not (event.modifiers() & (Qt.KeyboardModifier.ControlModifier
                                                                     | Qt.KeyboardModifier.AltModifier)):
            self.comment.setFocus()
            self.comment.insert(text)
            return True
        return False

    def eventFilter(self, obj: Any, event: Any) -> bool:  # noqa: N802 - Qt override
        if obj is self.list and event.type() == event.Type.KeyPress and self._route(event):
            return True
        return super().eventFilter(obj, event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if not self.comment.hasFocus() and self._route(event):
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.accept()
            return
        super().keyPressEvent(event)

    def reason(self) -> str | None:
        row = self.list.currentRow()
        return self.reasons[row] if 0 <= row < len(self.reasons) else None

    def comment_text(self) -> str | None:
        return self.comment.text().strip() or None


class FixJsonDialog(QDialog):
    """Edit a result as Label Studio JSON (fallback editor); Ctrl+Enter saves, Esc cancels."""

    def __init__(self, result: Sequence[Any], validate: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fix annotation — Label Studio result JSON")
        self.validate = validate
        lay = QVBoxLayout(self)
        self.edit = QPlainTextEdit(json.dumps(list(result), indent=2, ensure_ascii=False))
        self.edit.setObjectName("fixEditor")
        lay.addWidget(self.edit)
        self.error = QLabel("")
        self.error.setStyleSheet(f"color: {tone().reject}")
        self.error.setWordWrap(True)
        lay.addWidget(self.error)
        lay.addWidget(QLabel("<b>Ctrl+Enter</b> saves the fix · <b>Esc</b> cancels"))
        self.value: list[Any] | None = None
        self.resize(640, 520)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.try_accept()
            return
        super().keyPressEvent(event)

    def try_accept(self) -> None:
        try:
            value = json.loads(self.edit.toPlainText())
        except ValueError as exc:
            self.error.setText(f"Not valid JSON: {exc}")
            return
        problems = self.validate(value)
        if problems:
            self.error.setText("Does not fit the labeling config: " + "; ".join(problems[:3]))
            return
        self.value = value
        self.accept()


def sanitize_instructions(html_text: str | None) -> str:
    """Labeling instructions come from the server: keep formatting, drop scripts and remote loads."""
    if not html_text:
        return "<p><i>This project has no labeling instructions.</i></p>"
    clean = nh3.clean(html_text, tags=nh3.ALLOWED_TAGS - {"img"}, link_rel="noopener noreferrer")
    return clean


class InstructionsDialog(QDialog):
    def __init__(self, html_text: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Labeling instructions")
        lay = QVBoxLayout(self)
        view = QTextBrowser()
        view.setObjectName("instructions")
        view.setOpenExternalLinks(False)
        view.setHtml(sanitize_instructions(html_text))
        lay.addWidget(view)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.resize(560, 480)


def keys_html(keymap: Keymap) -> str:
    rows = []
    for section, actions in keymap.bindings.items():
        rows.append(f"<tr><td colspan='2'><b>{section.title()}</b></td></tr>")
        for action, seqs in actions.items():
            keys = " / ".join(f"<code>{QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText) or s}</code>"
                              for s in seqs)
            rows.append(f"<tr><td>{keys}</td><td>{ACTION_LABELS.get(action, action)}</td></tr>")
    return "<table cellspacing='6'>" + "".join(rows) + "</table>"


class KeymapDialog(QDialog):
    """Rebind keys; a binding that another action already uses is refused with a message."""

    def __init__(self, keymap: Keymap, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keys")
        self.keymap = keymap
        lay = QVBoxLayout(self)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Action", "Key", "Also"])
        self.rows: list[tuple[str, str]] = []
        for section, actions in keymap.bindings.items():
            for action, seqs in actions.items():
                r = self.table.rowCount()
                self.table.insertRow(r)
                self.table.setItem(r, 0, QTableWidgetItem(f"{ACTION_LABELS.get(action, action)} ({section})"))
                for col in (1, 2):
                    edit = QKeySequenceEdit(QKeySequence(seqs[col - 1]) if len(seqs) >= col else QKeySequence())
                    edit.setMaximumSequenceLength(1)
                    self.table.setCellWidget(r, col, edit)
                self.rows.append((section, action))
        self.table.resizeColumnsToContents()
        lay.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.try_accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.resize(620, 560)

    def edited_keymap(self) -> Keymap:
        km = self.keymap
        for r, (section, action) in enumerate(self.rows):
            seqs = []
            for col in (1, 2):
                w = self.table.cellWidget(r, col)
                assert isinstance(w, QKeySequenceEdit)
                s = w.keySequence().toString(QKeySequence.SequenceFormat.PortableText)
                if s:
                    seqs.append(s)
            merged = {sec: dict(acts) for sec, acts in km.bindings.items()}
            merged[section][action] = tuple(seqs)
            km = Keymap(merged)  # checked once at the end, when every row is in
        km.check()
        return km

    def try_accept(self) -> None:
        try:
            self.result_keymap = self.edited_keymap()
        except KeymapError as exc:
            QMessageBox.warning(self, "Conflicting keys", f"{exc}.\nChoose another key for one of them.")
            return
        self.accept()


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Review settings")
        form = QFormLayout(self)
        self.reviewer = QLineEdit(settings.reviewer)
        self.role = QComboBox()
        self.role.addItems(["reviewer", "expert"])
        self.role.setCurrentText(settings.role)
        self.auto = QCheckBox("Move to the next task when every annotation has a verdict")
        self.auto.setChecked(settings.auto_advance)
        self.preds = QCheckBox("Show model predictions beside the annotations")
        self.preds.setChecked(settings.show_predictions)
        self.others = QCheckBox("Show tasks other reviewers already decided (brought by a sync)")
        self.others.setObjectName("showDecidedByOthers")
        self.others.setToolTip("Off: a task another reviewer judged leaves your reviewer queue")
        self.others.setChecked(settings.show_decided_by_others)
        form.addRow("Reviewer (email)", self.reviewer)
        form.addRow("Queue", self.role)
        form.addRow("", self.auto)
        form.addRow("", self.preds)
        form.addRow("", self.others)
        # offline media cache cap (least recently used files beyond it are removed; also `reviewdesk media`)
        from PySide6.QtWidgets import QSpinBox

        self.media_cap = QSpinBox()
        self.media_cap.setObjectName("mediaCacheCap")
        self.media_cap.setRange(16, 1024 * 1024)
        self.media_cap.setSingleStep(256)
        self.media_cap.setSuffix(" MiB")
        self.media_cap.setValue(settings.media_cache_cap_mb)
        self.media_cap.setToolTip("Pulled images and audio are kept for offline review up to this size; the least "
                                  "recently viewed files are removed first.")
        form.addRow("Offline media cache", self.media_cap)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.base = settings

    def value(self) -> Settings:
        return self.base.with_(reviewer=self.reviewer.text().strip() or self.base.reviewer,
                               role=self.role.currentText(), auto_advance=self.auto.isChecked(),
                               show_predictions=self.preds.isChecked(),
                               show_decided_by_others=self.others.isChecked(),
                               media_cache_cap_mb=self.media_cap.value())
