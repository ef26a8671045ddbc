"""``reviewdesk metrics --stat kappa|alpha`` on the demo project against the reference libraries, the default
output left as it was, and the Dawid-Skene consensus service (per task and control, with confidence)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from app.main import main
from app.metrics import CONSENSUS_DS, GROUND_TRUTH, agreement_matrices, dawid_skene
from app.models.store import Store
from app.services.consensus import consensus_labels, consensus_records
from app.services.dashboard import compute_dashboard, consensus_reference, disagreeing_tasks, load_frames


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    from app.services.demo import ensure_demo

    data = tmp_path_factory.mktemp("statcli")
    st = Store.open(data)
    try:
        pid = ensure_demo(st)
    finally:
        st.close()
    return str(data), pid


def run(capsys: pytest.CaptureFixture[str], data: str, *args: str) -> tuple[int, str]:
    rc = main(["--data-dir", data, *args])
    return rc, capsys.readouterr().out


def _labels(frames, control: str) -> pd.DataFrame:
    a = frames.annotations
    a = a[(a["control"] == control) & a["result"].map(bool)]
    lab = [",".join(sorted(str(x) for i in r for x in (i["value"].get("choices") or [i["value"].get("rating")])))
           for r in a["result"]]
    return a.assign(label=lab).pivot_table(index="task", columns="evaluator", values="label", aggfunc="last")


def test_stat_kappa_json_matches_sklearn_on_the_demo(capsys, demo) -> None:
    data, pid = demo
    rc, out = run(capsys, data, "metrics", str(pid), "--stat", "kappa", "--control", "category", "--json")
    assert rc == 0
    rep = json.loads(out)
    assert rep["stat"] == "kappa" and rep["control"] == "category" and rep["rows"][-1] == "Avg."
    assert rep["columns"] == [GROUND_TRUTH, *rep["evaluators"]]
    st = Store.open(data)
    try:
        wide = _labels(load_frames(st, pid), "category")
    finally:
        st.close()
    checked = 0
    for i, a in enumerate(rep["evaluators"]):
        for j, b in enumerate(rep["evaluators"]):
            if a == b:
                assert rep["matrix"][i][j + 1] is None and rep["reasons"][i][j + 1] == "diagonal"
                continue
            both = wide[[a, b]].dropna()
            assert rep["counts"][i][j + 1] == len(both)
            assert rep["matrix"][i][j + 1] == pytest.approx(cohen_kappa_score(both[a], both[b]), abs=1e-12)
            checked += 1
    assert checked >= 30
    overall = json.loads(run(capsys, data, "metrics", str(pid), "--stat", "kappa", "--json")[1])
    assert overall["controls"] == ["category", "urgency"] and set(overall["skipped"]) == {"entities", "regions", "segments"}


def test_stat_alpha_json_matches_krippendorff_on_the_demo(capsys, demo) -> None:
    data, pid = demo
    rc, out = run(capsys, data, "metrics", str(pid), "--stat", "alpha", "--json")
    assert rc == 0
    rep = json.loads(out)
    st = Store.open(data)
    try:
        frames = load_frames(st, pid)
    finally:
        st.close()
    cat = _labels(frames, "category")
    codes = {v: k for k, v in enumerate(sorted(pd.unique(cat.to_numpy().ravel()[pd.notna(cat.to_numpy().ravel())])))}
    rel = cat.T.apply(lambda col: col.map(codes)).to_numpy(dtype=float)
    c = rep["by_control"]["category"]
    assert c["alpha"] == pytest.approx(krippendorff.alpha(reliability_data=rel, level_of_measurement="nominal"),
                                       abs=1e-12)
    urg = _labels(frames, "urgency").T.astype(float).to_numpy()
    u = rep["by_control"]["urgency"]
    assert u["level"] == "ordinal" and u["alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=urg, level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5]),
        abs=1e-12)
    # the demo has 4 to 7 raters per task: Fleiss' kappa is not applicable, and says why
    assert c["fleiss_kappa"] is None and c["fleiss_reason"].startswith("incomplete design")
    assert rep["by_control"]["regions"]["alpha"] is None and "not applicable" in rep["by_control"]["regions"]["alpha_reason"]
    assert rep["overall"]["alpha"] == pytest.approx((c["alpha"] + u["alpha"]) / 2)
    rc, text = run(capsys, data, "metrics", str(pid), "--stat", "alpha")
    assert rc == 0 and "category" in text and "overall alpha" in text and "n/a" in text


def test_default_stat_is_the_agreement_report(capsys, demo) -> None:
    data, pid = demo
    a = run(capsys, data, "metrics", str(pid), "--json")[1]
    b = run(capsys, data, "metrics", str(pid), "--stat", "agreement", "--json")[1]
    assert a == b
    rep = json.loads(a)
    assert rep["columns"] == [GROUND_TRUTH, *rep["evaluators"]]  # no consensus column in the JSON report
    assert "accuracy" in rep["definitions"] and GROUND_TRUTH in rep["definitions"]
    rc, text = run(capsys, data, "metrics", str(pid))
    assert rc == 0 and "accuracy: score against the ground truth pooled" in text
    rc, out = run(capsys, data, "metrics", str(pid), "--stat", "kappa", "--csv", "/tmp/x.csv", "--json")
    assert rc != 0 and "error" in json.loads(out)


def test_consensus_service_and_dashboard_column(demo) -> None:
    data, pid = demo
    st = Store.open(data)
    try:
        df = consensus_labels(st, pid)
        recs = consensus_records(st, pid)
        frames = load_frames(st, pid)
        d = compute_dashboard(st, pid, save=False)
        cons_tasks = disagreeing_tasks(st, pid, "diego.santos@example.com", CONSENSUS_DS, "category")
    finally:
        st.close()
    assert list(df.columns) == ["task", "control", "label", "confidence", "n_answers", "result"]
    assert set(df["control"]) == {"category", "urgency"}
    assert ((df["confidence"] > 0) & (df["confidence"] <= 1)).all() and (df["n_answers"] >= 2).all()
    assert len(recs) == len(df) and recs[0].confidence == df["confidence"].min()
    # the category labels are Dawid-Skene's on the human answers
    wide = _labels(frames, "category")
    humans = [c for c in wide.columns if not c.startswith("model:")]
    long = wide[humans].stack().rename("label").reset_index()
    long = long[long.groupby("task")["evaluator"].transform("size") >= 2]
    ds = dawid_skene(long)
    got = df[df["control"] == "category"].set_index("task")
    assert (got["label"] == ds.labels.reindex(got.index)).mean() == 1.0
    # the dashboard's pairwise matrix carries the column beside Ground truth; cell = share agreeing with it
    m = d.matrices["category"]
    assert m.columns[:2] == (GROUND_TRUTH, CONSENSUS_DS)
    a = frames.annotations
    diego = a[(a["evaluator"] == "diego.santos@example.com") & (a["control"] == "category")].set_index("task")
    lab = diego["result"].map(lambda r: ", ".join(sorted(v for i in r for v in i["value"]["choices"])))
    shared = got.index.intersection(lab.index)
    assert m.cell("diego.santos@example.com", CONSENSUS_DS) == pytest.approx((lab[shared] == got.loc[shared, "label"]).mean())
    assert sorted(cons_tasks) == sorted(int(t) for t in shared[lab[shared] != got.loc[shared, "label"]])
    assert math.isnan(d.matrices["regions"].cell("diego.santos@example.com", CONSENSUS_DS))
    # the engine's "auto" column (humans masked among all evaluators) = the explicit consensus frame
    explicit = agreement_matrices(frames.annotations, frames.ground_truth, frames.params,
                                  consensus_reference=consensus_reference(frames))
    for c, mm in d.matrices.items():
        np.testing.assert_array_equal(mm.matrix, explicit[c].matrix)
        np.testing.assert_array_equal(mm.counts, explicit[c].counts)
    assert not np.isnan(d.matrices[None].cell("diego.santos@example.com", CONSENSUS_DS))
    assert Path(data).exists()
