"""A word-wrapped rich-text block that lays its text out once per width (issue 14.3, the review loop).

A ``QLabel`` with rich text lays its document out again for each size question Qt asks after a text
change — ``sizeHint`` (several widths, looking for a pleasant ratio), ``minimumSizeHint`` (widest word,
one line), ``heightForWidth`` for each width tried — and once more to paint. The compare rows of the
control cards change on every key press, and those layouts were the largest part of laying out and
painting the next task. This block keeps one ``QTextDocument``: one layout per width asked (memoised
until the text changes), and paints the layout it already has. What it shows is the same document a
label shows, pixel for pixel (tests/gui/test_review_speed.py compares them).

The size answers depend only on the text and the font, and the rows repeat from task to task (the same
values, names and statuses): they are kept in a small LRU shared by every block, so a text seen before is
not measured again (no ``adjustSize``, no layouts at width 0 and unlimited); only the layout at the paint
width is made.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from PySide6.QtCore import QEvent, QRectF, QSize
from PySide6.QtGui import QAbstractTextDocumentLayout, QPainter, QPalette, QTextDocument, QTextOption
from PySide6.QtWidgets import QSizePolicy, QWidget

QWIDGETSIZE_MAX = (1 << 24) - 1
SIZES_KEPT = 1024  # texts whose size answers are remembered (a few hundred bytes each)


class _Sizes:
    """The size answers of one (text, font): filled as Qt asks them."""

    __slots__ = ("hfw", "msh", "sh")

    def __init__(self) -> None:
        self.hfw: dict[int, int] = {}
        self.sh: QSize | None = None
        self.msh: QSize | None = None


_SIZES: OrderedDict[tuple[str, str], _Sizes] = OrderedDict()


def _sizes_for(text: str, font_key: str) -> _Sizes:
    key = (text, font_key)
    found = _SIZES.get(key)
    if found is None:
        found = _SIZES[key] = _Sizes()
        while len(_SIZES) > SIZES_KEPT:
            _SIZES.popitem(last=False)
    else:
        _SIZES.move_to_end(key)
    return found


def clear_size_cache() -> None:
    """Forget every remembered size answer (tests)."""
    _SIZES.clear()


class RichBlock(QWidget):
    """``setText(html)`` / ``text()`` like a word-wrapped rich-text ``QLabel``; painted from one layout."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._doc = QTextDocument(self)
        self._doc.setUndoRedoEnabled(False)
        self._doc.setDocumentMargin(0)
        option = self._doc.defaultTextOption()
        option.setWrapMode(QTextOption.WrapMode.WordWrap)  # a label's: never break inside a word
        self._doc.setDefaultTextOption(option)
        self._doc.setDefaultFont(self.font())
        self._laid_at: float | None = None
        self._sizes = _Sizes()
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
        self._laid_at = None
        self._sizes = _sizes_for(self._text, self.font().key()) if self._text else _Sizes()
        self.updateGeometry()
        self.update()

    def _lay_out(self, width: float) -> None:
        if self._laid_at != width:
            self._doc.setTextWidth(width)
            self._laid_at = width

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt override
        hfw = self._sizes.hfw
        h = hfw.get(width)
        if h is None:
            if len(hfw) > 64:
                hfw.clear()
            self._lay_out(width)
            h = hfw[width] = math.ceil(self._doc.size().height())
        return h

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        # what a word-wrapped label asks: as wide as the text laid out at width 0 needs, as high as one line
        # of it at unlimited width (capped by the size hint); computed once per text
        if not self._text:
            return QSize(0, 0)
        sizes = self._sizes
        if sizes.msh is None:
            self._lay_out(QWIDGETSIZE_MAX)
            one_line = math.ceil(self._doc.size().height())
            self._lay_out(0)
            sizes.msh = QSize(math.ceil(self._doc.size().width()), min(one_line, self.sizeHint().height()))
        return QSize(sizes.msh)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        # what a word-wrapped label asks: the document at its "reasonable" width (QTextDocument.adjustSize,
        # as QLabel does); it must not depend on the width the block has now (a scroll area's page sums
        # these), so it is computed once per text
        if not self._text:
            return QSize(0, 0)
        sizes = self._sizes
        if sizes.sh is None:
            self._doc.adjustSize()
            self._laid_at = self._doc.textWidth()
            size = self._doc.size()
            sizes.sh = QSize(math.ceil(size.width()), math.ceil(size.height()))
        return QSize(sizes.sh)

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
