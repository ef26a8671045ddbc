"""``--stat kappa|alpha`` reports, the Dawid-Skene consensus column and the two ground-truth numbers, on small
hand-made frames, against the reference libraries (scikit-learn, krippendorff, statsmodels: test-only oracles)."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from app.metrics import (
    CONSENSUS_DS,
    GROUND_TRUTH,
    SOURCE_EVALUATOR,
    agreement_matrices,
    agreement_matrix,
    alpha_report,
    annotator_quality,
    dawid_skene,
    dawid_skene_consensus,
    kappa_matrices,
    kappa_report,
    metrics_report,
)


def choice(v: str | None, name: str = "cat") -> list[dict]:
    return [] if v is None else [{"from_name": name, "to_name": "t", "type": "choices", "value": {"choices": [v]}}]


def rating(v: int | None, name: str = "stars") -> list[dict]:
    return [] if v is None else [{"from_name": name, "to_name": "t", "type": "rating", "value": {"rating": v}}]


def frame(answers: dict[str, list[str | None]], control: str = "cat", *, skip: str = "-") -> pd.DataFrame:
    """evaluator -> answers per task (``skip`` = not annotated, ``None`` = empty answer)."""
    rows = []
    for ev, vals in answers.items():
        for t, v in enumerate(vals, start=1):
            if v != skip:
                rows.append({"task": t, "evaluator": ev, "control": control, "type": "choices", "result": choice(v, control)})
    return pd.DataFrame(rows)


RNG = np.random.default_rng(12)
LABELS = ["x", "y", "z"]
# 5 evaluators x 30 tasks with gaps and empty answers
ANSWERS = {
    ev: [("-" if RNG.random() < 0.15 else (None if RNG.random() < 0.05 else str(RNG.choice(LABELS)))) for _ in range(30)]
    for ev in ("a", "b", "c", "d", "e")
}


def test_kappa_matrix_matches_sklearn_per_pair_and_against_ground_truth() -> None:
    ann = frame(ANSWERS)
    gt_vals = [str(RNG.choice(LABELS)) for _ in range(30)]
    gt = pd.DataFrame([{"task": t, "control": "cat", "type": "choices", "result": choice(v),
                        SOURCE_EVALUATOR: "a" if t <= 5 else None} for t, v in enumerate(gt_vals, start=1)])
    mats, skipped = kappa_matrices(ann, gt)
    m = mats["cat"]
    assert skipped == {} and m.columns == (GROUND_TRUTH, *"abcde") and m.mode == "kappa"
    for i, a in enumerate("abcde"):
        for j, b in enumerate("abcde"):
            shared = [t for t in range(30) if ANSWERS[a][t] not in ("-", None) and ANSWERS[b][t] not in ("-", None)]
            if a == b:
                assert math.isnan(m.matrix[i, j + 1])
                continue
            expect = cohen_kappa_score([ANSWERS[a][t] for t in shared], [ANSWERS[b][t] for t in shared])
            assert m.matrix[i, j + 1] == pytest.approx(expect, abs=1e-12)
            assert m.counts[i, j + 1] == len(shared)
        # against the reference, without a's own tasks 1-5
        own = range(5) if a == "a" else range(0)
        shared = [t for t in range(30) if ANSWERS[a][t] not in ("-", None) and t not in own]
        assert m.matrix[i, 0] == pytest.approx(cohen_kappa_score([ANSWERS[a][t] for t in shared],
                                                                 [gt_vals[t] for t in shared]), abs=1e-12)
    assert m.matrix[-1, 1] == pytest.approx(np.nanmean(m.matrix[:-1, 1]))
    rep = kappa_report(ann, gt, control="cat")
    assert rep["rows"][:5] == list("abcde") and rep["reasons"][0][1] == "diagonal" and rep["matrix"][0][1] is None


def test_kappa_undefined_cells_are_null_with_a_reason() -> None:
    ann = frame({"a": ["x", "x", "-"], "b": ["x", "x", "-"], "c": ["-", "-", "y"]})
    rep = kappa_report(ann, None)
    r = {name: i for i, name in enumerate(rep["rows"])}
    c = {name: i for i, name in enumerate(rep["columns"])}
    assert rep["matrix"][r["a"]][c["b"]] is None  # sklearn gives nan (with a warning): constant answers
    assert rep["reasons"][r["a"]][c["b"]].startswith("undefined: no variation")
    assert rep["reasons"][r["a"]][c["c"]] == "no shared task with an answer from both"
    assert rep["reasons"][r["a"]][c[GROUND_TRUTH]] == "no shared task with an answer from both"


def test_alpha_and_fleiss_match_krippendorff_and_statsmodels_on_a_complete_design() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(1, 6, 40)
    noisy = {ev: [int(np.clip(v + rng.integers(-1, 2), 1, 5)) if rng.random() < 0.5 else int(v) for v in truth]
             for ev in ("a", "b", "c")}
    rows = [{"task": t, "evaluator": ev, "control": "stars", "type": "rating", "result": rating(v)}
            for ev, vals in noisy.items() for t, v in enumerate(vals)]
    cats = {ev: [str(RNG.choice(LABELS)) if rng.random() < 0.4 else "x" for _ in range(40)] for ev in ("a", "b", "c")}
    rows += [{"task": t, "evaluator": ev, "control": "cat", "type": "choices", "result": choice(v)}
             for ev, vals in cats.items() for t, v in enumerate(vals)]
    ann = pd.DataFrame(rows)
    rep = alpha_report(ann, None, {"stars": {"maxRating": 5}})
    stars, cat = rep["by_control"]["stars"], rep["by_control"]["cat"]
    data = np.array([noisy[e] for e in "abc"], dtype=float)
    assert stars["level"] == "ordinal"
    assert stars["alpha"] == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal",
                                                               value_domain=[1, 2, 3, 4, 5]), abs=1e-12)
    table = np.array([[sum(noisy[e][t] == k for e in "abc") for k in range(1, 6)] for t in range(40)])
    table = table[:, table.sum(axis=0) > 0]
    assert stars["fleiss_kappa"] == pytest.approx(sm_fleiss(table), abs=1e-12) and stars["raters_per_task"] == 3
    codes = {"x": 0, "y": 1, "z": 2}
    cdata = np.array([[codes[v] for v in cats[e]] for e in "abc"], dtype=float)
    assert cat["alpha"] == pytest.approx(krippendorff.alpha(reliability_data=cdata, level_of_measurement="nominal"),
                                         abs=1e-12)
    ctable = np.array([[sum(cats[e][t] == k for e in "abc") for k in LABELS] for t in range(40)])
    assert cat["fleiss_kappa"] == pytest.approx(sm_fleiss(ctable), abs=1e-12)
    assert rep["overall"]["alpha"] == pytest.approx((stars["alpha"] + cat["alpha"]) / 2)
    # the default report's alpha is the same number
    assert metrics_report(ann, None, {"stars": {"maxRating": 5}})["alpha_by_control"]["stars"] == pytest.approx(
        stars["alpha"], abs=1e-12)


def test_alpha_reasons_incomplete_design_and_undefined() -> None:
    ann = frame({"a": ["x", "x", "x"], "b": ["x", "x", "-"]})
    e = alpha_report(ann, None)["by_control"]["cat"]
    assert e["alpha"] is None and e["alpha_reason"].startswith("no variation")
    assert e["fleiss_kappa"] is None and e["fleiss_reason"].startswith("incomplete design: tasks have between 1 and 2")
    one = alpha_report(frame({"a": ["x", "y"], "b": ["-", "-"], "c": ["-", "-"]}), None)["by_control"]["cat"]
    assert one["alpha_reason"] == "no task has answers from two evaluators"
    same = alpha_report(frame({"a": ["x", "x"], "b": ["x", "x"]}), None)["by_control"]["cat"]
    assert same["fleiss_kappa"] is None and "no variation" in same["fleiss_reason"]  # UndefinedStatisticError
    assert alpha_report(ann, None)["overall"] == {"alpha": None, "reason": "no dimension has a defined alpha",
                                                  "method": "unweighted mean of the defined per-dimension alphas",
                                                  "n_controls": 0}


def test_dawid_skene_consensus_and_column() -> None:
    ann = frame(ANSWERS)
    ref = dawid_skene_consensus(ann)
    # the same fit as dawid_skene on the answers of tasks with >= 2 answers (empty = its own class)
    long = ann.assign(label=[",".join(sorted(v["value"]["choices"][0] for v in r)) or "<empty>" for r in ann["result"]])
    n = long.groupby("task")["evaluator"].transform("size")
    ds = dawid_skene(long[n >= 2].rename(columns={"evaluator": "worker"}))
    got = ref.set_index("task")
    assert list(got.index) == list(ds.labels.index)
    assert [lab or "<empty>" for lab in got["label"]] == list(ds.labels)
    np.testing.assert_allclose(got["confidence"], ds.posteriors.max(axis=1), atol=1e-9)
    assert ((got["confidence"] > 0) & (got["confidence"] <= 1)).all()
    # the column: mean exact match of each evaluator's answer with the consensus answer (own vote included)
    mats = agreement_matrices(ann, None, consensus_reference=ref)
    m = mats["cat"]
    assert m.columns[:2] == (GROUND_TRUTH, CONSENSUS_DS) and m.columns[2:] == tuple("abcde")
    cons = dict(zip(got.index, got["label"], strict=True))
    for i, ev in enumerate("abcde"):
        hits = [ANSWERS[ev][t - 1] if ANSWERS[ev][t - 1] is not None else "" for t in cons
                if ANSWERS[ev][t - 1] != "-"]
        tasks = [t for t in cons if ANSWERS[ev][t - 1] != "-"]
        expect = np.mean([h == cons[t] for h, t in zip(hits, tasks, strict=True)])
        assert m.cell(ev, CONSENSUS_DS) == pytest.approx(expect) and m.counts[i, 1] == len(tasks)
    # the evaluator block is unchanged by the extra column
    plain = agreement_matrices(ann, None, consensus_reference=None)
    np.testing.assert_array_equal(m.matrix[:, 2:], plain["cat"].matrix[:, 1:])
    np.testing.assert_array_equal(mats[None].matrix[:, 2:], plain[None].matrix[:, 1:])
    # "auto" (the default) is this consensus of the human evaluators; agreement_matrix agrees
    auto = agreement_matrices(ann, None)
    np.testing.assert_array_equal(auto["cat"].matrix, m.matrix)
    np.testing.assert_array_equal(auto[None].counts, mats[None].counts)
    single = agreement_matrix(ann, None, control="cat")
    np.testing.assert_array_equal(single.matrix, m.matrix)
    assert single.columns == m.columns
    assert agreement_matrices(ann, None, mode="consensus")["cat"].columns == (GROUND_TRUTH, "Consensus")
    # row order does not change the consensus
    shuffled = dawid_skene_consensus(ann.sample(frac=1.0, random_state=4))
    pd.testing.assert_frame_equal(shuffled.drop(columns="result"), ref.drop(columns="result"))


def test_ground_truth_column_equals_accuracy_on_one_dimension_and_is_labelled_over_several() -> None:
    # hand-made: 4 tasks, reference t1-t4 = x, y, x, y; a answers x y y -, b answers x x x y
    ann = frame({"a": ["x", "y", "y", "-"], "b": ["x", "x", "x", "y"]})
    gt = pd.DataFrame([{"task": t, "control": "cat", "type": "choices", "result": choice(v)}
                       for t, v in enumerate(["x", "y", "x", "y"], start=1)])
    rep = metrics_report(ann, gt)
    acc = {r["evaluator"]: r["accuracy"] for r in rep["per_annotator"]}
    gt_col = {row: rep["matrix"][i][0] for i, row in enumerate(rep["rows"])}
    assert acc["a"] == gt_col["a"] == pytest.approx(2 / 3) and acc["b"] == gt_col["b"] == pytest.approx(3 / 4)
    # a second dimension where a has 1 of 1 and b 0 of 3: the column averages dimensions, accuracy pools
    ann2 = pd.concat([ann, frame({"a": ["x", "-", "-", "-"], "b": ["y", "y", "x", "-"]}, "cat2")])
    gt2 = pd.concat([gt, gt.assign(control="cat2", result=[choice(v, "cat2") for v in ["x", "x", "y", "y"]])])
    rep2 = metrics_report(ann2, gt2)
    acc2 = {r["evaluator"]: r["accuracy"] for r in rep2["per_annotator"]}
    col2 = {row: rep2["matrix"][i][0] for i, row in enumerate(rep2["rows"])}
    assert col2["a"] == pytest.approx((2 / 3 + 1) / 2) and acc2["a"] == pytest.approx(3 / 4)
    assert col2["b"] == pytest.approx((3 / 4 + 0) / 2) and acc2["b"] == pytest.approx(3 / 7)
    assert "pooled" in rep2["definitions"]["accuracy"] and "mean of the per-dimension" in rep2["definitions"][GROUND_TRUTH]
    q = annotator_quality(ann2, gt2, controls=["cat2"]).table.set_index("evaluator")
    assert q.loc["b", "accuracy"] == agreement_matrices(ann2, gt2)["cat2"].cell("b", GROUND_TRUTH) == 0.0
