"""Agreement heatmap (pyqtgraph ImageItem + ColorBarItem, after pyqtgraph's matrix display example).

Evaluators are rows; ``Ground truth`` then the evaluators are columns; an ``Avg.`` row closes the
table. Cells are coloured on fixed levels (0–100 %) with their percentage printed; cells with too
little overlap are greyed; hovering shows the pair, the score and the shared tasks; clicking emits
``cellClicked(row, column)``. A Cohen's kappa matrix (``mode == "kappa"``) uses a diverging scale centred at
0 over −1..1, prints κ with two decimals, and names why an undefined cell is ``n/a`` on hover.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QStaticText, QTransform
from PySide6.QtWidgets import QToolTip

from app.metrics import AVG, CONSENSUS_DS, GROUND_TRUTH, AgreementMatrix
from app.services.describe import evaluator_name
from app.views.theme import tone

# A calm red -> amber -> green map, readable in print and for the most common colour-vision deficiencies.
_CMAP = pg.ColorMap(pos=np.array([0.0, 0.5, 0.7, 0.85, 1.0]),
                    color=np.array([[165, 0, 38], [244, 109, 67], [254, 224, 139], [166, 217, 106],
                                    [26, 152, 80]], dtype=np.ubyte))
# Diverging red -> near-white -> blue for kappa (ColorBrewer RdBu): 0 = chance is neutral, below chance is red.
_KAPPA_CMAP = pg.ColorMap(pos=np.array([0.0, 0.25, 0.5, 0.75, 1.0]),
                          color=np.array([[178, 24, 43], [239, 138, 98], [247, 247, 247], [103, 169, 207],
                                          [33, 102, 172]], dtype=np.ubyte))
GREY = QColor(215, 218, 223)
MAX_TEXT_CELLS = 24  # beyond this many evaluators, percentages move to the hover text only


def short_name(name: str) -> str:
    if name.startswith("model:"):
        return name[6:] + " ⚙"
    return evaluator_name(name)  # the review's format: ``tom.becker@x`` -> ``Tom Becker``


def _column_name(name: str) -> str:
    """A column header that fits a cell (the hover text names the column in full)."""
    return "Consensus (D-S)" if name == CONSENSUS_DS else short_name(name)


class _CellImage(pg.ImageItem):
    def __init__(self, owner: HeatmapWidget) -> None:
        super().__init__(axisOrder="row-major")
        self.owner = owner
        self.setAcceptHoverEvents(True)

    def hoverEvent(self, ev: Any) -> None:  # noqa: N802 - pyqtgraph API
        if ev.isExit():
            QToolTip.hideText()
            return
        pos = ev.pos()
        text = self.owner.describe_cell(int(pos.y()), int(pos.x()))
        if text:
            screen = ev.screenPos().toPoint() if hasattr(ev.screenPos(), "toPoint") else ev.screenPos()
            QToolTip.showText(screen, text)
            self.owner.last_hover = text

    def mouseClickEvent(self, ev: Any) -> None:  # noqa: N802 - pyqtgraph API
        if ev.button() == Qt.MouseButton.LeftButton:
            pos = ev.pos()
            self.owner.click_cell(int(pos.y()), int(pos.x()))
            ev.accept()


class _CellLabels(pg.GraphicsObject):
    """Every cell's label, painted by one item at a fixed pixel size (centred on the cell, not scaled).

    Each label is a :class:`QStaticText`: laid out once per matrix, not on every paint (a 20-evaluator
    matrix is ~460 labels; ``drawText`` laid each out again on each of the several paints of a tab's first
    show, ~8 ms a paint, issue 14.2)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[float, float, str, bool, bool]] = []
        self._static: list[tuple[float, float, QStaticText, bool, bool]] = []
        self.font = QFont()
        self.bold = QFont()
        self.size = (0, 0)
        self.setZValue(10)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # clicks and hovers go to the cells

    def set_cells(self, cells: list[tuple[float, float, str, bool, bool]], font: QFont, bold: QFont,
                  size: tuple[int, int]) -> None:
        self.prepareGeometryChange()
        self.cells, self.font, self.bold, self.size = cells, font, bold, size
        self._static = []
        texts: dict[tuple[str, bool], QStaticText] = {}  # one per distinct label ("—", "n/a", repeated values)
        for x, y, label, dark, avg in cells:
            st = texts.get((label, avg))
            if st is None:
                st = texts[(label, avg)] = QStaticText(label)
                st.setPerformanceHint(QStaticText.PerformanceHint.AggressiveCaching)
                st.prepare(QTransform(), bold if avg else font)  # paint() draws untransformed, in this font
            self._static.append((x, y, st, dark, avg))
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return QRectF(0, 0, self.size[0], self.size[1])

    def paint(self, painter: Any, *_: Any) -> None:
        if not self._static:
            return
        tr = painter.transform()
        painter.save()
        painter.resetTransform()
        light, ink = QColor("#ffffff"), QColor("#1b1f24")
        current: tuple[bool, bool] | None = None
        for x, y, st, dark, avg in self._static:
            if (dark, avg) != current:
                current = (dark, avg)
                painter.setFont(self.bold if avg else self.font)
                painter.setPen(light if dark else ink)
            p = tr.map(QPointF(x, y))
            size = st.size()
            if size.width() <= 0:  # not laid out yet with this font: the first paint prepares it
                st.prepare(painter.transform(), painter.font())
                size = st.size()
            painter.drawStaticText(QPointF(p.x() - size.width() / 2, p.y() - size.height() / 2), st)
        painter.restore()


