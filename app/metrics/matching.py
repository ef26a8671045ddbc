"""Matching functions: score two Label Studio results of ONE control in [0, 1].

A *result* is the list of result items (LS JSON dicts with ``type``, ``value``, ...) that one annotation
(or prediction, or the ground truth) holds for one control. Every matcher has the signature::

    fn(result: list[dict], reference: list[dict], params: Mapping[str, Any]) -> float

and scores ``result`` with ``reference`` as the reference. :func:`score_results` applies the rules common
to all control types before calling a matcher: both results empty -> 1.0, exactly one empty -> 0.0, and
clips the matcher's value to [0, 1].

Built-in matchers (``params`` keys in brackets, usually the control's attributes):

============================ ==================== ===========================================================
control type(s)              matcher              score
============================ ==================== ===========================================================
choices (single), pairwise,  :func:`exact_match`  1 if the answers are equal as sets, else 0
taxonomy, datetime, unknown
choices [choice="multiple"]  :func:`jaccard`      |A & B| / |A | B| of the chosen values
rating [maxRating=5]         numeric_difference   1 - |a - b| / (maxRating - 1)
number [min, max]            numeric_difference   1 - |a - b| / (max - min); exact match without a scale
labels, timeserieslabels,    span_overlap         1-D IoU (character offsets, seconds, time) with one-to-one
hypertextlabels,                                  optimal matching of spans
paragraphlabels
rectanglelabels, rectangle   rectangle_iou        IoU of rotated rectangles, one-to-one optimal matching
polygonlabels, polygon       polygon_iou          polygon IoU (shapely), one-to-one optimal matching
keypointlabels, keypoint     keypoint_distance    max(0, 1 - d / tolerance) [keypoint_tolerance=5, percent]
textarea                     textarea_similarity  normalised Levenshtein similarity (rapidfuzz)
============================ ==================== ===========================================================

Regions (spans, boxes, polygons, keypoints) are matched one-to-one by maximising the summed pair
similarity (``scipy.optimize.linear_sum_assignment``). **Labels must match**: a pair of regions whose
label sets differ has similarity 0, so both stay unmatched and count against the score (a box drawn
in the right place with the wrong label is a disagreement, not a partial match). Set
``params["require_label"] = False`` to ignore labels. Pairs below ``params["iou_threshold"]``
(default 0.0) are not matched. With ``S`` the summed similarity of the matched pairs, ``n_r`` and
``n_ref`` the region counts, ``params["average"]`` chooses the aggregate:

* ``"f1"`` (default, symmetric): ``2 S / (n_r + n_ref)``;
* ``"precision"``: ``S / n_r`` -- the share of the scored result's regions found in the reference;
* ``"recall"``: ``S / n_ref``.

With ``"precision"``, ``score(a, b) != score(b, a)`` in general; agreement matrices score the row
evaluator with the column as reference, so they become asymmetric (precision-like), by design.

Image coordinates are percent of the image; when items carry ``original_width``/``original_height`` the
geometry is converted to pixels first so that rotation and areas are correct on non-square images.
``rotation`` is in degrees, clockwise on screen, about the rectangle's top-left corner.

Custom matchers: ``register_matcher("mytype", fn)``; :func:`get_matcher` looks them up.

Speed (same scores, fewer calls): IoU of two *axis-aligned* rectangles (``rotation`` 0 or absent, finite
coordinates) is computed with numpy box arithmetic; rectangle pairs involving a rotated one keep shapely.
Both are elementwise functions over flat index arrays (:func:`_rect_iou_flat`, :func:`_interval_iou_flat`),
shared by the matchers above and by the batched scorer of :mod:`app.metrics._batch`, which scores many
(result, reference) pairs of one control at once. Scores of built-in matchers are memoised across calls
in a bounded, thread-safe table keyed by (control type, params, result keys) (:data:`_SCORE_MEMO`);
:func:`register_matcher` and :func:`unregister_matcher` clear it. :func:`result_digests` identifies many
results by a digest of their :func:`result_key` through a bounded, content-addressed cache
(:data:`_DIGEST_CACHE`), so later calls on the same frame skip the canonical JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import shapely
from rapidfuzz.distance import Indel, Levenshtein
from scipy.optimize import linear_sum_assignment

Result = Sequence[Mapping[str, Any]]
Params = Mapping[str, Any]
Matcher = Callable[[Result, Result, Params], float]

__all__ = [
    "Matcher",
    "exact_match",
    "get_matcher",
    "jaccard",
    "keypoint_distance",
    "match_regions",
    "numeric_difference",
    "polygon_iou",
    "rectangle_iou",
    "register_matcher",
    "registered_types",
    "result_key",
    "score_results",
    "span_overlap",
    "textarea_similarity",
    "unregister_matcher",
]

_EMPTY: dict[str, Any] = {}

# keys of a result item that do not change its meaning (ids differ between annotators)
_VOLATILE = {"id", "origin", "score", "readonly", "hidden", "parentID", "from_name", "to_name"}

_LABEL_KEYS = (
    "labels",
    "rectanglelabels",
    "polygonlabels",
    "keypointlabels",
    "brushlabels",
    "ellipselabels",
    "timeserieslabels",
    "hypertextlabels",
    "paragraphlabels",
    "videorectangle",
)


# --------------------------------------------------------------------------------------------------
# value extraction


def _values(result: Result, key: str) -> list[Any]:
    out: list[Any] = []
    for item in result:
        v = (item.get("value") or _EMPTY).get(key)
        if v is None:
            continue
        if isinstance(v, list):
            out.extend(v)
        else:
            out.append(v)
    return out


def _hashable(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


def _answer_set(result: Result) -> frozenset[Any]:
    """The set of answers of a non-region result, whatever key the value uses."""
    out: set[Any] = set()
    for item in result:
        value = item.get("value") or _EMPTY
        t = item.get("type")
        if isinstance(t, str) and t in value:
            keys = [t]
        else:
            keys = [k for k in value if k not in ("start", "end", "x", "y")] or list(value)
        for k in keys:
            v = value.get(k)
            if isinstance(v, list):
                out.update(_hashable(x) for x in v)
            elif v is not None:
                out.add(_hashable(v))
    return frozenset(out)


# one encoder for every key: same output as json.dumps(..., sort_keys=True, default=str), without building a
# JSONEncoder per item
_KEY_ENCODER = json.JSONEncoder(sort_keys=True, default=str)


def result_key(result: Result) -> str:
    """A canonical, hashable key of a result: equal keys mean equal results for every matcher.

    Item ids, ``origin``, scores and other volatile fields are dropped and items are sorted, so identical
    answers of different annotators dedupe to one key.
    """
    enc = _KEY_ENCODER.encode
    items = [enc({k: v for k, v in item.items() if k not in _VOLATILE}) for item in result]
    items.sort()
    return "[" + ",".join(items) + "]"


def _digest(text: str | bytes) -> bytes:
    """128-bit blake2b digest: the identity of a canonical key (collisions are negligible)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return hashlib.blake2b(data, digest_size=16).digest()


