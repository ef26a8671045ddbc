"""Agreement matrices against a naive per-pair loop over the matching functions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import app.metrics.matrix as matrix_mod
from app.metrics import (
    AVG,
    CONSENSUS,
    GROUND_TRUTH,
    agreement_matrices,
    agreement_matrix,
    order_evaluators,
    pair_disagreements,
    score_results,
    task_agreement,
)

from .conftest import CONTROLS, PARAMS, make_frames


def _lookup(ann):
    return {(r.task, r.evaluator, r.control): r for r in ann.itertuples()}


def naive_pairwise(ann, gt, control):
    evs = order_evaluators(ann["evaluator"])
    rows = _lookup(ann)
    tasks = sorted(ann["task"].unique())
    p = PARAMS.get(control, {})
    mat = np.full((len(evs), len(evs) + 1), np.nan)
    cnt = np.zeros((len(evs), len(evs) + 1), int)
    gtr = {(r.task, r.control): r for r in gt.itertuples()} if gt is not None else {}
    for i, a in enumerate(evs):
        s, n = 0.0, 0
        for t in tasks:
            ra, rg = rows.get((t, a, control)), gtr.get((t, control))
            if ra is not None and rg is not None:
                s += score_results(ra.type, ra.result, rg.result, p)
                n += 1
        mat[i, 0] = s / n if n else np.nan
        cnt[i, 0] = n
        for j, b in enumerate(evs):
            s, n = 0.0, 0
            for t in tasks:
                ra, rb = rows.get((t, a, control)), rows.get((t, b, control))
                if ra is not None and rb is not None:
                    s += score_results(ra.type, ra.result, rb.result, p)
                    n += 1
            cnt[i, j + 1] = n if i != j else 0  # the diagonal compares nothing
            mat[i, j + 1] = s / n if n and i != j else np.nan
    return evs, mat, cnt


def naive_consensus_scores(ann, control, thr):
    """{(task, evaluator): consensus score}."""
    p = PARAMS.get(control, {})
    out = {}
    sub = ann[ann["control"] == control]
    for t, g in sub.groupby("task"):
        res = dict(zip(g["evaluator"], g["result"], strict=True))
        typ = g["type"].iloc[0]
        for e in res:
            others = [f for f in res if f != e]
            if not others:
                continue
            sup = {f: sum(score_results(typ, res[h], res[f], p) >= thr for h in others) for f in others}
            mx = max(sup.values())
            tied = [f for f in others if sup[f] == mx]
            out[(t, e)] = np.mean([score_results(typ, res[e], res[f], p) >= thr for f in tied])
    return out


def assert_same(a, b):
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_pairwise_cells_equal_naive_loop(frames, control):
    ann, gt = frames
    m = agreement_matrix(ann, gt, PARAMS, control=control, consensus_reference=None)
    evs, mat, cnt = naive_pairwise(ann, gt, control)
    assert m.evaluators == evs
    assert m.columns == (GROUND_TRUTH, *evs)
    assert m.control == control and m.mode == "pairwise"
    assert_same(m.matrix[:-1], mat)
    assert np.array_equal(m.counts[:-1], cnt)
    # Avg. row: unweighted column means
    assert_same(m.matrix[-1], np.array([np.nanmean(c) if np.isfinite(c).any() else np.nan for c in mat.T]))
    assert np.array_equal(m.counts[-1], cnt.sum(axis=0))


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_generic_path_equals_categorical_fast_path(frames, control, monkeypatch):
    ann, gt = frames
    fast = agreement_matrix(ann, gt, PARAMS, control=control)
    fast_c = agreement_matrix(ann, gt, PARAMS, control=control, mode="consensus")
    fast_t = task_agreement(ann, PARAMS, control=control)
    fast_tc = task_agreement(ann, PARAMS, control=control, mode="consensus")
    monkeypatch.setattr(matrix_mod, "CATEGORICAL_MAX_CODES", 0)
    slow = agreement_matrix(ann, gt, PARAMS, control=control)
    assert_same(fast.matrix, slow.matrix)
    assert np.array_equal(fast.counts, slow.counts)
    assert_same(fast_c.matrix, agreement_matrix(ann, gt, PARAMS, control=control, mode="consensus").matrix)
    assert_same(fast_t.to_numpy(float), task_agreement(ann, PARAMS, control=control).to_numpy(float))
    assert_same(
        fast_tc.to_numpy(float),
        task_agreement(ann, PARAMS, control=control, mode="consensus").to_numpy(float),
    )


@pytest.mark.parametrize("control", ["sentiment", "stars", "ner", "bbox", "note"])
@pytest.mark.parametrize("thr", [0.5, 0.9])
def test_consensus_equals_naive(frames, control, thr):
    ann, gt = frames
    m = agreement_matrix(ann, gt, PARAMS, control=control, mode="consensus", threshold=thr)
    assert m.columns == (GROUND_TRUTH, CONSENSUS)
    ref = naive_consensus_scores(ann, control, thr)
    for i, e in enumerate(m.evaluators):
        vals = [v for (t, ev), v in ref.items() if ev == e]
        assert m.counts[i, 1] == len(vals)
        if vals:
            assert m.matrix[i, 1] == pytest.approx(np.mean(vals), abs=1e-12)
        else:
            assert np.isnan(m.matrix[i, 1])
    ta = task_agreement(ann, PARAMS, control=control, mode="consensus", threshold=thr)
    for t in ta.index:
        vals = [v for (tt, _), v in ref.items() if tt == t]
        if vals:
            assert ta.loc[t, control] == pytest.approx(np.mean(vals), abs=1e-12)
        else:
            assert np.isnan(ta.loc[t, control])


def test_consensus_majority_by_hand():
    def row(t, e, v):
        return {
            "task": t,
            "evaluator": e,
            "control": "c",
            "type": "choices",
            "result": [{"type": "choices", "value": {"choices": [v]}}],
        }

    ann = pd.DataFrame(
        [row(1, "a", "x"), row(1, "b", "x"), row(1, "c", "y"), row(2, "a", "x"), row(2, "b", "y")]
    )
    m = agreement_matrix(ann, control="c", mode="consensus")
    # task 1: a vs {b:x, c:y} tie -> 0.5; b likewise 0.5; c vs {x, x} -> 0. task 2: a vs {y} -> 0, b vs {x} -> 0
    assert m.cell("a", CONSENSUS) == pytest.approx(0.25)
    assert m.cell("c", CONSENSUS) == 0.0
    ta = task_agreement(ann, mode="consensus")
    assert ta.loc[1, "agreement"] == pytest.approx(1 / 3) and ta.loc[2, "agreement"] == 0.0
    tp = task_agreement(ann)
    assert tp.loc[1, "agreement"] == pytest.approx(2 / 6) and tp.loc[2, "agreement"] == 0.0
    assert list(tp["n_evaluators"]) == [3, 2]


def test_task_agreement_pairwise_equals_naive(frames):
    ann, _ = frames
    ta = task_agreement(ann, PARAMS)
    for control in CONTROLS:
        sub = ann[ann["control"] == control]
        for t, g in sub.groupby("task"):
            res = list(g["result"])
            typ = g["type"].iloc[0]
            pairs = [
                score_results(typ, res[i], res[j], PARAMS.get(control, {}))
                for i in range(len(res))
                for j in range(len(res))
                if i != j
            ]
            if pairs:
                assert ta.loc[t, control] == pytest.approx(np.mean(pairs), abs=1e-12)
            else:
                assert np.isnan(ta.loc[t, control])
    per = ta[list(CONTROLS)]
    assert_same(ta["agreement"].to_numpy(), per.mean(axis=1, skipna=True).to_numpy())


def test_overall_is_weighted_mean_over_controls(frames):
    ann, gt = frames
    mats = agreement_matrices(ann, gt, PARAMS, consensus_reference=None)
    overall = mats[None]
    weights = {c: float(i + 1) for i, c in enumerate(sorted(CONTROLS))}
    weighted = agreement_matrix(ann, gt, PARAMS, weights=weights, consensus_reference=None)
    E = len(overall.evaluators)
    stack = np.stack([mats[c].matrix[:E] for c in CONTROLS])
    w = np.array([weights[c] for c in CONTROLS])[:, None, None]
    ok = ~np.isnan(stack)
    with np.errstate(invalid="ignore"):
        expect_plain = np.where(ok.any(0), np.nansum(stack, 0) / ok.sum(0), np.nan)
        expect_w = np.where(ok.any(0), np.nansum(stack * w, 0) / (ok * w).sum(0), np.nan)
    assert_same(overall.matrix[:E], expect_plain)
    assert_same(weighted.matrix[:E], expect_w)
    # counts: distinct shared tasks
    tasks = {e: set(ann.loc[ann["evaluator"] == e, "task"]) for e in overall.evaluators}
    for i, a in enumerate(overall.evaluators):
        for j, b in enumerate(overall.evaluators):
            assert overall.counts[i, j + 1] == (len(tasks[a] & tasks[b]) if i != j else 0)
        assert overall.counts[i, 0] == len(tasks[a] & set(gt["task"]))


def test_asymmetric_precision_matrix():
    def boxes(*xs):
        return [
            {
                "type": "rectanglelabels",
                "value": {"x": x, "y": 0, "width": 10, "height": 10, "rectanglelabels": ["car"]},
            }
            for x in xs
        ]

    ann = pd.DataFrame(
        [
            {"task": 1, "evaluator": "a", "control": "b", "type": "rectanglelabels", "result": boxes(0)},
            {"task": 1, "evaluator": "b", "control": "b", "type": "rectanglelabels", "result": boxes(0, 50)},
        ]
    )
    m = agreement_matrix(ann, params={"b": {"average": "precision"}}, control="b")
    assert m.cell("a", "b") == 1.0  # all of a's boxes are in b's
    assert m.cell("b", "a") == 0.5  # half of b's boxes are in a's
    sym = agreement_matrix(ann, control="b")
    assert sym.cell("a", "b") == sym.cell("b", "a") == pytest.approx(2 / 3)
    assert m.cell(AVG, "a") == 0.5


def test_pair_disagreements_sorted_and_equal_naive(frames):
    ann, gt = frames
    evs = order_evaluators(ann["evaluator"])
    a, b = evs[0], evs[1]
    d = pair_disagreements(ann, a, b, PARAMS)
    rows = _lookup(ann)
    expect = {}
    for t in sorted(ann["task"].unique()):
        scores = []
        for c in CONTROLS:
            ra, rb = rows.get((t, a, c)), rows.get((t, b, c))
            if ra is not None and rb is not None:
                scores.append(score_results(ra.type, ra.result, rb.result, PARAMS.get(c, {})))
        if scores and np.mean(scores) < 1:
            expect[t] = 1 - np.mean(scores)
    assert sorted(d["task"]) == sorted(expect)
    for t, dis in zip(d["task"], d["disagreement"], strict=True):
        assert dis == pytest.approx(expect[t], abs=1e-12)
    assert list(d["disagreement"]) == sorted(d["disagreement"], reverse=True)
    one = pair_disagreements(ann, a, GROUND_TRUTH, PARAMS, ground_truth=gt, control="sentiment")
    assert set(one["controls"].map(tuple)) <= {("sentiment",)}


def test_models_order_and_empty_input():
    ann, gt = make_frames(seed=4, humans=3, models=2)
    m = agreement_matrix(ann, gt, PARAMS, control="sentiment", consensus_reference=None)
    assert m.evaluators[-2:] == ("model:v0", "model:v1")
    assert m.matrix.shape == (len(m.evaluators) + 1, len(m.evaluators) + 1)
    empty = ann.iloc[:0]
    e = agreement_matrix(empty, None, PARAMS)
    assert e.evaluators == () and e.matrix.shape == (1, 1)
    with pytest.raises(ValueError):
        agreement_matrix(ann.drop(columns=["result"]))


def test_large_categorical_matrix_matches_pair_loop():
    """Fast path on many tasks and unsorted rows vs a per-pair pandas reference."""
    rng = np.random.default_rng(11)
    E, T = 12, 3000
    rows = []
    for t in rng.permutation(T):
        for e in rng.choice(E, size=int(rng.integers(1, 6)), replace=False):
            rows.append(
                {
                    "task": int(t),
                    "evaluator": f"e{e:02d}",
                    "control": "c",
                    "type": "choices",
                    "result": [{"type": "choices", "value": {"choices": [str(rng.integers(0, 3))]}}],
                }
            )
    ann = pd.DataFrame(rows)
    m = agreement_matrix(ann, control="c", consensus_reference=None)
    lab = ann.assign(v=[r[0]["value"]["choices"][0] for r in ann["result"]]).pivot(
        index="task", columns="evaluator", values="v"
    )
    for i, a in enumerate(m.evaluators):
        for j, b in enumerate(m.evaluators):
            if a == b:
                continue
            both = lab[[a, b]].dropna()
            assert m.counts[i, j + 1] == len(both)
            assert m.matrix[i, j + 1] == pytest.approx((both[a] == both[b]).mean())


def test_pair_disagreements_tolerance_against_a_naive_count(frames):
    """13.7: a drill-down tolerance lets near matches of numeric and region scores pass. The expectation is
    computed here control by control with ``score_results``; categorical controls keep tolerance 0."""
    from app.metrics import DEFAULT_TOLERANCE, default_tolerances

    ann, _gt = frames
    evs = order_evaluators(ann["evaluator"])
    a, b = evs[0], evs[1]
    tol = default_tolerances(ann)
    assert tol["sentiment"] == 0.0 and tol["stars"] == DEFAULT_TOLERANCE["rating"] > 0
    assert tol["bbox"] == DEFAULT_TOLERANCE["rectanglelabels"] > 0
    rows = _lookup(ann)
    for control in ("stars", "bbox", "ner", "sentiment", None):
        d = pair_disagreements(ann, a, b, PARAMS, control=control, tolerance=tol)
        expect_tasks, expect_controls = set(), {}
        for t in sorted(ann["task"].unique()):
            beyond = []
            for c in CONTROLS if control is None else [control]:
                ra, rb = rows.get((t, a, c)), rows.get((t, b, c))
                if ra is not None and rb is not None:
                    s = score_results(ra.type, ra.result, rb.result, PARAMS.get(c, {}))
                    if s < 1 - tol[c] - 1e-12:
                        beyond.append(c)
            if beyond:
                expect_tasks.add(t)
                expect_controls[t] = tuple(sorted(beyond))
        assert set(d["task"]) == expect_tasks, control
        assert {t: tuple(c) for t, c in zip(d["task"], d["controls"], strict=True)} == expect_controls
        loose = pair_disagreements(ann, a, b, PARAMS, control=control)
        assert set(d["task"]) <= set(loose["task"])
        if control in ("stars", "bbox"):  # the synthetic data has near misses there: some pass
            assert len(d) < len(loose), control
        if control == "sentiment":  # categorical: tolerance changes nothing
            assert list(d["task"]) == list(loose["task"])
    with pytest.raises(ValueError, match="tolerance"):
        pair_disagreements(ann, a, b, PARAMS, tolerance=1.0)
