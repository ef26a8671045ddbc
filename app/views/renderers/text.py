"""Text-like objects: ``Text`` (spans highlighted, fixable), ``HyperText`` (sanitised) and ``Paragraphs``."""

from __future__ import annotations

import base64
import html
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QColor, QImage, QTextCharFormat, QTextCursor, QTextDocument, QTextFormat
from PySide6.QtWidgets import QFrame, QTextBrowser, QTextEdit, QToolTip, QWidget

from app.models.config import ConfigTag
from app.services.media import sanitize_html
from app.services.results import index_to_utf16, resolve_span, utf16_to_index
from app.views.renderers.common import (
    DISAGREE,
    Card,
    RenderState,
    label_colour,
    labels_of,
    message_label,
    with_alpha,
)
from app.views.theme import is_dark, tone

if TYPE_CHECKING:
    from app.views.renderers import TaskView

TEXT_CSS = "QTextEdit, QTextBrowser { border: none; background: transparent; font-size: 11pt; }"


def _auto_height(edit: QTextEdit, max_h: int = 360) -> None:
    doc = edit.document()
    doc.setTextWidth(max(200, edit.viewport().width()))
    edit.setFixedHeight(min(max_h, int(doc.size().height()) + 8))


class SpanText(QTextEdit):
    def __init__(self, owner: TextRenderer) -> None:
        super().__init__()
        self.owner = owner
        self.setReadOnly(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setStyleSheet(TEXT_CSS)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.setTabChangesFocus(True)

    def resizeEvent(self, e: Any) -> None:  # noqa: N802
        super().resizeEvent(e)
        _auto_height(self)

    def event(self, e: Any) -> bool:
        if e.type() == e.Type.ToolTip:
            pos = self.cursorForPosition(e.pos()).position()
            tips = self.owner.tooltip_at(pos)
            if tips:
                QToolTip.showText(e.globalPos(), tips, self)
            else:
                QToolTip.hideText()
            return True
        return super().event(e)


class TextRenderer(Card):
    """Plain text with ``Labels`` spans; fix mode: select text, press a label hotkey."""

    def __init__(self, host: TaskView, obj: ConfigTag, controls: list[ConfigTag]) -> None:
        super().__init__(obj.name, "text")
        self.host = host
        self.obj = obj
        self.controls = {c.name: c for c in controls}
        self.text = ""
        self.edit = SpanText(self)
        self.edit.setObjectName(f"text:{obj.name}")
        self.lay.addWidget(self.edit)
        self.edit.cursorPositionChanged.connect(self._cursor_moved)
        self._spans: list[tuple[int, int, str, str, str]] = []  # qt start, qt end, item id, layer title, labels

    def set_task(self, value: Any) -> None:
        if not isinstance(value, str):
            value = "" if value is None else str(value)
        self.text = value
        # QTextDocument folds "\r\n" into one separator; a space keeps every offset in place.
        self.edit.setPlainText(value.replace("\r", " "))
        _auto_height(self.edit)

    # -- offsets
    def qpos(self, index: int) -> int:
        return index_to_utf16(self.text, index)

    def selection_span(self) -> tuple[int, int] | None:
        cur = self.edit.textCursor()
        if not cur.hasSelection():
            return None
        a = utf16_to_index(self.text, cur.selectionStart())
        b = utf16_to_index(self.text, cur.selectionEnd())
        return (a, b) if b > a else None

    def select_chars(self, start: int, end: int) -> None:
        """Select code points ``start``..``end`` (tests and keyboard helpers)."""
        cur = self.edit.textCursor()
        cur.setPosition(self.qpos(start))
        cur.setPosition(self.qpos(end), QTextCursor.MoveMode.KeepAnchor)
        self.edit.setTextCursor(cur)

    # -- drawing
    def refresh(self, state: RenderState) -> None:
        sels = []
        self._spans = []
        for lv, items, _editable in state.shown():
            unmatched = state.unmatched(lv.key)
            for it in items:
                if it.get("to_name") != self.obj.name or it.get("from_name") not in self.controls:
                    continue
                v = it.get("value") or {}
                if not isinstance(v.get("start"), int) or not isinstance(v.get("end"), int):
                    continue
                s, e, ok = resolve_span(self.text, v["start"], v["end"], v.get("text"))
                if not 0 <= s < e <= len(self.text):
                    continue
                labels = labels_of(it)
                colour = label_colour(self.controls[it["from_name"]], labels[0] if labels else None)
                fmt = QTextCharFormat()
                if lv.focus:
                    fmt.setBackground(with_alpha(colour, 80))
                    fmt.setForeground(QColor(tone().ink))
                    if it.get("id") == state.selected:
                        fmt.setBackground(with_alpha(colour, 170))
                        fmt.setForeground(QColor("white"))
                else:
                    fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.SingleUnderline)
                    fmt.setUnderlineColor(lv.colour)
                if str(it.get("id")) in unmatched or not ok:
                    fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
                    fmt.setUnderlineColor(QColor(DISAGREE))
                sel = QTextEdit.ExtraSelection()
                cur = QTextCursor(self.edit.document())
                cur.setPosition(self.qpos(s))
                cur.setPosition(self.qpos(e), QTextCursor.MoveMode.KeepAnchor)
                sel.cursor = cur
                sel.format = fmt
                sels.append(sel)
                note = "" if ok else " (offsets do not match the quoted text)"
                self._spans.append((self.qpos(s), self.qpos(e), str(it.get("id")), lv.layer.title,
                                    ", ".join(labels) + note))
        self.edit.setExtraSelections(sels)
        legend = []
        for c in self.controls.values():
            for o in c.options:
                col = label_colour(c, o.value).name()
                key = f" <span style='color:{tone().muted}'>[{html.escape(o.hotkey)}]</span>" if o.hotkey else ""
                legend.append(f"<span style='background:{col}; color:white'>&nbsp;{html.escape(o.value)}&nbsp;</span>{key}")
        n = sum(1 for _ in self._spans)
        self.set_title(self.obj.name, f"text · {n} span{'s' if n != 1 else ''}")
        self.edit.setToolTip("")
        self.setToolTip("")
        self._legend_html = " ".join(legend)

    def tooltip_at(self, qpos: int) -> str:
        hits = [f"{html.escape(lab)} — {html.escape(who)}" for s, e, _i, who, lab in self._spans if s <= qpos < e]
        return "<br>".join(hits)

    def span_at(self, qpos: int) -> str | None:
        doc = self.host.state.doc
        if doc is None:
            return None
        ids = {str(i.get("id")) for i in doc.items}
        for s, e, iid, _who, _lab in reversed(self._spans):
            if s <= qpos < e and iid in ids:
                return iid
        return None

    def _cursor_moved(self) -> None:
        if self.host.state.doc is None or self.edit.textCursor().hasSelection():
            return
        iid = self.span_at(self.edit.textCursor().position())
        if iid != self.host.state.selected:
            self.host.select_item(iid)

    # -- fix mode
    def apply_label(self, control: ConfigTag, label: str) -> bool:
        if control.name not in self.controls or self.host.state.doc is None:
            return False
        doc = self.host.state.doc
        span = self.selection_span()
        if span is not None:
            iid = doc.add_span(control.name, self.text, span[0], span[1], label, to_name=self.obj.name)
            cur = self.edit.textCursor()
            cur.clearSelection()
            self.edit.setTextCursor(cur)
            self.host.changed(select=iid)
            return True
        sel = self.host.state.selected
        if sel is not None and any(s[2] == sel for s in self._spans):
            doc.set_labels(sel, [label])
            self.host.changed(select=sel)
            return True
        return False

    def owns(self, item_id: str | None) -> bool:
        return item_id is not None and any(s[2] == item_id for s in self._spans)

    def delete_selected(self) -> bool:
        sel = self.host.state.selected
        if self.host.state.doc is None or not self.owns(sel):
            return False
        assert sel is not None
        self.host.state.doc.remove(sel)
        self.host.changed(select=None)
        return True

    def focus_widget(self) -> QWidget:
        return self.edit


