"""Label Studio result items without Qt: typed parsing, exact (de)serialisation, geometry and span maths.

Everything the renderers draw or edit goes through here, so the JSON a fix produces is the JSON
Label Studio would have produced (DESIGN.md section 4, ``labelstudio-api.md`` "Result JSON per
control type"):

* image geometry in percent (0-100) of the original size, with ``original_width`` /
  ``original_height`` on the item and ``rotation`` in degrees, clockwise, about the top-left corner;
* text spans as code-point offsets ``start``/``end`` plus the covered ``text`` (Label Studio stores
  code points since label-studio#1559; older UTF-16 offsets are recognised when reading);
* audio and time-series ranges in seconds (or the time column's unit).

:class:`ResultDoc` is the editable form of one result used by fix mode; :func:`compare` finds the
disagreements between several evaluators' results, per control.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.models.config import ConfigTag, LabelingConfig

DIGITS = 6  # rounding of computed percentages/seconds: removes float noise, keeps sub-pixel precision

# -- ids ------------------------------------------------------------------------------------------


def stable_id(*parts: Any) -> str:
    """A 10-character Label Studio-style region id derived from ``parts`` (same parts, same id)."""
    raw = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(hashlib.blake2b(raw, digest_size=9).digest()).decode()[:10]


def _r(v: float) -> float:
    out = round(float(v), DIGITS)
    return 0.0 if out == 0 else out


# -- geometry -------------------------------------------------------------------------------------


def pct_to_px(pct: float, size: float) -> float:
    return float(pct) * float(size) / 100.0


def px_to_pct(px: float, size: float) -> float:
    if not size:
        raise ValueError("the original size is unknown (0)")
    return _r(float(px) * 100.0 / float(size))


def rect_to_px(value: Mapping[str, Any], ow: float, oh: float) -> tuple[float, float, float, float, float]:
    """``(x, y, w, h, rotation)`` in pixels of an ``ow`` x ``oh`` image from a percent ``value``."""
    return (pct_to_px(value.get("x", 0), ow), pct_to_px(value.get("y", 0), oh),
            pct_to_px(value.get("width", 0), ow), pct_to_px(value.get("height", 0), oh),
            float(value.get("rotation") or 0.0))


def rect_from_px(x: float, y: float, w: float, h: float, ow: float, oh: float,
                 rotation: float = 0.0) -> dict[str, float]:
    return {"x": px_to_pct(x, ow), "y": px_to_pct(y, oh), "width": px_to_pct(w, ow),
            "height": px_to_pct(h, oh), "rotation": _r(rotation % 360.0)}


def rotate_point(px: float, py: float, ox: float, oy: float, degrees: float) -> tuple[float, float]:
    """Rotate ``(px, py)`` about ``(ox, oy)``; positive degrees turn clockwise on screen (y down)."""
    a = math.radians(degrees)
    dx, dy = px - ox, py - oy
    return ox + dx * math.cos(a) - dy * math.sin(a), oy + dx * math.sin(a) + dy * math.cos(a)


def rect_corners(x: float, y: float, w: float, h: float, rotation: float = 0.0) -> list[tuple[float, float]]:
    """The four corners (top-left, top-right, bottom-right, bottom-left) of a box rotated about its top-left.

    Works in any one unit system; for Label Studio values call it in pixels (percent axes differ in
    scale, so rotating percentages directly would shear the box).
    """
    pts = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    if not rotation:
        return pts
    return [rotate_point(px, py, x, y, rotation) for px, py in pts]


def points_to_px(points: Iterable[Sequence[float]], ow: float, oh: float) -> list[tuple[float, float]]:
    return [(pct_to_px(p[0], ow), pct_to_px(p[1], oh)) for p in points]


def points_from_px(points: Iterable[Sequence[float]], ow: float, oh: float) -> list[list[float]]:
    return [[px_to_pct(p[0], ow), px_to_pct(p[1], oh)] for p in points]


def polygon_iou(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> float:
    """Intersection over union of two simple polygons (shapely/GEOS; invalid rings are repaired)."""
    from shapely.geometry import Polygon
    from shapely.validation import make_valid

    try:
        pa, pb = make_valid(Polygon(a)), make_valid(Polygon(b))
        union = pa.union(pb).area
        return 0.0 if union <= 0 else float(pa.intersection(pb).area / union)
    except Exception:  # noqa: BLE001 - degenerate geometry scores 0, never crashes a view
        return 0.0


def interval_iou(a0: float, a1: float, b0: float, b1: float) -> float:
    lo, hi = max(min(a0, a1), min(b0, b1)), min(max(a0, a1), max(b0, b1))
    inter = max(0.0, hi - lo)
    union = max(a0, a1, b0, b1) - min(a0, a1, b0, b1)
    return 1.0 if union <= 0 and inter == 0 and a0 == b0 else (inter / union if union > 0 else 0.0)


# -- text offsets -----------------------------------------------------------------------------------


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def index_to_utf16(text: str, index: int) -> int:
    """Code-point index -> UTF-16 code-unit position (what ``QTextCursor`` / JavaScript count)."""
    return utf16_len(text[: max(0, index)])


def utf16_to_index(text: str, pos: int) -> int:
    """UTF-16 code-unit position -> code-point index (a position inside a surrogate pair rounds down)."""
    if text.isascii():
        return max(0, min(pos, len(text)))
    units = 0
    for i, ch in enumerate(text):
        step = 2 if ord(ch) > 0xFFFF else 1
        if units + step > pos:
            return i
        units += step
    return len(text)


def resolve_span(text: str, start: int, end: int, quoted: str | None = None) -> tuple[int, int, bool]:
    """Code-point ``(start, end, ok)`` for stored offsets.

    Offsets are code points; when they do not cover ``quoted`` but UTF-16 offsets (older Label Studio
    exports) would, the converted offsets are returned. ``ok`` says whether the covered text equals
    ``quoted`` (always true when nothing is quoted).
    """
    start, end = int(start), int(end)
    if quoted is None or text[start:end] == quoted:
        return start, end, True
    s16, e16 = utf16_to_index(text, start), utf16_to_index(text, end)
    if text[s16:e16] == quoted:
        return s16, e16, True
    return start, end, False


# -- typed values -----------------------------------------------------------------------------------

SPAN_TYPES = frozenset({"labels", "hypertextlabels", "paragraphlabels"})
BOX_TYPES = frozenset({"rectanglelabels", "rectangle"})
POLY_TYPES = frozenset({"polygonlabels", "polygon"})
POINT_TYPES = frozenset({"keypointlabels", "keypoint"})
REGION_TYPES = SPAN_TYPES | BOX_TYPES | POLY_TYPES | POINT_TYPES | {"timeserieslabels"}
CLASSIFICATION_TYPES = frozenset({"choices", "taxonomy", "rating", "number", "pairwise", "textarea"})


@dataclass(frozen=True)
class Span:
    """A text span (code points) or, for audio, a time range in seconds (``text`` is then ``None``)."""
    start: float
    end: float
    labels: tuple[str, ...]
    text: str | None = None
    channel: int | None = None


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float
    rotation: float
    labels: tuple[str, ...]
    original_width: int | None
    original_height: int | None


@dataclass(frozen=True)
class PolygonShape:
    points: tuple[tuple[float, float], ...]
    closed: bool
    labels: tuple[str, ...]


@dataclass(frozen=True)
class KeyPoint:
    x: float
    y: float
    width: float
    labels: tuple[str, ...]


@dataclass(frozen=True)
class TimeRange:
    start: float
    end: float
    instant: bool
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Classification:
    """Choices/Taxonomy (``values``), TextArea (``values`` = lines), Rating/Number (``number``), Pairwise."""
    values: tuple[Any, ...] = ()
    number: float | None = None
    selected: str | None = None


@dataclass(frozen=True)
class Unknown:
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class Parsed:
    id: str | None
    from_name: str
    to_name: str
    type: str
    shape: Span | Box | PolygonShape | KeyPoint | TimeRange | Classification | Unknown


def _labels(value: Mapping[str, Any], rtype: str) -> tuple[str, ...]:
    for key in (rtype, "labels"):
        v = value.get(key)
        if isinstance(v, list):
            return tuple(str(x) for x in v)
    return ()


def parse_item(item: Mapping[str, Any]) -> Parsed:
    """One result item as a typed, frozen value (anything unexpected becomes :class:`Unknown`)."""
    rtype = str(item.get("type", ""))
    raw_value = item.get("value")
    v: dict[str, Any] = raw_value if isinstance(raw_value, dict) else {}
    head = (item.get("id"), str(item.get("from_name", "")), str(item.get("to_name", "")), rtype)
    try:
        if rtype in BOX_TYPES:
            shape: Span | Box | PolygonShape | KeyPoint | TimeRange | Classification | Unknown = Box(float(v["x"]), float(v["y"]), float(v["width"]), float(v["height"]),
                             float(v.get("rotation") or 0), _labels(v, rtype),
                             item.get("original_width"), item.get("original_height"))
        elif rtype in POLY_TYPES:
            shape = PolygonShape(tuple((float(p[0]), float(p[1])) for p in v["points"]),
                                 bool(v.get("closed", True)), _labels(v, rtype))
        elif rtype in POINT_TYPES:
            shape = KeyPoint(float(v["x"]), float(v["y"]), float(v.get("width") or 0), _labels(v, rtype))
        elif rtype == "timeserieslabels":
            shape = TimeRange(float(v["start"]), float(v.get("end", v["start"])), bool(v.get("instant", False)),
                              _labels(v, rtype))
        elif rtype in SPAN_TYPES and "start" in v and "end" in v and not isinstance(v["start"], str):
            text = v.get("text")
            is_text = isinstance(text, str) or (isinstance(v["start"], int) and "channel" not in v)
            shape = Span(v["start"] if is_text else float(v["start"]), v["end"] if is_text else float(v["end"]),
                         _labels(v, rtype), text if isinstance(text, str) else None,
                         int(v["channel"]) if "channel" in v else None)
        elif rtype in ("choices", "taxonomy"):
            shape = Classification(values=tuple(tuple(c) if isinstance(c, list) else c for c in v[rtype]))
        elif rtype == "textarea":
            shape = Classification(values=tuple(str(t) for t in v["text"]))
        elif rtype in ("rating", "number"):
            shape = Classification(number=v[rtype])
        elif rtype == "pairwise":
            shape = Classification(selected=str(v["selected"]))
        else:
            shape = Unknown(dict(item))
    except (KeyError, TypeError, ValueError, IndexError):
        shape = Unknown(dict(item))
    return Parsed(*head, shape)


def value_summary(item: Mapping[str, Any]) -> Any:
    """A hashable value used to compare classification items between evaluators."""
    p = parse_item(item)
    s = p.shape
    if isinstance(s, Classification):
        if p.type in ("choices", "taxonomy"):
            return tuple(sorted(map(str, s.values)))
        if p.type == "textarea":
            return tuple(" ".join(t.split()) for t in s.values)
        return s.number if s.number is not None else s.selected
    return json.dumps(item.get("value"), sort_keys=True, default=str)


# -- building items -----------------------------------------------------------------------------------


def result_type(control: ConfigTag, obj: ConfigTag | None = None) -> str:
    """The ``type`` Label Studio writes for ``control`` (``Labels`` on ``HyperText`` -> hypertextlabels...)."""
    if control.tag == "Labels" and obj is not None:
        if obj.tag == "HyperText":
            return "hypertextlabels"
        if obj.tag == "Paragraphs":
            return "paragraphlabels"
    return control.result_type


def make_item(control: ConfigTag, to_name: str, value: dict[str, Any], *, rtype: str | None = None,
              item_id: str | None = None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    rtype = rtype or control.result_type
    item: dict[str, Any] = {
        "id": item_id or stable_id(control.name, to_name, rtype, value),
        "from_name": control.name,
        "to_name": to_name,
        "type": rtype,
    }
    if extra:
        item.update(extra)
    item["value"] = value
    item["origin"] = "manual"
    return item


def span_value(text: str, start: int, end: int, labels: Sequence[str], key: str = "labels") -> dict[str, Any]:
    if not 0 <= start < end <= len(text):
        raise ValueError(f"span {start}..{end} is outside the text (length {len(text)})")
    return {"start": int(start), "end": int(end), "text": text[start:end], key: list(labels)}


def segment_value(start: float, end: float, labels: Sequence[str], channel: int = 0,
                  key: str = "labels") -> dict[str, Any]:
    start, end = sorted((float(start), float(end)))
    if start < 0:
        start = 0.0
    return {"start": _r(start), "end": _r(end), "channel": int(channel), key: list(labels)}


def box_value(x: float, y: float, w: float, h: float, labels: Sequence[str], rotation: float = 0.0,
              key: str = "rectanglelabels") -> dict[str, Any]:
    return {"x": _r(x), "y": _r(y), "width": _r(w), "height": _r(h), "rotation": _r(rotation % 360.0),
            key: list(labels)}


# -- comparison ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One evaluator's result shown on the task: an annotation or a prediction."""
    key: str                # "a:<id>" or "p:<id>"
    title: str
    result: tuple[dict[str, Any], ...]
    prediction: bool = False


