"""Shared pieces of the task renderers: colours, the render state, cards and the raw-JSON placeholder."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QFrame, QLabel, QPlainTextEdit, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from app.models.config import ConfigTag
from app.services.results import Comparison, Layer, ResultDoc
from app.views.theme import tone

if TYPE_CHECKING:
    from app.views.renderers import TaskView

# Okabe-Ito: distinguishable for colour-blind reviewers; one colour per evaluator, in task order.
EVALUATOR_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#8C6D1F", "#555555")
LABEL_FALLBACK = ("#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
                  "#d62728", "#7f7f7f")
DISAGREE = "#D32F2F"
AGREE = "#2E7D32"
FIX = "#F9A825"
INK = "#1f2430"
MUTED = "#6b7280"
CARD_BG = "palette(base)"  # style sheets only: the theme's palette decides (see app.views.theme)
PAGE_BG = "palette(window)"
BORDER = "palette(mid)"


def label_colour(control: ConfigTag | None, label: str | None) -> QColor:
    """The config's ``background`` for ``label`` (a stable fallback colour otherwise)."""
    if control is not None and label is not None:
        for i, o in enumerate(control.options):
            if label in (o.value, o.alias):
                c = QColor(o.background) if o.background else QColor()
                return c if c.isValid() else QColor(LABEL_FALLBACK[i % len(LABEL_FALLBACK)])
    return QColor(LABEL_FALLBACK[abs(hash(label or "")) % len(LABEL_FALLBACK)])


def with_alpha(c: QColor | str, alpha: int) -> QColor:
    out = QColor(c)
    out.setAlpha(alpha)
    return out


def status_colour(verdict: str | None) -> str:
    """A verdict's colour for rich text, in the theme in use."""
    t = tone()
    return {"accept": t.accept, "fix": t.fix, "reject": t.reject, "escalate": t.escalate}.get(verdict or "", t.ink)


@dataclass
class LayerView:
    layer: Layer
    colour: QColor
    focus: bool
    visible: bool = True
    name: str = ""  # the evaluator's display name (one format everywhere); the e-mail stays in ``layer.title``
    status: str = ""  # ``✓ accepted`` / ``✗ rejected by Priya``; empty: undecided
    verdict: str = ""  # accept | fix | reject | escalate | "" (undecided)
    fixed: tuple[Any, ...] | None = None  # the fixed result when the annotation was fixed
    ground_truth: bool = False
    compared: bool = False  # one of the two evaluators a drill-down compares (marked ⇄)

    @property
    def status_html(self) -> str:
        """The status as a small coloured mark for a card row (``○`` = nobody decided it yet)."""
        if not self.verdict:
            return f"<span style='color:{tone().muted}' title='undecided'>○</span>"
        # the verdict only (``⚑ escalated``): who decided is on the annotation's chip; a long e-mail repeated in
        # every card's status column squeezed the name and value columns to one word per line
        short = self.status.split(" by ", 1)[0]
        return f"<b style='color:{status_colour(self.verdict)}'>{html.escape(short)}</b>"

    @property
    def key(self) -> str:
        return self.layer.key

    @property
    def short(self) -> str:
        if self.name:
            return ("⇄ " if self.compared else "") + self.name
        t = self.layer.title
        if self.layer.prediction:
            return t
        name = t.split("@")[0].replace(".", " ").strip()
        return name.title() if name else t


@dataclass
class RenderState:
    layers: list[LayerView]
    comparison: Comparison | None
    doc: ResultDoc | None = None
    selected: str | None = None
    pending: dict[str, str] = field(default_factory=dict)   # control -> label chosen for new regions

    @property
    def fixing(self) -> bool:
        return self.doc is not None

    def shown(self) -> list[tuple[LayerView, list[dict[str, Any]], bool]]:
        """(layer view, items, editable) to draw, focused/fix layer last (on top)."""
        if self.doc is not None:
            focus = next((lv for lv in self.layers if lv.focus), None)
            fixed = LayerView(Layer("fix", "your fix", ()), QColor(FIX), True) if focus is None else focus
            return [(fixed, self.doc.items, True)]
        vis = [lv for lv in self.layers if lv.visible]
        vis.sort(key=lambda lv: lv.focus)
        return [(lv, [i for i in lv.layer.result if isinstance(i, dict)], False) for lv in vis]

    def unmatched(self, layer_key: str) -> frozenset[str]:
        if self.comparison is None or self.doc is not None:
            return frozenset()
        return self.comparison.unmatched(layer_key)


def labels_of(item: dict[str, Any]) -> list[str]:
    v = item.get("value") or {}
    for key in (str(item.get("type")), "labels"):
        if isinstance(v.get(key), list):
            return [str(x) for x in v[key]]
    return []


