from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QFont, QImage
from PySide6.QtTest import QTest

from app.metrics import AVG, GROUND_TRUTH, agreement_matrices
from app.services.dashboard import disagreeing_tasks, load_frames
from app.views.main_window import MainWindow
from tests.gui.helpers import wait_for


@pytest.fixture
def dash(qtbot, demo_store):
    store, pid = demo_store
    w = MainWindow(store, project_id=pid)
    qtbot.addWidget(w)
    w.resize(1500, 950)
    w.show()
    qtbot.waitExposed(w)
    w.tabs.setCurrentWidget(w.dashboard)
    wait_for(lambda: w.dashboard.data is not None and not w.dashboard.busy())
    return w


def test_cells_match_metrics_engine_and_dimensions_switch(dash: MainWindow, shots_dir: Path) -> None:
    d = dash.dashboard
    frames = load_frames(dash.store, d.project_id)
    expected = agreement_matrices(frames.annotations, frames.ground_truth, frames.params)
    for i in range(d.dimension.count()):
        d.dimension.setCurrentIndex(i)
        control = d.dimension.currentData()
        m = d.heatmap.matrix
        assert m is not None and m.control == control
        ref = expected[control]
        assert m.columns == ref.columns and m.rows == ref.rows
        np.testing.assert_allclose(m.matrix, ref.matrix, equal_nan=True)
        # the printed labels are the engine's numbers
        for (r, c), label in d.heatmap.text_color_cells.items():
            v = ref.matrix[r, c]
            if m.rows[r] == m.columns[c]:
                assert label == "—"
            elif not np.isnan(v):
                assert label == f"{100 * v:.1f}%"
    assert d.heatmap.matrix.columns[0] == GROUND_TRUTH and d.heatmap.matrix.rows[-1] == AVG
    # an expectation independent of the engine: on the single-choice "category" control, diego's cell
    # against Ground truth is the share of tasks where his choice equals the reference's (exact match),
    # computed here from the store, over tasks where his annotation is not itself the reference
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
    m = d.heatmap.matrix
    assert total >= 10
    assert m.matrix[m.rows.index("diego.santos@example.com"), m.columns.index(GROUND_TRUTH)] == \
        pytest.approx(hits / total)
    hover = d.heatmap.describe_cell(0, 0)
    assert "vs Ground truth" in hover and "shared tasks" in hover
    d.dimension.setCurrentIndex(0)
    dash.grab().save(str(shots_dir / "dashboard.png"))


def test_click_cell_opens_filtered_review_queue(dash: MainWindow) -> None:
    d = dash.dashboard
    d.dimension.setCurrentIndex(d.dimension.findData("category"))
    hm = d.heatmap
    m = hm.matrix
    r = m.rows.index("diego.santos@example.com")
    c = m.columns.index(GROUND_TRUTH)
    scene = hm.cell_center(r, c)
    view_pt = hm.mapFromScene(scene)
    QTest.mouseClick(hm.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(view_pt.x(), view_pt.y()))
    wait_for(lambda: dash.tabs.currentWidget() is dash.review, timeout=10)
    expected = disagreeing_tasks(dash.store, d.project_id, "diego.santos@example.com", GROUND_TRUTH, "category")
    s = dash.review.session
    assert expected and s.task_ids == expected  # ordered by disagreement
    assert "Diego Santos vs Ground truth" in s.queue.label
    # every task in the drill-down really disagrees on category, computed independently of the engine from
    # the store (diego's category choices vs the task's reference result), and no disagreeing task is missing
    from app.services.decisions import DecisionService
    from app.services.projects import ProjectService

    def cats(result) -> tuple[str, ...]:
        return tuple(sorted(c for it in (result or ()) if isinstance(it, dict) and it.get("from_name") == "category"
                            for c in (it.get("value") or {}).get("choices", [])))

    ps, ds = ProjectService(dash.store), DecisionService(dash.store)
    independent = set()
    rows = ps.task_page(d.project_id, offset=0, limit=100_000)
    for row in rows:
        ref = ds.ground_truth(row.id)
        if ref is None or not cats(ref):
            continue
        for a in ps.task_detail(row.id).annotations:
            if a.evaluator == "diego.santos@example.com" and not a.was_cancelled and cats(a.result) \
                    and cats(a.result) != cats(ref):
                independent.add(row.id)
    assert independent and set(s.task_ids) == independent


