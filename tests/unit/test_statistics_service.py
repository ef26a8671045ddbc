"""The dashboard's statistics service (Cohen's kappa, Krippendorff's alpha, Fleiss' kappa) and its tidy CSV tables.

Expectations come from elsewhere than the service: the ``reviewdesk metrics --stat ... --json`` output, the
reference libraries (scikit-learn, krippendorff), Fleiss' formula written out here, and the store's rows.
"""

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
from app.models.store import Store
from app.services.dashboard import compute_dashboard, export_csv, load_frames
from app.services.statistics import compute_statistics

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="pos"/><Choice value="neg"/><Choice value="neutral"/>
  </Choices>
  <Rating name="quality" toName="text" maxRating="5"/>
</View>"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    from app.services.demo import ensure_demo

    data = tmp_path_factory.mktemp("statsvc")
    st = Store.open(data)
    try:
        pid = ensure_demo(st)
    finally:
        st.close()
    return str(data), pid


def cli_json(capsys: pytest.CaptureFixture[str], data: str, *args: str) -> dict:
    assert main(["--data-dir", data, *args]) == 0
    return json.loads(capsys.readouterr().out)


def same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, abs_tol=1e-12)


def test_kappa_matrices_equal_the_cli_json_cell_by_cell(capsys, demo) -> None:
    data, pid = demo
    st = Store.open(data)
    try:
        s = compute_statistics(st, pid)
    finally:
        st.close()
    checked = 0
    for control in ("category", "urgency", None):
        args = ["metrics", str(pid), "--stat", "kappa", "--json"] + (["--control", control] if control else [])
        rep = cli_json(capsys, data, *args)
        view = s.kappa[control]
        assert view.matrix is not None
        assert list(view.matrix.rows) == rep["rows"] and list(view.matrix.columns) == rep["columns"]
        for r, row in enumerate(rep["rows"]):
            for c, col in enumerate(rep["columns"]):
                cell = view.cell(row, col)
                assert same(cell.value, rep["matrix"][r][c]), (control, row, col)
                assert cell.n == rep["counts"][r][c]
                assert cell.reason == rep["reasons"][r][c]
                checked += 1
    assert checked > 150
    # the CLI's skipped dimensions have no matrix here either, and say why
    assert s.kappa["regions"].matrix is None and "no categorical answer" in (s.kappa["regions"].note or "")
    assert s.kappa_controls == ("category", "urgency")


def test_kappa_cell_equals_sklearn_from_store_rows(demo) -> None:
    """Two annotators' category choices read from the store's annotation rows, scored by scikit-learn."""
    from app.services.projects import ProjectService

    data, pid = demo
    st = Store.open(data)
    try:
        s = compute_statistics(st, pid)
        ps = ProjectService(st)
        labels: dict[str, dict[int, str]] = {"diego.santos@example.com": {}, "priya.nair@example.com": {}}
        for row in ps.task_page(pid, offset=0, limit=100_000):
            for a in ps.task_detail(row.id).annotations:
                if a.evaluator in labels and not a.was_cancelled:
                    ch = [c for it in (a.result or []) if it.get("from_name") == "category"
                          for c in it["value"].get("choices", [])]
                    if ch:
                        labels[a.evaluator][row.id] = ",".join(sorted(ch))
    finally:
        st.close()
    a, b = labels["diego.santos@example.com"], labels["priya.nair@example.com"]
    shared = sorted(set(a) & set(b))
    assert len(shared) >= 20
    expected = cohen_kappa_score([a[t] for t in shared], [b[t] for t in shared])
    cell = s.kappa["category"].cell("diego.santos@example.com", "priya.nair@example.com")
    assert cell.n == len(shared)
    assert cell.value == pytest.approx(expected, abs=1e-12)