class WrapLabel(QLabel):
    """A word-wrapped rich-text label that remembers its height per width until its text changes.

    Qt asks a label's ``heightForWidth`` dozens of times per relayout of nested layouts in a
    resizable scroll area, and QLabel lays its rich text out again each time (about 1 ms for a small
    table). Memoising it made the review panel's relayout several times cheaper."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._hfw: dict[int, int] = {}
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        if text:
            self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt override
        if text == self.text():
            return
        self._hfw.clear()
        super().setText(text)

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt override
        h = self._hfw.get(width)
        if h is None:
            if len(self._hfw) > 64:
                self._hfw.clear()
            h = self._hfw[width] = super().heightForWidth(width)
        return h

    def changeEvent(self, e: QEvent) -> None:  # noqa: N802 - Qt override
        if e.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._hfw.clear()
        super().changeEvent(e)


class Card(QFrame):
    """A titled card on the page (base colour on the window colour of the theme)."""

    def __init__(self, title: str, subtitle: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.setStyleSheet(
            f"QFrame#card {{ background: {CARD_BG}; border: 1px solid {BORDER}; border-radius: 8px; }}"
            f"QFrame#card[active=\"true\"] {{ border: 2px solid {FIX}; }}")
        self.lay = QVBoxLayout(self)
        self.lay.setContentsMargins(12, 10, 12, 12)
        self.lay.setSpacing(6)
        self.title = WrapLabel()
        self.set_title(title, subtitle)
        self.lay.addWidget(self.title)

    def set_title(self, title: str, subtitle: str = "", badge: str = "", badge_colour: str = MUTED) -> None:
        t = tone()
        pill = (f"&nbsp;&nbsp;<span style='color:white; background:{badge_colour};'>&nbsp;{html.escape(badge)}&nbsp;</span>"
                if badge else "")
        sub = f" <span style='color:{t.muted}; font-weight:normal'>{html.escape(subtitle)}</span>" if subtitle else ""
        self.title.setText(f"<span style='color:{t.ink}; font-weight:600'>{html.escape(title)}</span>{sub}{pill}")

    def set_active(self, active: bool) -> None:
        value = "true" if active else "false"
        if self.property("active") == value:  # re-polishing a card costs a style sheet pass
            return
        self.setProperty("active", value)
        self.style().unpolish(self)
        self.style().polish(self)


def message_label(text: str, kind: str = "warn") -> QLabel:
    """An inline notice (missing media, blocked content...)."""
    colours = {"warn": ("#7a4b00", "#fff4dc", "#f5c26b"), "error": ("#8a1c1c", "#fdecea", "#f1a9a0"),
               "info": ("#1e3a5f", "#e8f1fb", "#a9c8ec")}
    fg, bg, border = colours.get(kind, colours["warn"])
    lab = QLabel(text)
    lab.setObjectName("notice")
    lab.setWordWrap(True)
    lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    lab.setStyleSheet(f"QLabel {{ color: {fg}; background: {bg}; border: 1px solid {border}; border-radius: 6px;"
                      f" padding: 6px 8px; }}")
    return lab


def mono() -> QFont:
    f = QFont("monospace")
    f.setStyleHint(QFont.StyleHint.Monospace)
    f.setPointSizeF(max(8.0, f.pointSizeF() * 0.9))
    return f


class RawPlaceholder(Card):
    """Any tag ReviewDesk does not draw: its name, a note and each evaluator's raw result JSON."""

    def __init__(self, host: TaskView, tag: ConfigTag, note: str) -> None:
        super().__init__(tag.name, f"<{tag.tag}>")
        self.host = host
        self.tag = tag
        self.lay.addWidget(message_label(note, "info"))
        self.raw = QPlainTextEdit()
        self.raw.setObjectName("rawJson")
        self.raw.setReadOnly(True)
        self.raw.setFont(mono())
        self.raw.setMaximumHeight(160)
        self.raw.setStyleSheet(f"QPlainTextEdit {{ background: palette(alternate-base); border: 1px solid {BORDER}; }}")
        self.lay.addWidget(self.raw)

    def refresh(self, state: RenderState) -> None:
        parts = []
        for lv, items, _ in state.shown():
            mine = [i for i in items if i.get("from_name") == self.tag.name or i.get("to_name") == self.tag.name]
            if mine:
                parts.append(f"// {lv.layer.title}\n" + json.dumps(mine, indent=1, ensure_ascii=False))
        self.raw.setPlainText("\n".join(parts) or "(no result for this tag)")


def items_for(items: Sequence[dict[str, Any]], *, to_name: str | None = None,
              from_names: set[str] | None = None) -> list[dict[str, Any]]:
    return [i for i in items if (to_name is None or i.get("to_name") == to_name)
            and (from_names is None or i.get("from_name") in from_names)]


class WheelScrollsPage(QObject):
    """The mouse wheel over an image or a plot scrolls the task pane (as over any other part of the page);
    ``Ctrl``+wheel zooms, as image tools do. Installed on the viewport of a zoomable view."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() != QEvent.Type.Wheel:
            return False
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:  # type: ignore[attr-defined]
            return False  # the view zooms
        w = obj.parent() if isinstance(obj, QWidget) else None
        while w is not None and not isinstance(w, QScrollArea):
            w = w.parent()
        if isinstance(w, QScrollArea):
            bar = w.verticalScrollBar()
            dy = event.angleDelta().y()  # type: ignore[attr-defined]
            bar.setValue(bar.value() - int(dy / 120 * bar.singleStep() * 3))
        return True


WHEEL_SCROLLS_PAGE = WheelScrollsPage()
