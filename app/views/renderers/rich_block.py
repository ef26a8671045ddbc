"""A word-wrapped rich-text block that lays its text out once per width (issue 14.3, the review loop).

A ``QLabel`` with rich text lays its document out again for each size question Qt asks after a text
change — ``sizeHint`` (several widths, looking for a pleasant ratio), ``minimumSizeHint`` (widest word,
one line), ``heightForWidth`` for each width tried — and once more to paint. The compare rows of the
control cards change on every key press, and those layouts were the largest part of laying out and
painting the next task. This block keeps one ``QTextDocument``: one layout per width asked (memoised
until the text changes), and paints the layout it already has. What it shows is the same document a
label shows, pixel for pixel (tests/gui/test_review_speed.py compares them).
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QEvent, QRectF, QSize
from PySide6.QtGui import QAbstractTextDocumentLayout, QFontMetrics, QPainter, QPalette, QTextDocument
from PySide6.QtWidgets import QSizePolicy, QWidget

MIN_WIDTH = 180


class RichBlock(QWidget):
    """``setText(html)`` / ``text()`` like a word-wrapped rich-text ``QLabel``; painted from one layout."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._doc = QTextDocument(self)
        self._doc.setUndoRedoEnabled(False)
        self._doc.setDocumentMargin(0)
        self._doc.setDefaultFont(self.font())
        self._hfw: dict[int, int] = {}
        self._laid_at: float | None = None
        policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        if text:
            self.setText(text)

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:  # noqa: N802 - the QLabel name
        if text == self._text:
            return
        self._text = text
        self._doc.setHtml(text)
        self._changed()

    def _changed(self) -> None:
        self._hfw.clear()
        self._laid_at = None
        self.updateGeometry()
        self.update()

    def _lay_out(self, width: float) -> None:
        if self._laid_at != width:
            self._doc.setTextWidth(width)
            self._laid_at = width

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt override
        h = self._hfw.get(width)
        if h is None:
            if len(self._hfw) > 64:
                self._hfw.clear()
            self._lay_out(width)
            h = self._hfw[width] = math.ceil(self._doc.size().height())
        return h

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        # a fixed minimum width, about what a label asks for such rows (it lays the text out at width 0 to
        # find it, the costliest layout of all); narrower than that the page scrolls sideways
        if not self._text:
            return QSize(0, 0)
        return QSize(MIN_WIDTH, QFontMetrics(self.font()).height())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        if not self._text:
            return QSize(0, 0)
        w = max(MIN_WIDTH, self.width())
        return QSize(w, self.heightForWidth(w))

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if not self._text:
            return
        self._lay_out(self.width())
        painter = QPainter(self)
        ctx = QAbstractTextDocumentLayout.PaintContext()
        pal = QPalette(self.palette())
        pal.setColor(QPalette.ColorRole.Text, pal.color(self.foregroundRole()))  # as a label draws its text
        ctx.palette = pal
        ctx.clip = QRectF(event.rect())
        self._doc.documentLayout().draw(painter, ctx)
        painter.end()

    def changeEvent(self, e: QEvent) -> None:  # noqa: N802 - Qt override
        if e.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._doc.setDefaultFont(self.font())
            self._changed()
        elif e.type() == QEvent.Type.PaletteChange:
            self.update()
        super().changeEvent(e)
