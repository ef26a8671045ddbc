"""Notifications in the window (issue 15 point 7): a bar above the tabs and, where the platform has a system
tray, a tray message. Clicking either (or the "open the newest notification" key) emits ``opened`` with the
notification; the main window opens the right task (``MainWindow.open_task``).

What is new comes from :class:`app.services.notifications.NotificationService` (Qt-free).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QIcon, QMouseEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QStyle, QSystemTrayIcon, QWidget

from app.services.notifications import Notification
from app.views.theme import tone

ICON = {"expert": "⚑", "conflict": "⚠", "calibration": "◎"}


class NotificationBar(QFrame):
    opened = Signal(object)  # Notification
    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notificationBar")
        self.notes: tuple[Notification, ...] = ()
        self.label = QLabel()
        self.label.setObjectName("notificationText")
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setCursor(Qt.CursorShape.PointingHandCursor)
        self.open_button = QPushButton("Open")
        self.open_button.setObjectName("notificationOpen")
        self.open_button.clicked.connect(self.open_newest)
        self.close_button = QPushButton("Dismiss")
        self.close_button.setObjectName("notificationDismiss")
        self.close_button.clicked.connect(self.dismiss)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 6, 4)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.open_button)
        lay.addWidget(self.close_button)
        self.restyle()
        self.hide()

    def restyle(self) -> None:
        t = tone()
        self.setStyleSheet(f"#notificationBar {{ background: {t.server_bg}; border-bottom: 1px solid {t.border}; }}"
                           f"#notificationText {{ color: {t.ink}; }}")

    def show_notes(self, notes: tuple[Notification, ...]) -> None:
        """Show these (newest first), in front of any still on the bar."""
        keys = {n.key for n in notes}
        self.notes = tuple(notes) + tuple(n for n in self.notes if n.key not in keys)
        if not self.notes:
            self.hide()
            return
        n = self.notes[0]
        more = len(self.notes) - 1
        tail = (f" <span style='color:{tone().muted}'>(+{more} more: "
                + ", ".join(sorted({ICON.get(x.kind, '•') + ' ' + x.kind for x in self.notes[1:]})) + ")</span>"
                if more else "")
        self.label.setText(f"<b>{ICON.get(n.kind, '•')}</b> {html.escape(n.text)}{tail}")
        self.label.setToolTip("Click (or Ctrl+Shift+N) to open it")
        self.show()

    def drop(self, stale: Callable[[Notification], bool]) -> None:
        """Take notifications that no longer apply off the bar (a calibration round just passed)."""
        self.notes = tuple(n for n in self.notes if not stale(n))
        self.show_notes(())

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton and self.notes:
            self.open_newest()
            return
        super().mousePressEvent(event)

    def open_newest(self) -> Notification | None:
        if not self.notes:
            return None
        n = self.notes[0]
        self.notes = self.notes[1:]
        self.show_notes(())
        self.opened.emit(n)
        return n

    def dismiss(self) -> None:
        self.notes = ()
        self.hide()
        self.dismissed.emit()


class TrayNotifier(QObject):
    """A system tray message per batch of new notifications, where the platform has a tray (offscreen and many
    minimal desktops have none: then only the bar shows them). Clicking the message emits ``opened``."""

    opened = Signal(object)  # Notification

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.tray: QSystemTrayIcon | None = None
        self.last: Notification | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            icon = parent.windowIcon()
            if icon.isNull():
                icon = QIcon(parent.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxInformation))
            self.tray = QSystemTrayIcon(icon, self)
            self.tray.setToolTip("ReviewDesk")
            self.tray.messageClicked.connect(self._clicked)
            self.tray.show()

    @property
    def available(self) -> bool:
        return self.tray is not None

    def notify(self, notes: tuple[Notification, ...]) -> bool:
        """Show the newest of ``notes`` as a tray message; False when there is no tray."""
        if self.tray is None or not notes:
            return False
        self.last = notes[0]
        more = f" (+{len(notes) - 1} more)" if len(notes) > 1 else ""
        self.tray.showMessage("ReviewDesk", notes[0].text + more, QSystemTrayIcon.MessageIcon.Information, 8000)
        return True

    def _clicked(self, *_: Any) -> None:
        if self.last is not None:
            self.opened.emit(self.last)
