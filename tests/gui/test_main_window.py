from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt

from app.views.main_window import MainWindow
from tests.conftest import SMALL_CONFIG


def test_opens_demo_and_shows_selected_task(qtbot, demo_store, shots_dir: Path) -> None:
    store, pid = demo_store
    w = MainWindow(store, project_id=pid)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.current_project() == pid
    model = w.task_model
    assert model.rowCount() >= 300
    # virtualised: only the visible page was fetched, not every row
    assert model.loaded_rows() < model.rowCount()
    w.task_view.setFocus()
    w.task_view.selectRow(0)
    qtbot.keyClick(w.task_view, Qt.Key.Key_Down)
    qtbot.keyClick(w.task_view, Qt.Key.Key_Down)
    assert w.task_view.currentIndex().row() == 2
    row = model.row(2)
    assert row is not None
    detail = w.projects.task_detail(row.id)
    text = w.task_pane.toPlainText()
    assert detail.data["text"][:40] in text
    assert "category:" in text and detail.annotations[0].evaluator in text
    # scrolling to the end fetches the last page on demand
    w.task_view.scrollToBottom()
    qtbot.wait(50)
    assert model.row(model.rowCount() - 1) is not None
    w.grab().save(str(shots_dir / "main_window.png"))


def test_html_in_task_data_is_escaped(qtbot, store, tmp_path: Path) -> None:
    from app.services.projects import ProjectService

    tasks = [{"id": 1, "data": {"text": "<script>alert(1)</script><b>bold</b>"}}]
    src = tmp_path / "t.json"
    src.write_text(json.dumps(tasks))
    pid = ProjectService(store).import_file(src, SMALL_CONFIG, "x").summary.project_id
    w = MainWindow(store, project_id=pid)
    qtbot.addWidget(w)
    assert "<script>alert(1)</script>" in w.task_pane.toPlainText()


def test_import_runs_in_background_and_reports_errors(qtbot, store, tmp_path: Path, monkeypatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    w = MainWindow(store)
    qtbot.addWidget(w)
    assert "No projects yet" in w.task_pane.toPlainText()
    bad = tmp_path / "bad.json"
    bad.write_text("[{]")
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    job = w.run_import(str(bad), SMALL_CONFIG, "bad")
    qtbot.waitUntil(lambda: bool(shown), timeout=10000)
    assert "not valid JSON" in shown[0] and "Nothing was imported" in shown[0]
    good = tmp_path / "good.json"
    good.write_text(json.dumps([{"data": {"text": f"t{i}"}} for i in range(10)]))
    with qtbot.waitSignal(w.run_import(str(good), SMALL_CONFIG, "good").signals.finished, timeout=10000):
        pass
    assert job is not None
    assert w.project_list.count() == 1 and w.task_model.rowCount() == 10


def test_a_broken_audit_chain_is_shown_in_the_window(qtbot, data_dir) -> None:
    """Issue 16/12: an audit event edited by hand in the SQLite file is reported by the window on open (the
    store still opens), in the status bar, naming `reviewdesk audit verify`."""
    import sqlite3

    from sqlalchemy import text

    from app.models.store import Store
    from app.services.demo import ensure_demo
    from app.services.settings import Settings, save_settings

    store = Store.open(data_dir)
    ensure_demo(store)
    save_settings(data_dir, Settings().with_(reviewer="lee@example.com"))  # one more audited change after the open
    with store.transaction() as s:
        last = s.execute(text("SELECT max(id) FROM audit_events")).scalar()
    path = store.path
    store.close()
    conn = sqlite3.connect(path)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')
    conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE id = ?", (last,))
    conn.commit()
    conn.close()
    store = Store.open(data_dir)
    try:
        w = MainWindow(store)
        qtbot.addWidget(w)
        w.show()
        qtbot.waitExposed(w)
        assert w.store_warning.isVisible()
        assert "audit verify" in w.store_warning.toolTip() and str(last) in w.store_warning.toolTip()
        w.close()
    finally:
        store.close()
    clean = Store.open(data_dir.parent / "clean")
    try:
        w2 = MainWindow(clean)
        qtbot.addWidget(w2)
        assert not w2.store_warning.isVisible() and w2.store_warning.text() == ""
    finally:
        clean.close()