def test_mode_switch_and_debounced_refresh_after_decision(dash: MainWindow) -> None:
    d = dash.dashboard
    d.mode.setCurrentIndex(1)
    wait_for(lambda: not d.busy() and d.data is not None and d.data.mode == "consensus")
    assert d.heatmap.matrix.columns == (GROUND_TRUTH, "Consensus")
    d.mode.setCurrentIndex(0)
    wait_for(lambda: not d.busy() and d.data.mode == "pairwise")
    before = d.data
    # a decision elsewhere changes the data; the dashboard recomputes (debounced) while visible
    dash.review.session.decide("accept")
    dash.apply(dash.review.session.decide("reject", reason="Wrong label"))
    wait_for(lambda: d.data is not before and not d.busy(), timeout=30)
    q = d.data.quality.set_index("evaluator")
    assert q["n_decisions"].sum() == 2


def test_annotator_double_click_filters_queue(dash: MainWindow) -> None:
    d = dash.dashboard
    view = d.annotator_view
    row = next(r for r in range(d.annotators.rowCount())
               if d.annotators.item(r, 0).data(Qt.ItemDataRole.UserRole + 1) == "priya.nair@example.com")
    idx = d.annotator_proxy.mapFromSource(d.annotators.index(row, 0))
    d._annotator_queue(idx)
    wait_for(lambda: dash.tabs.currentWidget() is dash.review, timeout=10)
    s = dash.review.session
    assert s.queue.evaluator_user_id is not None
    assert all(any(a.evaluator == "priya.nair@example.com" for a in dash.projects.task_detail(t).annotations)
               for t in s.task_ids[:20])
    assert view.model().rowCount() >= 6


