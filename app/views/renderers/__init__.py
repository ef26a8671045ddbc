"""Multimodal task rendering and in-place fixing (issue 5).

:class:`TaskView` shows one task as the labeling config describes it: each object (``Text``,
``HyperText``, ``Paragraphs``, ``Image``, ``Audio``, ``TimeSeries``) with the regions of the
visible annotations drawn over it, and a card per control (``Choices``, ``Rating``, ...) listing
each evaluator's value with disagreements marked. ``start_fix`` edits one annotation in place,
keyboard first; ``Enter``/``Ctrl+Enter`` emits :attr:`TaskView.fixSaved` with exact Label Studio
JSON, ``Esc`` emits :attr:`TaskView.fixCancelled`.

Keys in fix mode (while focus is inside the view; application shortcuts are overridden):
config hotkeys toggle choices, label a text selection, relabel the selected region or add a
region of that label; ``Tab``/``Shift+Tab`` pick the active control (then number keys set a
rating, ``←``/``→`` pick a pairwise side); arrows nudge the selected region (``Shift`` x10,
``Ctrl`` resizes); ``Delete`` removes it; typing goes to text areas and number fields.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QEvent, QKeyCombination, QObject, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QKeySequence, QTextCursor
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.models.config import ConfigTag, LabelingConfig, Option
from app.services.media import media_refs, prefetch_plan, resolve_media
from app.services.projects import TaskDetail
from app.services.results import Layer, ResultDoc, compare
from app.views.renderers.audio import AudioRenderer
from app.views.renderers.common import (
    BORDER,
    CARD_BG,
    EVALUATOR_COLOURS,
    FIX,
    PAGE_BG,
    LayerView,
    RawPlaceholder,
    RenderState,
)
from app.views.renderers.controls import ControlCard, make_control_card
from app.views.renderers.image import ImageRenderer
from app.views.renderers.media_cache import MediaCache
from app.views.renderers.text import HyperTextRenderer, ParagraphsRenderer, TextRenderer
from app.views.renderers.timeseries import TimeSeriesRenderer
from app.views.theme import tone

__all__ = ["TaskView", "MediaCache"]

OBJECT_RENDERERS: dict[str, Any] = {
    "Text": TextRenderer, "HyperText": HyperTextRenderer, "Paragraphs": ParagraphsRenderer,
    "Image": ImageRenderer, "Audio": AudioRenderer, "AudioPlus": AudioRenderer, "TimeSeries": TimeSeriesRenderer,
}
MEDIA_OBJECTS = ("Image", "Audio", "AudioPlus")
ARROWS = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0), Qt.Key.Key_Up: (0, -1), Qt.Key.Key_Down: (0, 1)}


def _walk(options: tuple[Option, ...]) -> list[Option]:
    out = []
    for o in options:
        out.append(o)
        out.extend(_walk(o.children))
    return out


def hotkey_matches(hotkey: str, e: QKeyEvent) -> bool:
    """Does the key event match a Label Studio hotkey (``"1"``, ``"q"``, ``"ctrl+1"``, ``"shift+a"``)?"""
    h = hotkey.strip().lower()
    mods = e.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
    if len(h) == 1:
        if mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
                   | Qt.KeyboardModifier.MetaModifier):
            return False
        return e.text().lower() == h
    seq = QKeySequence(h.replace("ctrl", "Ctrl").replace("shift", "Shift").replace("alt", "Alt"))
    return seq.matches(QKeySequence(e.keyCombination())) == QKeySequence.SequenceMatch.ExactMatch


class LayerChip(QToolButton):
    HEIGHT = 26

    def __init__(self, view: TaskView, lv: LayerView) -> None:
        super().__init__()
        self.setFixedHeight(self.HEIGHT)
        # never squeezed into "…ed": the chip row scrolls sideways instead
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.view = view
        self.key = lv.key
        self.setCheckable(True)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setObjectName(f"layer:{lv.key}")
        self.toggled.connect(lambda on: view.set_layer_visible(self.key, on))
        self.update_from(lv)

    def update_from(self, lv: LayerView) -> None:
        if self.isChecked() != lv.visible:
            self.blockSignals(True)
            self.setChecked(lv.visible)
            self.blockSignals(False)
        prefix = "◆ " if lv.layer.prediction else "● "
        gt = " ★ ground truth" if lv.ground_truth else ""
        status = f"  {lv.status}" if lv.status else ("" if lv.layer.prediction else "  ○")  # ○: undecided
        text = prefix + lv.short + gt + status
        if self.text() != text:
            self.setText(text)
        self.setToolTip(f"{lv.layer.title}{gt} — {lv.status or 'undecided'} — click to show/hide"
                        + (" (focused)" if lv.focus else ""))
        t = tone()
        border = f"2px solid {t.ink}" if lv.focus else f"1px solid {BORDER}"
        style = (f"QToolButton {{ color: {lv.colour.name()}; background: {CARD_BG}; border: {border};"
                 f" border-radius: 11px; padding: 2px 9px; font-weight: {'700' if lv.focus else '500'}; }}"
                 f"QToolButton:!checked {{ color: {t.muted}; background: {PAGE_BG}; border-style: dashed; }}")
        if style != self.styleSheet():  # a style sheet change re-polishes the widget: only when needed
            self.setStyleSheet(style)
            # measure with the style sheet's padding and weight now: a chip laid out before its first polish
            # kept the unstyled width and showed "P…" until some later relayout
            self.ensurePolished()
            self.updateGeometry()


class TaskView(QWidget):
    """One task, its annotations compared, and fix mode. See the module docstring for the keys."""

    fixSaved = Signal(list)      # noqa: N815 - Qt naming; the fixed LS result
    fixCancelled = Signal()      # noqa: N815
    mediaReady = Signal()        # noqa: N815 - all media of the shown task decoded (or failed)

    def __init__(self, parent: QWidget | None = None, *, media_cache: MediaCache | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("taskView")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.media = media_cache or MediaCache(parent=self)
        self.media.ready.connect(self._media_ready)
        self.state = RenderState([], None)
        self.config: LabelingConfig | None = None
        self.detail: TaskDetail | None = None
        self.media_root: str | None = None
        self.renderers: dict[str, Any] = {}
        self.cards: dict[str, Any] = {}
        self.active_control: str | None = None
        self._fix_layer: str | None = None
        self._waiting: set[Any] = set()
        self._built_xml: str | None = None
        self.setStyleSheet(f"TaskView, QWidget#page {{ background: {PAGE_BG}; }}")

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        header = QWidget()
        header.setObjectName("taskHeader")
        header.setStyleSheet(f"QWidget#taskHeader {{ background: {CARD_BG}; border-bottom: 1px solid {BORDER}; }}")
        hl = QVBoxLayout(header)
        hl.setContentsMargins(12, 8, 12, 8)
        hl.setSpacing(6)
        top = QHBoxLayout()
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.RichText)
        top.addWidget(self.title)
        # the layer chips scroll sideways when a task has many evaluators: without this, a dozen
        # annotations made the window's minimum width wider than most screens
        chips_host = QWidget()
        chips_host.setObjectName("chipsHost")
        self.chips_box = QHBoxLayout(chips_host)
        self.chips_box.setContentsMargins(0, 0, 0, 0)
        self.chips_box.setSpacing(6)
        self.chips_box.addStretch(1)
        self.chips_area = QScrollArea()
        self.chips_area.setObjectName("chipsArea")
        self.chips_area.setWidget(chips_host)
        self.chips_area.setWidgetResizable(True)
        self.chips_area.setFrameShape(QScrollArea.Shape.NoFrame)
        self.chips_area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.chips_area.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.chips_area.setStyleSheet(f"QScrollArea, QWidget#chipsHost {{ background: {CARD_BG}; }}"
                                      "QScrollBar:horizontal { height: 6px; }")
        self.chips_area.setFixedHeight(LayerChip.HEIGHT + 14)  # room for the thin scroll bar under the chips
        top.addWidget(self.chips_area, 1)
        hl.addLayout(top)
        self.banner = QLabel()
        self.banner.setObjectName("fixBanner")
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(Qt.TextFormat.RichText)
        self.banner.setStyleSheet(f"QLabel {{ background: #fff8e1; border: 1px solid {FIX}; border-radius: 6px;"
                                  f" padding: 5px 8px; color: #5d4300; }}")
        self.banner.hide()
        hl.addWidget(self.banner)
        outer.addWidget(header)

        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.setChildrenCollapsible(False)
        self.objects_page, self.objects_lay = self._page()
        self.controls_page, self.controls_lay = self._page()
        self.areas: list[QScrollArea] = []
        for page in (self.objects_page, self.controls_page):
            area = QScrollArea()
            self.areas.append(area)
            area.setWidgetResizable(True)
            area.setFrameShape(QScrollArea.Shape.NoFrame)
            area.setWidget(page)
            area.setStyleSheet(f"QScrollArea {{ background: {PAGE_BG}; }}")
            self.split.addWidget(area)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 2)
        outer.addWidget(self.split, 1)
        self.chips: list[LayerChip] = []
        self._filtering = False
        self.save_keys: tuple[str, ...] = ("Return", "Ctrl+Return")
        self.cancel_keys: tuple[str, ...] = ("Escape",)

    def _filter_keys(self, on: bool) -> None:
        """The application-wide key filter of fix mode, installed only while fixing: a Python filter on
        every event of the application costs a Python call per paint/layout event otherwise."""
        app = QApplication.instance()
        if app is None or on == self._filtering:
            return
        if on:
            app.installEventFilter(self)
        else:
            app.removeEventFilter(self)
        self._filtering = on

    @staticmethod
    def _page() -> tuple[QWidget, QVBoxLayout]:
        page = QWidget()
        page.setObjectName("page")
        lay = QVBoxLayout(page)
        lay.setContentsMargins(10, 10, 10, 10)
        lay.setSpacing(10)
        lay.addStretch(1)
        return page, lay

    # -- public API -------------------------------------------------------------------------------
    def show_task(self, detail: TaskDetail, config: LabelingConfig, media_root: str | None, *,
                  focus_annotation_id: int | None = None, show_predictions: bool = False,
                  names: dict[int, str] | None = None, slots: dict[int, int] | None = None,
                  statuses: dict[int, Any] | None = None, compared: frozenset[int] = frozenset()) -> None:
        """Show a task. ``names``/``slots`` (annotation id -> display name / the evaluator's fixed colour slot
        in the project) keep an evaluator's name and colour the same on every task; ``statuses`` (annotation
        id -> an ``AnnotationStatus``) mark each annotation decided or not (see :meth:`set_statuses`)."""
        if self.state.doc is not None:
            self._leave_fix()
        self.media.forget_waiters()
        if self._built_xml != config.xml:
            self._build(config)
        self.config = config
        self.detail = detail
        self.media_root = media_root
        layers: list[LayerView] = []
        for i, a in enumerate(detail.annotations):
            title = a.evaluator + (" (skipped)" if a.was_cancelled else "")
            slot = slots.get(a.id, i) if slots else i
            name = (names or {}).get(a.id, "") + (" (skipped)" if a.was_cancelled and names else "")
            layers.append(LayerView(Layer(f"a:{a.id}", title, tuple(a.result)),
                                    QColor(EVALUATOR_COLOURS[slot % len(EVALUATOR_COLOURS)]), False,
                                    name=name, ground_truth=bool(a.ground_truth), compared=a.id in compared))
        if show_predictions:
            for j, p in enumerate(detail.predictions):
                title = f"model {p.model_version or '?'}" + (f" ({p.score:.2f})" if p.score is not None else "")
                layers.append(LayerView(Layer(f"p:{p.id}", title, tuple(p.result or ()), prediction=True),
                                        QColor(EVALUATOR_COLOURS[(len(detail.annotations) + j) % 8]).darker(115),
                                        False))
        self.state = RenderState(layers, None)
        focus = f"a:{focus_annotation_id}" if focus_annotation_id is not None else (layers[0].key if layers else None)
        for lv in layers:
            lv.focus = lv.key == focus
        self._apply_statuses(statuses or {})
        self._rebuild_chips()
        sid = detail.server_id if detail.server_id is not None else detail.id
        n_a, n_p = len(detail.annotations), len(detail.predictions)
        t = tone()
        self.title.setText(f"<span style='font-size:13pt; font-weight:600; color:{t.ink}'>Task {sid}</span>"
                           f" <span style='color:{t.muted}'>&nbsp;{n_a} annotation{'s' if n_a != 1 else ''}"
                           f" · {n_p} prediction{'s' if n_p != 1 else ''}</span>")
        self._waiting = set()
        refs = {r.object_name: r for r in media_refs(detail.data, config)}
        all_items = [i for lv in layers for i in lv.layer.result if isinstance(i, dict)]
        for name, r in self.renderers.items():
            obj = config.object(name)
            if obj is None or not hasattr(r, "set_task"):
                continue
            ref = refs.get(name)
            value = detail.data.get(obj.data_key) if obj.data_key else None
            if obj.tag in MEDIA_OBJECTS or obj.tag == "TimeSeries":
                res = resolve_media(ref, media_root) if ref is not None and obj.tag in MEDIA_OBJECTS else None
                hint = [i for i in all_items if i.get("to_name") == name]
                if res is not None and res.ok and self.media.get(res) is None:
                    self._waiting.add(MediaCache.key(res))
                r.set_task(value, res, hint)
            else:
                r.set_task(value)
        self._compare()
        self.refresh()
        self.scroll_to_top()
        if not self._waiting:
            self.mediaReady.emit()

    def scroll_to_top(self) -> None:
        """Every new task opens at its top (both panes), wherever the last one was scrolled to."""
        for area in self.areas:
            area.verticalScrollBar().setValue(0)
            area.horizontalScrollBar().setValue(0)

    def set_focus_annotation(self, annotation_id: int | None, *, statuses: dict[int, Any] | None = None) -> None:
        key = None if annotation_id is None else f"a:{annotation_id}"
        if statuses is not None:
            self._apply_statuses(statuses)
        for lv in self.state.layers:
            lv.focus = lv.key == key
            if lv.focus:
                lv.visible = True
        self._rebuild_chips()
        self._compare()
        self.refresh()

    def _apply_statuses(self, statuses: dict[int, Any]) -> bool:
        changed = False
        for lv in self.state.layers:
            if not lv.key.startswith("a:"):
                continue
            st = statuses.get(int(lv.key[2:]))
            new = (st.label, st.verdict, st.fixed) if st is not None else ("", "", None)
            if (lv.status, lv.verdict, lv.fixed) != new:
                lv.status, lv.verdict, lv.fixed = new
                changed = True
        return changed

    def set_statuses(self, statuses: dict[int, Any]) -> None:
        """Each annotation's decision status (``label``, ``verdict``, ``fixed``): shown on its chip and in every
        control card's row, a fix as original → fixed. Redraws only what changed."""
        if self._apply_statuses(statuses) and not self.in_fix_mode():
            self._rebuild_chips()
            self.refresh()

    def status_of(self, annotation_id: int) -> str:
        """The status text shown for an annotation (tests, accessibility)."""
        lv = next((lv for lv in self.state.layers if lv.key == f"a:{annotation_id}"), None)
        return lv.status if lv is not None else ""

    def focused_annotation_id(self) -> int | None:
        lv = next((lv for lv in self.state.layers if lv.focus), None)
        return int(lv.key[2:]) if lv is not None and lv.key.startswith("a:") else None

    def start_fix(self, annotation_id: int | None) -> None:
        if self.config is None or self.detail is None:
            return
        result: tuple[Any, ...] = ()
        if annotation_id is not None:
            ann = next((a for a in self.detail.annotations if a.id == annotation_id), None)
            if ann is None:
                raise LookupError(f"task {self.detail.id} has no annotation {annotation_id}")
            result = ann.result
            self.set_focus_annotation(annotation_id)
        else:
            for lv in self.state.layers:
                lv.focus = False
            self._rebuild_chips()
        self.state.doc = ResultDoc(self.config, result)
        self._filter_keys(True)
        self.state.selected = None
        self.state.pending = {}
        self.active_control = None
        who = next((lv.short for lv in self.state.layers if lv.focus), None)
        self._fix_layer = who
        self._update_banner()
        self.refresh()
        target = next((r.focus_widget() for r in self.renderers.values() if hasattr(r, "focus_widget")), None)
        (target or self).setFocus(Qt.FocusReason.OtherFocusReason)

    def in_fix_mode(self) -> bool:
        return self.state.doc is not None

    def current_fix_result(self) -> list[dict]:
        return [] if self.state.doc is None else self.state.doc.to_result()

    def cancel_fix(self) -> None:
        self._leave_fix()

    def prefetch(self, details: list[TaskDetail], media_root: str | None) -> None:
        """Decode the media of (up to three of) ``details`` in the background into the LRU."""
        self.prefetch_data([d.data for d in details], media_root)

    def prefetch_data(self, datas: list[dict[str, Any]], media_root: str | None) -> None:
        """Same as :meth:`prefetch`, from the tasks' ``data`` alone."""
        if self.config is None:
            return
        for res in prefetch_plan(datas, self.config, media_root, limit=3):
            self.media.request(res)

    def has_media(self) -> bool:
        """Whether the current config shows any decoded media (images, audio) worth prefetching."""
        return self.config is not None and any(o.tag in MEDIA_OBJECTS for o in self.config.objects)

    # -- state changes used by renderers ---------------------------------------------------------
    def select_item(self, item_id: str | None, *, refresh: bool = True) -> None:
        if self.state.selected == item_id:
            return
        self.state.selected = item_id
        if refresh:
            self.refresh()

    def changed(self, *, select: str | None | bool = False, redraw: bool = True) -> None:
        """The fix document changed (``select``: the item to select; ``False`` keeps the selection)."""
        if select is not False:
            self.state.selected = select  # type: ignore[assignment]
        if redraw:
            self.refresh()
        else:
            for c in self.cards.values():
                if isinstance(c, ControlCard) and not c.focus_widget():
                    c.refresh(self.state)
        self._update_banner()

    def refresh(self) -> None:
        for r in self.renderers.values():
            r.refresh(self.state)
        for name, c in self.cards.items():
            c.refresh(self.state)
            c.set_active(self.state.fixing and name == self.active_control)

    def set_layer_visible(self, key: str, visible: bool) -> None:
        for lv in self.state.layers:
            if lv.key == key:
                lv.visible = visible
        self._compare()
        self.refresh()

    # -- building -------------------------------------------------------------------------------------
    def _clear(self, lay: QVBoxLayout) -> None:
        while lay.count() > 1:
            item = lay.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.setParent(None)
                w.deleteLater()

    def _build(self, config: LabelingConfig) -> None:
        # Built while on screen (the first task after an empty queue, another project), the new cards were
        # shown by a queued call after the scroll areas had sized their pages without them, and stayed
        # squashed until some later relayout. Built under a hidden splitter, they are shown all at once.
        hide = self.split.isVisible()
        if hide:
            self.split.hide()
        try:
            self._build_widgets(config)
        finally:
            if hide:
                self.split.show()

    def _build_widgets(self, config: LabelingConfig) -> None:
        self._clear(self.objects_lay)
        self._clear(self.controls_lay)
        self.renderers = {}
        self.cards = {}
        self.config = config
        self._built_xml = config.xml
        for obj in config.objects:
            controls = [c for c in config.controls if obj.name in c.to_name]
            cls = OBJECT_RENDERERS.get(obj.tag)
            if cls is None:
                w: Any = RawPlaceholder(self, obj, f"<{obj.tag}> objects are not displayed by ReviewDesk yet; "
                                                   "the results that point at it are shown raw.")
            else:
                w = cls(self, obj, controls)
            self.renderers[obj.name] = w
            self.objects_lay.insertWidget(self.objects_lay.count() - 1, w)
        for tag in config.unknown:
            w = RawPlaceholder(self, tag, f"<{tag.tag}> is not a tag ReviewDesk knows; shown as raw JSON.")
            self.renderers[tag.name] = w
            self.objects_lay.insertWidget(self.objects_lay.count() - 1, w)
        for c in config.controls:
            card = make_control_card(self, c)
            self.cards[c.name] = card
            self.controls_lay.insertWidget(self.controls_lay.count() - 1, card)

    def rebuild_on_next_show(self) -> None:
        """Build the cards again on the next :meth:`show_task` (after a theme change: rich text is coloured
        when it is built)."""
        self._built_xml = None

    def _rebuild_chips(self) -> None:
        """Bring the layer chips in line with ``state.layers``, reusing the chip widgets already there.

        Re-creating chips on every key press cost a widget construction, a style sheet parse and a
        relayout per chip; reusing them only touches what changed (the hot path of review)."""
        layers = self.state.layers
        while len(self.chips) > len(layers):
            chip = self.chips.pop()
            self.chips_box.removeWidget(chip)
            chip.hide()
            chip.deleteLater()
        for chip, lv in zip(self.chips, layers, strict=False):
            chip.key = lv.key
            chip.setObjectName(f"layer:{lv.key}")
            chip.update_from(lv)
        for lv in layers[len(self.chips):]:
            chip = LayerChip(self, lv)
            self.chips.append(chip)
            self.chips_box.addWidget(chip)  # after the leading stretch: chips stay right-aligned
            chip.show()  # not left to Qt's queued show: the row's width below must count this chip
        # The row is as wide as its chips. Without a minimum, the scroll area handed the row the viewport's
        # width before the new chips were counted, and every chip was squeezed into "P…" until a relayout.
        spacing = self.chips_box.spacing()
        need = sum(c.sizeHint().width() for c in self.chips) + spacing * max(0, len(self.chips) - 1)
        host = self.chips_area.widget()
        if host is not None and host.minimumWidth() != need:
            host.setMinimumWidth(need)
        focused = next((c for c, lv in zip(self.chips, layers, strict=False) if lv.focus), None)
        if focused is not None:
            self.chips_area.ensureWidgetVisible(focused, 12, 0)

    def _compare(self) -> None:
        if self.config is None:
            return
        vis = [lv.layer for lv in self.state.layers if lv.visible]
        focus = next((lv.key for lv in self.state.layers if lv.focus), None)
        self.state.comparison = compare(self.config, vis, focus) if len(vis) > 1 else None

    def _media_ready(self, key: Any, _value: Any) -> None:
        if key in self._waiting:
            self._waiting.discard(key)
            if not self._waiting:
                self.mediaReady.emit()

    def media_pending(self) -> bool:
        return bool(self._waiting)

    # -- fix mode ---------------------------------------------------------------------------------------
    def _leave_fix(self) -> None:
        self.state.doc = None
        self._filter_keys(False)
        self.state.selected = None
        self.state.pending = {}
        self.active_control = None
        self.banner.hide()
        self.refresh()

    def _save(self) -> None:
        result = self.current_fix_result()
        self._leave_fix()
        self.fixSaved.emit(result)

    def _update_banner(self, note: str = "") -> None:
        if self.state.doc is None:
            self.banner.hide()
            return
        who = html.escape(self._fix_layer or "a new result")
        active = f" · active: <b>{html.escape(self.active_control)}</b>" if self.active_control else ""
        n = len(self.state.doc.changed)
        self.banner.setText(
            f"<b>FIX</b> — editing {who}{active} · {n} change{'s' if n != 1 else ''}<br>"
            "<span style='color:#7a5a00'>hotkeys: choose/label · select text then a label key · drag boxes or "
            "handles, arrows nudge (Shift ×10, Ctrl resize), Del removes · Tab: next control · "
            f"<b>{html.escape(self._key_words(self.save_keys))}</b> saves · "
            f"<b>{html.escape(self._key_words(self.cancel_keys))}</b> cancels</span>" + (f"<br><b>{html.escape(note)}</b>" if note else ""))
        self.banner.show()

    @staticmethod
    def _key_words(seqs: tuple[str, ...]) -> str:
        return " / ".join(QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) for k in seqs[:2])

    def _typing(self, receiver: QObject | None = None) -> bool:
        w: QObject | None = receiver if isinstance(receiver, QLineEdit | QAbstractSpinBox | QPlainTextEdit) else \
            (QApplication.focusWidget() or self.focusWidget())
        if w is not None and isinstance(w.parent(), QPlainTextEdit | QAbstractSpinBox):
            w = w.parent()  # the viewport / inner line edit
        if isinstance(w, QLineEdit | QAbstractSpinBox):
            return not w.isReadOnly() if isinstance(w, QLineEdit) else True
        return isinstance(w, QPlainTextEdit) and not w.isReadOnly()

    def _inside(self, obj: QObject) -> bool:
        return isinstance(obj, QWidget) and (obj is self or self.isAncestorOf(obj))

    def set_fix_keys(self, save: tuple[str, ...], cancel: tuple[str, ...]) -> None:
        """The keymap's ``[fix]`` bindings: which keys save and which cancel a fix."""
        self.save_keys = tuple(save) or ("Return", "Ctrl+Return")
        self.cancel_keys = tuple(cancel) or ("Escape",)
        if self.state.doc is not None:
            self._update_banner()

    def _is_plain_return_save(self) -> bool:
        return any(QKeySequence(k) == QKeySequence("Return") for k in self.save_keys)

    @staticmethod
    def _is(e: QKeyEvent, seqs: tuple[str, ...]) -> bool:
        key = e.key()
        if key == Qt.Key.Key_Enter:  # the keypad's Enter is Return
            key = Qt.Key.Key_Return
        mods = e.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        pressed = QKeySequence(QKeyCombination(mods, Qt.Key(key)))
        return any(QKeySequence(k).matches(pressed) == QKeySequence.SequenceMatch.ExactMatch for k in seqs)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if self.state.doc is None or event.type() not in (QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride):
            return False
        if not self._inside(obj):
            return False
        assert isinstance(event, QKeyEvent)
        if event.type() == QEvent.Type.ShortcutOverride:
            mods = event.modifiers() & ~(Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.KeypadModifier)
            if self._is(event, self.save_keys) or self._is(event, self.cancel_keys) or not mods:
                event.accept()
                return True
            return False
        try:
            return self._fix_key(event, obj)
        except (ValueError, KeyError) as exc:
            self._update_banner(str(exc))
            return True

    def _fix_key(self, e: QKeyEvent, receiver: QObject | None = None) -> bool:
        assert self.state.doc is not None and self.config is not None
        key, mods = e.key(), e.modifiers()
        shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        if self._is(e, self.cancel_keys):
            self._leave_fix()
            self.fixCancelled.emit()
            return True
        if self._is(e, self.save_keys) or (shift and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                                           and self._is_plain_return_save()):
            if self._typing(receiver) and shift:
                return False  # Shift+Enter: a new line in a text area
            self._save()
            return True
        if self._typing(receiver):
            return False
        if key in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab):
            self._cycle(-1 if key == Qt.Key.Key_Backtab or shift else 1)
            return True
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            for r in self.renderers.values():
                if hasattr(r, "delete_selected") and r.delete_selected():
                    return True
            return True
        card = self.cards.get(self.active_control or "")
        if key in ARROWS:
            if card is not None and key in (Qt.Key.Key_Left, Qt.Key.Key_Right) and \
                    card.key("left" if key == Qt.Key.Key_Left else "right"):
                return True
            focus = receiver
            in_text = any(isinstance(r, TextRenderer) and r.edit is focus for r in self.renderers.values())
            dx, dy = ARROWS[Qt.Key(key)]
            for r in self.renderers.values():
                if hasattr(r, "nudge") and r.nudge(dx, dy, shift, ctrl):
                    return True
            return not in_text
        text = e.text()
        if card is not None and text and card.key(text):
            return True
        for control in self.config.controls:
            for o in _walk(control.options):
                if o.hotkey and hotkey_matches(o.hotkey, e):
                    return self._hotkey(control, o.alias or o.value)
        if text.isdigit():
            rating = next((c for c in self.cards.values() if getattr(c, "control", None) is not None
                           and c.control.tag == "Rating"), None)
            if rating is not None and rating.key(text):
                return True
        return bool(text) and text.isprintable() and not ctrl

    def _hotkey(self, control: ConfigTag, value: str) -> bool:
        doc = self.state.doc
        assert doc is not None
        if control.tag in ("Choices", "Taxonomy"):
            doc.toggle_choice(control.name, value)
            self.changed()
            return True
        for target in control.to_name:
            r = self.renderers.get(target)
            if r is not None and hasattr(r, "apply_label") and r.apply_label(control, value):
                return True
        self.state.pending[control.name] = value
        self._update_banner(f"{value}: select text in {', '.join(control.to_name)} first, then press the key again")
        return True

    def _cycle(self, step: int) -> None:
        names = [n for n, c in self.cards.items() if isinstance(c, ControlCard)]
        if not names:
            return
        i = names.index(self.active_control) if self.active_control in names else (-1 if step > 0 else 0)
        self.active_control = names[(i + step) % len(names)]
        card = self.cards[self.active_control]
        fw = card.focus_widget()
        if fw is not None:
            fw.setFocus(Qt.FocusReason.TabFocusReason)
            if isinstance(fw, QPlainTextEdit):
                fw.moveCursor(QTextCursor.MoveOperation.End)
        self._update_banner()
        self.refresh()