class _DigestCache:
    """Bounded, thread-safe cache ``digest(pickle.dumps(result)) -> digest(result_key(result))``.

    Content-addressed: pickle is a faithful, type-exact serialisation (``1``, ``1.0``, ``True``,
    ``np.int64(1)`` and ``np.array([1])`` all differ; marshal is not type-exact -- it writes any buffer
    as bytes), so equal bytes mean an equal result and the cached digest is right even if the caller
    mutated the result in place since (an identity-keyed cache could serve a stale key). Pickling and
    hashing is several times cheaper than the canonical JSON, which is what makes the second and later
    calls on the same frame cheaper. Results that do not pickle are keyed directly, without caching.
    About 150 bytes per entry; the oldest half is dropped when full, and a batch larger than half the
    cache is not cached (no thrashing on huge frames).
    """

    def __init__(self, max_entries: int = 1 << 18) -> None:
        self.max_entries = max_entries
        self._data: dict[bytes, bytes] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def digests(self, results: Sequence[Result | None]) -> list[bytes]:
        """``[digest(result_key(r or [])) for r in results]``."""
        ids: list[bytes | None] = []
        for r in results:
            try:
                ids.append(_digest(pickle.dumps(r or [], protocol=5)))
            except Exception:  # not picklable: no caching for it
                ids.append(None)
        with self._lock:
            get = self._data.get
            out = [get(i) if i is not None else None for i in ids]
        new: list[tuple[bytes, bytes]] = []
        for n, d in enumerate(out):
            if d is None:
                d = out[n] = _digest(result_key(results[n] or []))
                i = ids[n]
                if i is not None:
                    new.append((i, d))
        if new and len(new) <= self.max_entries // 2:
            with self._lock:
                data = self._data
                if len(data) + len(new) > self.max_entries:
                    for i in list(data)[: max(len(data) // 2, len(data) + len(new) - self.max_entries)]:
                        del data[i]
                data.update(new)
        return out  # type: ignore[return-value]


_DIGEST_CACHE = _DigestCache()


def result_digests(results: Sequence[Result | None]) -> list[bytes]:
    """Digests of the :func:`result_key` of many results (``None`` = empty): equal digests mean equal
    keys. Goes through the content-addressed cache :data:`_DIGEST_CACHE`."""
    return _DIGEST_CACHE.digests(results)


def _hashable_set(values: list[Any]) -> frozenset[Any]:
    try:
        return frozenset(values)  # plain labels (strings): already hashable, same set
    except TypeError:
        return frozenset(_hashable(x) for x in values)


def _label_set(item: Mapping[str, Any]) -> frozenset[Any]:
    value = item.get("value") or _EMPTY
    t = item.get("type")
    if isinstance(t, str) and t in value and isinstance(value[t], list):
        return _hashable_set(value[t])
    for k in _LABEL_KEYS:
        if k in value and isinstance(value[k], list):
            return _hashable_set(value[k])
    return frozenset()


# --------------------------------------------------------------------------------------------------
# categorical and numeric


def exact_match(result: Result, reference: Result, params: Params = _EMPTY) -> float:
    """1.0 when both results hold the same set of answers (choices, selected side, taxonomy paths), else 0.0."""
    return 1.0 if _answer_set(result) == _answer_set(reference) else 0.0


def jaccard(result: Result, reference: Result, params: Params = _EMPTY) -> float:
    """Jaccard index of the answer sets (multiple choices)."""
    a, b = _answer_set(result), _answer_set(reference)
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _choices(result: Result, reference: Result, params: Params = _EMPTY) -> float:
    if str(params.get("choice", "single")).lower() == "multiple":
        return jaccard(result, reference, params)
    return exact_match(result, reference, params)


def _number(result: Result) -> float | None:
    for item in result:
        value = item.get("value") or _EMPTY
        for k in (item.get("type"), "rating", "number"):
            if k and k in value and value[k] is not None:
                try:
                    return float(value[k])
                except (TypeError, ValueError):
                    return None
    return None


def numeric_scale(control_type: str, params: Params) -> float | None:
    """Scale that normalises a numeric difference: ``maxRating - 1`` for ratings, ``max - min`` for numbers."""
    if control_type == "rating":
        mx = float(params.get("maxRating", params.get("max_rating", 5)))
        return mx - 1.0 if mx > 1 else None
    lo, hi = params.get("min"), params.get("max")
    if lo is None or hi is None:
        return None
    try:
        scale = float(hi) - float(lo)
    except (TypeError, ValueError):
        return None
    return scale if scale > 0 else None


def numeric_difference(result: Result, reference: Result, params: Params = _EMPTY) -> float:
    """``max(0, 1 - |a - b| / scale)`` for Rating (scale ``maxRating - 1``, default 5 stars) and Number
    (scale ``max - min``); exact match of the values when no scale is known."""
    a, b = _number(result), _number(reference)
    if a is None or b is None:
        return 1.0 if a is None and b is None else 0.0
    t = next((str(i.get("type")) for i in (*result, *reference) if i.get("type")), "number")
    scale = params.get("scale") or numeric_scale(t, params)
    if not scale:
        return 1.0 if a == b else 0.0
    return max(0.0, 1.0 - abs(a - b) / float(scale))


# --------------------------------------------------------------------------------------------------
# regions: one-to-one matching


def match_regions(
    similarity: np.ndarray,
    n_result: int,
    n_reference: int,
    params: Params = _EMPTY,
) -> float:
    """Aggregate an ``n_result x n_reference`` similarity matrix by optimal one-to-one matching.

    See the module docstring for ``average`` (``"f1"``, ``"precision"``, ``"recall"``) and
    ``iou_threshold``.
    """
    if n_result == 0 and n_reference == 0:
        return 1.0
    if n_result == 0 or n_reference == 0:
        return 0.0
    sim = np.nan_to_num(np.asarray(similarity, dtype=np.float64).reshape(n_result, n_reference))
    thr = float(params.get("iou_threshold", 0.0))
    if thr > 0:
        sim = np.where(sim >= thr, sim, 0.0)
    r, c = linear_sum_assignment(sim, maximize=True)
    total = float(sim[r, c].sum())
    average = str(params.get("average", "f1")).lower()
    if average == "precision":
        return total / n_result
    if average == "recall":
        return total / n_reference
    if average != "f1":
        raise ValueError(f"average must be 'f1', 'precision' or 'recall', not {average!r}")
    return 2.0 * total / (n_result + n_reference)


def _label_mask(result: Result, reference: Result, params: Params) -> np.ndarray:
    if not params.get("require_label", True):
        return np.ones((len(result), len(reference)), bool)
    la = [_label_set(i) for i in result]
    lb = [_label_set(i) for i in reference]
    return np.array([[x == y for y in lb] for x in la], dtype=bool).reshape(len(la), len(lb))


def _to_float(v: Any) -> float:
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        import pandas as pd

        return int(pd.Timestamp(v).value) / 1e9


def _span(item: Mapping[str, Any]) -> tuple[Any, float, float]:
    """(container, start, end) of a span item; container separates XPath/paragraph ranges."""
    v = item.get("value") or _EMPTY
    if "startOffset" in v or "endOffset" in v:
        container = (_hashable(v.get("start")), _hashable(v.get("end")))
        return container, float(v.get("startOffset", 0)), float(v.get("endOffset", 0))
    start = v.get("start")
    end = v.get("end", start)
    if start is None:
        return None, math.nan, math.nan
    return None, _to_float(start), _to_float(end if end is not None else start)


def _interval_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of 1-D intervals: a is (n, 2), b is (m, 2). Zero-length intervals match only when equal."""
    s1, e1 = a[:, 0:1], a[:, 1:2]
    s2, e2 = b[None, :, 0], b[None, :, 1]
    inter = np.clip(np.minimum(e1, e2) - np.maximum(s1, s2), 0.0, None)
    union = (e1 - s1) + (e2 - s2) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou: np.ndarray = np.where(union > 0, inter / union, ((s1 == s2) & (e1 == e2)).astype(float))
    return iou


def _interval_iou_flat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise :func:`_interval_iou` of row-aligned ``(T, 2)`` arrays (same operations, same bits)."""
    s1, e1 = a[:, 0], a[:, 1]
    s2, e2 = b[:, 0], b[:, 1]
    inter = np.clip(np.minimum(e1, e2) - np.maximum(s1, s2), 0.0, None)
    union = (e1 - s1) + (e2 - s2) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou: np.ndarray = np.where(union > 0, inter / union, ((s1 == s2) & (e1 == e2)).astype(float))
    return iou


def span_overlap(result: Result, reference: Result, params: Params = _EMPTY) -> float:
    """Span IoU (text character offsets, audio seconds, time series, XPath ranges) with optimal matching."""
    sa = [_span(i) for i in result]
    sb = [_span(i) for i in reference]
    if not sa or not sb:
        return match_regions(np.zeros((len(sa), len(sb))), len(sa), len(sb), params)
    a = np.array([[s, e] for _, s, e in sa], dtype=float)
    b = np.array([[s, e] for _, s, e in sb], dtype=float)
    a.sort(axis=1)
    b.sort(axis=1)
    sim = _interval_iou(a, b)
    same_container = np.array([[ca == cb for cb, _, _ in sb] for ca, _, _ in sa], dtype=bool)
    sim = np.where(same_container & _label_mask(result, reference, params), np.nan_to_num(sim), 0.0)
    return match_regions(sim, len(sa), len(sb), params)


def _scale(item: Mapping[str, Any]) -> tuple[float, float]:
    w = item.get("original_width")
    h = item.get("original_height")
    try:
        return (float(w) / 100.0, float(h) / 100.0) if w and h else (1.0, 1.0)
    except (TypeError, ValueError):
        return 1.0, 1.0


def _rect_parts(item: Mapping[str, Any]) -> tuple[float, float, float, float, float]:
    """``(x, y, width, height, theta)`` of a rectangle item (pixels when the image size is known; radians)."""
    v = item.get("value") or _EMPTY
    sx, sy = _scale(item)
    x, y = float(v.get("x", 0)) * sx, float(v.get("y", 0)) * sy
    w, h = float(v.get("width", 0)) * sx, float(v.get("height", 0)) * sy
    theta = math.radians(float(v.get("rotation", 0) or 0))
    return x, y, w, h, theta


def _rectangle_coords(item: Mapping[str, Any]) -> np.ndarray:
    x, y, w, h, theta = _rect_parts(item)
    c, s = math.cos(theta), math.sin(theta)
    return np.array(
        [
            [x, y],
            [x + w * c, y + w * s],
            [x + w * c - h * s, y + w * s + h * c],
            [x - h * s, y + h * c],
        ]
    )


class _Rects:
    """Rectangles of a list of items: corner ``coords`` (R, 4, 2) exactly as :func:`_rectangle_coords`,
    the bounding ``box`` (R, 4: x0, y0, x1, y1), ``aligned`` (rotation 0 and finite coordinates: the box
    *is* the rectangle, so the numpy IoU applies) and, built on first use, the shapely ``polygons``."""

    __slots__ = ("aligned", "box", "coords", "_polygons")

    def __init__(self, coords: np.ndarray, box: np.ndarray, aligned: np.ndarray) -> None:
        self.coords, self.box, self.aligned = coords, box, aligned
        self._polygons: np.ndarray | None = None

    @property
    def polygons(self) -> np.ndarray:
        if self._polygons is None:
            self._polygons = shapely.polygons(self.coords)
        return self._polygons


def _rects(items: Sequence[Mapping[str, Any]]) -> _Rects:
    return _rects_from_parts(np.array([_rect_parts(i) for i in items], dtype=np.float64).reshape(-1, 5))


def _rects_from_parts(parts: np.ndarray) -> _Rects:
    """:class:`_Rects` from an ``(R, 5)`` array of :func:`_rect_parts` rows."""
    x, y, w, h, theta = parts.T
    c = np.array([math.cos(t) for t in theta.tolist()], dtype=np.float64)
    s = np.array([math.sin(t) for t in theta.tolist()], dtype=np.float64)
    # the same IEEE operations, in the same order, as _rectangle_coords
    coords = np.stack(
        [
            np.stack([x, y], axis=-1),
            np.stack([x + w * c, y + w * s], axis=-1),
            np.stack([x + w * c - h * s, y + w * s + h * c], axis=-1),
            np.stack([x - h * s, y + h * c], axis=-1),
        ],
        axis=1,
    )
    with np.errstate(invalid="ignore"):
        box = np.concatenate([coords.min(axis=1), coords.max(axis=1)], axis=1)
    aligned = (theta == 0.0) & np.isfinite(parts[:, :4]).all(axis=1)
    return _Rects(coords, box, aligned)


def _box_iou_flat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise IoU of axis-aligned boxes given as row-aligned ``(T, 4)`` arrays ``x0, y0, x1, y1``."""
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0.0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0.0, None)
    inter = iw * ih
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _geom_iou_flat(ga: np.ndarray, gb: np.ndarray) -> np.ndarray:
    """Elementwise shapely IoU of two equally long geometry arrays (the operations of :func:`_iou_matrix`)."""
    inter = shapely.area(shapely.intersection(ga, gb))
    union = shapely.area(ga) + shapely.area(gb) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _rect_iou_flat(ra: _Rects, ia: np.ndarray, rb: _Rects, ib: np.ndarray) -> np.ndarray:
    """IoU of rectangles ``ra[ia[t]]`` and ``rb[ib[t]]`` for every t: numpy when both are axis-aligned,
    shapely (exact rotated geometry) otherwise -- skipped when the bounding boxes do not overlap, where
    the intersection is empty and shapely's IoU is exactly 0.0 too."""
    fast = ra.aligned[ia] & rb.aligned[ib]
    if fast.all():
        return _box_iou_flat(ra.box[ia], rb.box[ib])
    out = np.zeros(ia.size, dtype=np.float64)
    out[fast] = _box_iou_flat(ra.box[ia[fast]], rb.box[ib[fast]])
    slow = np.flatnonzero(~fast)
    a, b = ra.box[ia[slow]], rb.box[ib[slow]]
    with np.errstate(invalid="ignore"):
        apart = (np.minimum(a[:, 2], b[:, 2]) <= np.maximum(a[:, 0], b[:, 0])) | (
            np.minimum(a[:, 3], b[:, 3]) <= np.maximum(a[:, 1], b[:, 1])
        )
    apart &= np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    need = slow[~apart]
    if need.size:
        out[need] = _geom_iou_flat(ra.polygons[ia[need]], rb.polygons[ib[need]])
    return out


def _iou_matrix(ga: np.ndarray, gb: np.ndarray) -> np.ndarray:
    inter = shapely.area(shapely.intersection(ga[:, None], gb[None, :]))
    aa = shapely.area(ga)[:, None]
    ab = shapely.area(gb)[None, :]
    union = aa + ab - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _rectangle_iou_shapely(result: Result, reference: Result, params: Params = _EMPTY) -> float:
    """Reference implementation of :func:`rectangle_iou`: shapely for every pair of rectangles."""
    if not result or not reference:
        return match_regions(np.zeros((len(result), len(reference))), len(result), len(reference), params)
    ga = shapely.polygons(np.stack([_rectangle_coords(i) for i in result]))
    gb = shapely.polygons(np.stack([_rectangle_coords(i) for i in reference]))
    sim = np.where(_label_mask(result, reference, params), _iou_matrix(ga, gb), 0.0)
    return match_regions(sim, len(result), len(reference), params)


def rectangle_iou(result: Result, reference: Result, params: Params = _EMPTY) -> float:
    """IoU of (rotated) rectangles with optimal one-to-one matching; labels must match (see module doc).

    Pairs of axis-aligned rectangles use numpy box arithmetic, pairs involving a rotated one shapely."""
    n, m = len(result), len(reference)
    if not n or not m:
        return match_regions(np.zeros((n, m)), n, m, params)
    ia, ib = np.divmod(np.arange(n * m), m)
    iou = _rect_iou_flat(_rects(result), ia, _rects(reference), ib).reshape(n, m)
    sim = np.where(_label_mask(result, reference, params), iou, 0.0)
    return match_regions(sim, n, m, params)


def _polygon(item: Mapping[str, Any]) -> Any:
    v = item.get("value") or _EMPTY
    pts = np.asarray(v.get("points") or [], dtype=float).reshape(-1, 2)
    sx, sy = _scale(item)
    pts = pts * np.array([sx, sy])
    if len(pts) < 3:
        return shapely.Polygon()
    poly = shapely.Polygon(pts)
    if not poly.is_valid:
        poly = shapely.make_valid(poly)
    return poly


def polygon_iou(result: Result, reference: Result, params: Params = _EMPTY) -> float:
    """Polygon IoU (shapely; invalid polygons are repaired with ``make_valid``) with optimal matching."""
    if not result or not reference:
        return match_regions(np.zeros((len(result), len(reference))), len(result), len(reference), params)
    ga = np.array([_polygon(i) for i in result], dtype=object)
    gb = np.array([_polygon(i) for i in reference], dtype=object)
    sim = np.where(_label_mask(result, reference, params), _iou_matrix(ga, gb), 0.0)
    return match_regions(sim, len(result), len(reference), params)


def keypoint_distance(result: Result, reference: Result, params: Params = _EMPTY) -> float:
    """Keypoints: pair similarity ``max(0, 1 - d / keypoint_tolerance)`` with ``d`` the distance in percent
    units (default tolerance 5), then optimal one-to-one matching; labels must match."""
    if not result or not reference:
        return match_regions(np.zeros((len(result), len(reference))), len(result), len(reference), params)
    tol = float(params.get("keypoint_tolerance", 5.0))

    def xy(item: Mapping[str, Any]) -> tuple[float, float]:
        v = item.get("value") or _EMPTY
        return float(v.get("x", 0)), float(v.get("y", 0))

    a = np.array([xy(i) for i in result])
    b = np.array([xy(i) for i in reference])
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))
    sim = np.clip(1.0 - d / tol, 0.0, 1.0) if tol > 0 else (d == 0).astype(float)
    sim = np.where(_label_mask(result, reference, params), sim, 0.0)
    return match_regions(sim, len(result), len(reference), params)


