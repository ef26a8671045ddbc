"""``Image`` with zoom/pan and ``RectangleLabels`` (rotated), ``PolygonLabels`` and ``KeyPointLabels`` overlays.

The scene is in pixels of the *original* image, whatever size it was decoded at, so overlays map
straight from Label Studio percentages. Fix mode: click a region to select it, drag it or its
handles, arrows nudge (Shift: x10, Ctrl: resize), a label hotkey relabels the selection or adds a
new region in the middle of the view, a left drag on empty image draws a box, Delete removes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QImageReader,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QPolygonF,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QLabel,
    QWidget,
)

from app.models.config import ConfigTag
from app.services.media import ResolvedMedia
from app.services.results import (
    BOX_TYPES,
    POINT_TYPES,
    POLY_TYPES,
    pct_to_px,
    points_from_px,
    points_to_px,
    rect_from_px,
    rect_to_px,
)
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
from app.views.renderers.media_cache import Decoded, DecodedImage
from app.views.theme import tone

if TYPE_CHECKING:
    from app.views.renderers import TaskView

HANDLE_PX = 8


class RegionItem(QGraphicsItem):
    """Base of drawn regions: pen/brush, label tag, selection handles, commit on release.

    ``boundingRect`` must only change after ``prepareGeometryChange()``: the scene's BSP index
    files an item under the rect it had when indexed and ``removeItem`` looks it up under the
    current one. A rect that silently follows the zoom leaves the removed item in some index
    leaves; once Python frees it, the next paint dereferences it (segfault). So the handle margin
    (``HANDLE_PX`` view pixels in scene units) is stored in the item and changed by
    :meth:`set_margin`, which the view calls whenever its zoom changes.
    """

    def __init__(self, owner: ImageRenderer, item: dict[str, Any], colour: QColor, *, focus: bool,
                 editable: bool, unmatched: bool, who: str) -> None:
        super().__init__()
        self.owner = owner
        self.item_id = str(item.get("id"))
        self.editable = editable
        self.unmatched = unmatched
        self.colour = colour
        self.focus = focus
        self._drag_handle: int | None = None
        self._moved = False
        self.margin = owner.handle_margin()
        labels = ", ".join(labels_of(item)) or item.get("type", "")
        self.setAcceptHoverEvents(True)
        self.setToolTip(f"{labels} — {who}" + (" (no match in another result)" if unmatched else ""))
        if editable:
            self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, True)
            self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, True)
            self.setCursor(Qt.CursorShape.SizeAllCursor)
        self.tag = QGraphicsSimpleTextItem(labels, self)
        self.tag.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        f = QFont()
        f.setPointSizeF(8.5)
        f.setBold(focus)
        self.tag.setFont(f)
        self.tag.setBrush(QBrush(QColor("white")))
        self.tag_bg = QGraphicsRectItem(self.tag)
        self.tag_bg.setFlag(QGraphicsItem.GraphicsItemFlag.ItemStacksBehindParent, True)
        self.tag_bg.setBrush(QBrush(colour if not unmatched else QColor(DISAGREE)))
        self.tag_bg.setPen(QPen(Qt.PenStyle.NoPen))
        self.tag_bg.setRect(self.tag.boundingRect().adjusted(-3, -1, 3, 1))
        self.tag.setVisible(focus)  # other evaluators' labels are in the tooltip: keeps overlays readable

    def pen(self) -> QPen:
        pen = QPen(self.colour, 2.5 if self.focus else 1.6)
        pen.setCosmetic(True)
        if not self.focus:
            pen.setStyle(Qt.PenStyle.DashLine)
        if self.isSelected():
            pen.setWidthF(3.0)
        return pen

    def brush(self) -> QBrush:
        if self.focus:
            return QBrush(with_alpha(self.colour, 90 if self.isSelected() else 45))
        return QBrush(Qt.BrushStyle.NoBrush)

    def scale_px(self) -> float:
        """``HANDLE_PX`` view pixels in scene units, as of the last :meth:`set_margin`."""
        return self.margin

    def set_margin(self, margin: float) -> None:
        if margin != self.margin:
            self.prepareGeometryChange()
            self.margin = margin

    def halo(self, painter: QPainter, path: QPainterPath) -> None:
        if self.unmatched:
            pen = QPen(QColor(DISAGREE), 5.0)
            pen.setCosmetic(True)
            pen.setStyle(Qt.PenStyle.DotLine)
            painter.strokePath(path, pen)

    def handles(self) -> list[QPointF]:
        return []

    def handle_at(self, p: QPointF) -> int | None:
        if not (self.editable and self.isSelected()):
            return None
        r = self.scale_px()
        for i, h in enumerate(self.handles()):
            if abs(h.x() - p.x()) <= r and abs(h.y() - p.y()) <= r:
                return i
        return None

    def paint_handles(self, painter: QPainter) -> None:
        if not (self.editable and self.isSelected()):
            return
        r = self.scale_px() / 2
        pen = QPen(QColor("#111827"), 1)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.setBrush(QBrush(QColor("white")))
        for h in self.handles():
            painter.drawRect(QRectF(h.x() - r, h.y() - r, 2 * r, 2 * r))

    def mousePressEvent(self, e: Any) -> None:  # noqa: N802
        if self.editable:
            self.owner.host.select_item(self.item_id, refresh=False)
            self.setSelected(True)
            self._drag_handle = self.handle_at(e.pos())
            self._moved = False
        super().mousePressEvent(e)

    def mouseMoveEvent(self, e: Any) -> None:  # noqa: N802
        if self._drag_handle is not None:
            self.prepareGeometryChange()
            self.drag_handle(self._drag_handle, e.pos())
            self._moved = True
            self.update()
            return
        self._moved = True
        super().mouseMoveEvent(e)

    def mouseReleaseEvent(self, e: Any) -> None:  # noqa: N802
        super().mouseReleaseEvent(e)
        self._drag_handle = None
        if self.editable and self._moved:
            self.commit()

    def drag_handle(self, i: int, p: QPointF) -> None:
        pass

    def commit(self) -> None:
        pass

    def nudge(self, dx: float, dy: float, resize: bool) -> None:
        if not resize:
            self.moveBy(dx, dy)
        self.commit()


class BoxItem(RegionItem):
    def __init__(self, owner: ImageRenderer, item: dict[str, Any], colour: QColor, **kw: Any) -> None:
        super().__init__(owner, item, colour, **kw)
        ow, oh = owner.image_size
        x, y, w, h, rot = rect_to_px(item.get("value") or {}, ow, oh)
        self.w, self.h = w, h
        self.setPos(x, y)
        self.setRotation(rot)
        self.tag.setPos(0, 0)
        self._place_tag()

    def _place_tag(self) -> None:
        self.tag.setPos(0, 0)
        self.tag.setTransform(self.tag.transform().fromTranslate(0, -self.tag.boundingRect().height() - 2))

    def boundingRect(self) -> QRectF:  # noqa: N802
        m = self.scale_px()
        return QRectF(0, 0, self.w, self.h).normalized().adjusted(-m, -m, m, m)

    def shape(self) -> QPainterPath:
        p = QPainterPath()
        p.addRect(QRectF(0, 0, self.w, self.h).normalized().adjusted(-2, -2, 2, 2))
        return p

    def paint(self, painter: QPainter, _opt: Any, _w: Any = None) -> None:
        path = QPainterPath()
        path.addRect(QRectF(0, 0, self.w, self.h))
        self.halo(painter, path)
        painter.setPen(self.pen())
        painter.setBrush(self.brush())
        painter.drawPath(path)
        self.paint_handles(painter)

    def handles(self) -> list[QPointF]:
        return [QPointF(0, 0), QPointF(self.w, 0), QPointF(self.w, self.h), QPointF(0, self.h)]

    def drag_handle(self, i: int, p: QPointF) -> None:
        # local coordinates: the top-left is the rotation origin, so moving it shifts the item
        if i in (0, 3):
            dx = p.x()
            self.moveBy(*self._rotated(dx, 0))
            self.w -= dx
        else:
            self.w = max(1.0, p.x())
        if i in (0, 1):
            dy = p.y()
            self.moveBy(*self._rotated(0, dy))
            self.h -= dy
        else:
            self.h = max(1.0, p.y())
        self.w, self.h = max(1.0, self.w), max(1.0, self.h)

    def _rotated(self, dx: float, dy: float) -> tuple[float, float]:
        a = math.radians(self.rotation())
        return dx * math.cos(a) - dy * math.sin(a), dx * math.sin(a) + dy * math.cos(a)

    def nudge(self, dx: float, dy: float, resize: bool) -> None:
        if resize:
            self.prepareGeometryChange()
            self.w = max(1.0, self.w + dx)
            self.h = max(1.0, self.h + dy)
        else:
            self.moveBy(dx, dy)
        self.commit()

    def commit(self) -> None:
        ow, oh = self.owner.image_size
        value = rect_from_px(self.pos().x(), self.pos().y(), self.w, self.h, ow, oh, self.rotation())
        self.owner.commit(self.item_id, value)


class PolygonItem(RegionItem):
    def __init__(self, owner: ImageRenderer, item: dict[str, Any], colour: QColor, **kw: Any) -> None:
        super().__init__(owner, item, colour, **kw)
        ow, oh = owner.image_size
        pts = points_to_px((item.get("value") or {}).get("points") or [], ow, oh)
        self.pts = [QPointF(x, y) for x, y in pts]
        if self.pts:
            top = min(self.pts, key=lambda p: (p.y(), p.x()))
            self.tag.setPos(top)
            self.tag.setTransform(self.tag.transform().fromTranslate(0, -self.tag.boundingRect().height() - 2))

    def boundingRect(self) -> QRectF:  # noqa: N802
        m = self.scale_px()
        return QPolygonF(self.pts).boundingRect().adjusted(-m, -m, m, m)

    def shape(self) -> QPainterPath:
        p = QPainterPath()
        p.addPolygon(QPolygonF(self.pts))
        p.closeSubpath()
        return p

    def paint(self, painter: QPainter, _opt: Any, _w: Any = None) -> None:
        path = self.shape()
        self.halo(painter, path)
        painter.setPen(self.pen())
        painter.setBrush(self.brush())
        painter.drawPath(path)
        self.paint_handles(painter)

    def handles(self) -> list[QPointF]:
        return list(self.pts)

    def drag_handle(self, i: int, p: QPointF) -> None:
        self.pts[i] = p

    def commit(self) -> None:
        ow, oh = self.owner.image_size
        off = self.pos()
        pts = [(p.x() + off.x(), p.y() + off.y()) for p in self.pts]
        self.owner.commit(self.item_id, {"points": points_from_px(pts, ow, oh)})


class PointItem(RegionItem):
    def __init__(self, owner: ImageRenderer, item: dict[str, Any], colour: QColor, **kw: Any) -> None:
        super().__init__(owner, item, colour, **kw)
        ow, oh = owner.image_size
        v = item.get("value") or {}
        self.setPos(pct_to_px(v.get("x", 0), ow), pct_to_px(v.get("y", 0), oh))
        self.tag.setTransform(self.tag.transform().fromTranslate(8, -self.tag.boundingRect().height() - 2))

    def boundingRect(self) -> QRectF:  # noqa: N802
        r = self.scale_px()
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, _opt: Any, _w: Any = None) -> None:
        r = self.scale_px() * 0.6
        path = QPainterPath()
        path.addEllipse(QPointF(0, 0), r, r)
        self.halo(painter, path)
        painter.setPen(self.pen())
        painter.setBrush(QBrush(self.colour))
        painter.drawPath(path)

    def commit(self) -> None:
        ow, oh = self.owner.image_size
        v = rect_from_px(self.pos().x(), self.pos().y(), 0, 0, ow, oh)
        self.owner.commit(self.item_id, {"x": v["x"], "y": v["y"]})


class ImageView(QGraphicsView):
    def __init__(self, owner: ImageRenderer) -> None:
        super().__init__()
        self.owner = owner
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setBackgroundBrush(QBrush(QColor("#2b2f36")))
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setMinimumHeight(280)
        self.viewport().installEventFilter(WHEEL_SCROLLS_PAGE)
        self.fitted = True
        self._draw_origin: QPointF | None = None
        self._rubber: QGraphicsRectItem | None = None

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(640, 400)

    def fit(self) -> None:
        r = self.sceneRect()
        if r.width() > 0 and r.height() > 0:
            self.fitInView(r, Qt.AspectRatioMode.KeepAspectRatio)
            self.owner.rescale_regions()
        self.fitted = True

    def resizeEvent(self, e: Any) -> None:  # noqa: N802
        super().resizeEvent(e)
        if self.fitted:
            self.fit()

    def wheelEvent(self, e: Any) -> None:  # noqa: N802
        # plain wheel scrolls the task pane (WheelScrollsPage on the viewport); Ctrl+wheel zooms
        factor = 1.2 if e.angleDelta().y() > 0 else 1 / 1.2
        self.zoom(factor)

    def keyPressEvent(self, e: Any) -> None:  # noqa: N802
        if e.text() in ("+", "="):
            self.zoom(1.2)
        elif e.text() == "-":
            self.zoom(1 / 1.2)
        elif e.text() == "0":
            self.fit()
        else:
            super().keyPressEvent(e)

    def zoom(self, factor: float) -> None:
        s = self.transform().m11() * factor
        if 0.01 <= s <= 64:
            self.scale(factor, factor)
            self.owner.rescale_regions()
            self.fitted = False
            self.viewport().update()

    def mousePressEvent(self, e: Any) -> None:  # noqa: N802
        fixing = self.owner.host.state.doc is not None
        if fixing and e.button() == Qt.MouseButton.LeftButton and self.itemAt(e.position().toPoint()) in (
                None, self.owner.pixmap_item, self.owner.canvas_item) and self.owner.rect_control() is not None:
            self.setDragMode(QGraphicsView.DragMode.NoDrag)
            self._draw_origin = self.mapToScene(e.position().toPoint())
            self._rubber = self.scene().addRect(QRectF(self._draw_origin, self._draw_origin),
                                                QPen(QColor("#F9A825"), 0, Qt.PenStyle.DashLine))
            self.owner.host.select_item(None)
            return
        if fixing:
            self.setDragMode(QGraphicsView.DragMode.NoDrag)
        super().mousePressEvent(e)

    def mouseMoveEvent(self, e: Any) -> None:  # noqa: N802
        if self._draw_origin is not None and self._rubber is not None:
            self._rubber.setRect(QRectF(self._draw_origin, self.mapToScene(e.position().toPoint())).normalized())
            return
        super().mouseMoveEvent(e)

    def drop_rubber(self) -> None:
        """Abandon a box being drawn (its item goes with the scene's next clear)."""
        self._rubber, self._draw_origin = None, None

    def mouseReleaseEvent(self, e: Any) -> None:  # noqa: N802
        if self._draw_origin is not None and self._rubber is not None:
            r = self._rubber.rect().intersected(self.sceneRect())
            self.scene().removeItem(self._rubber)
            self._rubber, self._draw_origin = None, None
            if r.width() >= 3 and r.height() >= 3:
                self.owner.add_box_px(r)
            return
        super().mouseReleaseEvent(e)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)