class HeatmapWidget(pg.GraphicsLayoutWidget):
    cellClicked = Signal(str, str)  # row evaluator, column (evaluator or "Ground truth")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setObjectName("heatmap")
        self.setBackground(tone().card)
        self.plot = self.addPlot()
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.invertY(True)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.vb.sigResized.connect(lambda *_: self._top_ticks())
        self.plot.showAxes(True, showValues=(True, True, False, False), size=False)
        for side in ("left", "top"):
            ax = self.plot.getAxis(side)
            ax.setStyle(tickLength=0)
        self.restyle()
        self.image = _CellImage(self)
        self.plot.addItem(self.image)
        self.labels = _CellLabels()
        self.plot.addItem(self.labels)
        self.bar = pg.ColorBarItem(values=(0, 100), colorMap=_CMAP, interactive=False, width=14,
                                   label="agreement %")
        self.addItem(self.bar)
        self.matrix: AgreementMatrix | None = None
        self.reasons: tuple[tuple[str | None, ...], ...] = ()
        self.scale = "percent"  # or "kappa"
        self.min_overlap = 1
        self._items: list[Any] = []
        self.last_hover = ""
        self.text_color_cells: dict[tuple[int, int], str] = {}

    def restyle(self) -> None:
        """Background and axes in the theme in use (the cells keep their colour scale)."""
        t = tone()
        self.setBackground(t.card)
        for side in ("left", "top"):
            ax = self.plot.getAxis(side)
            ax.setPen(pg.mkPen(t.muted))
            ax.setTextPen(pg.mkPen(t.ink))

    # -- data ----------------------------------------------------------------------------------------
    def set_matrix(self, m: AgreementMatrix, *, min_overlap: int = 1,
                   reasons: tuple[tuple[str | None, ...], ...] = ()) -> None:
        """Show ``m``; a kappa matrix (``m.mode == "kappa"``) on the diverging −1..1 scale, with ``reasons``
        (same shape) naming why a cell is undefined."""
        self.matrix = m
        self.min_overlap = min_overlap
        self.reasons = reasons
        kappa = m.mode == "kappa"
        if ("kappa" if kappa else "percent") != self.scale:
            self.scale = "kappa" if kappa else "percent"
            self.bar.setColorMap(_KAPPA_CMAP if kappa else _CMAP)
            self.bar.setLevels((-1, 1) if kappa else (0, 100))
            self.bar.axis.setRange(*((-1, 1) if kappa else (0, 100)))
            self.bar.getAxis("left").setLabel("Cohen's κ (0 = chance)" if kappa else "agreement %")
        for it in self._items:
            self.plot.removeItem(it)
        self._items = []
        pct = m.matrix * 100.0
        rows, cols = m.rows, m.columns
        n_ev = len(m.evaluators)
        row_names = np.array(rows, dtype=object)[:, None]
        col_names = np.array(cols, dtype=object)[None, :]
        diag = (row_names == col_names) & (np.arange(len(rows))[:, None] < n_ev)
        low = (m.counts < min_overlap) & (np.arange(len(rows))[:, None] < n_ev)
        grey_mask = diag | np.isnan(pct) | low
        # colours computed here (fixed 0-100 % levels; kappa: -1..1 centred at 0), grey cells painted in the image
        if kappa:
            pos = np.clip((np.nan_to_num(m.matrix) + 1.0) / 2.0, 0, 1)
            rgba = _KAPPA_CMAP.map(pos.ravel(), mode="byte").reshape(*pct.shape, 4)
        else:
            rgba = _CMAP.map(np.clip(np.nan_to_num(pct) / 100.0, 0, 1).ravel(), mode="byte").reshape(*pct.shape, 4)
        rgba[grey_mask] = (GREY.red(), GREY.green(), GREY.blue(), 255)
        self.image.setImage(rgba.astype(np.ubyte), autoLevels=False)
        self.image.setRect(QRectF(0, 0, pct.shape[1], pct.shape[0]))
        many = len(m.evaluators) > MAX_TEXT_CELLS
        font = QFont()
        font.setPointSize(9 if not many else 7)
        bold = QFont(font)
        bold.setBold(True)
        self.text_color_cells = {}
        cells: list[tuple[float, float, str, bool, bool]] = []
        for r in range(pct.shape[0]):
            if many:
                break
            for c in range(pct.shape[1]):
                v = pct[r, c]
                diagonal = bool(diag[r, c])
                grey = bool(grey_mask[r, c])
                if kappa:
                    k = m.matrix[r, c]
                    label = "—" if diagonal else ("n/a" if np.isnan(k) else f"{k:.2f}")
                    dark = not grey and abs(k) > 0.6
                else:
                    label = "—" if diagonal else ("n/a" if np.isnan(v) else f"{v:.1f}%")
                    dark = not grey and (v < 30 or v > 88)
                cells.append((c + 0.5, r + 0.5, label, dark, rows[r] == AVG))
                self.text_color_cells[(r, c)] = label
        # one item paints every cell's label (one pg.TextItem per cell cost ~0.3 ms each on the UI thread:
        # 150-400 ms for a 20-evaluator matrix, issue 14)
        self.labels.set_cells(cells, font, bold, (pct.shape[1], pct.shape[0]))
        # the Avg. row is set apart by a line
        sep = pg.InfiniteLine(pos=len(m.evaluators), angle=0, pen=pg.mkPen(tone().ink, width=2))
        self.plot.addItem(sep)
        self._items.append(sep)
        self._top_ticks()
        step = max(1, len(cols) // 30)
        left = self.plot.getAxis("left")
        labels = [(r + 0.5, short_name(n)) for r, n in enumerate(rows) if r % step == 0 or n == AVG]
        left.setTicks([labels])
        from PySide6.QtGui import QFontMetrics

        fm = QFontMetrics(left.style.get("tickFont") or QFont())
        left.setWidth(12 + max(fm.horizontalAdvance(t) for _, t in labels))
        self.plot.setXRange(0, len(cols), padding=0)
        self.plot.setYRange(0, len(rows), padding=0)

    def _top_ticks(self) -> None:
        """Column headers elided to their column's width: pyqtgraph drops a label that overlaps its neighbour,
        which left the Ground truth column unnamed in a 1024-px window. The hover text names each in full."""
        m = getattr(self, "matrix", None)  # also called while the widget is built
        if m is None:
            return
        from PySide6.QtGui import QFontMetrics

        cols = m.columns
        step = max(1, len(cols) // 30)
        top = self.plot.getAxis("top")
        fm = QFontMetrics(top.style.get("tickFont") or QFont())
        width = self.plot.vb.width() or self.width() * 0.8
        room = max(24, int(width * step / max(1, len(cols))) - 8)
        ticks = [(c + 0.5, fm.elidedText(_column_name(n), Qt.TextElideMode.ElideRight, room))
                 for c, n in enumerate(cols) if c % step == 0]
        if ticks != getattr(self, "_shown_ticks", None):
            self._shown_ticks = ticks
            top.setTicks([ticks])

    # -- interaction -------------------------------------------------------------------------------
    def describe_cell(self, r: int, c: int) -> str:
        m = self.matrix
        if m is None or not (0 <= r < len(m.rows) and 0 <= c < len(m.columns)):
            return ""
        v = m.matrix[r, c]
        n = int(m.counts[r, c])
        row, col = m.rows[r], m.columns[c]
        if row == col:
            return f"{row} (diagonal)"
        what = "tasks" if row != AVG else "pairs summed"
        if m.mode == "kappa":
            why = self.reasons[r][c] if r < len(self.reasons) and c < len(self.reasons[r]) else None
            score = f"κ = {v:.3f}" if not np.isnan(v) else f"κ n/a — {why or 'undefined'}"
            hint = "\nClick to review the tasks where they disagree." if row != AVG and n else ""
            return f"{row} vs {col}: {score} over {n} shared {what}{hint}"
        score = "no shared tasks" if np.isnan(v) else f"{v * 100:.1f}%"
        hint_gt = ""
        if col == GROUND_TRUTH and m.control is None and row != AVG:
            hint_gt = ("\nAll dimensions: the mean of the per-dimension Ground truth cells (the Annotators "
                       "table's accuracy pools every (task, dimension) instead; equal on one dimension).")
        low = " — too little overlap to trust" if row != AVG and n < self.min_overlap and not np.isnan(v) else ""
        hint = "\nClick to review the tasks where they disagree." if row != AVG and not np.isnan(v) else ""
        return f"{row} vs {col}: {score} over {n} shared {what}{low}{hint_gt}{hint}"

    def click_cell(self, r: int, c: int) -> None:
        m = self.matrix
        if m is None or not (0 <= r < len(m.evaluators) and 0 <= c < len(m.columns)):
            return
        if m.rows[r] == m.columns[c] or (np.isnan(m.matrix[r, c]) and (m.mode != "kappa" or not m.counts[r, c])):
            return
        self.cellClicked.emit(m.rows[r], m.columns[c])

    def cell_center(self, r: int, c: int) -> QPointF:
        """Scene position of a cell's centre (for tests and keyboard access)."""
        return self.plot.vb.mapViewToScene(QPointF(c + 0.5, r + 0.5))


def save_png(m: AgreementMatrix, path: str, *, title: str | None = None, min_overlap: int = 1) -> None:
    """Render a matrix to a PNG file (used by ``reviewdesk metrics --png``; works without a display)."""
    import os

    from PySide6.QtWidgets import QApplication, QLabel, QVBoxLayout, QWidget

    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QApplication.instance() or QApplication([])
    box = QWidget()
    box.setStyleSheet("background: white")
    lay = QVBoxLayout(box)
    if title:
        lab = QLabel(f"<b>{title}</b>")
        lab.setStyleSheet("font-size: 13pt; color: #1b1f24")
        lay.addWidget(lab)
    hm = HeatmapWidget()
    hm.set_matrix(m, min_overlap=min_overlap)
    lay.addWidget(hm)
    n = len(m.columns)
    box.resize(max(700, 170 + 118 * n), max(420, 90 + 62 * len(m.rows)))
    box.show()
    for _ in range(3):
        app.processEvents()
    ok = box.grab().save(path)
    box.close()
    if not ok:
        raise OSError(f"could not write {path}")
