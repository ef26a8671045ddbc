"""The coded path (each distinct result object keyed once, ``_result_codes``; one preparation shared by the
reports of a ``shared_preparation()`` block) gives the per-row path's codes and numbers, for every control type.

The per-row path is the engine before issue 14: ``pd.factorize(keyf(results))`` over every row, and every
report preparing its controls again. Frames mix rows that share one result object (as frames from the store
do), rows with an equal copy, empty answers, ``None`` and absent rows; ties are frequent (small pools).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import app.metrics.matching as mm
import app.metrics.matrix as mx
from app.metrics import (
    agreement_matrices,
    alpha_report,
    annotator_quality,
    control_alpha,
    kappa_report,
    metrics_report,
    score_results,
    shared_preparation,
    task_agreement,
)

LABELS = ["a", "b", "c"]
PARAMS: dict[str, dict[str, Any]] = {
    "single": {},
    "multi": {"choice": "multiple"},
    "stars": {"maxRating": 5},
    "amount": {"min": 0, "max": 20},
    "ner": {},
    "bbox": {},
    "bbox_p": {"average": "precision"},
    "poly": {},
    "note": {},
}
TYPES = {"single": "choices", "multi": "choices", "stars": "rating", "amount": "number", "ner": "labels",
         "bbox": "rectanglelabels", "bbox_p": "rectanglelabels", "poly": "polygonlabels", "note": "textarea"}

label = st.sampled_from(LABELS)
coord = st.sampled_from([0.0, 5.0, 10.0, 12.5, 30.0])  # few values: coinciding and touching regions, ties


def _item(ctype: str, value: dict[str, Any], draw_id: int) -> dict[str, Any]:
    return {"id": f"r{draw_id}", "from_name": "x", "to_name": "y", "type": ctype, "value": value}


@st.composite
def results(draw: st.DrawFn, control: str) -> list[dict[str, Any]]:
    """One random result (list of items) of the control's type; sometimes empty or without a value."""
    ctype = TYPES[control]
    n = draw(st.integers(0, 2 if control not in ("single", "stars", "amount", "note") else 1))
    out = []
    for k in range(n):
        if control == "single":
            v: dict[str, Any] = {"choices": [draw(label)]}
        elif control == "multi":
            v = {"choices": draw(st.lists(label, min_size=0, max_size=3, unique=True))}
        elif control == "stars":
            v = draw(st.sampled_from([{"rating": 1}, {"rating": 3}, {"rating": 5}, {"rating": 3.0}, {}]))
        elif control == "amount":
            v = draw(st.sampled_from([{"number": 0.0}, {"number": 7.5}, {"number": 20}, {"number": None}, {}]))
        elif control == "ner":
            s = draw(st.integers(0, 8))
            v = {"start": s, "end": s + draw(st.integers(0, 6)), "labels": [draw(label)]}
        elif control in ("bbox", "bbox_p"):
            v = {"x": draw(coord), "y": draw(coord), "width": draw(coord), "height": draw(coord),
                 "rectanglelabels": [draw(label)]}
            rot = draw(st.sampled_from([None, 0, 0.0, 30.0, 90.0]))
            if rot is not None:
                v["rotation"] = rot
        elif control == "poly":
            x, y = draw(coord), draw(coord)
            d = draw(st.sampled_from([0.0, 5.0, 10.0]))
            pts = [[x, y], [x + d, y], [x + d, y + d]] + ([[x, y + d]] if draw(st.booleans()) else [])
            v = {"points": pts, "polygonlabels": [draw(label)]}
        else:
            v = {"text": [draw(st.sampled_from(["", "ok", "OK", "fine", "fine "]))]}
        out.append(_item(ctype, v, k))
    return out