def _text(result: Result) -> str:
    parts: list[str] = []
    for item in result:
        t = (item.get("value") or _EMPTY).get("text")
        if isinstance(t, list):
            parts.extend(str(x) for x in t)
        elif t is not None:
            parts.append(str(t))
    return "\n".join(parts)


def textarea_similarity(result: Result, reference: Result, params: Params = _EMPTY) -> float:
    """Normalised Levenshtein similarity of the texts (lines joined by newlines), via rapidfuzz.

    ``params["text_metric"] = "indel"`` uses the Indel ratio instead; ``case_sensitive=False`` folds case.
    Surrounding whitespace is ignored.
    """
    a, b = _text(result).strip(), _text(reference).strip()
    if not params.get("case_sensitive", True):
        a, b = a.casefold(), b.casefold()
    if not a and not b:
        return 1.0
    if str(params.get("text_metric", "levenshtein")).lower() == "indel":
        return float(Indel.normalized_similarity(a, b))
    return float(Levenshtein.normalized_similarity(a, b))


# --------------------------------------------------------------------------------------------------
# registry

_BUILTIN: dict[str, Matcher] = {
    "choices": _choices,
    "pairwise": exact_match,
    "taxonomy": exact_match,
    "datetime": exact_match,
    "rating": numeric_difference,
    "number": numeric_difference,
    "labels": span_overlap,
    "timeserieslabels": span_overlap,
    "hypertextlabels": span_overlap,
    "paragraphlabels": span_overlap,
    "rectanglelabels": rectangle_iou,
    "rectangle": rectangle_iou,
    "polygonlabels": polygon_iou,
    "polygon": polygon_iou,
    "keypointlabels": keypoint_distance,
    "keypoint": keypoint_distance,
    "textarea": textarea_similarity,
}
_REGISTRY: dict[str, Matcher] = dict(_BUILTIN)


