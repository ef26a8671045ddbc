"""Per-annotator quality, JSON report and the text table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from app.metrics import (
    AVG,
    GROUND_TRUTH,
    agreement_matrix,
    annotator_quality,
    format_matrix_table,
    krippendorff_alpha,
    metrics_report,
    score_results,
    wilson_interval,
)

from .conftest import CONTROLS, PARAMS, make_frames


def choice_row(t, e, v, lead=10.0, **kw):
    return {
        "task": t,
        "evaluator": e,
        "control": "c",
        "type": "choices",
        "result": [{"type": "choices", "value": {"choices": [v]}}],
        "lead_time": lead,
        **kw,
    }


def test_wilson_matches_statsmodels():
    for k, n in [(0, 10), (3, 10), (10, 10), (57, 83), (1, 1)]:
        lo, hi = wilson_interval(k, n)
        elo, ehi = proportion_confint(k, n, method="wilson")
        assert lo == pytest.approx(elo, abs=1e-12) and hi == pytest.approx(ehi, abs=1e-12)
    lo, hi = wilson_interval(0, 0)
    assert np.isnan(lo) and np.isnan(hi)


def test_agreement_and_accuracy_pool_over_controls(frames):
    ann, gt = frames
    q = annotator_quality(ann, gt, PARAMS)
    t = q.table.set_index("evaluator")
    rows = {(r.task, r.evaluator, r.control): r for r in ann.itertuples()}
    gtr = {(r.task, r.control): r for r in gt.itertuples()}
    humans = [e for e in t.index if not e.startswith("model:")]
    for e in t.index:
        s = n = 0
        gs = gn = 0
        for (task, ev, c), r in rows.items():
            if ev != e:
                continue
            for o in humans:
                if o != e and (task, o, c) in rows:
                    s += score_results(r.type, r.result, rows[(task, o, c)].result, PARAMS.get(c, {}))
                    n += 1
            if (task, c) in gtr:
                gs += score_results(r.type, r.result, gtr[(task, c)].result, PARAMS.get(c, {}))
                gn += 1
        assert t.loc[e, "agreement_n"] == n
        assert t.loc[e, "agreement"] == pytest.approx(s / n)
        assert t.loc[e, "accuracy_n"] == gn
        assert t.loc[e, "accuracy"] == pytest.approx(gs / gn)
        assert t.loc[e, "accuracy_low"] <= t.loc[e, "accuracy"] <= t.loc[e, "accuracy_high"]
        assert t.loc[e, "volume"] == ann.loc[ann["evaluator"] == e, "task"].nunique()
    assert list(q.model_agreement.columns) == ["model:v0"]
    m = agreement_matrix(ann, gt, PARAMS, control="sentiment")
    q1 = annotator_quality(ann, gt, PARAMS, controls=["sentiment"])
    for e in humans:
        assert q1.model_agreement.loc[e, "model:v0"] == pytest.approx(m.cell(e, "model:v0"), nan_ok=True)


def test_decisions_speed_entropy_flags():
    rows = []
    for t in range(40):
        rows.append(choice_row(t, "careful", ["a", "b", "c"][t % 3], lead=30.0 + t % 5))
        rows.append(choice_row(t, "steady", ["a", "b", "c"][(t * 7) % 3], lead=28.0))
        rows.append(choice_row(t, "clicker", "a", lead=3.0))  # always "a", very fast
    ann = pd.DataFrame(rows)
    decisions = pd.DataFrame(
        {
            "evaluator": ["careful"] * 4 + ["clicker"] * 5,
            "verdict": ["accept", "accept", "fix", "reject", "reject", "reject", "reject", "fix", "escalate"],
        }
    )
    t = annotator_quality(ann, decisions=decisions).table.set_index("evaluator")
    assert t.loc["careful", "accept_rate"] == 0.5
    assert t.loc["careful", "fix_rate"] == 0.25
    assert t.loc["clicker", "reject_rate"] == 0.6
    assert t.loc["clicker", "n_decisions"] == 5
    assert np.isnan(t.loc["steady", "accept_rate"])
    assert t.loc["clicker", "median_lead_time"] == 3.0
    assert t.loc["clicker", "speed_ratio"] == pytest.approx(3.0 / 28.0)
    assert t.loc["clicker", "answer_entropy"] == 0.0
    assert t.loc["careful", "answer_entropy"] == pytest.approx(1.0, abs=0.01)
    assert (
        t.loc["clicker", "fast_flag"]
        and t.loc["clicker", "low_entropy_flag"]
        and t.loc["clicker", "low_effort"]
    )
    assert not t.loc["careful", "low_effort"] and not t.loc["steady", "low_effort"]


def test_drift_cusum_alarm_on_degrading_annotator():
    rng = np.random.default_rng(0)
    rows, gt = [], []
    start = pd.Timestamp("2024-01-01")
    for t in range(120):
        truth = ["a", "b"][t % 2]
        gt.append(
            {
                "task": t,
                "control": "c",
                "type": "choices",
                "result": [{"type": "choices", "value": {"choices": [truth]}}],
            }
        )
        good = truth if rng.random() < 0.95 else "x"
        late = truth if (t < 60 or rng.random() < 0.4) else "x"  # degrades after task 60
        rows.append(choice_row(t, "good", good, created_at=start + pd.Timedelta(hours=t)))
        rows.append(choice_row(t, "tired", late, created_at=start + pd.Timedelta(hours=t)))
    q = annotator_quality(pd.DataFrame(rows), pd.DataFrame(gt))
    t = q.table.set_index("evaluator")
    assert t.loc["tired", "drift_alarm"] and not t.loc["good", "drift_alarm"]
    d = q.drift[q.drift["evaluator"] == "tired"]
    assert d["time"].is_monotonic_increasing
    first_alarm = d.loc[d["alarm"], "task"].min()
    assert 60 <= first_alarm <= 90
    assert d["rolling_accuracy"].iloc[-1] < 0.7 < d["rolling_accuracy"].iloc[50]
    # closed-form CUSUM equals the recursion
    x = d["score"].to_numpy()
    base = x[:20].mean()
    s, ref = 0.0, []
    for v in x:
        s = max(0.0, s + base - v - 0.05)
        ref.append(s)
    np.testing.assert_allclose(d["cusum"].to_numpy(), ref)


def test_report_is_json_ready_and_alpha_consistent(frames):
    ann, gt = frames
    rep = metrics_report(ann, gt, PARAMS, control="sentiment")
    text = json.dumps(rep, allow_nan=False)
    assert set(rep) >= {"evaluators", "columns", "matrix", "counts", "per_annotator", "alpha"}
    assert rep["columns"][0] == GROUND_TRUTH and rep["columns"][1:] == rep["evaluators"]
    assert len(rep["matrix"]) == len(rep["evaluators"]) + 1 and rep["rows"][-1] == AVG
    assert rep["matrix"][0][1] is None  # diagonal
    assert len(rep["per_annotator"]) == len(rep["evaluators"])
    assert "NaN" not in text
    # alpha: evaluators x tasks nominal on the chosen answer, empty answers missing
    sub = ann[(ann["control"] == "sentiment")]
    val = sub.assign(v=[r[0]["value"]["choices"][0] if r else None for r in sub["result"]])
    piv = val.pivot(index="evaluator", columns="task", values="v")
    codes = piv.apply(lambda col: col.map({f"c{i}": float(i) for i in range(4)})).to_numpy(float)
    assert rep["alpha"] == pytest.approx(krippendorff_alpha(codes, "nominal"))
    overall = metrics_report(ann, gt, PARAMS)
    assert overall["alpha"] is None and overall["alpha_by_control"]["ner"] is None
    assert overall["alpha_by_control"]["stars"] is not None
    assert set(overall["alpha_by_control"]) == set(CONTROLS)


def test_format_matrix_table():
    ann, gt = make_frames(seed=3, humans=3, models=1)
    m = agreement_matrix(ann, gt, PARAMS, control="sentiment")
    text = format_matrix_table(m)
    lines = text.splitlines()
    assert lines[1].split()[:2] == ["Evaluator", "Ground"]
    assert lines[-1].startswith(AVG)
    body = [ln for ln in lines if ln.startswith("ann0@x.org")][0]
    assert "—" in body and body.rstrip().endswith("%")
    v = m.cell("ann0@x.org", "ann1@x.org")
    assert f"{100 * v:.0f}%" in body
    assert text.count("—") == len(m.evaluators) + 1  # one per row plus the title dash