@st.composite
def frames(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Annotations of 2-4 evaluators on 1-6 tasks for a random subset of the controls, plus ground truth."""
    controls = draw(st.lists(st.sampled_from(sorted(TYPES)), min_size=1, max_size=3, unique=True))
    n_tasks = draw(st.integers(1, 6))
    evs = [f"e{k}" for k in range(draw(st.integers(2, 4)))] + (["model:v1"] if draw(st.booleans()) else [])
    rows, gt_rows = [], []
    for c in controls:
        pool = draw(st.lists(results(c), min_size=1, max_size=4))
        for t in range(n_tasks):
            for e in evs:
                how = draw(st.sampled_from(["shared", "shared", "copy", "absent", "none"]))
                if how == "absent":
                    continue
                k = draw(st.integers(0, len(pool) - 1))
                res = None if how == "none" else pool[k] if how == "shared" else copy.deepcopy(pool[k])
                rows.append((t, e, c, TYPES[c], res, 1.0 + t))
            if draw(st.booleans()):
                src = draw(st.sampled_from([None, *evs]))
                gt_rows.append((t, c, TYPES[c], pool[draw(st.integers(0, len(pool) - 1))], src))
    ann = pd.DataFrame(rows, columns=["task", "evaluator", "control", "type", "result", "lead_time"])
    gt = pd.DataFrame(gt_rows, columns=["task", "control", "type", "result", mx.SOURCE_EVALUATOR]) if gt_rows else None
    return ann, gt


def _per_row_codes(results: list[Any], keyf: Any) -> tuple[np.ndarray, Any]:
    """The per-row path: every row's result keyed."""
    return pd.factorize(pd.Series(keyf(results), dtype=object))


def _reports(ann: pd.DataFrame, gt: pd.DataFrame | None) -> dict[str, Any]:
    mm._SCORE_MEMO.clear()  # no score carried over from the other path
    mm._DIGEST_CACHE.clear()
    controls = sorted(set(ann["control"]) | (set(gt["control"]) if gt is not None else set()))
    mats = agreement_matrices(ann, gt, PARAMS, consensus_reference="auto")
    return {
        "matrices": {c: (m.columns, m.matrix, m.counts) for c, m in mats.items()},
        "consensus": {c: (m.matrix, m.counts) for c, m in agreement_matrices(ann, gt, PARAMS, mode="consensus").items()},
        "quality": annotator_quality(ann, gt, PARAMS).table,
        "alpha": {c: control_alpha(ann, PARAMS, c) for c in controls},
        "task": task_agreement(ann, PARAMS),
        "report": metrics_report(ann, gt, PARAMS),
        "kappa": kappa_report(ann, gt, PARAMS),
        "alpha_report": alpha_report(ann, gt, PARAMS),
    }


def _assert_same(a: Any, b: Any) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, tuple | list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)  # bit for bit, nan where nan
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b)
    else:
        assert a == b


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_coded_path_equals_the_per_row_path(data: tuple[pd.DataFrame, pd.DataFrame | None]) -> None:
    ann, gt = data
    coded = _reports(ann, gt)
    with shared_preparation():  # the several reports share one preparation
        shared = _reports(ann, gt)
    original = mx._result_codes
    mx._result_codes = _per_row_codes  # type: ignore[assignment]
    try:
        per_row = _reports(ann, gt)
    finally:
        mx._result_codes = original  # type: ignore[assignment]
    _assert_same(coded, per_row)
    _assert_same(shared, per_row)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_codes_are_the_per_row_codes(data: tuple[pd.DataFrame, pd.DataFrame | None]) -> None:
    ann, gt = data
    ev_index, task_index, controls = mx._setup(ann, gt, None)
    for c in controls:
        sub, g, ctype = mx._control_rows(ann, gt, c, ev_index)
        results = list(sub["result"]) + (list(g["result"]) if g is not None else [])
        keyf, _ = mx._key_function(ctype)
        codes, uniq = mx._result_codes(results, keyf)
        ref_codes, ref_uniq = _per_row_codes(results, keyf)
        np.testing.assert_array_equal(codes, ref_codes)
        assert list(uniq) == list(ref_uniq)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_matrix_cells_equal_a_naive_loop_over_score_results(data: tuple[pd.DataFrame, pd.DataFrame | None]) -> None:
    """Each per-control cell is the mean of ``score_results`` (the matchers' exact semantics: labels must
    match, one-to-one regions, rotation, precision averaging, empty/None answers) over the shared tasks.

    Left out: a choices, rating or number item without a value (``"choices": []``, ``"rating"`` missing,
    ``"number": null``). The engine keys these controls by their answer set or value, so such an item equals
    "nothing selected" (``[]``), where ``score_results`` sees one empty and one non-empty result (0). That
    predates issue 14 and is the same on both paths (the tests above)."""
    ann, _ = data
    hollow = [bool(r) and (not mm._answer_set(r) if c in ("single", "multi") else
                           mm._number(r) is None if c in ("stars", "amount") else False)
              for c, r in zip(ann["control"], ann["result"], strict=True)]
    ann = ann[~np.array(hollow, dtype=bool)]
    with shared_preparation():
        mats = agreement_matrices(ann, None, PARAMS, consensus_reference=None)
    last = ann.drop_duplicates(["task", "evaluator", "control"], keep="last")
    for c, m in mats.items():
        if c is None:
            continue
        sub = last[last["control"] == c]
        by = {(t, e): r for t, e, r in zip(sub["task"], sub["evaluator"], sub["result"], strict=True)}
        for i, a in enumerate(m.evaluators):
            for b in m.evaluators:
                if a == b:
                    continue
                scores = [score_results(TYPES[c], by[(t, a)] or [], by[(t, b)] or [], PARAMS[c])
                          for t in sorted({t for t, _ in by}) if (t, a) in by and (t, b) in by]
                cell = m.cell(a, b)
                assert m.counts[i, m.columns.index(b)] == len(scores)
                if scores:
                    assert cell == pytest.approx(float(np.mean(scores)), abs=1e-12), (c, a, b, [(by.get((t, a)), by.get((t, b))) for t in sorted({t for t, _ in by})])
                else:
                    assert math.isnan(cell)