def test_alpha_equals_cli_and_krippendorff_library(capsys, demo) -> None:
    data, pid = demo
    rep = cli_json(capsys, data, "metrics", str(pid), "--stat", "alpha", "--json")
    st = Store.open(data)
    try:
        s = compute_statistics(st, pid)
        frames = load_frames(st, pid)
    finally:
        st.close()
    assert [d.control for d in s.dimensions] == list(rep["by_control"])
    for d in s.dimensions:
        e = rep["by_control"][d.control]
        assert same(d.alpha, e["alpha"]) and d.alpha_reason == e["alpha_reason"]
        assert same(d.fleiss_kappa, e["fleiss_kappa"]) and d.fleiss_reason == e["fleiss_reason"]
    assert same(s.overall_alpha, rep["overall"]["alpha"])
    # independently: the krippendorff package on the category choices, all evaluators and annotators only
    a = frames.annotations
    a = a[(a["control"] == "category") & a["result"].map(bool)]
    lab = a.assign(label=[",".join(sorted(c for i in r for c in i["value"]["choices"])) for r in a["result"]])
    wide = lab.pivot_table(index="task", columns="evaluator", values="label", aggfunc="last")
    codes = {v: k for k, v in enumerate(sorted(set(wide.stack().dropna())))}
    rel = wide.T.apply(lambda col: col.map(codes)).to_numpy(dtype=float)
    cat = s.dimension("category")
    assert cat.alpha == pytest.approx(krippendorff.alpha(reliability_data=rel, level_of_measurement="nominal"))
    humans = [c for c in wide.columns if not c.startswith("model:")]
    rel_h = wide[humans].T.apply(lambda col: col.map(codes)).to_numpy(dtype=float)
    assert cat.alpha_annotators == pytest.approx(
        krippendorff.alpha(reliability_data=rel_h, level_of_measurement="nominal"))
    assert cat.alpha_annotators != pytest.approx(cat.alpha)  # two numbers, two sets of evaluators
    # the demo has 4 to 7 raters per task: Fleiss' kappa is n/a, and the cell says so
    assert cat.fleiss_kappa is None and cat.fleiss_text == "n/a — not every task has the same number of raters"


def _complete_design_export(path: Path) -> tuple[list[list[str]], int]:
    """12 tasks, each labelled by the same 3 annotators (a complete design); returns the labels and raters."""
    rng = np.random.default_rng(7)
    cats = ["pos", "neg", "neutral"]
    rows, tasks = [], []
    for t in range(12):
        truth = cats[t % 3]
        lab = [truth if rng.random() < 0.7 else cats[int(rng.integers(3))] for _ in range(3)]
        rows.append(lab)
        anns = [{"id": 1000 + 10 * t + k, "completed_by": {"id": 2 + k, "email": f"r{k}@example.com"},
                 "result": [{"id": f"c{t}{k}", "from_name": "sentiment", "to_name": "text", "type": "choices",
                             "value": {"choices": [lab[k]]}}]} for k in range(3)]
        tasks.append({"id": 100 + t, "data": {"text": f"text {t}"}, "annotations": anns})
    path.write_text(json.dumps(tasks))
    return rows, 3


def test_fleiss_kappa_where_every_task_has_the_same_raters(tmp_path: Path) -> None:
    from app.services.projects import ProjectService

    src = tmp_path / "export.json"
    labels, n = _complete_design_export(src)
    st = Store.open(tmp_path / "d")
    try:
        ProjectService(st).import_file(src, CONFIG, "Complete")
        pid = ProjectService(st).find_project_by_title("Complete")
        s = compute_statistics(st, pid)
    finally:
        st.close()
    # Fleiss (1971) written out: P_i = (sum_j n_ij^2 - n) / (n (n-1)), P_e = sum_j p_j^2
    cats = sorted({x for r in labels for x in r})
    table = np.array([[r.count(c) for c in cats] for r in labels], dtype=float)
    p_i = ((table ** 2).sum(axis=1) - n) / (n * (n - 1))
    p_j = table.sum(axis=0) / table.sum()
    expected = (p_i.mean() - (p_j ** 2).sum()) / (1 - (p_j ** 2).sum())
    d = s.dimension("sentiment")
    assert d.raters_per_task == 3 and d.fleiss_reason is None
    assert d.fleiss_kappa == pytest.approx(expected, abs=1e-12)
    assert d.fleiss_text == f"{expected:.3f}"
    # the quality rating has no answers: alpha says why instead of a number
    q = s.dimension("quality")
    assert q.alpha is None and q.alpha_reason


