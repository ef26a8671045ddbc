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
"""

from __future__ import annotations

import json
import math
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
        if t in value:
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


def result_key(result: Result) -> str:
    """A canonical, hashable key of a result: equal keys mean equal results for every matcher.

    Item ids, ``origin``, scores and other volatile fields are dropped and items are sorted, so identical
    answers of different annotators dedupe to one key.
    """
    items = [
        json.dumps({k: v for k, v in item.items() if k not in _VOLATILE}, sort_keys=True, default=str)
        for item in result
    ]
    items.sort()
    return "[" + ",".join(items) + "]"


def _label_set(item: Mapping[str, Any]) -> frozenset[Any]:
    value = item.get("value") or _EMPTY
    t = item.get("type")
    if t in value and isinstance(value[t], list):
        return frozenset(_hashable(x) for x in value[t])
    for k in _LABEL_KEYS:
        if k in value and isinstance(value[k], list):
            return frozenset(_hashable(x) for x in value[k])
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

        return pd.Timestamp(v).value / 1e9


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
        iou = np.where(union > 0, inter / union, ((s1 == s2) & (e1 == e2)).astype(float))
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


def _rectangle_coords(item: Mapping[str, Any]) -> np.ndarray:
    v = item.get("value") or _EMPTY
    sx, sy = _scale(item)
    x, y = float(v.get("x", 0)) * sx, float(v.get("y", 0)) * sy
    w, h = float(v.get("width", 0)) * sx, float(v.get("height", 0)) * sy
    theta = math.radians(float(v.get("rotation", 0) or 0))
    c, s = math.cos(theta), math.sin(theta)
    return np.array(
        [
            [x, y],
            [x + w * c, y + w * s],
            [x + w * c - h * s, y + w * s + h * c],
            [x - h * s, y + h * c],
        ]
    )


def _iou_matrix(ga: np.ndarray, gb: np.ndarray) -> np.ndarray:
    inter = shapely.area(shapely.intersection(ga[:, None], gb[None, :]))
    aa = shapely.area(ga)[:, None]
    ab = shapely.area(gb)[None, :]
    union = aa + ab - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def rectangle_iou(result: Result, reference: Result, params: Params = _EMPTY) -> float:
    """IoU of (rotated) rectangles with optimal one-to-one matching; labels must match (see module doc)."""
    if not result or not reference:
        return match_regions(np.zeros((len(result), len(reference))), len(result), len(reference), params)
    ga = shapely.polygons(np.stack([_rectangle_coords(i) for i in result]))
    gb = shapely.polygons(np.stack([_rectangle_coords(i) for i in reference]))
    sim = np.where(_label_mask(result, reference, params), _iou_matrix(ga, gb), 0.0)
    return match_regions(sim, len(result), len(reference), params)


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


def register_matcher(control_type: str, fn: Matcher) -> None:
    """Register (or replace) the matcher for a control type (the LS result ``type``, case-insensitive)."""
    if not callable(fn):
        raise TypeError("matcher must be callable")
    _REGISTRY[control_type.lower()] = fn


def unregister_matcher(control_type: str) -> None:
    """Remove a custom matcher; a built-in type falls back to its built-in matcher."""
    key = control_type.lower()
    if key in _BUILTIN:
        _REGISTRY[key] = _BUILTIN[key]
    else:
        _REGISTRY.pop(key, None)


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