class ImageRenderer(Card):
    def __init__(self, host: TaskView, obj: ConfigTag, controls: list[ConfigTag]) -> None:
        super().__init__(obj.name, "image")
        self.host = host
        self.obj = obj
        self.controls = {c.name: c for c in controls}
        self.notice = message_label("", "error")
        self.notice.hide()
        self.lay.addWidget(self.notice)
        self.regions: dict[str, RegionItem] = {}       # by item id (other layers: "layer:id")
        self.region_items: list[RegionItem] = []       # every region in the scene, even with duplicate ids
        self.scene = QGraphicsScene(self)
        self.view = ImageView(self)
        self.view.setObjectName(f"image:{obj.name}")
        self.view.setScene(self.scene)
        self.lay.addWidget(self.view)
        self.hint = QLabel()
        self.hint.setStyleSheet(f"color: {tone().muted};")
        self.lay.addWidget(self.hint)
        self.image_size: tuple[int, int] = (100, 100)  # original pixels (not QWidget.size(), the card's)
        self.pixmap_item: QGraphicsPixmapItem | None = None
        self.canvas_item: QGraphicsRectItem | None = None
        self.decoded: DecodedImage | None = None
        self.media: ResolvedMedia | None = None
        self._task_token = 0

    # -- media
    def set_task(self, value: Any, media: ResolvedMedia | None, items_hint: list[dict[str, Any]]) -> None:
        self._task_token += 1
        token = self._task_token
        self.view.drop_rubber()
        self.scene.clear()
        self.regions = {}
        self.region_items = []
        self.pixmap_item = None
        self.canvas_item = None
        self.decoded = None
        self.media = media
        self.notice.hide()
        size = None
        if media is not None and media.ok:
            assert media.path is not None
            s = QImageReader(media.path).size()  # header only
            if s.isValid() and not s.isEmpty():
                size = (s.width(), s.height())
        if size is None:
            for it in items_hint:
                if it.get("original_width") and it.get("original_height"):
                    size = (int(it["original_width"]), int(it["original_height"]))
                    break
        self.image_size = size or (100, 100)
        self._canvas()
        if media is None or not media.ok:
            self._fail(media.error if media is not None else f"no image in the task for {self.obj.name}")
            return
        hit = self.host.media.request(media, lambda d: self._decoded(token, d))
        if hit is not None:
            self._decoded(token, hit)
        else:
            self.hint.setText("Decoding image…")

    def _canvas(self) -> None:
        ow, oh = self.image_size
        self.scene.setSceneRect(QRectF(0, 0, ow, oh))
        self.canvas_item = self.scene.addRect(QRectF(0, 0, ow, oh), QPen(QColor("#4b5563"), 0),
                                              QBrush(QColor("#3a3f47")))
        self.canvas_item.setZValue(-2)
        self.view.fit()

    def _fail(self, msg: str | None) -> None:
        self.notice.setText(f"Image not shown: {msg}" if msg else "Image not shown.")
        self.notice.show()
        self.hint.setText("")

    def _decoded(self, token: int, d: Decoded) -> None:
        if token != self._task_token:
            return
        if not isinstance(d, DecodedImage):  # the cache decodes by the media's kind: an image here
            self._fail(d.error or "not an image")
            return
        self.decoded = d
        if d.image is None:
            self._fail(d.error)
            return
        if d.original_width and (d.original_width, d.original_height) != self.image_size:
            self.image_size = (d.original_width, d.original_height)
            self.scene.setSceneRect(QRectF(0, 0, *self.image_size))
            self.host.refresh()
        pm = QPixmap.fromImage(d.image)
        self.pixmap_item = self.scene.addPixmap(pm)
        self.pixmap_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.pixmap_item.setZValue(-1)
        if pm.width():
            self.pixmap_item.setScale(self.image_size[0] / pm.width())
        scaled = pm.width() != self.image_size[0]
        self.hint.setText(f"{self.image_size[0]}×{self.image_size[1]} px" + (f" (shown at {pm.width()}×{pm.height()})" if scaled else "")
                          + " · Ctrl+wheel or +/− to zoom, drag to pan")
        self.view.fit()

    # -- overlays
    def rect_control(self) -> ConfigTag | None:
        return next((c for c in self.controls.values() if c.tag in ("RectangleLabels", "Rectangle")), None)

    def handle_margin(self) -> float:
        return HANDLE_PX / max(self.view.transform().m11(), 1e-6)

    def rescale_regions(self) -> None:
        """The zoom changed: resize the regions' handle margins (announced to the scene index)."""
        m = self.handle_margin()
        for r in self.region_items:
            r.set_margin(m)

    def refresh(self, state: RenderState) -> None:
        for old in self.region_items:
            self.scene.removeItem(old)
        self.regions = {}
        self.region_items = []
        n = 0
        for lv, items, editable in state.shown():
            unmatched = state.unmatched(lv.key)
            for it in items:
                if it.get("to_name") != self.obj.name or it.get("from_name") not in self.controls:
                    continue
                rtype = str(it.get("type"))
                labels = labels_of(it)
                colour = label_colour(self.controls[it["from_name"]], labels[0] if labels else None) \
                    if lv.focus else lv.colour
                kw = {"focus": lv.focus, "editable": editable, "unmatched": str(it.get("id")) in unmatched,
                      "who": lv.short}
                try:
                    if rtype in BOX_TYPES:
                        r: RegionItem = BoxItem(self, it, colour, **kw)
                    elif rtype in POLY_TYPES:
                        r = PolygonItem(self, it, colour, **kw)
                    elif rtype in POINT_TYPES:
                        r = PointItem(self, it, colour, **kw)
                    else:
                        continue
                except (TypeError, ValueError, KeyError):
                    continue
                r.setZValue(2 if lv.focus else 1)
                self.scene.addItem(r)
                self.region_items.append(r)
                n += 1
                if editable and r.item_id == state.selected:
                    r.setSelected(True)
                if lv.focus or editable:
                    self.regions[r.item_id] = r
                else:
                    self.regions[f"{lv.key}:{r.item_id}"] = r
        ow, oh = self.image_size
        self.set_title(self.obj.name, f"image {ow}×{oh} · {n} region{'s' if n != 1 else ''}")

    def commit(self, item_id: str, value: dict[str, Any]) -> None:
        doc = self.host.state.doc
        if doc is None:
            return
        doc.update(item_id, **value)
        self.host.changed(select=item_id, redraw=False)

    def owns(self, item_id: str | None) -> bool:
        return item_id is not None and item_id in self.regions and self.regions[item_id].editable

    def add_box_px(self, r: QRectF, label: str | None = None) -> str | None:
        c = self.rect_control()
        doc = self.host.state.doc
        if c is None or doc is None:
            return None
        if label is None:
            label = self.host.state.pending.get(c.name) or (c.option_values()[0] if c.options else None)
        ow, oh = self.image_size
        v = rect_from_px(r.x(), r.y(), r.width(), r.height(), ow, oh)
        iid = doc.add_box(c.name, v["x"], v["y"], v["width"], v["height"], label, original_width=ow,
                          original_height=oh, to_name=self.obj.name)
        self.host.changed(select=iid)
        return iid

    def apply_label(self, control: ConfigTag, label: str) -> bool:
        doc = self.host.state.doc
        if control.name not in self.controls or doc is None:
            return False
        sel = self.host.state.selected
        if self.owns(sel):
            assert sel is not None
            item = doc.item(sel)
            if item is not None and item.get("from_name") == control.name:
                doc.set_labels(sel, [label])
                self.host.changed(select=sel)
                return True
        # a new region in the middle of what is visible
        vis = self.view.mapToScene(self.view.viewport().rect()).boundingRect().intersected(self.scene.sceneRect())
        if vis.isEmpty():
            vis = self.scene.sceneRect()
        ow, oh = self.image_size
        cx, cy, w, h = vis.center().x(), vis.center().y(), vis.width() * 0.25, vis.height() * 0.25
        if control.tag in ("RectangleLabels", "Rectangle"):
            self.host.state.pending[control.name] = label
            self.add_box_px(QRectF(cx - w / 2, cy - h / 2, w, h), label)
        elif control.tag in ("PolygonLabels", "Polygon"):
            pts = [(cx - w / 2, cy - h / 2), (cx + w / 2, cy - h / 2), (cx + w / 2, cy + h / 2), (cx - w / 2, cy + h / 2)]
            iid = doc.add_polygon(control.name, points_from_px(pts, ow, oh), label, original_width=ow,
                                  original_height=oh, to_name=self.obj.name)
            self.host.changed(select=iid)
        elif control.tag in ("KeyPointLabels", "KeyPoint"):
            v = rect_from_px(cx, cy, 0, 0, ow, oh)
            iid = doc.add_keypoint(control.name, v["x"], v["y"], label, original_width=ow, original_height=oh,
                                   to_name=self.obj.name)
            self.host.changed(select=iid)
        else:
            return False
        return True

    def nudge(self, dx: int, dy: int, big: bool, resize: bool) -> bool:
        sel = self.host.state.selected
        if not self.owns(sel):
            return False
        assert sel is not None
        step = 10.0 if big else 1.0
        self.regions[sel].nudge(dx * step, dy * step, resize)
        self.host.refresh()
        return True

    def delete_selected(self) -> bool:
        sel = self.host.state.selected
        if not self.owns(sel) or self.host.state.doc is None:
            return False
        assert sel is not None
        self.host.state.doc.remove(sel)
        self.host.changed(select=None)
        return True

    def focus_widget(self) -> QWidget:
        return self.view