def test_cli_png_and_csv_are_real(tmp_path: Path, capsys, shots_dir: Path) -> None:
    from app.main import main

    data = str(tmp_path / "d")
    main(["--data-dir", data, "demo"])
    capsys.readouterr()
    png = tmp_path / "heat.png"
    csv = tmp_path / "m.csv"
    assert main(["--data-dir", data, "metrics", "1", "--png", str(png), "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "Ground truth" in out and "Avg." in out and "Per-annotator quality" in out
    img = QImage(str(png))
    assert img.width() > 600 and img.height() > 300
    # distinct colours: sample a grid; a real heatmap has many cell colours plus text and grey
    colours = {img.pixelColor(x, y).rgb() for x in range(0, img.width(), 7) for y in range(0, img.height(), 7)}
    assert len(colours) > 40
    # labels drawn: dark text pixels in the left margin where the row names are
    dark = sum(1 for x in range(0, 110) for y in range(60, img.height() - 20)
               if img.pixelColor(x, y).lightness() < 90)
    assert dark > 200
    png.replace(shots_dir / "cli_heatmap.png")
    header = csv.read_text().splitlines()[0]
    assert header.startswith("evaluator,Ground truth")
    assert (tmp_path / "m-annotators.csv").exists() and (tmp_path / "m-models.csv").exists()
    # issue 13: one tidy long table per file beside the matrix, rates as percentages named *_pct
    assert (tmp_path / "m-agreement.csv").read_text().splitlines()[0] == \
        "dimension,aggregation,evaluator_a,evaluator_b,agreement_pct,n_shared_tasks"
    assert (tmp_path / "m-models.csv").read_text().splitlines()[0] == "model,dimension,score_vs_ground_truth_pct,n_tasks"
    assert "accept_pct" in (tmp_path / "m-annotators.csv").read_text().splitlines()[0]
    assert main(["--data-dir", data, "metrics", "1", "--control", "category", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"evaluators", "columns", "matrix", "counts", "per_annotator", "alpha"} <= set(report)
    assert report["columns"][0] == GROUND_TRUTH and 0.5 < report["alpha"] < 1
    assert main(["--data-dir", data, "metrics", "1", "--control", "nope"]) == 1


def test_drill_down_on_a_rating_lets_near_matches_pass(dash: MainWindow) -> None:
    """13.7: drilling into a pair on a numeric dimension lists the tasks where the two are more than the
    tolerance apart (a quarter of the scale: one star of five passes), computed here from the store's rating
    values without the metrics engine; the queue label says so."""
    from app.services.projects import ProjectService

    d = dash.dashboard
    d.dimension.setCurrentIndex(d.dimension.findData("urgency"))
    a, b = "diego.santos@example.com", "tom.becker@example.com"
    d._drill_down(a, b)
    wait_for(lambda: dash.tabs.currentWidget() is dash.review, timeout=10)
    s = dash.review.session

    def stars(result) -> float | None:
        vals = [it["value"]["rating"] for it in (result or ()) if isinstance(it, dict)
                and it.get("from_name") == "urgency" and "rating" in (it.get("value") or {})]
        return float(vals[-1]) if vals else None

    ps = ProjectService(dash.store)
    beyond, any_diff = set(), set()
    for row in ps.task_page(d.project_id, offset=0, limit=100_000):
        got = {x.evaluator: stars(x.result) for x in ps.task_detail(row.id).annotations if not x.was_cancelled}
        if got.get(a) is None or got.get(b) is None:
            continue
        gap = abs(got[a] - got[b]) / 4  # maxRating 5: the scale is 4 steps
        if gap > 0:
            any_diff.add(row.id)
        if gap > 0.25:
            beyond.add(row.id)
    assert beyond and any_diff - beyond  # the demo has both: far apart and one star apart
    assert set(s.task_ids) == beyond
    assert "urgency" in s.queue.label and "25% tolerance" in s.queue.label


def test_every_heatmap_column_is_named_in_a_small_window(qtbot, demo_store) -> None:
    """At 1024 px the column headers are elided to their column, never dropped (pyqtgraph hides a tick label
    that overlaps its neighbour: the Ground truth column had no name)."""
    from PySide6.QtGui import QFontMetrics

    store, pid = demo_store
    w = MainWindow(store, project_id=pid)
    qtbot.addWidget(w)
    w.resize(1024, 700)
    w.show()
    qtbot.waitExposed(w)
    d = w.dashboard
    w.tabs.setCurrentWidget(d)
    wait_for(lambda: d.data is not None and not d.busy())
    qtbot.wait(100)
    hm = d.heatmap
    top = hm.plot.getAxis("top")
    ticks = top._tickLevels[0] if top._tickLevels else []
    assert len(ticks) == len(hm.matrix.columns)
    fm = QFontMetrics(top.style.get("tickFont") or QFont())
    col_px = hm.plot.vb.width() / len(hm.matrix.columns)
    for _pos, text in ticks:
        assert text and fm.horizontalAdvance(text) <= col_px, (text, col_px)
    assert ticks[0][1].startswith("Ground")


def test_numbers_as_of_an_audit_point(dash: MainWindow, shots_dir: Path) -> None:
    """Export → Numbers as of an audit point: the heatmap, annotator table and kappa as they were right after
    an event, while decisions made since change today's numbers; Back to now shows today's again."""
    from sqlalchemy import text

    from app.services.dashboard import compute_dashboard

    d = dash.dashboard
    with dash.store.session() as s:
        ev_id = s.execute(text("SELECT max(id) FROM audit_events")).scalar()
    then = d.data.matrices[None].matrix.copy()
    dash.apply(dash.review.session.decide("reject", reason="Wrong label"))
    dash.apply(dash.review.session.decide("accept"))
    wait_for(lambda: not d.busy() and d.data is not None and int(d.data.quality["n_decisions"].sum()) == 2,
             timeout=30)
    now = compute_dashboard(dash.store, d.project_id, save=False)
    assert not np.allclose(now.matrices[None].matrix, then, equal_nan=True)

    d.set_as_of(str(ev_id))
    wait_for(lambda: not d.busy() and d.data is not None and d.data.as_of is not None, timeout=60)
    np.testing.assert_allclose(d.heatmap.matrix.matrix, then, equal_nan=True)
    assert int(d.data.quality["n_decisions"].sum()) == 0
    assert f"As of audit event {ev_id}" in d.status.text() and d.now_action.isEnabled()
    assert f"as of audit event {ev_id}" in d.png_caption()
    before = d.data
    dash.apply(dash.review.session.decide("accept"))  # past numbers do not move with new decisions
    QTest.qWait(600)
    assert d.data is before and not d.busy()
    d.statistic.setCurrentIndex(d.statistic.findData("kappa"))
    wait_for(lambda: d.stats is not None and not d.busy(), timeout=60)
    dash.grab().save(str(shots_dir / "dashboard-as-of.png"))
    d.statistic.setCurrentIndex(d.statistic.findData("agreement"))

    d.set_as_of("2999-01-01T00:00:00Z")  # a bad cut-off: said in the status line, back to today's numbers
    wait_for(lambda: not d.busy() and "in the future" in d.status.text(), timeout=30)
    assert d.as_of is None and not d.now_action.isEnabled()
    d.set_as_of(None)
    wait_for(lambda: not d.busy() and d.data is not None and d.data.as_of is None, timeout=60)
    np.testing.assert_allclose(d.heatmap.matrix.matrix,
                               compute_dashboard(dash.store, d.project_id, save=False).matrices[None].matrix,
                               equal_nan=True)