@dataclass(frozen=True)
class ControlDiff:
    control: str
    agree: bool
    values: Mapping[str, Any]              # layer key -> comparable value (classification controls)
    differs: frozenset[str]                # layer keys whose value differs from the reference layer
    unmatched: Mapping[str, frozenset[str]] = field(default_factory=dict)  # layer key -> item ids


@dataclass(frozen=True)
class Comparison:
    reference: str | None
    controls: Mapping[str, ControlDiff]

    def unmatched(self, layer_key: str) -> frozenset[str]:
        out: set[str] = set()
        for d in self.controls.values():
            out |= d.unmatched.get(layer_key, frozenset())
        return frozenset(out)


def _item_key(item: Mapping[str, Any], i: int) -> str:
    return str(item.get("id") or f"#{i}")


def regions_match(a: Mapping[str, Any], b: Mapping[str, Any], *, iou: float = 0.5) -> bool:
    """Same labels and overlapping enough (exact offsets for text spans, IoU for geometry/time)."""
    pa, pb = parse_item(a), parse_item(b)
    sa, sb = pa.shape, pb.shape
    if type(sa) is not type(sb) or isinstance(sa, Unknown | Classification):
        return False
    if set(getattr(sa, "labels", ())) != set(getattr(sb, "labels", ())):
        return False
    if isinstance(sa, Span) and isinstance(sb, Span):
        if sa.text is not None or sb.text is not None or isinstance(sa.start, int):
            return (sa.start, sa.end) == (sb.start, sb.end)
        return interval_iou(sa.start, sa.end, sb.start, sb.end) >= iou
    if isinstance(sa, TimeRange) and isinstance(sb, TimeRange):
        return interval_iou(sa.start, sa.end, sb.start, sb.end) >= iou
    if isinstance(sa, Box) and isinstance(sb, Box):
        ow = float(sa.original_width or sb.original_width or 100)
        oh = float(sa.original_height or sb.original_height or 100)
        ra = rect_corners(*rect_to_px(a["value"], ow, oh)[:4], sa.rotation)
        rb = rect_corners(*rect_to_px(b["value"], ow, oh)[:4], sb.rotation)
        if not sa.rotation and not sb.rotation:
            return _axis_iou(ra, rb) >= iou
        return polygon_iou(ra, rb) >= iou
    if isinstance(sa, PolygonShape) and isinstance(sb, PolygonShape):
        return polygon_iou(sa.points, sb.points) >= iou
    if isinstance(sa, KeyPoint) and isinstance(sb, KeyPoint):
        return math.hypot(sa.x - sb.x, sa.y - sb.y) <= 2.0
    return False


