"""Fast paths of region scoring equal the reference paths; the cross-call memo and key cache are safe."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import shapely

import app.metrics.matching as mm
from app.metrics import (
    agreement_matrices,
    agreement_matrix,
    annotator_quality,
    pair_disagreements,
    polygon_iou,
    rectangle_iou,
    register_matcher,
    result_key,
    score_results,
    span_overlap,
    unregister_matcher,
)
from app.metrics._batch import PairScorer

from .conftest import PARAMS, make_frames

LABELS = ["car", "bus", "sign"]


def _box(rng, rotated: float, sized: bool) -> dict:
    item = {
        "type": "rectanglelabels",
        "value": {
            "x": float(rng.uniform(0, 80)),
            "y": float(rng.uniform(0, 80)),
            "width": float(rng.choice([0.0, rng.uniform(-20, 40), rng.uniform(1, 40)], p=[0.05, 0.1, 0.85])),
            "height": float(rng.uniform(0, 40)),
            "rectanglelabels": [LABELS[int(rng.integers(0, 2))]],
        },
        "id": str(rng.integers(1 << 30)),
    }
    r = rng.random()
    if r < rotated:
        item["value"]["rotation"] = float(rng.uniform(-90, 360))
    elif r < 0.7:
        item["value"]["rotation"] = 0
    if sized:
        item.update(original_width=640, original_height=480)
    return item


def _boxes(rng, n: int, rotated: float = 0.0, base: list | None = None) -> list[dict]:
    """n random boxes; with ``base``, jittered copies of it (realistic overlaps) plus extras."""
    sized = bool(rng.random() < 0.5)
    out = []
    for b in base or []:
        if rng.random() < 0.85:
            c = {**b, "value": dict(b["value"])}
            for k in ("x", "y", "width", "height"):
                c["value"][k] = float(c["value"][k] + rng.normal(0, 2))
            if rng.random() < 0.1:
                c["value"]["rectanglelabels"] = [LABELS[2]]
            out.append(c)
    out += [_box(rng, rotated, sized) for _ in range(n)]
    return out


def _spans(rng, n: int, base: list | None = None) -> list[dict]:
    out = []
    for s in base or []:
        if rng.random() < 0.85:
            c = {**s, "value": dict(s["value"])}
            if "start" in c["value"] and isinstance(c["value"]["start"], float):
                c["value"]["start"] += float(rng.normal(0, 1))
            out.append(c)
    for _ in range(n):
        s = float(rng.integers(0, 50))
        e = s + float(rng.choice([0, rng.integers(1, 15), -3]))
        kind = rng.random()
        if kind < 0.15:  # XPath range: containers must match
            v = {
                "start": f"/p[{int(rng.integers(1, 3))}]",
                "end": "/p[1]",
                "startOffset": s,
                "endOffset": e,
            }
        elif kind < 0.18:
            v = {"end": e}  # no start: nan span
        else:
            v = {"start": s, "end": e}
        v["labels"] = [["ORG", "PER"][int(rng.integers(0, 2))]]
        out.append({"type": "labels", "value": v})
    return out


def _polygons(rng, n: int) -> list[dict]:
    out = []
    for _ in range(n):
        cx, cy = rng.uniform(10, 60, 2)
        k = int(rng.integers(3, 7))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        if rng.random() < 0.1:
            ang = rng.uniform(0, 2 * np.pi, k)  # self-intersecting: make_valid
        r = rng.uniform(3, 20, k)
        pts = np.c_[cx + r * np.cos(ang), cy + r * np.sin(ang)].tolist()
        out.append({"type": "polygonlabels", "value": {"points": pts, "polygonlabels": ["a"]}})
    return out


PARAM_SETS = [
    {},
    {"average": "precision"},
    {"average": "recall", "iou_threshold": 0.3},
    {"require_label": False},
    {"iou_threshold": 0.5, "average": "f1"},
]


def _pairs(rng, make, n_results: int = 40) -> list[list[dict]]:
    results: list[list[dict]] = [[]]
    for _ in range(n_results):
        if results and rng.random() < 0.6:
            base = results[int(rng.integers(0, len(results)))]
            results.append(make(rng, int(rng.integers(0, 3)), base))
        else:
            results.append(make(rng, int(rng.integers(1, 11))))
    return results


# --------------------------------------------------------------------------------------------------
# geometry: the numpy box IoU equals shapely


@pytest.mark.parametrize("seed", range(5))
def test_axis_aligned_iou_equals_shapely(seed):
    rng = np.random.default_rng(seed)
    items = [_box(rng, rotated=0.0, sized=bool(seed % 2)) for _ in range(300)]
    r = mm._rects(items)
    assert r.aligned.all()
    ia, ib = np.divmod(np.arange(len(items) ** 2), len(items))
    fast = mm._box_iou_flat(r.box[ia], r.box[ib])
    geoms = shapely.polygons(np.stack([mm._rectangle_coords(i) for i in items]))
    ref = mm._iou_matrix(geoms, geoms).ravel()
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12)
    assert (fast > 0).sum() > 100  # the random boxes do overlap
    assert np.array_equal(np.diag(fast.reshape(300, 300)), (r.box[:, 2] > r.box[:, 0]) & (r.box[:, 3] > r.box[:, 1]))


def test_rect_coords_vectorised_equal_scalar_coords():
    rng = np.random.default_rng(7)
    items = [_box(rng, rotated=0.5, sized=bool(k % 2)) for k in range(200)]
    r = mm._rects(items)
    assert np.array_equal(r.coords, np.stack([mm._rectangle_coords(i) for i in items]))
    rot = [bool(float(i["value"].get("rotation", 0) or 0)) for i in items]
    assert np.array_equal(r.aligned, ~np.array(rot))


@pytest.mark.parametrize("rotated", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("params", PARAM_SETS)
def test_rectangle_iou_equals_shapely_reference(rotated, params):
    rng = np.random.default_rng(int(rotated * 10) + len(params))
    results = _pairs(rng, lambda g, n, base=None: _boxes(g, n, rotated, base))
    for a in results:
        for b in results[::3]:
            fast = score_results("rectanglelabels", a, b, params)
            ref = score_results("rectanglelabels", a, b, params, matcher=mm._rectangle_iou_shapely)
            assert fast == pytest.approx(ref, abs=1e-12)


# --------------------------------------------------------------------------------------------------
# batched scoring equals the per-pair matchers exactly


def _check_batch(ctype: str, results: list, params: dict) -> None:
    K = len(results)
    ka, kb = np.divmod(np.arange(K * K), K)
    got = PairScorer(ctype, params, results)(ka, kb)
    ref = np.array([score_results(ctype, results[a], results[b], params) for a, b in zip(ka, kb, strict=True)])
    assert np.array_equal(got, ref), np.abs(got - ref).max()


@pytest.mark.parametrize("params", PARAM_SETS)
@pytest.mark.parametrize("rotated", [0.0, 0.4])
def test_batched_rectangles_equal_per_pair(params, rotated):
    rng = np.random.default_rng(11)
    results = _pairs(rng, lambda g, n, base=None: _boxes(g, n, rotated, base))
    results.append(_boxes(rng, 9))  # >= 8 regions per side: linear_sum_assignment path
    results.append(_boxes(rng, 0, base=results[-1]))
    _check_batch("rectanglelabels", results, params)


@pytest.mark.parametrize("params", PARAM_SETS)
def test_batched_spans_equal_per_pair(params):
    rng = np.random.default_rng(12)
    _check_batch("labels", _pairs(rng, _spans), params)
    _check_batch("timeserieslabels", _pairs(rng, _spans), params)


@pytest.mark.parametrize("params", PARAM_SETS[:3])
def test_batched_polygons_equal_per_pair(params):
    rng = np.random.default_rng(13)
    results = [[]] + [_polygons(rng, int(rng.integers(1, 5))) for _ in range(15)]
    results.append([{**results[3][0]}])
    _check_batch("polygonlabels", results, params)


def test_batch_keeps_per_pair_errors_and_fallbacks():
    good = [{"type": "rectanglelabels", "value": {"x": 1, "y": 1, "width": 5, "height": 5, "rectanglelabels": ["a"]}}]
    bad = [{"type": "rectanglelabels", "value": {"x": "oops", "y": 1, "width": 5, "height": 5}}]
    # a result that does not parse still follows the empty rules without calling the matcher ...
    assert PairScorer("rectanglelabels", {}, [bad, []])(np.array([0, 1]), np.array([1, 0])).tolist() == [0.0, 0.0]
    # ... and raises like the matcher when it is scored
    with pytest.raises(ValueError):
        PairScorer("rectanglelabels", {}, [good, bad])(np.array([0]), np.array([1]))
    with pytest.raises(ValueError, match="average"):
        PairScorer("rectanglelabels", {"average": "bogus"}, [good, good])(np.array([0]), np.array([1]))
    assert PairScorer("rectanglelabels", {}, [good, good])(np.array([0]), np.array([1])).tolist() == [1.0]


def test_matchers_are_unchanged_on_hand_cases():
    a = [{"type": "rectanglelabels", "value": {"x": 0, "y": 0, "width": 10, "height": 10, "rectanglelabels": ["a"]}}]
    b = [{"type": "rectanglelabels", "value": {"x": 5, "y": 0, "width": 10, "height": 10, "rectanglelabels": ["a"]}}]
    assert rectangle_iou(a, b) == pytest.approx(50 / 150)
    s = [{"type": "labels", "value": {"start": 0, "end": 10, "labels": ["x"]}}]
    t = [{"type": "labels", "value": {"start": 5, "end": 10, "labels": ["x"]}}]
    assert span_overlap(s, t) == 0.5
    sq = [{"type": "polygonlabels", "value": {"points": [[0, 0], [2, 0], [2, 2], [0, 2]], "polygonlabels": ["p"]}}]
    assert polygon_iou(sq, sq) == 1.0


# --------------------------------------------------------------------------------------------------
# engine: fast paths vs the shapely reference matcher, memo and key cache


def _region_frames(seed: int = 0, rotated: float = 0.2):
    rng = np.random.default_rng(seed)
    ann, gt = make_frames(seed=seed, n_tasks=40)
    truth = {t: _boxes(rng, int(rng.integers(1, 5)), rotated) for t in ann["task"].unique()}
    ann = ann.copy()
    res = list(ann["result"])
    for n, (c, t) in enumerate(zip(ann["control"], ann["task"], strict=True)):
        if c == "bbox":
            res[n] = _boxes(rng, int(rng.random() < 0.3), rotated, truth[t])
    ann["result"] = pd.Series(res, index=ann.index, dtype=object)
    return ann, gt


def test_engine_fast_path_equals_shapely_reference():
    ann, gt = _region_frames()
    fast = agreement_matrices(ann, gt, PARAMS)
    register_matcher("rectanglelabels", mm._rectangle_iou_shapely)  # custom matcher: per-pair reference
    try:
        ref = agreement_matrices(ann, gt, PARAMS)
    finally:
        unregister_matcher("rectanglelabels")
    for c in fast:
        np.testing.assert_allclose(fast[c].matrix, ref[c].matrix, rtol=0, atol=1e-12, equal_nan=True)
        assert np.array_equal(fast[c].counts, ref[c].counts)
    assert np.isfinite(fast["bbox"].matrix).sum() > 20


def test_memo_is_shared_and_invalidated_by_register_matcher():
    ann, gt = _region_frames(seed=1)
    mm._SCORE_MEMO.clear()
    before = agreement_matrix(ann, gt, PARAMS, control="bbox")
    filled = len(mm._SCORE_MEMO)
    assert filled > 0
    # a second engine function reuses the scores: nothing new is computed for the same control
    calls = []
    real = mm.rectangle_iou

    def counting(result, reference, params):
        calls.append(1)
        return real(result, reference, params)

    quality = annotator_quality(ann, gt, PARAMS, controls=["bbox"])
    assert len(mm._SCORE_MEMO) == filled
    generation = mm._SCORE_MEMO.generation

    register_matcher("rectanglelabels", lambda r, ref, p: 0.25)
    assert len(mm._SCORE_MEMO) == 0 and mm._SCORE_MEMO.generation == generation + 1
    custom = agreement_matrix(ann, gt, PARAMS, control="bbox")
    assert not np.allclose(np.nan_to_num(custom.matrix), np.nan_to_num(before.matrix))
    # a custom matcher is never memoised
    assert len(mm._SCORE_MEMO) == 0
    register_matcher("rectanglelabels", counting)
    again = agreement_matrix(ann, gt, PARAMS, control="bbox")
    assert calls and len(mm._SCORE_MEMO) == 0
    unregister_matcher("rectanglelabels")
    after = agreement_matrix(ann, gt, PARAMS, control="bbox")
    assert np.array_equal(after.matrix, before.matrix, equal_nan=True)
    assert np.array_equal(again.matrix, before.matrix, equal_nan=True)
    q2 = annotator_quality(ann, gt, PARAMS, controls=["bbox"])
    assert q2.table.equals(quality.table)


def test_memo_ignores_scores_computed_before_a_registry_change():
    memo = mm._ScoreMemo(max_entries=10)
    gen = memo.generation
    memo.clear()  # what register_matcher does
    memo.put_many([b"k"], [0.5], gen)
    assert len(memo) == 0 and memo.get_many([b"k"]) == [None]
    memo.put_many([bytes([i]) for i in range(25)], [0.1] * 25, memo.generation)
    assert 0 < len(memo) <= 10
    memo.put_many([b"x%d" % i for i in range(7)], [0.2] * 7, memo.generation)
    assert len(memo) <= 10 and memo.get_many([b"x6"]) == [0.2]


def test_memo_scope_separates_params_and_types():
    ann, gt = _region_frames(seed=2)
    mm._SCORE_MEMO.clear()
    f1 = agreement_matrix(ann, gt, PARAMS, control="bbox")
    prec = agreement_matrix(ann, gt, {**PARAMS, "bbox": {"average": "precision"}}, control="bbox")
    mm._SCORE_MEMO.clear()
    assert np.array_equal(prec.matrix, agreement_matrix(ann, gt, {"bbox": {"average": "precision"}}, control="bbox").matrix, equal_nan=True)
    assert np.array_equal(f1.matrix, agreement_matrix(ann, gt, PARAMS, control="bbox").matrix, equal_nan=True)
    assert not np.allclose(np.nan_to_num(f1.matrix), np.nan_to_num(prec.matrix))


def test_pair_disagreements_shares_the_memo_and_equals_per_pair():
    ann, gt = _region_frames(seed=3)
    mm._SCORE_MEMO.clear()
    a, b = sorted(ann["evaluator"].unique())[:2]
    d = pair_disagreements(ann, a, b, PARAMS, control="bbox")
    left = ann[(ann["evaluator"] == a) & (ann["control"] == "bbox")].set_index("task")["result"]
    right = ann[(ann["evaluator"] == b) & (ann["control"] == "bbox")].set_index("task")["result"]
    shared = left.index.intersection(right.index)
    expect = {t: 1 - score_results("rectanglelabels", left[t], right[t], {}) for t in shared}
    expect = {t: v for t, v in expect.items() if v > 1e-12}
    assert dict(zip(d["task"], d["disagreement"], strict=True)) == pytest.approx(expect, abs=1e-12)
    n = len(mm._SCORE_MEMO)
    assert n > 0
    pair_disagreements(ann, a, b, PARAMS, control="bbox")
    assert len(mm._SCORE_MEMO) == n


def test_result_digest_cache_is_content_addressed():
    cache = mm._DigestCache(max_entries=64)
    key = lambda r: mm._digest(result_key(r or []))  # noqa: E731
    r = [{"id": "1", "type": "labels", "value": {"start": 1, "end": 4, "labels": ["A"]}}]
    other = [{"type": "labels", "value": {"labels": ["A"], "end": 4, "start": 1}}]
    odd = [{"type": "labels", "value": {"start": lambda: 1, "end": 4, "labels": ["A"]}}]  # not picklable
    assert cache.digests([r, other, None, odd]) == [key(r), key(other), key([]), key(odd)]
    assert key(r) == key(other) and len(cache) == 3
    # numpy values whose raw bytes coincide but whose keys differ (marshal would confuse them)
    scalar = [{"type": "number", "value": {"number": np.int64(1)}}]
    array = [{"type": "number", "value": {"number": np.array([1])}}]
    assert key(scalar) != key(array)
    assert cache.digests([scalar, array]) == [key(scalar), key(array)]
    assert cache.digests([array, scalar]) == [key(array), key(scalar)]
    r[0]["value"]["end"] = 9  # mutated in place after it was keyed: the cache must not serve the old digest
    assert cache.digests([r]) == [key(r)] and key(r) != key(other)
    many = [[{"type": "x", "value": {"n": i}}] for i in range(100)]
    for chunk in (many[:30], many[30:60], many[60:90]):
        assert cache.digests(chunk) == [key(x) for x in chunk]
        assert len(cache) <= 64
    assert cache.digests(many) == [key(x) for x in many]  # too large to cache: still right
    assert mm.result_digests([r, None]) == [key(r), key([])]


def test_concurrent_calls_agree_with_serial():
    ann, gt = _region_frames(seed=4)
    mm._SCORE_MEMO.clear()
    serial = agreement_matrices(ann, gt, PARAMS)
    mm._SCORE_MEMO.clear()
    out: list = []

    def work():
        out.append(agreement_matrices(ann, gt, PARAMS))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 4
    for res in out:
        for c in serial:
            assert np.array_equal(res[c].matrix, serial[c].matrix, equal_nan=True)