class _ScoreMemo:
    """Bounded, thread-safe memo of built-in matcher scores shared by every call of the engine.

    Keys are ``scope + digest(result_key(a)) + digest(result_key(b))`` (48 bytes) where ``scope`` digests the
    control type and its params, so a memo entry means "this built-in matcher gave this score for these
    results with these params". Only built-in matchers are memoised (they are pure functions of their
    arguments); :func:`register_matcher` / :func:`unregister_matcher` clear the table and bump
    ``generation`` so that a computation that started before the change cannot store its scores after it.
    When full, the oldest half of the entries is dropped.
    """

    def __init__(self, max_entries: int = 1 << 18) -> None:
        self.max_entries = max_entries
        self.generation = 0
        self._data: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.generation += 1

    def get_many(self, keys: Sequence[bytes]) -> list[float | None]:
        with self._lock:
            get = self._data.get
            return [get(k) for k in keys]

    def put_many(self, keys: Sequence[bytes], values: Sequence[float], generation: int) -> None:
        if self.max_entries <= 0:
            return
        with self._lock:
            if generation != self.generation:
                return  # the registry changed while these were computed
            data = self._data
            if len(data) + len(keys) > self.max_entries:
                drop = max(len(data) // 2, len(data) + len(keys) - self.max_entries)
                for k in list(data)[:drop]:
                    del data[k]
            for k, v in zip(keys[: self.max_entries], values, strict=False):
                data[k] = v


_SCORE_MEMO = _ScoreMemo()


def _memo_scope(control_type: str, params: Params) -> bytes | None:
    """Digest of (control type, params) for :data:`_SCORE_MEMO`; None when params are not canonicalisable."""
    try:
        text = json.dumps([str(control_type).lower(), dict(params)], sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return None
    return _digest(text)


def register_matcher(control_type: str, fn: Matcher) -> None:
    """Register (or replace) the matcher for a control type (the LS result ``type``, case-insensitive)."""
    if not callable(fn):
        raise TypeError("matcher must be callable")
    _REGISTRY[control_type.lower()] = fn
    _SCORE_MEMO.clear()


def unregister_matcher(control_type: str) -> None:
    """Remove a custom matcher; a built-in type falls back to its built-in matcher."""
    key = control_type.lower()
    if key in _BUILTIN:
        _REGISTRY[key] = _BUILTIN[key]
    else:
        _REGISTRY.pop(key, None)
    _SCORE_MEMO.clear()


def _is_builtin(control_type: str) -> bool:
    """True when ``control_type`` is scored by its built-in matcher (not replaced by a custom one)."""
    key = str(control_type).lower()
    fn = _REGISTRY.get(key, exact_match)
    return fn is _BUILTIN.get(key, exact_match)


def get_matcher(control_type: str) -> Matcher:
    """Matcher for a control type; unknown types get :func:`exact_match` on the answer values."""
    return _REGISTRY.get(str(control_type).lower(), exact_match)


def registered_types() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def score_results(
    control_type: str,
    result: Result,
    reference: Result,
    params: Params | None = None,
    matcher: Matcher | None = None,
) -> float:
    """Score ``result`` against ``reference`` in [0, 1]: both empty -> 1, one empty -> 0, else the matcher."""
    result = result or []
    reference = reference or []
    if not result and not reference:
        return 1.0
    if not result or not reference:
        return 0.0
    fn = matcher or get_matcher(control_type)
    value = float(fn(result, reference, params or _EMPTY))
    if math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, value))
