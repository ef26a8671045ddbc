"""Batched scoring of many (result, reference) pairs of one control (internal).

:func:`score_code_pairs` returns ``score_results(ctype, reps[ka[n]], reps[kb[n]], params)`` for every n,
the same numbers as the per-pair loop it replaces, computed as follows:

1. the shared memo (:data:`app.metrics.matching._SCORE_MEMO`) answers pairs of results already scored
   by a built-in matcher with the same params, in this call or an earlier one (``agreement_matrices``
   then ``annotator_quality`` then ``pair_disagreements`` on the same frame);
2. the remaining pairs of the built-in *region* matchers (:func:`~app.metrics.matching.rectangle_iou`,
   :func:`~app.metrics.matching.span_overlap`, :func:`~app.metrics.matching.polygon_iou`) are scored
   together: each distinct result is parsed once, every (region_i, region_j) of every pair becomes one
   element of flat index arrays, and the IoUs of all of them come from one elementwise numpy (or
   vectorised shapely, for rotated rectangles and polygons) pass -- the very functions the per-pair
   matchers call, so the similarities are bit-for-bit the same. Labels, containers, ``iou_threshold``
   and NaN handling are applied as in the matchers;
3. one-to-one matching: when every region of a pair overlaps at most one region of the other side
   (the common case) and the smaller side has at most 7 regions, the optimal matching is "take every
   non-zero similarity" and its sum, accumulated in row order by ``bincount``, equals
   ``sim[linear_sum_assignment(sim)].sum()`` exactly (numpy sums fewer than 8 values left to right).
   Other pairs run :func:`~app.metrics.matching.match_regions`' assignment one by one;
4. anything else (custom or non-region matchers, results that fail to parse) calls
   :func:`~app.metrics.matching.score_results` per pair, as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from app.metrics.matching import (
    _SCORE_MEMO,
    _geom_iou_flat,
    _interval_iou_flat,
    _is_builtin,
    _label_set,
    _memo_scope,
    _polygon,
    _rect_iou_flat,
    _rect_parts,
    _rects_from_parts,
    _span,
    get_matcher,
    polygon_iou,
    rectangle_iou,
    score_results,
    span_overlap,
)

__all__ = ["PairScorer", "score_code_pairs"]

#: flat (region_i, region_j) elements per vectorised chunk
CHUNK_ELEMENTS = 1 << 20
#: a conflict-free pair is summed without linear_sum_assignment only below this many matches
_SEQUENTIAL_SUM_MAX = 7

_KINDS = {rectangle_iou: "rect", span_overlap: "span", polygon_iou: "polygon"}


class PairScorer:
    """Scores pairs of the distinct results ``reps`` of one control (see the module doc).

    ``rep_digests[k]`` is ``_digest(result_key(reps[k]))`` (:func:`~app.metrics.matching.result_digests`)
    when known; it enables the cross-call memo. Parsed regions are kept for the scorer's lifetime (one
    control of one call)."""

    def __init__(
        self,
        ctype: str,
        params: Mapping[str, Any] | None,
        reps: Sequence[Any],
        rep_digests: Sequence[bytes] | None = None,
    ) -> None:
        self.ctype = ctype
        self.params: Mapping[str, Any] = params or {}
        self.reps = reps
        self.rep_digests = rep_digests
        self._regions: _Regions | None = None

    def __call__(self, ka: np.ndarray, kb: np.ndarray) -> np.ndarray:
        """``score_results(ctype, reps[ka[n]], reps[kb[n]], params)`` for every n."""
        ka = np.asarray(ka, np.int64).ravel()
        kb = np.asarray(kb, np.int64).ravel()
        out = np.empty(ka.size, dtype=np.float64)
        if ka.size == 0:
            return out
        generation = _SCORE_MEMO.generation
        scope = None
        if self.rep_digests is not None and _is_builtin(self.ctype):
            scope = _memo_scope(self.ctype, self.params)
        memo_keys: list[bytes] = []
        todo = np.arange(ka.size)
        if scope is not None:
            dg = self.rep_digests
            assert dg is not None
            memo_keys = [scope + dg[a] + dg[b] for a, b in zip(ka.tolist(), kb.tolist(), strict=True)]
            found = _SCORE_MEMO.get_many(memo_keys)
            hit = np.array([v is not None for v in found], dtype=bool)
            if hit.any():
                out[hit] = [v for v in found if v is not None]
            todo = np.flatnonzero(~hit)
        if todo.size:
            vals = self._compute(ka[todo], kb[todo])
            out[todo] = vals
            if scope is not None:
                _SCORE_MEMO.put_many([memo_keys[i] for i in todo.tolist()], vals.tolist(), generation)
        return out

    def _compute(self, ka: np.ndarray, kb: np.ndarray) -> np.ndarray:
        kind = _KINDS.get(get_matcher(self.ctype))  # type: ignore[arg-type]
        if kind is not None:
            try:
                require_label = bool(self.params.get("require_label", True))
                thr = float(self.params.get("iou_threshold", 0.0))
                average = str(self.params.get("average", "f1")).lower()
            except (TypeError, ValueError):
                kind = None  # the matcher raises the error on the pairs that reach it
            else:
                if average not in ("f1", "precision", "recall"):
                    kind = None
        if kind is None:
            reps, ctype, p = self.reps, self.ctype, self.params
            return np.array(
                [score_results(ctype, reps[a], reps[b], p) for a, b in zip(ka.tolist(), kb.tolist(), strict=True)],
                dtype=np.float64,
            )
        if self._regions is None or self._regions.kind != kind or self._regions.require_label != require_label:
            self._regions = _Regions(kind, self.reps, require_label)
        return _region_scores(self._regions, self.ctype, self.params, ka, kb, thr, average)


def score_code_pairs(
    ctype: str,
    params: Mapping[str, Any] | None,
    reps: Sequence[Any],
    ka: np.ndarray,
    kb: np.ndarray,
    rep_digests: Sequence[bytes] | None = None,
) -> np.ndarray:
    """One-shot :class:`PairScorer`: ``score_results(ctype, reps[ka[n]], reps[kb[n]], params)``."""
    return PairScorer(ctype, params, reps, rep_digests)(ka, kb)


class _Regions:
    """The regions of the distinct results in use, concatenated; ``off[k]``/``cnt[k]`` locate result k."""

    def __init__(self, kind: str, reps: Sequence[Any], require_label: bool) -> None:
        K = len(reps)
        self.kind = kind
        self.reps = reps
        self.require_label = require_label
        self.off = np.zeros(K, np.int64)
        self.cnt = np.zeros(K, np.int64)
        self.bad = np.zeros(K, bool)  # a result that does not parse is scored by the matcher itself
        parsed: list[Any] = []
        labels: list[Any] = []
        containers: list[Any] = []
        parse = {"rect": _rect_parts, "span": _span, "polygon": _polygon}[kind]
        n = 0
        for k in range(K):
            items = reps[k] or []
            self.cnt[k] = len(items)
            try:
                geo = [parse(i) for i in items]
                lab = [_label_set(i) for i in items] if require_label else []
            except Exception:  # the per-pair matcher raises it again, if it is ever called
                self.bad[k] = True
                continue
            self.off[k] = n
            n += len(items)
            parsed += geo
            labels += lab
        self.labels = _codes(labels) if require_label else np.zeros(n, np.int64)
        if kind == "rect":
            self.rects = _rects_from_parts(np.array(parsed, dtype=np.float64).reshape(-1, 5))
        elif kind == "span":
            containers = [c for c, _, _ in parsed]
            iv = np.array([[s, e] for _, s, e in parsed], dtype=float).reshape(-1, 2)
            iv.sort(axis=1)
            self.intervals = iv
            self.containers = _codes(containers)
        else:
            self.geoms = np.empty(len(parsed), dtype=object)
            self.geoms[:] = parsed

    def similarity(self, ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
        """Masked pair similarity of regions ``ra[t]`` and ``rb[t]``, as the matchers build it."""
        if self.kind == "rect":
            sim = _rect_iou_flat(self.rects, ra, self.rects, rb)
            mask = self.labels[ra] == self.labels[rb]
        elif self.kind == "span":
            sim = _interval_iou_flat(self.intervals[ra], self.intervals[rb])
            mask = (self.containers[ra] == self.containers[rb]) & (self.labels[ra] == self.labels[rb])
        else:
            sim = _geom_iou_flat(self.geoms[ra], self.geoms[rb])
            mask = self.labels[ra] == self.labels[rb]
        return np.where(mask, np.nan_to_num(sim), 0.0)


def _codes(values: list[Any]) -> np.ndarray:
    """Integer codes with ``codes[i] == codes[j]`` iff ``values[i] == values[j]`` (hash equality)."""
    table: dict[Any, int] = {}
    return np.array([table.setdefault(v, len(table)) for v in values], dtype=np.int64)


def _region_scores(
    regions: _Regions,
    ctype: str,
    params: Mapping[str, Any],
    ka: np.ndarray,
    kb: np.ndarray,
    thr: float,
    average: str,
) -> np.ndarray:
    na, nb = regions.cnt[ka], regions.cnt[kb]
    out = np.empty(ka.size, dtype=np.float64)
    # score_results' rules: both empty -> 1, one empty -> 0 (the matcher is not called)
    empty = (na == 0) | (nb == 0)
    out[empty] = ((na == 0) & (nb == 0))[empty].astype(np.float64)
    bad = ~empty & (regions.bad[ka] | regions.bad[kb])
    for n in np.flatnonzero(bad).tolist():
        out[n] = score_results(ctype, regions.reps[ka[n]], regions.reps[kb[n]], params)
    live = np.flatnonzero(~empty & ~bad)
    if live.size:
        sizes = na[live] * nb[live]
        ends = np.cumsum(sizes)
        lo = 0
        while lo < live.size:
            base = ends[lo - 1] if lo else 0
            hi = max(lo + 1, int(np.searchsorted(ends, base + CHUNK_ELEMENTS, side="right")))
            sel = live[lo:hi]
            out[sel] = _match_chunk(regions, ka[sel], kb[sel], thr, average, params)
            lo = hi
    return out


def _match_chunk(
    regions: _Regions,
    ka: np.ndarray,
    kb: np.ndarray,
    thr: float,
    average: str,
    params: Mapping[str, Any],
) -> np.ndarray:
    P = ka.size
    na, nb = regions.cnt[ka], regions.cnt[kb]
    sizes = na * nb
    starts = np.cumsum(sizes) - sizes
    pid = np.repeat(np.arange(P), sizes)
    local = np.arange(int(sizes.sum()), dtype=np.int64) - starts[pid]
    nbp = nb[pid]
    i = local // nbp
    j = local - i * nbp
    sim = regions.similarity(regions.off[ka][pid] + i, regions.off[kb][pid] + j)
    if thr > 0:
        sim = np.where(sim >= thr, sim, 0.0)
    # conflict-free pairs: every row and every column has at most one non-zero similarity
    nz = sim != 0
    row = (np.cumsum(na) - na)[pid] + i
    col = (np.cumsum(nb) - nb)[pid] + j
    conflict = np.minimum(na, nb) > _SEQUENTIAL_SUM_MAX
    conflict[np.repeat(np.arange(P), na)[np.bincount(row[nz], minlength=int(na.sum())) > 1]] = True
    conflict[np.repeat(np.arange(P), nb)[np.bincount(col[nz], minlength=int(nb.sum())) > 1]] = True
    total = np.bincount(pid[nz], weights=sim[nz], minlength=P)
    fa, fb = na.astype(np.float64), nb.astype(np.float64)
    if average == "precision":
        value = total / fa
    elif average == "recall":
        value = total / fb
    else:
        value = 2.0 * total / (fa + fb)
    for p in np.flatnonzero(conflict).tolist():
        # match_regions' assignment and sum (the block is already NaN-free and thresholded)
        block = sim[starts[p] : starts[p] + sizes[p]].reshape(int(na[p]), int(nb[p]))
        r, c = linear_sum_assignment(block, maximize=True)
        t = float(block[r, c].sum())
        n_r, n_ref = int(na[p]), int(nb[p])
        value[p] = t / n_r if average == "precision" else t / n_ref if average == "recall" else 2.0 * t / (n_r + n_ref)
    value = np.where(np.isnan(value), 0.0, value)
    return np.minimum(1.0, np.maximum(0.0, value))