def test_tidy_csv_tables_have_one_unit_and_follow_the_dimension(demo, tmp_path: Path) -> None:
    data, pid = demo
    st = Store.open(data)
    try:
        d = compute_dashboard(st, pid, save=False)
        frames = load_frames(st, pid)
    finally:
        st.close()
    files = export_csv(d, str(tmp_path / "dash.csv"), "category")
    names = [Path(f).name for f in files]
    assert names == ["dash.csv", "dash-agreement.csv", "dash-annotators.csv", "dash-controls.csv", "dash-models.csv"]
    wide = pd.read_csv(tmp_path / "dash.csv")
    assert list(wide.columns[:2]) == ["evaluator", "Ground truth"]  # the CLI's --csv shape is kept
    agree = pd.read_csv(tmp_path / "dash-agreement.csv")
    assert list(agree.columns) == ["dimension", "aggregation", "evaluator_a", "evaluator_b", "agreement_pct",
                                   "n_shared_tasks"]
    assert agree["agreement_pct"].between(0, 100).all() and agree["agreement_pct"].max() > 1
    assert {"category", "urgency", "regions", "all dimensions (mean of the dimensions)"} <= set(agree["dimension"])
    # diego vs ground truth on category: exact-match share over the tasks the frames compare, from the rows
    ann, gt = frames.annotations, frames.ground_truth

    def key(r):
        return tuple(sorted(c for i in r for c in i["value"]["choices"]))

    mine = ann[(ann["evaluator"] == "diego.santos@example.com") & (ann["control"] == "category")
               & ann["result"].map(bool)].set_index("task")
    ref = gt[(gt["control"] == "category") & gt["result"].map(bool)
             & (gt["source_evaluator"] != "diego.santos@example.com")].set_index("task")
    shared = mine.index.intersection(ref.index)
    hits = sum(key(mine.loc[t, "result"]) == key(ref.loc[t, "result"]) for t in shared)
    row = agree[(agree["dimension"] == "category") & (agree["evaluator_a"] == "diego.santos@example.com")
                & (agree["evaluator_b"] == "Ground truth")].iloc[0]
    assert row["n_shared_tasks"] == len(shared)
    assert row["agreement_pct"] == pytest.approx(round(100 * hits / len(shared), 2))
    ann_csv = pd.read_csv(tmp_path / "dash-annotators.csv")
    rates = [c for c in ann_csv.columns if c.endswith("_pct")]
    assert {"accuracy_pct", "accept_pct", "fix_pct", "reject_pct", "agreement_pct"} <= set(rates)
    assert not [c for c in ann_csv.columns if c.endswith("_rate")]
    assert ann_csv[rates].stack().dropna().between(0, 100).all()
    cat = ann_csv[(ann_csv["dimension"] == "category") & (ann_csv["evaluator"] == "diego.santos@example.com")].iloc[0]
    assert cat["accuracy_pct"] == pytest.approx(round(100 * hits / len(shared), 2))
    assert cat["accuracy_n"] == len(shared)
    pooled = ann_csv[ann_csv["dimension"] == "all dimensions (pooled)"]
    assert len(pooled) == len(ann_csv[ann_csv["dimension"] == "category"]) > 4
    models = pd.read_csv(tmp_path / "dash-models.csv")
    assert list(models.columns) == ["model", "dimension", "score_vs_ground_truth_pct", "n_tasks"]
    assert models["score_vs_ground_truth_pct"].between(0, 100).all()
