"""Issue 12/13: the Dashboard's statistic selector (percent agreement, Cohen's kappa, Krippendorff's alpha,
Fleiss' kappa), the annotator table following the dimension, rates with their counts, and the Ground truth
column vs the per-annotator accuracy.

Expected numbers come from ``reviewdesk metrics --stat ... --json`` (run through ``app.main.main``), from
scikit-learn on the store's rows, and from the store's rows directly -- not from the functions the view calls.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.metrics import AVG, GROUND_TRUTH, AgreementMatrix
from app.views.heatmap import HeatmapWidget
from app.views.main_window import MainWindow
from tests.gui.helpers import wait_for

NA_FLEISS = "n/a — not every task has the same number of raters"



def open_dashboard(qtbot, demo_store, width: int = 1280, height: int = 800) -> MainWindow:
    store, pid = demo_store
    w = MainWindow(store, project_id=pid)
    qtbot.addWidget(w)
    w.resize(width, height)
    w.show()
    qtbot.waitExposed(w)
    w.tabs.setCurrentWidget(w.dashboard)
    wait_for(lambda: w.dashboard.data is not None and not w.dashboard.busy())
    return w


@pytest.fixture
def dash(qtbot, demo_store) -> MainWindow:
    return open_dashboard(qtbot, demo_store)


def choose(w: MainWindow, stat: str, control: str | None = "keep") -> None:
    d = w.dashboard
    d.statistic.setCurrentIndex(d.statistic.findData(stat))
    if control != "keep":
        d.dimension.setCurrentIndex(d.dimension.findData(control))
    wait_for(lambda: not d.busy())
    for _ in range(3):
        QApplication.processEvents()


def cli(capsys, w: MainWindow, *args: str) -> dict:
    from app.main import main

    capsys.readouterr()
    assert main(["--data-dir", str(w.store.data_dir), "metrics", str(w.dashboard.project_id), *args,
                 "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def table(d) -> list[list[str]]:
    m = d.stat_model
    return [[m.item(r, c).text() for c in range(m.columnCount())] for r in range(m.rowCount())]


def test_kappa_heatmap_equals_cli_cell_by_cell_and_sklearn(dash: MainWindow, capsys, shots_dir: Path) -> None:
    d = dash.dashboard
    checked = 0
    for control in (None, "category", "urgency"):
        choose(dash, "kappa", control)
        assert d.stack.currentWidget() is d.heatmap
        rep = cli(capsys, dash, "--stat", "kappa", *(["--control", control] if control else []))
        m = d.heatmap.matrix
        assert m.mode == "kappa" and list(m.rows) == rep["rows"] and list(m.columns) == rep["columns"]
        for r, row in enumerate(rep["rows"]):
            for c, col in enumerate(rep["columns"]):
                want = rep["matrix"][r][c]
                got = m.matrix[r, c]
                assert (want is None and np.isnan(got)) or got == pytest.approx(want, abs=1e-12), (row, col)
                label = d.heatmap.text_color_cells[(r, c)]
                hover = d.heatmap.describe_cell(r, c)
                if row == col:
                    assert label == "—"
                elif want is None:
                    assert label == "n/a" and rep["reasons"][r][c] in hover
                else:
                    assert label == f"{want:.2f}" and f"κ = {want:.3f}" in hover
                checked += 1
    assert checked > 150
    # the one undefined cell of the demo (Lead has no task whose reference is not Lead's own) says why
    choose(dash, "kappa", "category")
    m = d.heatmap.matrix
    r, c = m.rows.index("lead@example.com"), m.columns.index(GROUND_TRUTH)
    assert d.heatmap.text_color_cells[(r, c)] == "n/a"
    assert "no shared task" in d.heatmap.describe_cell(r, c)
    # an independent kappa: two annotators' category choices read from the store's rows, scored by sklearn
    from sklearn.metrics import cohen_kappa_score

    from app.services.projects import ProjectService

    ps = ProjectService(dash.store)
    lab: dict[str, dict[int, str]] = {"lena.okafor@example.com": {}, "tom.becker@example.com": {}}
    for row in ps.task_page(d.project_id, offset=0, limit=100_000):
        for a in ps.task_detail(row.id).annotations:
            if a.evaluator in lab and not a.was_cancelled:
                ch = sorted(c for it in (a.result or []) if it.get("from_name") == "category"
                            for c in it["value"].get("choices", []))
                if ch:
                    lab[a.evaluator][row.id] = ",".join(ch)
    x, y = lab["lena.okafor@example.com"], lab["tom.becker@example.com"]
    shared = sorted(set(x) & set(y))
    expected = cohen_kappa_score([x[t] for t in shared], [y[t] for t in shared])
    r, c = m.rows.index("lena.okafor@example.com"), m.columns.index("tom.becker@example.com")
    assert len(shared) >= 20 and int(m.counts[r, c]) == len(shared)
    assert m.matrix[r, c] == pytest.approx(expected, abs=1e-12)
    assert d.heatmap.text_color_cells[(r, c)] == f"{expected:.2f}"
    # a dimension kappa does not apply to says so instead of showing a matrix
    choose(dash, "kappa", "regions")
    assert d.stack.currentWidget() is d.stat_note and "not computed on regions" in d.stat_note.text()


def test_kappa_scale_is_diverging_and_centred_at_zero(qtbot) -> None:
    hm = HeatmapWidget()
    qtbot.addWidget(hm)
    evs = ("a", "b", "c")
    mat = np.array([[0.9, np.nan, -0.8, 0.0],
                    [0.2, -0.8, np.nan, np.nan],
                    [0.5, 0.0, np.nan, np.nan],
                    [0.5, -0.3, -0.8, 0.0]])
    counts = np.array([[10, 0, 10, 10], [10, 10, 0, 10], [10, 10, 10, 0], [30, 20, 20, 20]])
    reasons = tuple(tuple(None if not np.isnan(v) else f"why-{r}-{c}" for c, v in enumerate(line))
                    for r, line in enumerate(mat))
    m = AgreementMatrix(evs, (GROUND_TRUTH, *evs), mat, counts, "x", "kappa")
    hm.set_matrix(m, reasons=reasons)
    img = hm.image.image  # the painted cell colours (rows x columns x RGBA)
    neg, zero, pos = img[0, 2], img[0, 3], img[0, 0]
    assert neg[0] > neg[2] + 60  # below chance: red
    assert pos[2] > pos[0] + 60  # above chance: blue
    assert min(zero[:3]) > 230  # chance: near white
    assert tuple(hm.bar.levels()) == (-1, 1)
    assert hm.text_color_cells[(0, 2)] == "-0.80" and hm.text_color_cells[(0, 0)] == "0.90"
    assert hm.text_color_cells[(1, 3)] == "n/a" and "why-1-3" in hm.describe_cell(1, 3)
    assert hm.describe_cell(2, 3) == "c (diagonal)"
    # switching back to a percent matrix restores the 0-100 scale
    pm = AgreementMatrix(evs, (GROUND_TRUTH, *evs), np.clip(np.nan_to_num(mat), 0, 1), counts, "x", "pairwise")
    hm.set_matrix(pm)
    assert tuple(hm.bar.levels()) == (0, 100) and hm.text_color_cells[(0, 0)] == "90.0%"


def test_alpha_and_fleiss_tables_equal_cli(dash: MainWindow, capsys) -> None:
    d = dash.dashboard
    choose(dash, "alpha", None)
    assert d.stack.currentWidget() is d.stat_table
    rep = cli(capsys, dash, "--stat", "alpha")
    rows = table(d)
    by = {r[0]: r for r in rows}
    for control, e in rep["by_control"].items():
        want = "n/a" if e["alpha"] is None else f"{e['alpha']:.3f}"
        assert by[control][2] == want, control
    o = rep["overall"]["alpha"]
    assert rows[-1][0] == "Overall" and rows[-1][2] == f"{o:.3f}"
    # the "annotators only" column is the difficulty chart's alpha (labelled as a different set of raters)
    diff = d.data.difficulty.set_index("control")
    assert by["category"][3] == f"{diff.loc['category', 'alpha']:.3f}" != by["category"][2]
    assert "annotators only" in d.stat_model.horizontalHeaderItem(3).text()
    choose(dash, "fleiss")
    rows = table(d)
    by = {r[0]: r for r in rows}
    for control, e in rep["by_control"].items():
        if e["fleiss_kappa"] is not None:
            assert by[control][2] == f"{e['fleiss_kappa']:.3f}"
        elif (e["fleiss_reason"] or "").startswith("incomplete design"):
            assert by[control][2] == NA_FLEISS
            assert d.stat_model.item(rows.index(by[control]), 2).toolTip() == e["fleiss_reason"]
        else:
            assert by[control][2].startswith("n/a")
    assert by["category"][2] == NA_FLEISS  # the demo has 4 to 7 raters per task


def test_fleiss_shows_a_number_on_a_complete_design(qtbot, store, tmp_path: Path) -> None:
    """A project where every task has the same three raters: Fleiss' kappa is a number, the formula's."""
    from app.services.projects import ProjectService

    config = """<View><Text name="text" value="$text"/>
      <Choices name="sentiment" toName="text" choice="single">
        <Choice value="pos"/><Choice value="neg"/><Choice value="neutral"/></Choices></View>"""
    labels = [["pos", "pos", "pos"], ["neg", "neg", "pos"], ["neutral", "neutral", "neutral"],
              ["pos", "neg", "pos"], ["neg", "neg", "neg"], ["neutral", "pos", "neutral"]] * 2
    tasks = [{"id": 100 + t, "data": {"text": f"t{t}"}, "annotations": [
        {"id": 1000 + 10 * t + k, "completed_by": {"id": 2 + k, "email": f"r{k}@example.com"},
         "result": [{"id": f"c{t}{k}", "from_name": "sentiment", "to_name": "text", "type": "choices",
                     "value": {"choices": [lab[k]]}}]} for k in range(3)]} for t, lab in enumerate(labels)]
    src = tmp_path / "export.json"
    src.write_text(json.dumps(tasks))
    ProjectService(store).import_file(src, config, "Complete")
    pid = ProjectService(store).find_project_by_title("Complete")
    w = open_dashboard(qtbot, (store, pid))
    choose(w, "fleiss")
    cats = ["neg", "neutral", "pos"]
    t = np.array([[lab.count(c) for c in cats] for lab in labels], dtype=float)
    p_i = ((t ** 2).sum(axis=1) - 3) / 6
    p_j = t.sum(axis=0) / t.sum()
    expected = (p_i.mean() - (p_j ** 2).sum()) / (1 - (p_j ** 2).sum())
    row = next(r for r in table(w.dashboard) if r[0] == "sentiment")
    assert row[2] == f"{expected:.3f}" and row[3] == "3"


@pytest.mark.parametrize("width", [1024, 1280])
def test_switching_statistic_never_changes_the_window_width(qtbot, demo_store, width: int,
                                                            shots_dir: Path) -> None:
    w = open_dashboard(qtbot, demo_store, width, 800)
    d = w.dashboard
    assert w.width() == width
    names = {"agreement": "agreement", "kappa": "kappa", "alpha": "alpha", "fleiss": "fleiss"}
    for i in range(d.statistic.count()):
        for j in range(d.dimension.count()):
            d.statistic.setCurrentIndex(i)
            d.dimension.setCurrentIndex(j)
            wait_for(lambda: not d.busy())
            QApplication.processEvents()
            assert w.width() == width, (d.statistic.currentText(), d.dimension.currentText())
        if width == 1280:
            d.dimension.setCurrentIndex(d.dimension.findData(None))
            if d.statistic.currentData() == "kappa":
                d.dimension.setCurrentIndex(d.dimension.findData("category"))
            wait_for(lambda: not d.busy())
            for _ in range(3):
                QApplication.processEvents()
            pooled = d.dimension.currentData() is None
            assert ("pooled" in d.annotators.horizontalHeaderItem(2).text()) == pooled  # the table follows
            w.grab().save(str(shots_dir / f"12-stat-{names[d.statistic.currentData()]}.png"))
            assert w.width() == width


def test_statistic_selector_is_keyboard_accessible(dash: MainWindow) -> None:
    d = dash.dashboard
    dash.activateWindow()
    d.dimension.setFocus()
    QTest.keyClick(dash, Qt.Key.Key_S, Qt.KeyboardModifier.AltModifier)
    wait_for(lambda: QApplication.focusWidget() is d.statistic, timeout=5)
    QTest.keyClick(d.statistic, Qt.Key.Key_Down)
    wait_for(lambda: not d.busy())
    assert d.current_statistic() == "kappa" and d.heatmap.matrix.mode == "kappa"
    assert not d.mode.isEnabled()  # aggregation is a percent-agreement setting
    # Tab walks the top row left to right
    order = [d.statistic]
    for _ in range(4):
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        order.append(QApplication.focusWidget())
    assert order[:3] == [d.statistic, d.dimension, d.export_button]  # the disabled Aggregation is skipped
    QTest.keyClick(d.statistic, Qt.Key.Key_Up)
    wait_for(lambda: not d.busy())
    assert d.current_statistic() == "agreement" and d.mode.isEnabled()


def _acc(text: str) -> tuple[float, int]:
    m = re.match(r"([\d.]+)% of (\d+) \(", text)
    assert m, text
    return float(m.group(1)), int(m.group(2))


def test_annotator_table_follows_dimension_and_ground_truth_column_agrees_or_is_labelled(dash: MainWindow) -> None:
    d = dash.dashboard
    model = d.annotators

    def row_of(ev: str) -> int:
        return next(r for r in range(model.rowCount()) if model.item(r, 0).data(Qt.ItemDataRole.UserRole + 1) == ev)

    # on one dimension the table's accuracy is the heatmap's Ground truth cell (same number, same count)
    for control in ("category", "urgency", "regions"):
        d.dimension.setCurrentIndex(d.dimension.findData(control))
        wait_for(lambda: not d.busy())
        m = d.heatmap.matrix
        for ev in ("diego.santos@example.com", "priya.nair@example.com", "model:triage-clf-v2"):
            pct, n = _acc(model.item(row_of(ev), 2).text())
            r = m.rows.index(ev)
            assert pct == pytest.approx(100 * m.matrix[r, 0], abs=0.05) and n == int(m.counts[r, 0]), (control, ev)
        assert model.horizontalHeaderItem(2).text() == "Accuracy vs GT (95% CI)"
    # category accuracy, independent of the engine: diego's exact matches with the task's reference
    from app.services.decisions import DecisionService
    from app.services.projects import ProjectService

    def cats(result) -> tuple[str, ...]:
        return tuple(sorted(c for it in (result or ()) if isinstance(it, dict) and it.get("from_name") == "category"
                            for c in (it.get("value") or {}).get("choices", [])))

    ps, ds = ProjectService(dash.store), DecisionService(dash.store)
    hits = total = 0
    for row in ps.task_page(d.project_id, offset=0, limit=100_000):
        ref = ds.ground_truth(row.id)
        if ref is None or not cats(ref):
            continue
        for a in ps.task_detail(row.id).annotations:
            if a.evaluator == "diego.santos@example.com" and not a.was_cancelled and cats(a.result) \
                    and not (a.ground_truth and cats(a.result) == cats(ref)):
                total += 1
                hits += cats(a.result) == cats(ref)
    d.dimension.setCurrentIndex(d.dimension.findData("category"))
    wait_for(lambda: not d.busy())
    assert _acc(model.item(row_of("diego.santos@example.com"), 2).text()) == (round(100 * hits / total, 1), total)
    # on all dimensions they are two measures (mean of cells vs pooled): they differ for a model version that
    # predicts some dimensions only, and both are labelled as what they are
    d.dimension.setCurrentIndex(d.dimension.findData(None))
    wait_for(lambda: not d.busy())
    m = d.heatmap.matrix
    differ = []
    for r, ev in enumerate(m.evaluators):
        text = model.item(row_of(ev), 2).text()
        if text:
            differ.append(abs(_acc(text)[0] - 100 * m.matrix[r, 0]) > 1e-9)
    assert any(differ)
    header = model.horizontalHeaderItem(2)
    assert "pooled" in header.text() and "different measure" in header.toolTip()
    assert "mean of the per-dimension Ground truth cells" in d.heatmap.describe_cell(0, 0)
    assert "Ground truth column: mean of the dimensions' cells" in d.title.text()
    assert m.rows[-1] == AVG


def test_rates_show_their_counts(dash: MainWindow) -> None:
    from app.views.dashboard import DashboardPanel

    s = dash.review.session
    judged = s.evaluator_name(s.focused_annotation().evaluator) if s.focused_annotation() else None
    assert judged
    ev = s.focused_annotation().evaluator
    dash.apply(s.decide("accept"))
    d: DashboardPanel = dash.dashboard
    d.refresh()
    wait_for(lambda: not d.busy() and d.data is not None and d.data.quality["n_decisions"].sum() >= 1, timeout=30)
    model = d.annotators
    headers = [model.horizontalHeaderItem(c).text() for c in range(model.columnCount())]
    row = next(r for r in range(model.rowCount()) if model.item(r, 0).data(Qt.ItemDataRole.UserRole + 1) == ev)
    assert model.item(row, headers.index("Accept")).text() == "100% of 1"
    assert model.item(row, headers.index("Reject")).text() == "0% of 1"
    other = next(r for r in range(model.rowCount()) if r != row)
    assert model.item(other, headers.index("Accept")).text() == ""  # no decision: no rate


def test_csv_export_writes_tidy_tables_including_the_statistics(dash: MainWindow, capsys, tmp_path: Path,
                                                                 monkeypatch) -> None:
    import pandas as pd
    from PySide6.QtWidgets import QFileDialog

    d = dash.dashboard
    choose(dash, "kappa", "category")  # the statistics are computed once shown; the export then carries them
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "qa.csv"), ""))
    d.export_csv_dialog()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["qa-agreement.csv", "qa-alpha.csv", "qa-annotators.csv", "qa-controls.csv", "qa-kappa.csv",
                     "qa-models.csv", "qa.csv"]
    assert dash.statusBar().currentMessage().startswith("Wrote ")
    kappa = pd.read_csv(tmp_path / "qa-kappa.csv")
    assert list(kappa.columns) == ["dimension", "evaluator_a", "evaluator_b", "kappa", "n_shared_tasks", "reason"]
    rep = cli(capsys, dash, "--stat", "kappa", "--control", "category")
    r, c = rep["rows"].index("tom.becker@example.com"), rep["columns"].index("priya.nair@example.com")
    row = kappa[(kappa["dimension"] == "category") & (kappa["evaluator_a"] == "tom.becker@example.com")
                & (kappa["evaluator_b"] == "priya.nair@example.com")].iloc[0]
    assert row["kappa"] == pytest.approx(rep["matrix"][r][c], abs=1e-6) and row["n_shared_tasks"] == rep["counts"][r][c]
    alpha = pd.read_csv(tmp_path / "qa-alpha.csv").set_index("dimension")
    arep = cli(capsys, dash, "--stat", "alpha")
    assert alpha.loc["urgency", "alpha"] == pytest.approx(arep["by_control"]["urgency"]["alpha"])
    assert alpha.loc["overall", "alpha"] == pytest.approx(arep["overall"]["alpha"])
    assert alpha.loc["category", "raters_per_task"] == "4–7"  # the incomplete design, as a range
    annotators = pd.read_csv(tmp_path / "qa-annotators.csv")
    assert not [c for c in annotators.columns if c.endswith("_rate")]
    assert {"accept_pct", "accuracy_pct", "dimension"} <= set(annotators.columns)
    choose(dash, "fleiss")
    assert {r[0]: r for r in table(d)}["category"][3] == "4–7"


def test_kappa_follows_a_new_decision(dash: MainWindow, capsys) -> None:
    """A decision changes the ground truth; the κ heatmap shown is recomputed and equals the CLI again."""
    d = dash.dashboard
    choose(dash, "kappa", "category")
    before = d.stats
    s = dash.review.session
    for _ in range(3):  # fix a few tasks' references: accept the focused annotation
        dash.apply(s.decide("accept"))
    d.refresh()
    wait_for(lambda: not d.busy() and d.stats is not before and d.stats.version == d.data.version, timeout=60)
    for _ in range(3):
        QApplication.processEvents()
    rep = cli(capsys, dash, "--stat", "kappa", "--control", "category")
    m = d.heatmap.matrix
    assert m.mode == "kappa"
    want = np.array([[np.nan if v is None else v for v in row] for row in rep["matrix"]])
    np.testing.assert_allclose(m.matrix, want, equal_nan=True, atol=1e-12)
    assert before.version != d.stats.version