def test_a_preparation_lives_only_inside_its_block() -> None:
    choice = [{"type": "choices", "value": {"choices": ["a"]}}]
    other = [{"type": "choices", "value": {"choices": ["b"]}}]
    ann = pd.DataFrame({"task": [1, 1, 2, 2], "evaluator": ["e0", "e1", "e0", "e1"], "control": "single",
                        "type": "choices", "result": [choice, choice, choice, other]})
    with shared_preparation():
        ev_index, task_index, _ = mx._setup(ann, None, None)
        first = mx._prepare(ann, None, PARAMS, "single", ev_index, task_index)
        assert mx._prepare(ann, None, PARAMS, "single", ev_index, task_index) is first
        with shared_preparation():  # nested: the outer block's memo
            assert mx._prepare(ann, None, PARAMS, "single", ev_index, task_index) is first
    assert mx._SHARED.get() is None
    ev_index, task_index, _ = mx._setup(ann, None, None)
    assert mx._prepare(ann, None, PARAMS, "single", ev_index, task_index) is not first
    # a frame changed after the block is prepared afresh: the numbers follow the data
    before = agreement_matrices(ann, None, PARAMS, consensus_reference=None)["single"].cell("e0", "e1")
    ann.at[3, "result"] = choice
    after = agreement_matrices(ann, None, PARAMS, consensus_reference=None)["single"].cell("e0", "e1")
    assert (before, after) == (0.5, 1.0)


def test_a_matcher_registered_inside_the_block_is_used() -> None:
    one = [{"type": "mytype", "value": {"v": 1}}]
    two = [{"type": "mytype", "value": {"v": 2}}]
    ann = pd.DataFrame({"task": [1, 1], "evaluator": ["e0", "e1"], "control": "c", "type": "mytype",
                        "result": [one, two]})
    with shared_preparation():
        before = agreement_matrices(ann, None, {}, consensus_reference=None)["c"].cell("e0", "e1")
        mm.register_matcher("mytype", lambda a, b, p: 0.25)
        try:
            after = agreement_matrices(ann, None, {}, consensus_reference=None)["c"].cell("e0", "e1")
        finally:
            mm.unregister_matcher("mytype")
    assert (before, after) == (0.0, 0.25)