class SafeBrowser(QTextBrowser):
    """A QTextBrowser that never loads anything from outside the document (only inline data: images)."""

    def __init__(self) -> None:
        super().__init__()
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setStyleSheet(TEXT_CSS)
        self.blocked_loads: list[str] = []

    def loadResource(self, rtype: int, name: QUrl | str) -> Any:  # noqa: N802
        url = name if isinstance(name, QUrl) else QUrl(name)
        if url.scheme() == "data" and rtype == int(QTextDocument.ResourceType.ImageResource.value):
            raw = url.toString()
            if ";base64," in raw:
                img = QImage()
                if img.loadFromData(base64.b64decode(raw.split(";base64,", 1)[1] + "==")):
                    return img
        self.blocked_loads.append(url.toString())
        return None


class HyperTextRenderer(Card):
    def __init__(self, host: TaskView, obj: ConfigTag, controls: list[ConfigTag]) -> None:
        super().__init__(obj.name, "hypertext · sanitised")
        self.host = host
        self.obj = obj
        self.controls = {c.name: c for c in controls}
        self.notice = message_label("", "info")
        self.notice.hide()
        self.lay.addWidget(self.notice)
        self.view = SafeBrowser()
        self.view.setObjectName(f"html:{obj.name}")
        self.lay.addWidget(self.view)
        self.spans = message_label("", "info")
        self.spans.hide()
        self.lay.addWidget(self.spans)
        self.sanitized = ""

    def set_task(self, value: Any) -> None:
        if not isinstance(value, str):
            value = "" if value is None else str(value)
        res = sanitize_html(value)
        self.sanitized = res.html
        notes = []
        if res.blocked_remote:
            notes.append(f"{res.blocked_remote} remote image{'s' if res.blocked_remote > 1 else ''} not loaded "
                         "(ReviewDesk never fetches content from task HTML).")
        if res.changed and not res.blocked_remote:
            notes.append("Scripts, styles or unsafe attributes were removed from this HTML.")
        self.notice.setText(" ".join(notes))
        self.notice.setVisible(bool(notes))
        self.view.document().setDefaultStyleSheet(
            f"span.blocked {{ color: {tone().muted}; background: {tone().raised}; }}"
            f" table {{ border-collapse: collapse; }} td, th {{ border: 1px solid {tone().border}; padding: 2px 6px; }}")
        self.view.setHtml(res.html)
        _auto_height(self.view, 420)

    def refresh(self, state: RenderState) -> None:
        lines = []
        for lv, items, _ in state.shown():
            for it in items:
                v = it.get("value") or {}
                if it.get("to_name") == self.obj.name and it.get("from_name") in self.controls and "start" in v:
                    lines.append(f"<b>{html.escape(', '.join(labels_of(it)))}</b> “{html.escape(str(v.get('text', '')))}”"
                                 f" <span style='color:{tone().muted}'>— {html.escape(lv.short)}</span>")
        self.spans.setText("Spans (read-only in ReviewDesk):<br>" + "<br>".join(lines))
        self.spans.setVisible(bool(lines))

    def focus_widget(self) -> QWidget:
        return self.view


