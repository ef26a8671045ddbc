"""Cards for controls: ``Choices``, ``Rating``, ``Number``, ``TextArea``, ``Pairwise`` (editable in fix mode),
a legend for region controls and a raw-JSON card for anything else.

Every card lists each visible evaluator's value; a value that differs from the focused
annotation's is marked, and the card's title says whether the evaluators agree.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QWidget,
)

from app.models.config import ConfigTag
from app.views.renderers.common import (
    AGREE,
    DISAGREE,
    FIX,
    Card,
    RawPlaceholder,
    RenderState,
    WrapLabel,
    label_colour,
)
from app.views.renderers.rich_block import RichBlock
from app.views.theme import tone

if TYPE_CHECKING:
    from app.views.renderers import TaskView

MAX_ROWS = 12  # evaluator rows listed in a control card; the Side by side tab lists every one
CHOICES_WIDTH = 300  # px the option buttons of a Choices card may take side by side
CHIP = ("QPushButton {{ border: 1px solid palette(mid); border-radius: 12px; padding: 3px 10px; background: palette(base);"
        " color: {ink}; text-align: left; }}"
        "QPushButton:checked {{ background: {on}; border-color: {on}; color: white; font-weight: 600; }}")


def _value_text(item: dict[str, Any] | None) -> str:
    if item is None:
        return "—"
    v = item.get("value") or {}
    t = item.get("type")
    if t in ("choices", "taxonomy"):
        return ", ".join(" / ".join(x) if isinstance(x, list) else str(x) for x in v.get(t, v.get("choices", [])))
    if t == "rating":
        r = v.get("rating")
        return f"{'★' * int(r)} ({r})" if isinstance(r, int | float) else str(r)
    if t == "number":
        return str(v.get("number"))
    if t == "textarea":
        return " | ".join(str(x) for x in v.get("text", []))
    if t == "pairwise":
        return str(v.get("selected"))
    return str(v)


class ControlCard(Card):
    def __init__(self, host: TaskView, control: ConfigTag, subtitle: str) -> None:
        super().__init__(control.name, subtitle)
        self.host = host
        self.control = control
        self.body = QWidget()
        self.lay.addWidget(self.body)
        self.rows = RichBlock()  # changes on every key press: laid out once per width (rich_block.py)
        self.rows.setObjectName("compareRows")
        self.lay.addWidget(self.rows)
        self.subtitle = subtitle

    def current_item(self, state: RenderState) -> dict[str, Any] | None:
        for lv, items, _ in reversed(state.shown()):
            if lv.focus:
                return next((i for i in items if i.get("from_name") == self.control.name), None)
        return None

    def refresh(self, state: RenderState) -> None:
        diff = state.comparison.controls.get(self.control.name) if state.comparison else None
        if state.fixing:
            self.set_title(self.control.name, self.subtitle, "editing", FIX)
            self.rows.hide()
        else:
            if diff is None:
                self.set_title(self.control.name, self.subtitle)
            else:
                self.set_title(self.control.name, self.subtitle, "agree" if diff.agree else "disagree",
                               AGREE if diff.agree else DISAGREE)
            self._set_rows(self.row_lines(state, diff))
        self.show_value(self.current_item(state), state.fixing)

    def _set_rows(self, lines: list[tuple[bool, str]]) -> None:
        """Show the rows; beyond MAX_ROWS evaluators, the important ones (focus, differing) first."""
        shown = [html_ for _, html_ in lines]
        if len(lines) > MAX_ROWS:
            keep = sorted(range(len(lines)), key=lambda i: not lines[i][0])[:MAX_ROWS]
            shown = [lines[i][1] for i in sorted(keep)]
            shown.append(f"<tr><td></td><td colspan='2' style='color:{tone().muted}'>… and {len(lines) - MAX_ROWS} more"
                         " evaluators (all of them in the Side by side tab)</td></tr>")
        self.rows.setText(f"<table cellspacing='0' cellpadding='1'>{''.join(shown)}</table>" if shown else "")
        self.rows.setVisible(bool(shown))

    def row_lines(self, state: RenderState, diff: Any) -> list[tuple[bool, str]]:
        """One table row per visible evaluator: its value, marked where it differs from the focus.

        Each row comes with whether it matters most (the focused evaluator or one that differs)."""
        lines: list[tuple[bool, str]] = []
        for lv in state.layers:
            if not lv.visible:
                continue
            item = next((i for i in lv.layer.result if isinstance(i, dict)
                         and i.get("from_name") == self.control.name), None)
            differs = diff is not None and lv.key in diff.differs
            mark = f"<b style='color:{DISAGREE}'>≠</b>" if differs else "&nbsp;&nbsp;"
            weight = "600" if lv.focus else "normal"
            col = DISAGREE if differs else tone().ink
            value = html.escape(self.row_text(item))
            if lv.fixed is not None:  # a saved fix: original → fixed
                fixed = next((i for i in lv.fixed if isinstance(i, dict) and i.get("from_name") == self.control.name),
                             None)
                new = self.row_text(fixed)
                if new != self.row_text(item):
                    value = (f"<s style='color:{tone().muted}'>{value}</s> → <b style='color:{tone().fix}'>"
                             f"{html.escape(new)}</b>")
            lines.append((lv.focus or differs,
                          f"<tr><td>{mark}</td><td><span style='color:{lv.colour.name()}'>●</span> "
                          f"<span style='font-weight:{weight}'>{html.escape(lv.short)}</span></td>"
                          f"<td style='padding-left:8px; color:{col}'>{value}</td>"
                          f"<td style='padding-left:8px'>{lv.status_html}</td></tr>"))
        return lines

    def row_text(self, item: dict[str, Any] | None) -> str:
        return _value_text(item)

    def show_value(self, item: dict[str, Any] | None, editable: bool) -> None:
        pass

    def key(self, text: str) -> bool:
        """A key typed while this card is the active control (Tab) in fix mode."""
        return False

    def focus_widget(self) -> QWidget | None:
        return None


class ChoicesCard(ControlCard):
    def __init__(self, host: TaskView, control: ConfigTag) -> None:
        super().__init__(host, control, "choose several" if control.multiple else "choose one")
        grid = QGridLayout(self.body)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(6)
        self.buttons: dict[str, QPushButton] = {}
        for o in control.options:
            value = o.alias or o.value
            b = QPushButton(f"{o.value}" + (f"   {o.hotkey}" if o.hotkey else ""))
            b.setObjectName(f"choice:{value}")
            b.setCheckable(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            on = o.background or "#2563eb"
            b.setStyleSheet(CHIP.format(ink=tone().ink, on=on))
            b.clicked.connect(lambda _c=False, v=value: self._click(v))
            self.buttons[value] = b
        # as many columns as fit the control column's usual width, so the card never needs a
        # horizontal scroll bar (which clipped options and made every relayout iterate)
        widest = max((b.sizeHint().width() for b in self.buttons.values()), default=1)
        cols = max(1, min(len(self.buttons), CHOICES_WIDTH // (widest + grid.horizontalSpacing())))
        for i, b in enumerate(self.buttons.values()):
            grid.addWidget(b, i // cols, i % cols)

    def _click(self, value: str) -> None:
        doc = self.host.state.doc
        if doc is None:
            self.host.refresh()
            return
        doc.toggle_choice(self.control.name, value)
        self.host.changed()

    def show_value(self, item: dict[str, Any] | None, editable: bool) -> None:
        chosen = set((item or {}).get("value", {}).get("choices", []) or [])
        for v, b in self.buttons.items():
            b.setChecked(v in chosen)
            b.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, not editable)

    def key(self, text: str) -> bool:
        # the active control reads digits as "n-th option" unless the config gave explicit hotkeys
        if text.isdigit() and all(o.hotkey is None or o.hotkey_auto for o in self.control.options):
            i = int(text) - 1
            values = list(self.buttons)
            if 0 <= i < len(values):
                self._click(values[i])
                return True
        return False


class RatingCard(ControlCard):
    def __init__(self, host: TaskView, control: ConfigTag) -> None:
        self.max = int(control.attrs.get("maxRating", "5"))
        super().__init__(host, control, f"1–{self.max} · number keys when active (Tab)")
        row = QHBoxLayout(self.body)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        self.stars: list[QToolButton] = []
        for n in range(1, self.max + 1):
            b = QToolButton()
            b.setObjectName(f"star:{n}")
            b.setText("★")
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setAutoRaise(True)
            b.clicked.connect(lambda _c=False, n=n: self.set_rating(n))
            self.stars.append(b)
            row.addWidget(b)
        row.addStretch(1)

    def set_rating(self, n: int) -> None:
        doc = self.host.state.doc
        if doc is None:
            return
        doc.set_rating(self.control.name, n)
        self.host.changed()

    def show_value(self, item: dict[str, Any] | None, editable: bool) -> None:
        r = (item or {}).get("value", {}).get("rating") or 0
        for i, b in enumerate(self.stars, start=1):
            on = i <= r
            style = f"QToolButton {{ font-size: 20px; color: {'#f59e0b' if on else '#d1d5db'}; border: none; }}"
            if b.styleSheet() != style:
                b.setStyleSheet(style)
            b.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, not editable)

    def key(self, text: str) -> bool:
        if text.isdigit() and int(text) <= self.max:
            self.set_rating(int(text))
            return True
        return False


class NumberCard(ControlCard):
    def __init__(self, host: TaskView, control: ConfigTag) -> None:
        super().__init__(host, control, "number")
        row = QHBoxLayout(self.body)
        row.setContentsMargins(0, 0, 0, 0)
        self.spin = QDoubleSpinBox()
        self.spin.setObjectName(f"number:{control.name}")
        self.spin.setDecimals(int(control.attrs.get("decimals", "0")) if control.attrs.get("decimals", "0").isdigit() else 0)
        self.spin.setRange(float(control.attrs.get("min", -1e9)), float(control.attrs.get("max", 1e9)))
        self.spin.setSpecialValueText("")
        row.addWidget(self.spin)
        row.addStretch(1)
        self.spin.valueChanged.connect(self._changed)
        self._loading = False

    def _changed(self, v: float) -> None:
        doc = self.host.state.doc
        if doc is None or self._loading:
            return
        doc.set_number(self.control.name, v)
        self.host.changed(redraw=False)

    def show_value(self, item: dict[str, Any] | None, editable: bool) -> None:
        self._loading = True
        n = (item or {}).get("value", {}).get("number")
        self.spin.setValue(float(n) if isinstance(n, int | float) else self.spin.minimum())
        self.spin.setReadOnly(not editable)
        self._loading = False

    def focus_widget(self) -> QWidget | None:
        return self.spin


class TextAreaCard(ControlCard):
    def __init__(self, host: TaskView, control: ConfigTag) -> None:
        super().__init__(host, control, "text · one entry per line")
        row = QHBoxLayout(self.body)
        row.setContentsMargins(0, 0, 0, 0)
        self.edit = QPlainTextEdit()
        self.edit.setObjectName(f"textarea:{control.name}")
        self.edit.setMaximumHeight(90)
        self.edit.setPlaceholderText(control.attrs.get("placeholder", ""))
        self.edit.textChanged.connect(self._changed)
        row.addWidget(self.edit)
        self._loading = False

    def _changed(self) -> None:
        doc = self.host.state.doc
        if doc is None or self._loading:
            return
        doc.set_textarea(self.control.name, self.edit.toPlainText().split("\n"))
        self.host.changed(redraw=False)

    def show_value(self, item: dict[str, Any] | None, editable: bool) -> None:
        text = "\n".join(str(t) for t in (item or {}).get("value", {}).get("text", []) or [])
        if self.edit.toPlainText() != text:
            self._loading = True
            self.edit.setPlainText(text)
            self._loading = False
        self.edit.setReadOnly(not editable)

    def focus_widget(self) -> QWidget | None:
        return self.edit


class PairwiseCard(ControlCard):
    def __init__(self, host: TaskView, control: ConfigTag) -> None:
        super().__init__(host, control, "pairwise · ← / → when active")
        row = QHBoxLayout(self.body)
        row.setContentsMargins(0, 0, 0, 0)
        self.buttons = {}
        for side, text in (("left", "◀  left"), ("right", "right  ▶")):
            b = QPushButton(text)
            b.setObjectName(f"pairwise:{side}")
            b.setCheckable(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setStyleSheet(CHIP.format(ink=tone().ink, on="#2563eb"))
            b.setMinimumWidth(90)
            b.clicked.connect(lambda _c=False, s=side: self.select(s))
            self.buttons[side] = b
            row.addWidget(b)
        row.addStretch(1)

    def select(self, side: str) -> None:
        doc = self.host.state.doc
        if doc is None:
            return
        doc.set_pairwise(self.control.name, side)
        self.host.changed()

    def show_value(self, item: dict[str, Any] | None, editable: bool) -> None:
        sel = (item or {}).get("value", {}).get("selected")
        for side, b in self.buttons.items():
            b.setChecked(side == sel)
            b.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, not editable)

    def key(self, text: str) -> bool:
        if text in ("left", "right"):
            self.select(text)
            return True
        return False


class RegionLegendCard(ControlCard):
    """Labels/RectangleLabels/...: the label legend with hotkeys and each evaluator's region count."""

    def __init__(self, host: TaskView, control: ConfigTag, target: str) -> None:
        super().__init__(host, control, f"{control.tag} on {target}")
        lab = WrapLabel()
        chips = []
        for o in control.options:
            col = label_colour(control, o.value).name()
            key = f"&nbsp;<span style='color:{tone().muted}'>{html.escape(o.hotkey)}</span>" if o.hotkey else ""
            chips.append(f"<span style='background:{col}; color:white'>&nbsp;{html.escape(o.value)}&nbsp;</span>{key}")
        lab.setText("&nbsp;&nbsp; ".join(chips))
        row = QHBoxLayout(self.body)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(lab)

    def row_text(self, item: dict[str, Any] | None) -> str:
        return ""

    def row_lines(self, state: RenderState, diff: Any) -> list[tuple[bool, str]]:
        lines: list[tuple[bool, str]] = []
        for lv in state.layers:
            if not lv.visible:
                continue
            n = sum(1 for i in lv.layer.result if isinstance(i, dict) and i.get("from_name") == self.control.name)
            miss = len(diff.unmatched.get(lv.key, ())) if diff else 0
            mark = f"<b style='color:{DISAGREE}'>≠</b>" if miss else "&nbsp;&nbsp;"
            extra = f" <span style='color:{DISAGREE}'>({miss} without a match)</span>" if miss else ""
            weight = "600" if lv.focus else "normal"
            fixed = ""
            if lv.fixed is not None:
                nf = sum(1 for i in lv.fixed if isinstance(i, dict) and i.get("from_name") == self.control.name)
                if nf != n:
                    fixed = f" → <b style='color:{tone().fix}'>{nf} after the fix</b>"
            lines.append((lv.focus or bool(miss),
                          f"<tr><td>{mark}</td><td><span style='color:{lv.colour.name()}'>●</span> "
                          f"<span style='font-weight:{weight}'>{html.escape(lv.short)}</span></td>"
                          f"<td style='padding-left:8px'>{n} region{'s' if n != 1 else ''}{extra}{fixed}</td>"
                          f"<td style='padding-left:8px'>{lv.status_html}</td></tr>"))
        return lines


class RawControlCard(RawPlaceholder):
    """A control ReviewDesk cannot edit (Taxonomy, Brush, DateTime, Ranker, ...): raw values."""

    def __init__(self, host: TaskView, control: ConfigTag) -> None:
        super().__init__(host, control, f"<{control.tag}> is shown as raw result JSON; fix it in Label Studio.")
        self.control = control

    def key(self, text: str) -> bool:
        return False

    def focus_widget(self) -> QWidget | None:
        return None


def make_control_card(host: TaskView, control: ConfigTag) -> Card:
    tag = control.tag
    if tag == "Choices":
        return ChoicesCard(host, control)
    if tag == "Rating":
        return RatingCard(host, control)
    if tag == "Number":
        return NumberCard(host, control)
    if tag == "TextArea":
        return TextAreaCard(host, control)
    if tag == "Pairwise":
        return PairwiseCard(host, control)
    if tag in ("Labels", "RectangleLabels", "Rectangle", "PolygonLabels", "Polygon", "KeyPointLabels", "KeyPoint",
               "TimeSeriesLabels", "HyperTextLabels", "ParagraphLabels"):
        return RegionLegendCard(host, control, ", ".join(control.to_name))
    return RawControlCard(host, control)
