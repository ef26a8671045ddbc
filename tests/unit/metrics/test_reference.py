"""The reference's own evaluator: ``source_evaluator`` in the ground-truth frame (no self-scoring).

Oracle: an evaluator's ground-truth numbers equal those computed with the ground-truth rows it is the source
of removed, and everything that does not involve the ground truth is unchanged by the column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.metrics import (
    GROUND_TRUTH,
    SOURCE_EVALUATOR,
    agreement_matrices,
    agreement_matrix,
    annotator_quality,
    metrics_report,
    pair_disagreements,
)
from tests.unit.metrics.conftest import CONTROLS, PARAMS, make_frames


def _with_own_references(ann: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Ground truth on about 2/3 of the tasks, each the whole result of one evaluator of the task (as an
    accepted annotation or a server flag is), ``source_evaluator`` naming it; the rest from nobody (a fix)."""
    rng = np.random.default_rng(seed)
    rows = []
    for task, g in ann.groupby("task", sort=True):
        u = rng.random()
        if u < 1 / 3:
            continue
        evs = sorted(g["evaluator"].unique())
        src = evs[int(rng.integers(0, len(evs)))] if u < 0.8 else None
        mine = g[g["evaluator"] == src] if src is not None else g[g["evaluator"] == evs[0]]
        by_ctl = dict(zip(mine["control"], mine["result"], strict=True))
        for c, ctype in CONTROLS.items():
            rows.append({"task": task, "control": c, "type": ctype, "result": by_ctl.get(c, []),
                         SOURCE_EVALUATOR: src})
    return pd.DataFrame(rows)


@pytest.fixture(params=[0, 1, 2])
def own(request):
    ann, _ = make_frames(seed=request.param, models=2)
    return ann, _with_own_references(ann, request.param)


def _without(gt: pd.DataFrame, ev: str) -> pd.DataFrame:
    return gt[gt[SOURCE_EVALUATOR].astype(object) != ev].drop(columns=[SOURCE_EVALUATOR])


def test_ground_truth_column_leaves_out_the_source_pair(own):
    ann, gt = own
    mats = agreement_matrices(ann, gt, PARAMS)
    plain = agreement_matrices(ann, gt.drop(columns=[SOURCE_EVALUATOR]), PARAMS)
    evs = mats[None].evaluators
    assert gt[SOURCE_EVALUATOR].notna().any()
    for ev in evs:
        ref = agreement_matrices(ann, _without(gt, ev), PARAMS)
        for c, m in mats.items():
            i = m.evaluators.index(ev)
            np.testing.assert_allclose(m.matrix[i, 0], ref[c].matrix[i, 0], equal_nan=True, err_msg=f"{ev} {c}")
            assert m.counts[i, 0] == ref[c].counts[i, 0], (ev, c)
            # the evaluator-vs-evaluator block does not depend on the reference
            np.testing.assert_array_equal(m.matrix[:-1, 1:], plain[c].matrix[:-1, 1:])
            np.testing.assert_array_equal(m.counts[:-1, 1:], plain[c].counts[:-1, 1:])
    # somebody was the source of a reference they agree with perfectly: scored, it would be 1.0 on those tasks
    src = gt[SOURCE_EVALUATOR].dropna().iloc[0]
    i = evs.index(src)
    assert mats[None].counts[i, 0] < plain[None].counts[i, 0]


def test_single_control_matrix_and_consensus_mode_agree(own):
    ann, gt = own
    for mode in ("pairwise", "consensus"):
        mats = agreement_matrices(ann, gt, PARAMS, mode=mode)
        for c in CONTROLS:
            one = agreement_matrix(ann, gt, PARAMS, control=c, mode=mode)
            np.testing.assert_array_equal(one.matrix, mats[c].matrix)
            np.testing.assert_array_equal(one.counts, mats[c].counts)


def test_accuracy_and_drift_leave_out_the_source_pair_but_volume_agreement_time_keep_it(own):
    ann, gt = own
    q = annotator_quality(ann, gt, PARAMS)
    plain = annotator_quality(ann, gt.drop(columns=[SOURCE_EVALUATOR]), PARAMS)
    t, p = q.table.set_index("evaluator"), plain.table.set_index("evaluator")
    for col in ("volume", "agreement", "agreement_n", "median_lead_time", "answer_entropy"):
        pd.testing.assert_series_equal(t[col], p[col])
    for ev in t.index:
        ref = annotator_quality(ann, _without(gt, ev), PARAMS).table.set_index("evaluator")
        for col in ("accuracy", "accuracy_n", "accuracy_low", "accuracy_high"):
            np.testing.assert_allclose(t.loc[ev, col], ref.loc[ev, col], equal_nan=True, err_msg=f"{ev} {col}")
        own_tasks = set(gt.loc[gt[SOURCE_EVALUATOR] == ev, "task"])
        assert not own_tasks & set(q.drift.loc[q.drift["evaluator"] == ev, "task"])


def test_pair_disagreements_with_ground_truth_skip_own_reference(own):
    ann, gt = own
    for ev in gt[SOURCE_EVALUATOR].dropna().unique():
        got = pair_disagreements(ann, ev, GROUND_TRUTH, PARAMS, ground_truth=gt)
        ref = pair_disagreements(ann, ev, GROUND_TRUTH, PARAMS, ground_truth=_without(gt, ev))
        pd.testing.assert_frame_equal(got, ref)


def test_report_honours_source_evaluator_and_hand_computed_case():
    # t1: A "x" is the reference; B "y"; t2: A "x", B "x", reference "x" from a fix (nobody's own result)
    def row(t, e, v):
        return {"task": t, "evaluator": e, "control": "c", "type": "choices",
                "result": [{"type": "choices", "value": {"choices": [v]}}], "lead_time": 1.0}

    ann = pd.DataFrame([row(1, "A", "x"), row(1, "B", "y"), row(2, "A", "x"), row(2, "B", "x")])
    gt = pd.DataFrame([{"task": 1, "control": "c", "type": "choices",
                        "result": [{"type": "choices", "value": {"choices": ["x"]}}], SOURCE_EVALUATOR: "A"},
                       {"task": 2, "control": "c", "type": "choices",
                        "result": [{"type": "choices", "value": {"choices": ["x"]}}], SOURCE_EVALUATOR: None}])
    r = metrics_report(ann, gt, None)
    assert r["rows"] == ["A", "B", "Avg."] and r["columns"] == [GROUND_TRUTH, "A", "B"]
    assert [row[0] for row in r["matrix"]] == [1.0, 0.5, 0.75]  # A only on t2; B 0 on t1, 1 on t2
    assert [row[0] for row in r["counts"]] == [1, 2, 3]
    assert r["matrix"][0][2] == 0.5 and r["counts"][0][2] == 2  # A vs B still over both tasks
    per = {p["evaluator"]: p for p in r["per_annotator"]}
    assert (per["A"]["accuracy_n"], per["A"]["volume"]) == (1, 2)
    # without the column, A would be scored against its own answer on t1
    r0 = metrics_report(ann, gt.drop(columns=[SOURCE_EVALUATOR]), None)
    assert r0["counts"][0][0] == 2