def _axis_iou(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> float:
    ax0, ay0, ax1, ay1 = a[0][0], a[0][1], a[2][0], a[2][1]
    bx0, by0, bx1, by1 = b[0][0], b[0][1], b[2][0], b[2][1]
    iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union > 0 else 0.0


def _unmatched(mine: list[tuple[str, dict[str, Any]]], theirs: list[tuple[str, dict[str, Any]]]) -> set[str]:
    """Ids in ``mine`` left without a partner after greedy one-to-one matching against ``theirs``."""
    free = list(range(len(theirs)))
    out = set()
    for key, item in mine:
        hit = next((j for j in free if regions_match(item, theirs[j][1])), None)
        if hit is None:
            out.add(key)
        else:
            free.remove(hit)
    return out


def compare(cfg: LabelingConfig, layers: Sequence[Layer], reference: str | None = None) -> Comparison:
    """Disagreements per control between ``layers`` (relative to ``reference``, else to the first layer).

    Classification controls compare one value per layer; region controls flag, in the reference
    layer, every region without a one-to-one partner (same labels, IoU >= 0.5, identical text
    offsets) in some other layer, and in every other layer the regions without a partner in the
    reference.
    """
    ref = reference if any(lay.key == reference for lay in layers) else (layers[0].key if layers else None)
    out: dict[str, ControlDiff] = {}
    by_layer = {lay.key: [(_item_key(it, i), it) for i, it in enumerate(lay.result) if isinstance(it, dict)]
                for lay in layers}
    for control in cfg.controls:
        items = {k: [(key, it) for key, it in v if it.get("from_name") == control.name] for k, v in by_layer.items()}
        if not any(items.values()):
            continue
        kinds = {str(it.get("type")) for v in items.values() for _, it in v}
        if kinds & CLASSIFICATION_TYPES and not kinds & REGION_TYPES:
            values = {k: (value_summary(v[0][1]) if v else None) for k, v in items.items()}
            ref_value = values.get(ref) if ref else None
            differs = frozenset(k for k, val in values.items() if val != ref_value)
            agree = len({json.dumps(v, default=str) for v in values.values()}) <= 1
            out[control.name] = ControlDiff(control.name, agree, values, differs)
            continue
        unmatched: dict[str, frozenset[str]] = {}
        ref_items = items.get(ref, []) if ref else []
        for k, mine in items.items():
            if k == ref:
                miss: set[str] = set()
                for k2, theirs in items.items():
                    if k2 != k:
                        miss |= _unmatched(mine, theirs)
            else:
                miss = _unmatched(mine, ref_items)
            unmatched[k] = frozenset(miss)
        counts = {k: len(v) for k, v in items.items()}
        differs = frozenset(k for k, v in unmatched.items() if v)
        out[control.name] = ControlDiff(control.name, not differs, counts, differs, unmatched)
    return Comparison(ref, out)


# -- the editable result of fix mode ---------------------------------------------------------------


class ResultDoc:
    """A result being fixed: a list of LS result items with typed edit operations.

    Items keep their ids, key order and unknown keys; edited items that came from a prediction get
    ``origin: "prediction-changed"`` (as Label Studio marks them), new ones ``origin: "manual"``.
    """

    def __init__(self, cfg: LabelingConfig, result: Iterable[Mapping[str, Any]] | None = None) -> None:
        self.cfg = cfg
        self.items: list[dict[str, Any]] = [copy.deepcopy(dict(i)) for i in (result or ()) if isinstance(i, Mapping)]
        self.changed: set[str] = set()
        self._counter = 0
        self.revision = 0

    # -- queries
    def items_for(self, control: str) -> list[dict[str, Any]]:
        return [i for i in self.items if i.get("from_name") == control]

    def item(self, item_id: str) -> dict[str, Any] | None:
        return next((i for i in self.items if i.get("id") == item_id), None)

    def control(self, name: str) -> ConfigTag:
        c = self.cfg.control(name)
        if c is None:
            raise KeyError(f"the labeling config has no control {name!r}")
        return c

    def _target(self, control: ConfigTag, to_name: str | None) -> str:
        if to_name is None:
            return control.to_name[0]
        if to_name not in control.to_name:
            raise ValueError(f"{control.name} does not point at {to_name!r}")
        return to_name

    def _touch(self, item: dict[str, Any]) -> str:
        iid = str(item["id"])
        self.changed.add(iid)
        if item.get("origin") in ("prediction", "prediction-changed"):
            item["origin"] = "prediction-changed"
        self.revision += 1
        return iid

    def _add(self, control: ConfigTag, to_name: str, value: dict[str, Any], *, rtype: str | None = None,
             extra: Mapping[str, Any] | None = None) -> str:
        self._counter += 1
        existing = {i.get("id") for i in self.items}
        iid = stable_id(control.name, to_name, value, self._counter)
        while iid in existing:
            self._counter += 1
            iid = stable_id(control.name, to_name, value, self._counter)
        item = make_item(control, to_name, value, rtype=rtype, item_id=iid, extra=extra)
        self.items.append(item)
        return self._touch(item)

    def _check_options(self, control: ConfigTag, values: Iterable[str]) -> None:
        known = set(control.option_values())
        bad = [v for v in values if known and v not in known]
        if bad:
            raise ValueError(f"{bad} are not options of {control.name}")

    def _single(self, control: ConfigTag, to_name: str | None, key: str, payload: Any) -> str:
        """Set the one item of a classification control (created if missing)."""
        target = self._target(control, to_name)
        existing = [i for i in self.items_for(control.name) if i.get("to_name") == target]
        if existing:
            item = existing[0]
            item.setdefault("value", {})[key] = payload
            for extra in existing[1:]:
                self.items.remove(extra)
            return self._touch(item)
        return self._add(control, target, {key: payload})

    # -- classification edits
    def set_choices(self, name: str, values: Sequence[str], to_name: str | None = None) -> str | None:
        c = self.control(name)
        self._check_options(c, values)
        if not c.multiple and len(values) > 1:
            raise ValueError(f"{name} allows one choice")
        if not values:
            self.clear(name)
            return None
        return self._single(c, to_name, "choices" if c.tag == "Choices" else c.result_type, list(values))

    def toggle_choice(self, name: str, value: str, to_name: str | None = None) -> str | None:
        c = self.control(name)
        current: list[str] = []
        for i in self.items_for(name):
            current = list(i.get("value", {}).get("choices", []))
        if c.multiple:
            new = [v for v in current if v != value] if value in current else current + [value]
            order = list(c.option_values())
            new.sort(key=lambda v: order.index(v) if v in order else len(order))
        else:
            new = [] if current == [value] else [value]
        return self.set_choices(name, new, to_name)

    def set_rating(self, name: str, rating: int, to_name: str | None = None) -> str | None:
        c = self.control(name)
        mx = int(c.attrs.get("maxRating", "5"))
        if rating <= 0:
            self.clear(name)
            return None
        if rating > mx:
            raise ValueError(f"{name} goes up to {mx}")
        return self._single(c, to_name, "rating", int(rating))

    def set_number(self, name: str, number: float | None, to_name: str | None = None) -> str | None:
        c = self.control(name)
        if number is None:
            self.clear(name)
            return None
        lo, hi = c.attrs.get("min"), c.attrs.get("max")
        if (lo is not None and number < float(lo)) or (hi is not None and number > float(hi)):
            raise ValueError(f"{name} must be within {lo}..{hi}")
        n: float | int = int(number) if float(number).is_integer() else float(number)
        return self._single(c, to_name, "number", n)

    def set_textarea(self, name: str, texts: Sequence[str], to_name: str | None = None) -> str | None:
        c = self.control(name)
        texts = [t for t in texts if t.strip()]
        if not texts:
            self.clear(name)
            return None
        return self._single(c, to_name, "text", list(texts))

    def set_pairwise(self, name: str, selected: str, to_name: str | None = None) -> str | None:
        c = self.control(name)
        if selected not in ("left", "right"):
            raise ValueError("pairwise selects 'left' or 'right'")
        return self._single(c, to_name or c.to_name[0], "selected", selected)

    def clear(self, name: str) -> None:
        before = len(self.items)
        self.items = [i for i in self.items if i.get("from_name") != name]
        if len(self.items) != before:
            self.revision += 1

    # -- region edits
    def add_span(self, name: str, text: str, start: int, end: int, label: str, to_name: str | None = None) -> str:
        c = self.control(name)
        self._check_options(c, [label])
        target = self._target(c, to_name)
        obj = self.cfg.object(target)
        rtype = result_type(c, obj)
        key = "labels" if rtype == "labels" else rtype
        if not 0 <= start < end <= len(text):
            raise ValueError(f"span {start}..{end} is outside the text (length {len(text)})")
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        return self._add(c, target, span_value(text, start, end, [label], key), rtype=rtype)

    def add_segment(self, name: str, start: float, end: float, label: str, to_name: str | None = None,
                    channel: int = 0) -> str:
        c = self.control(name)
        self._check_options(c, [label])
        target = self._target(c, to_name)
        if c.tag == "TimeSeriesLabels":
            s, e = sorted((float(start), float(end)))
            value = {"start": _r(s), "end": _r(e), "instant": s == e, "timeserieslabels": [label]}
            return self._add(c, target, value)
        return self._add(c, target, segment_value(start, end, [label], channel))

    def add_box(self, name: str, x: float, y: float, w: float, h: float, label: str | None, *,
                original_width: int, original_height: int, rotation: float = 0.0,
                to_name: str | None = None) -> str:
        """A rectangle in percent (``x``..``h``) on an image of ``original_width`` x ``original_height`` px."""
        c = self.control(name)
        labels = [label] if label else []
        self._check_options(c, labels)
        target = self._target(c, to_name)
        key = c.result_type if c.tag.endswith("Labels") else "rectanglelabels"
        value = box_value(x, y, w, h, labels, rotation, key)
        if c.tag == "Rectangle":
            value.pop(key)
        return self._add(c, target, value, extra={"original_width": int(original_width),
                                                   "original_height": int(original_height),
                                                   "image_rotation": 0})

    def add_polygon(self, name: str, points: Sequence[Sequence[float]], label: str | None, *,
                    original_width: int, original_height: int, to_name: str | None = None) -> str:
        c = self.control(name)
        labels = [label] if label else []
        self._check_options(c, labels)
        value: dict[str, Any] = {"points": [[_r(p[0]), _r(p[1])] for p in points], "closed": True}
        if c.tag.endswith("Labels"):
            value[c.result_type] = labels
        return self._add(c, self._target(c, to_name), value,
                         extra={"original_width": int(original_width), "original_height": int(original_height),
                                "image_rotation": 0})

    def add_keypoint(self, name: str, x: float, y: float, label: str | None, *, original_width: int,
                     original_height: int, width: float = 1.0, to_name: str | None = None) -> str:
        c = self.control(name)
        labels = [label] if label else []
        self._check_options(c, labels)
        value: dict[str, Any] = {"x": _r(x), "y": _r(y), "width": _r(width)}
        if c.tag.endswith("Labels"):
            value[c.result_type] = labels
        return self._add(c, self._target(c, to_name), value,
                         extra={"original_width": int(original_width), "original_height": int(original_height),
                                "image_rotation": 0})

    def update(self, item_id: str, **value: Any) -> None:
        """Change value keys of an item (geometry, offsets, seconds), rounding floats."""
        item = self.item(item_id)
        if item is None:
            raise KeyError(item_id)
        v = item.setdefault("value", {})
        changed = False
        for k, new in value.items():
            if isinstance(new, float):
                new = _r(new)
            elif k == "points":
                new = [[_r(p[0]), _r(p[1])] for p in new]
            if v.get(k) != new:
                v[k] = new
                changed = True
        if changed:
            self._touch(item)

    def set_span(self, item_id: str, text: str, start: int, end: int) -> None:
        item = self.item(item_id)
        if item is None:
            raise KeyError(item_id)
        if not 0 <= start < end <= len(text):
            raise ValueError("span outside the text")
        self.update(item_id, start=int(start), end=int(end), text=text[start:end])

    def set_labels(self, item_id: str, labels: Sequence[str]) -> None:
        item = self.item(item_id)
        if item is None:
            raise KeyError(item_id)
        c = self.control(str(item.get("from_name")))
        self._check_options(c, labels)
        v = item.setdefault("value", {})
        key = next((k for k in (str(item.get("type")), "labels") if k in v), str(item.get("type")))
        if v.get(key) != list(labels):
            v[key] = list(labels)
            self._touch(item)

    def remove(self, item_id: str) -> None:
        before = len(self.items)
        self.items = [i for i in self.items if i.get("id") != item_id]
        if len(self.items) != before:
            self.changed.discard(item_id)
            self.revision += 1

    # -- output
    def to_result(self) -> list[dict[str, Any]]:
        """The result as exact Label Studio JSON (deep copies; JSON-serialisable)."""
        return json.loads(json.dumps(self.items, ensure_ascii=False))

    def problems(self) -> list[str]:
        from app.models.config import validate_result

        return validate_result(self.cfg, self.to_result(), strict=True)
