"""Matching functions on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from app.metrics import (
    exact_match,
    get_matcher,
    jaccard,
    keypoint_distance,
    polygon_iou,
    rectangle_iou,
    register_matcher,
    result_key,
    score_results,
    span_overlap,
    textarea_similarity,
    unregister_matcher,
)


def choices(*vals):
    return [{"id": "x", "type": "choices", "value": {"choices": list(vals)}}]


def rect(x, y, w, h, rot=0.0, label="car", **extra):
    return {
        "type": "rectanglelabels",
        "value": {"x": x, "y": y, "width": w, "height": h, "rotation": rot, "rectanglelabels": [label]},
        **extra,
    }


def span(s, e, label="ORG"):
    return {"type": "labels", "value": {"start": s, "end": e, "labels": [label]}}


def test_empty_rules_for_every_type():
    for t in [
        "choices",
        "labels",
        "rectanglelabels",
        "polygonlabels",
        "textarea",
        "rating",
        "number",
        "mystery",
    ]:
        assert score_results(t, [], []) == 1.0
        assert score_results(t, [], choices("a")) == 0.0
        assert score_results(t, choices("a"), []) == 0.0


def test_exact_and_jaccard():
    assert exact_match(choices("pos"), choices("pos")) == 1.0
    assert exact_match(choices("pos"), choices("neg")) == 0.0
    assert score_results("choices", choices("a", "b"), choices("b", "a")) == 1.0  # order does not matter
    assert jaccard(choices("a", "b", "c"), choices("b", "c", "d")) == pytest.approx(2 / 4)
    assert score_results("choices", choices("a", "b"), choices("a"), {"choice": "multiple"}) == pytest.approx(
        0.5
    )
    assert score_results("choices", choices("a", "b"), choices("a")) == 0.0  # single: exact
    left = [{"type": "pairwise", "value": {"selected": "left"}}]
    right = [{"type": "pairwise", "value": {"selected": "right"}}]
    assert score_results("pairwise", left, left) == 1.0
    assert score_results("pairwise", left, right) == 0.0
    tax = [{"type": "taxonomy", "value": {"taxonomy": [["Animal", "Cat"], ["Plant"]]}}]
    tax2 = [{"type": "taxonomy", "value": {"taxonomy": [["Plant"], ["Animal", "Cat"]]}}]
    tax3 = [{"type": "taxonomy", "value": {"taxonomy": [["Animal", "Dog"], ["Plant"]]}}]
    assert score_results("taxonomy", tax, tax2) == 1.0
    assert score_results("taxonomy", tax, tax3) == 0.0


def test_numeric_difference():
    r = lambda v: [{"type": "rating", "value": {"rating": v}}]  # noqa: E731
    n = lambda v: [{"type": "number", "value": {"number": v}}]  # noqa: E731
    assert score_results("rating", r(5), r(4), {"maxRating": 5}) == pytest.approx(0.75)
    assert score_results("rating", r(1), r(5), {"maxRating": 5}) == 0.0
    assert score_results("rating", r(3), r(2), {"maxRating": 10}) == pytest.approx(1 - 1 / 9)
    assert score_results("rating", r(3), r(2)) == pytest.approx(0.75)  # default 5 stars
    assert score_results("number", n(10), n(30), {"min": 0, "max": 100}) == pytest.approx(0.8)
    assert score_results("number", n(10), n(10.5)) == 0.0  # no scale: exact
    assert score_results("number", n(10), n(10)) == 1.0


def test_span_overlap_disjoint_nested_partial():
    assert span_overlap([span(0, 10)], [span(20, 30)]) == 0.0
    assert span_overlap([span(0, 10)], [span(0, 10)]) == 1.0
    assert span_overlap([span(2, 6)], [span(0, 10)]) == pytest.approx(4 / 10)  # nested
    assert span_overlap([span(0, 10)], [span(5, 15)]) == pytest.approx(5 / 15)  # partial
    # one-to-one: two spans vs one covering span -> only one can be matched
    two = [span(0, 5), span(5, 10)]
    assert span_overlap(two, [span(0, 10)]) == pytest.approx(2 * 0.5 / 3)
    assert span_overlap(two, [span(0, 10)], {"average": "precision"}) == pytest.approx(0.5 / 2)
    assert span_overlap(two, [span(0, 10)], {"average": "recall"}) == pytest.approx(0.5)
    # optimal matching beats greedy: greedy would pair (0,10) with (0,9) first
    a = [span(0, 10), span(8, 20)]
    b = [span(0, 9), span(9, 20)]
    best = (0.9 + 11 / 12) / 2
    assert span_overlap(a, b) == pytest.approx(best)


def test_span_label_mismatch_counts_as_disagreement():
    assert span_overlap([span(0, 10, "ORG")], [span(0, 10, "PER")]) == 0.0
    assert span_overlap([span(0, 10, "ORG")], [span(0, 10, "PER")], {"require_label": False}) == 1.0
    mixed = [span(0, 10, "ORG"), span(20, 30, "PER")]
    ref = [span(0, 10, "ORG"), span(20, 30, "ORG")]
    assert span_overlap(mixed, ref) == pytest.approx(2 * 1 / 4)


def test_audio_and_timeseries_spans():
    a = [{"type": "labels", "value": {"start": 1.0, "end": 3.0, "labels": ["speech"]}}]
    b = [{"type": "labels", "value": {"start": 2.0, "end": 4.0, "labels": ["speech"]}}]
    assert score_results("labels", a, b) == pytest.approx(1 / 3)
    t1 = [
        {
            "type": "timeserieslabels",
            "value": {
                "start": "2024-01-01T00:00:00",
                "end": "2024-01-01T00:00:10",
                "instant": False,
                "timeserieslabels": ["x"],
            },
        }
    ]
    t2 = [
        {
            "type": "timeserieslabels",
            "value": {
                "start": "2024-01-01T00:00:05",
                "end": "2024-01-01T00:00:10",
                "instant": False,
                "timeserieslabels": ["x"],
            },
        }
    ]
    assert score_results("timeserieslabels", t1, t2) == pytest.approx(0.5)
    p1 = [
        {
            "type": "timeserieslabels",
            "value": {"start": 5, "end": 5, "instant": True, "timeserieslabels": ["x"]},
        }
    ]
    assert score_results("timeserieslabels", p1, p1) == 1.0


def test_rectangle_iou_axis_aligned_and_label():
    assert rectangle_iou([rect(0, 0, 10, 10)], [rect(5, 0, 10, 10)]) == pytest.approx(50 / 150)
    assert rectangle_iou([rect(0, 0, 10, 10)], [rect(20, 20, 5, 5)]) == 0.0
    assert rectangle_iou([rect(0, 0, 10, 10)], [rect(0, 0, 10, 10, label="bus")]) == 0.0
    assert rectangle_iou([rect(2, 2, 4, 4)], [rect(0, 0, 10, 10)]) == pytest.approx(16 / 100)  # nested


def test_rectangle_rotation_about_top_left():
    # 90 degrees clockwise about (10, 10): the box covers x in [0, 10], y in [10, 20]
    assert rectangle_iou([rect(10, 10, 10, 10, rot=90)], [rect(0, 10, 10, 10)]) == pytest.approx(1.0)
    # 45 degrees: intersection with the unrotated square is 100*sqrt(2) - 100
    inter = 100 * math.sqrt(2) - 100
    assert rectangle_iou([rect(0, 0, 10, 10, rot=45)], [rect(0, 0, 10, 10)]) == pytest.approx(
        inter / (200 - inter)
    )
    # 360 degrees is the identity
    assert rectangle_iou([rect(1, 2, 3, 4, rot=360)], [rect(1, 2, 3, 4)]) == pytest.approx(1.0)


def test_rectangle_rotation_uses_pixels_when_original_size_known():
    # 200 x 100 px image: a 10% x 20% box is 20 x 20 px; rotating a square by 90 about its corner
    dims = {"original_width": 200, "original_height": 100}
    rotated = [rect(10, 10, 10, 20, rot=90, **dims)]  # 20x20 px at (20,10) px -> x in [0,20], y in [10,30]
    plain = [rect(0, 10, 10, 20, **dims)]  # x in [0,20] px, y in [10,30] px
    assert rectangle_iou(rotated, plain) == pytest.approx(1.0)


def test_rectangle_one_to_one_matching_and_average():
    a = [rect(0, 0, 10, 10), rect(50, 50, 10, 10)]
    b = [rect(0, 0, 10, 10)]
    assert rectangle_iou(a, b) == pytest.approx(2 / 3)
    assert rectangle_iou(a, b, {"average": "precision"}) == pytest.approx(0.5)
    assert rectangle_iou(b, a, {"average": "precision"}) == pytest.approx(1.0)
    assert rectangle_iou(a, b, {"iou_threshold": 0.5}) == pytest.approx(2 / 3)
    assert rectangle_iou([rect(0, 0, 10, 10)], [rect(5, 0, 10, 10)], {"iou_threshold": 0.5}) == 0.0


def test_polygon_iou():
    sq = lambda pts, lab="a": {"type": "polygonlabels", "value": {"points": pts, "polygonlabels": [lab]}}  # noqa: E731
    unit = sq([[0, 0], [10, 0], [10, 10], [0, 10]])
    half = sq([[0, 0], [10, 0], [10, 5], [0, 5]])
    tri = sq([[0, 0], [10, 0], [0, 10]])
    assert polygon_iou([unit], [half]) == pytest.approx(0.5)
    assert polygon_iou([unit], [tri]) == pytest.approx(0.5)
    assert polygon_iou([unit], [sq([[0, 0], [10, 0], [10, 10], [0, 10]], "b")]) == 0.0
    bowtie = sq([[0, 0], [10, 10], [10, 0], [0, 10]])  # self-intersecting: repaired, area 50
    assert polygon_iou([bowtie], [unit]) == pytest.approx(0.5)


def test_keypoints_and_textarea():
    def kp(x, y, lab="eye"):
        return {
            "type": "keypointlabels",
            "value": {"x": x, "y": y, "width": 1, "keypointlabels": [lab]},
        }  # noqa: E731

    assert keypoint_distance([kp(10, 10)], [kp(10, 10)]) == 1.0
    assert keypoint_distance([kp(10, 10)], [kp(13, 14)]) == pytest.approx(0.0)  # d = 5 = tolerance
    assert keypoint_distance([kp(10, 10)], [kp(11, 10)], {"keypoint_tolerance": 4}) == pytest.approx(0.75)
    assert keypoint_distance([kp(10, 10)], [kp(10, 10, "nose")]) == 0.0
    ta = lambda *t: [{"type": "textarea", "value": {"text": list(t)}}]  # noqa: E731
    assert textarea_similarity(ta("hello"), ta("hello")) == 1.0
    assert textarea_similarity(ta("kitten"), ta("sitting")) == pytest.approx(1 - 3 / 7)
    assert textarea_similarity(ta("Hello "), ta("hello"), {"case_sensitive": False}) == 1.0
    assert score_results("textarea", ta("abc"), ta("xyz")) == 0.0


def test_registry_and_result_key():
    def always_half(result, reference, params):
        return 0.5

    register_matcher("myscore", always_half)
    try:
        assert get_matcher("MyScore") is always_half
        assert score_results("myscore", choices("a"), choices("b")) == 0.5
    finally:
        unregister_matcher("myscore")
    assert get_matcher("myscore") is exact_match
    register_matcher("choices", always_half)
    try:
        assert score_results("choices", choices("a"), choices("a")) == 0.5
    finally:
        unregister_matcher("choices")
    assert score_results("choices", choices("a"), choices("a")) == 1.0
    a = [{"id": "1", "origin": "manual", "type": "choices", "value": {"choices": ["x"]}, "from_name": "c"}]
    b = [{"id": "2", "type": "choices", "value": {"choices": ["x"]}}]
    assert result_key(a) == result_key(b)
    assert result_key(a) != result_key(choices("y"))
