"""``Audio``: a pyqtgraph waveform with ``Labels`` segments as regions, playback via QtMultimedia.

QtMultimedia is imported only when the reviewer presses Play; when it cannot load (e.g. no
``libpulse0``) or the player reports an error, the waveform stays and a note says why there is no
sound. Fix mode: drag a region or its edges; a label hotkey relabels the selected segment or adds
one at the playhead/view centre; arrows move the selection by 0.1 s (Shift: 1 s; Ctrl: end only).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from app.models.config import ConfigTag
from app.services.media import ResolvedMedia
from app.services.results import Span, parse_item
from app.views.renderers.common import (
    DISAGREE,
    WHEEL_SCROLLS_PAGE,
    Card,
    RenderState,
    label_colour,
    labels_of,
    message_label,
    with_alpha,
)
from app.views.renderers.media_cache import Decoded, DecodedAudio
from app.views.theme import tone

if TYPE_CHECKING:
    from app.views.renderers import TaskView

LANE = 0.09  # height (fraction) of a non-focused evaluator's lane under the waveform

_multimedia_error: str | None = None


def load_multimedia() -> Any:
    """The QtMultimedia module, or ``None`` (with the reason in ``_multimedia_error``)."""
    global _multimedia_error
    try:
        from PySide6 import QtMultimedia
    except Exception as exc:  # noqa: BLE001 - ImportError, OSError from a missing libpulse...
        _multimedia_error = f"{type(exc).__name__}: {exc}"
        return None
    return QtMultimedia


class AudioRenderer(Card):
    def __init__(self, host: TaskView, obj: ConfigTag, controls: list[ConfigTag], *,
                 time_series: bool = False) -> None:
        super().__init__(obj.name, "audio")
        self.host = host
        self.obj = obj
        self.controls = {c.name: c for c in controls}
        self.notice = message_label("", "error")
        self.notice.hide()
        self.lay.addWidget(self.notice)
        pg.setConfigOptions(antialias=True)
        self.plot = pg.PlotWidget(background=tone().card)
        self.plot.setObjectName(f"audio:{obj.name}")
        self.plot.setMinimumHeight(170)
        self.plot.setMaximumHeight(220)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.viewport().installEventFilter(WHEEL_SCROLLS_PAGE)  # wheel scrolls the pane; Ctrl+wheel zooms
        self.plot.hideAxis("left")
        self.plot.getPlotItem().setMenuEnabled(False)
        self.plot.getPlotItem().hideButtons()
        self.plot.setLabel("bottom", "seconds")
        self.plot.setYRange(-1.05, 1.05, padding=0)
        self.lay.addWidget(self.plot)
        row = QHBoxLayout()
        self.play_button = QPushButton("▶ Play")
        self.play_button.setObjectName("play")
        self.play_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.play_button.clicked.connect(self.toggle_play)
        row.addWidget(self.play_button)
        self.info = QLabel()
        self.info.setStyleSheet(f"color: {tone().muted};")
        row.addWidget(self.info, 1)
        self.lay.addLayout(row)
        self.playback_note = message_label("", "warn")
        self.playback_note.hide()
        self.lay.addWidget(self.playback_note)
        self.curves: list[Any] = []
        self.regions: dict[str, pg.LinearRegionItem] = {}
        self.region_items: list[Any] = []
        self.duration = 0.0
        self.media: ResolvedMedia | None = None
        self.player: Any = None
        self.audio_out: Any = None
        self.playhead = pg.InfiniteLine(0, angle=90, pen=pg.mkPen(tone().ink, width=1))
        self.playhead.hide()
        self.plot.addItem(self.playhead)
        self._token = 0

    # -- media
    def set_task(self, value: Any, media: ResolvedMedia | None, items_hint: list[dict[str, Any]]) -> None:
        self._token += 1
        token = self._token
        self.stop()
        for c in self.curves:
            self.plot.removeItem(c)
        self.curves = []
        self.media = media
        self.notice.hide()
        shapes = [parse_item(i).shape for i in items_hint]
        self.duration = max([float(sh.end) for sh in shapes if isinstance(sh, Span)] + [1.0])
        self.plot.setXRange(0, self.duration, padding=0.01)
        self.play_button.setEnabled(bool(media and media.ok))
        if media is None or not media.ok:
            self._fail(media.error if media else f"no audio in the task for {self.obj.name}")
            return
        hit = self.host.media.request(media, lambda d: self._decoded(token, d))
        if hit is not None:
            self._decoded(token, hit)
        else:
            self.info.setText("Reading waveform…")

    def _fail(self, msg: str | None) -> None:
        self.notice.setText(f"Audio not shown: {msg}" if msg else "Audio not shown.")
        self.notice.show()
        self.info.setText("")

    def _decoded(self, token: int, d: Decoded) -> None:
        if token != self._token:
            return
        env = d.envelope if isinstance(d, DecodedAudio) else None  # the cache decodes by kind: audio here
        if env is None:
            self._fail(d.error)
            return
        self.duration = env.duration
        x = np.linspace(0, env.duration, env.mins.size, dtype=np.float32)
        lo = self.plot.plot(x, env.mins, pen=pg.mkPen("#64748b", width=1))
        hi = self.plot.plot(x, env.maxs, pen=pg.mkPen("#64748b", width=1))
        fill = pg.FillBetweenItem(lo, hi, brush=pg.mkBrush("#94a3b8"))
        self.plot.addItem(fill)
        fill.setZValue(-5)
        self.curves = [lo, hi, fill]
        self.plot.setXRange(0, env.duration, padding=0.01)
        self.plot.getViewBox().setLimits(xMin=0, xMax=env.duration)
        ch = f"{env.channels} channels" if env.channels > 1 else "mono"
        self.info.setText(f"{env.duration:.2f} s · {env.sample_rate} Hz {ch} · Ctrl+wheel to zoom")

    # -- overlays
    def refresh(self, state: RenderState) -> None:
        for r in self.region_items:
            self.plot.removeItem(r)
        self.region_items = []
        self.regions = {}
        shown = state.shown()
        others = [lv for lv, _, _ in shown if not lv.focus]
        n = 0
        for lv, items, editable in shown:
            unmatched = state.unmatched(lv.key)
            lane = others.index(lv) if lv in others else -1
            rows = []
            for it in items:
                if it.get("to_name") != self.obj.name or it.get("from_name") not in self.controls:
                    continue
                v = it.get("value") or {}
                try:
                    start, end = sorted((float(v["start"]), float(v.get("end", v["start"]))))
                except (KeyError, TypeError, ValueError):
                    continue
                labels = labels_of(it)
                colour = label_colour(self.controls[it["from_name"]], labels[0] if labels else None)
                rows.append((start, end, labels, colour, str(it.get("id")), str(it.get("id")) in unmatched))
            n += len(rows)
            if not rows:
                continue
            if not editable and self.fixed_y:
                self._bars(lv, lane, rows)
                continue
            for start, end, labels, colour, iid, bad in rows:
                self._region(lv, lane, start, end, labels, colour, iid, bad, editable, state.selected == iid,
                             label=len(rows) <= 25)
        self.set_title(self.obj.name, f"{self.obj.tag.lower()} · {n} segment{'s' if n != 1 else ''}")

    fixed_y = True  # the waveform spans -1..1, so read-only segments can be drawn as bars in data units

    def _bars(self, lv: Any, lane: int, rows: list[tuple[Any, ...]]) -> None:
        """Read-only segments of one layer as one BarGraphItem (far cheaper than a region item each)."""
        if lv.focus:
            y0, y1 = -1.05, 1.05
            brushes = [pg.mkBrush(with_alpha(c, 60)) for *_, c, _i, _b in rows]
            pens = [pg.mkPen(DISAGREE if bad else c.darker(120), width=1.5,
                             style=Qt.PenStyle.DashLine if bad else Qt.PenStyle.SolidLine)
                    for *_, c, _i, bad in rows]
        else:
            h = 2.1 * LANE
            y0, y1 = -1.05 + lane * h, -1.05 + (lane + 1) * h - 0.02
            brushes = [pg.mkBrush(with_alpha(lv.colour, 150))] * len(rows)
            pens = [pg.mkPen(DISAGREE if bad else lv.colour, width=1.5 if bad else 1) for *_, bad in rows]
        bars = pg.BarGraphItem(x0=[r[0] for r in rows], x1=[r[1] for r in rows], y0=y0, y1=y1,
                               brushes=brushes, pens=pens)
        bars.setZValue(10 if lv.focus else 5)
        bars.setToolTip(f"{lv.short}: {len(rows)} segment{'s' if len(rows) != 1 else ''}")
        self.plot.addItem(bars)
        self.region_items.append(bars)
        if lv.focus and len(rows) <= 25:
            for start, _end, labels, colour, _iid, _bad in rows:
                txt = pg.TextItem(", ".join(labels), color=QColor("white"), fill=pg.mkBrush(colour), anchor=(0, 0))
                txt.setPos(start, 1.05)
                txt.setZValue(11)
                self.plot.addItem(txt)
                self.region_items.append(txt)

    def _region(self, lv: Any, lane: int, start: float, end: float, labels: list[str], colour: QColor, iid: str,
                bad: bool, editable: bool, selected: bool, *, label: bool) -> None:
        if lv.focus:
            span = (0.0, 1.0)
            brush = with_alpha(colour, 110 if selected else 60)
            pen = pg.mkPen(DISAGREE if bad else colour.darker(120), width=3 if selected else 1.5,
                           style=Qt.PenStyle.DashLine if bad else Qt.PenStyle.SolidLine)
        else:
            span = (lane * LANE, (lane + 1) * LANE - 0.01)
            brush = with_alpha(lv.colour, 150)
            pen = pg.mkPen(DISAGREE if bad else lv.colour, width=1)
        reg = pg.LinearRegionItem(values=(start, end), orientation="vertical", brush=brush, pen=pen,
                                  movable=editable, span=span, swapMode="sort")
        reg.setToolTip(f"{', '.join(labels)} {start:.2f}–{end:.2f} s — {lv.short}"
                       + (" (no match in another result)" if bad else ""))
        reg.setZValue(10 if lv.focus else 5)
        if lv.focus and label:
            txt = pg.TextItem(", ".join(labels), color=QColor("white"), fill=pg.mkBrush(colour), anchor=(0, 0))
            txt.setParentItem(reg)
            txt.setPos(start, 1.0)
        if editable:
            reg.sigRegionChangeFinished.connect(lambda r, iid=iid: self._moved(iid, r))
            reg.sigRegionChanged.connect(lambda _r, iid=iid: self.host.select_item(iid, refresh=False))
            self.regions[iid] = reg
        self.plot.addItem(reg)
        self.region_items.append(reg)

    def _moved(self, iid: str, reg: Any) -> None:
        doc = self.host.state.doc
        if doc is None or doc.item(iid) is None:
            return
        a, b = reg.getRegion()
        a, b = max(0.0, float(a)), float(b)
        if self.duration:
            b = min(b, self.duration)
        doc.update(iid, start=a, end=b)
        self.host.changed(select=iid, redraw=False)

    def owns(self, item_id: str | None) -> bool:
        return item_id is not None and item_id in self.regions

    def apply_label(self, control: ConfigTag, label: str) -> bool:
        doc = self.host.state.doc
        if control.name not in self.controls or doc is None:
            return False
        sel = self.host.state.selected
        if self.owns(sel):
            assert sel is not None
            doc.set_labels(sel, [label])
            self.host.changed(select=sel)
            return True
        x0, x1 = self.plot.getViewBox().viewRange()[0]
        centre = float(self.playhead.value()) if self.playhead.isVisible() else (x0 + x1) / 2
        width = max(0.05, min(1.0, (x1 - x0) * 0.1))
        start = max(0.0, centre - width / 2)
        end = min(self.duration or centre + width, start + width)
        iid = doc.add_segment(control.name, start, end, label, to_name=self.obj.name)
        self.host.changed(select=iid)
        return True

    def nudge(self, dx: int, dy: int, big: bool, resize: bool) -> bool:
        sel = self.host.state.selected
        doc = self.host.state.doc
        if not self.owns(sel) or doc is None or not dx:
            return False
        assert sel is not None
        item = doc.item(sel)
        if item is None:
            return False
        v = item["value"]
        step = (1.0 if big else 0.1) * dx
        start, end = float(v["start"]), float(v["end"])
        if resize:
            end = max(start + 0.01, end + step)
        else:
            start, end = start + step, end + step
            if start < 0:
                start, end = 0.0, end - start
        doc.update(sel, start=start, end=end)
        self.host.changed(select=sel)
        return True

    def delete_selected(self) -> bool:
        sel = self.host.state.selected
        if not self.owns(sel) or self.host.state.doc is None:
            return False
        assert sel is not None
        self.host.state.doc.remove(sel)
        self.host.changed(select=None)
        return True

    # -- playback
    def toggle_play(self) -> None:
        if self.player is not None and self._playing():
            self.player.pause()
            self.play_button.setText("▶ Play")
            return
        if self.media is None or not self.media.ok:
            return
        if self.player is None:
            mm = load_multimedia()
            if mm is None:
                self._no_playback(f"QtMultimedia could not be loaded ({_multimedia_error}); on Linux install "
                                  "libpulse0. The waveform and segments still work.")
                return
            try:
                self.player = mm.QMediaPlayer(self)
                self.audio_out = mm.QAudioOutput(self)
                self.player.setAudioOutput(self.audio_out)
                self.player.errorOccurred.connect(lambda _e, msg="": self._no_playback(
                    f"Playback failed: {self.player.errorString() or 'no audio device'}. The waveform still works."))
                self.player.positionChanged.connect(self._position)
            except Exception as exc:  # noqa: BLE001 - no audio backend: stay silent, keep the waveform
                self.player = None
                self._no_playback(f"Playback unavailable ({exc}). The waveform and segments still work.")
                return
        assert self.media.path is not None
        self.player.setSource(QUrl.fromLocalFile(self.media.path))
        self.player.play()
        self.playhead.show()
        self.play_button.setText("⏸ Pause")

    def _playing(self) -> bool:
        try:
            return bool(self.player.playbackState() == self.player.PlaybackState.PlayingState)
        except Exception:  # noqa: BLE001
            return False

    def _position(self, ms: int) -> None:
        self.playhead.setValue(ms / 1000.0)

    def _no_playback(self, msg: str) -> None:
        self.playback_note.setText(msg)
        self.playback_note.show()
        self.play_button.setEnabled(False)
        self.play_button.setText("▶ Play")

    def stop(self) -> None:
        if self.player is not None:
            with contextlib.suppress(Exception):
                self.player.stop()
        self.playhead.hide()
        self.play_button.setText("▶ Play")

    def focus_widget(self) -> QWidget:
        return self.plot
