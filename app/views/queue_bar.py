"""The role/queue switcher above the review panel: reviewer or expert (with counts), which queue, and why the
task on screen is in it. Thin: it shows what it is given and says what was picked (signals)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QButtonGroup, QComboBox, QHBoxLayout, QLabel, QToolButton, QWidget

from app.views.theme import tone

ORDER_LABELS = {
    "agreement": "Lowest agreement first",
    "confidence": "Lowest model confidence first",
    "model-disagreement": "Most model disagreement first",
    "uncertainty": "Most uncertain consensus first",
    "oldest": "Oldest first",
    "random": "Random (seeded)",
}
ROLE_LABELS = {"reviewer": "R&eviewer", "expert": "E&xpert"}  # Alt+E / Alt+X (Alt+R is the Review menu)


class QueueBar(QWidget):
    """``roleChanged(role)`` and ``queueChanged(key)``: key ``""`` (project order), ``order:NAME`` or
    ``preset:NAME``. Keys: Ctrl+1 / Ctrl+2 pick the role (the panel binds them), Alt+Q opens the queue list."""

    roleChanged = Signal(str)
    queueChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("queueBar")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 2)
        lay.setSpacing(6)
        self.buttons: dict[str, QToolButton] = {}
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        for i, role in enumerate(ROLE_LABELS):
            b = QToolButton()
            b.setObjectName(f"queueRole_{role}")
            b.setCheckable(True)
            b.setAutoRaise(False)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            b.setFocusPolicy(Qt.FocusPolicy.TabFocus)
            b.setToolTip(f"The {role} queue (Ctrl+{i + 1})")
            b.clicked.connect(lambda _=False, r=role: self._role_clicked(r))
            self.group.addButton(b)
            self.buttons[role] = b
            lay.addWidget(b)
        self.combo = QComboBox()
        self.combo.setObjectName("queueCombo")
        self.combo.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.combo.setToolTip("Which tasks, in which order (Alt+Q). Presets: reviewdesk queue-preset save …")
        label = QLabel("&Queue:")
        label.setBuddy(self.combo)
        lay.addSpacing(8)
        lay.addWidget(label)
        lay.addWidget(self.combo)
        self.reasons = QLabel()
        self.reasons.setObjectName("queueReasons")
        self.reasons.setTextFormat(Qt.TextFormat.PlainText)
        self.reasons.setStyleSheet(f"color:{tone().muted}")
        lay.addWidget(self.reasons, 1)
        # the role being worked is plain to see: filled, bold (the platform's checked look is often faint)
        self.setStyleSheet("QToolButton { padding: 2px 10px; border: 1px solid palette(mid); border-radius: 3px; }"
                           "QToolButton:checked { background: palette(highlight); color: palette(highlighted-text);"
                           " font-weight: bold; border-color: palette(highlight); }")
        self._role = "reviewer"
        self._counts: dict[str, int | None] = {"reviewer": None, "expert": None}
        self._quiet = False
        self.set_presets(())
        self.combo.currentIndexChanged.connect(self._combo_changed)
        self.set_role("reviewer")

    # -- what the panel tells it --------------------------------------------------------------------
    def set_presets(self, names: tuple[str, ...]) -> None:
        key = self.queue_key() if self.combo.count() else ""
        self._quiet = True
        self.combo.clear()
        self.combo.addItem("Project order", "")
        for order, text in ORDER_LABELS.items():
            self.combo.addItem(text, f"order:{order}")
        for n in names:
            self.combo.addItem(f"Preset: {n}", f"preset:{n}")
        self._quiet = False
        self.set_queue_key(key)

    def set_queue_key(self, key: str) -> None:
        i = self.combo.findData(key)
        self._quiet = True
        self.combo.setCurrentIndex(max(i, 0))
        self._quiet = False

    def set_role(self, role: str) -> None:
        self._role = role
        self.buttons[role].setChecked(True)
        self._label()

    def set_counts(self, reviewer: int | None, expert: int | None) -> None:
        self._counts = {"reviewer": reviewer, "expert": expert}
        self._label()

    def set_reasons(self, reasons: tuple[str, ...]) -> None:
        text = "; ".join(reasons)
        self.reasons.setText(f"Why: {text}" if text else "")
        self.reasons.setToolTip(text)

    # -- reading ---------------------------------------------------------------------------------------
    def queue_text(self) -> str:
        """The queue's name as the list shows it (``Lowest agreement first``, ``Preset: hard ones``)."""
        return self.combo.currentText()

    def queue_key(self) -> str:
        return str(self.combo.currentData() or "")

    def role(self) -> str:
        return self._role

    def count_text(self, role: str) -> str:
        n = self._counts.get(role)
        return "…" if n is None else f"{n:,}"

    def _label(self) -> None:
        for role, b in self.buttons.items():
            b.setText(f"{ROLE_LABELS[role]} ({self.count_text(role)})")
            b.setAccessibleName(f"{role} queue, {self.count_text(role)} tasks")

    def _role_clicked(self, role: str) -> None:
        if role != self._role:
            self.set_role(role)
            self.roleChanged.emit(role)

    def _combo_changed(self, _index: int) -> None:
        if not self._quiet:
            self.queueChanged.emit(self.queue_key())


__all__ = ["QueueBar", "ORDER_LABELS"]