class ParagraphsRenderer(Card):
    """Dialogue: one bubble per paragraph (``nameKey``/``textKey``), ``ParagraphLabels`` highlighted."""

    def __init__(self, host: TaskView, obj: ConfigTag, controls: list[ConfigTag]) -> None:
        super().__init__(obj.name, "dialogue")
        self.host = host
        self.obj = obj
        self.controls = {c.name: c for c in controls}
        self.view = SafeBrowser()
        self.view.setObjectName(f"paragraphs:{obj.name}")
        self.lay.addWidget(self.view)
        self.paragraphs: list[tuple[str, str]] = []

    def set_task(self, value: Any) -> None:
        name_key = self.obj.attrs.get("nameKey", "author")
        text_key = self.obj.attrs.get("textKey", "text")
        self.paragraphs = []
        if isinstance(value, list):
            for p in value:
                if isinstance(p, dict):
                    self.paragraphs.append((str(p.get(name_key, "")), str(p.get(text_key, ""))))
                else:
                    self.paragraphs.append(("", str(p)))

    def refresh(self, state: RenderState) -> None:
        marks: dict[int, list[tuple[int, int, QColor]]] = {}
        for lv, items, _ in state.shown():
            if not lv.focus:
                continue
            for it in items:
                v = it.get("value") or {}
                if it.get("to_name") != self.obj.name or it.get("from_name") not in self.controls:
                    continue
                try:
                    p0, p1 = int(v["start"]), int(v["end"])
                    o0, o1 = int(v.get("startOffset", 0)), int(v.get("endOffset", 0))
                except (KeyError, TypeError, ValueError):
                    continue
                labels = labels_of(it)
                col = label_colour(self.controls[it["from_name"]], labels[0] if labels else None)
                for p in range(p0, p1 + 1):
                    if 0 <= p < len(self.paragraphs):
                        plen = len(self.paragraphs[p][1])
                        marks.setdefault(p, []).append((o0 if p == p0 else 0, o1 if p == p1 else plen, col))
        speakers: dict[str, str] = {}
        palette = (("#1f3550", "#1f3a28", "#43321c", "#3a2a45") if is_dark() else
                    ("#e8f1fb", "#eef7ee", "#fdf3e6", "#f5ecf8"))
        rows = []
        for i, (who, text) in enumerate(self.paragraphs):
            bg = speakers.setdefault(who, palette[len(speakers) % len(palette)])
            body = _marked(text, marks.get(i, []))
            rows.append(f"<table width='100%' cellpadding='6' style='margin-bottom:4px'><tr><td bgcolor='{bg}'>"
                        f"<b>{html.escape(who)}</b><br>{body}</td></tr></table>")
        self.view.setHtml("".join(rows) or f"<i style='color:{tone().muted}'>(no paragraphs)</i>")
        _auto_height(self.view, 420)

    def focus_widget(self) -> QWidget:
        return self.view


def _marked(text: str, marks: list[tuple[int, int, QColor]]) -> str:
    if not marks:
        return html.escape(text)
    out, pos = [], 0
    for s, e, col in sorted(marks, key=lambda m: m[0]):
        s, e = max(s, pos), min(e, len(text))
        if e <= s:
            continue
        out.append(html.escape(text[pos:s]))
        out.append(f"<span style='background:{with_alpha(col, 90).name(QColor.NameFormat.HexArgb)}'>"
                   f"{html.escape(text[s:e])}</span>")
        pos = e
    out.append(html.escape(text[pos:]))
    return "".join(out)


_ = QTextFormat  # re-exported for tests that inspect formats
