"""Frames from ``result_values`` (app.services.frames) equal the frames decoded from result JSON
(``app.services.dashboard._build_frames``): same rows, same order, same values -- and the same numbers.

Covered: the demo project, every real export, a store edited every way the app edits one (accept, fix,
reject, an accepted prediction, undo, the push + pull that brings them back, a pulled change of an
annotation, an annotation deleted on the server, a deleted task, results that are no array or not strict
JSON), a real pull through the sync engine (fake server), and the migration that backfills an old store.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import create_engine, select, text, update

from app.metrics import metrics_report, to_jsonable
from app.models.schema import Annotation, GroundTruth, Prediction, Server, Task
from app.models.store import STORE_FILENAME, Store, _alembic_config, head_revision
from app.services import dashboard
from app.services import frames as frames_mod
from app.services.dashboard import compute_dashboard, data_version
from app.services.decisions import DecisionRequest, DecisionService
from app.services.demo import ensure_demo
from app.services.projects import ProjectService
from tests.unit.test_reference_frames import (
    REVIEWER,
    _annotation,
    _choice,
    _decide_all,
    _export,
    _import,
    _push_and_pull,
    _rating,
    _span,
)

REAL = Path(__file__).resolve().parents[1] / "data" / "real_exports"
REAL_FILES = sorted(REAL.glob("*.json"))


def _frames_both(store: Store, pid: int) -> tuple[Any, Any]:
    """The JSON path's frames and the store path's; the store path read with the ADBC driver (checked: it did
    not fall back) and equal to the same read with ``sqlite3``."""
    v = data_version(store, pid)
    arrow = frames_mod.build_frames(store, pid, v, None, reader="arrow-only")
    plain = frames_mod.build_frames(store, pid, v, None, reader="sqlite3")
    for name in ("annotations", "ground_truth", "decisions"):
        pd.testing.assert_frame_equal(getattr(plain, name), getattr(arrow, name))
    assert plain.members == arrow.members and plain.version == arrow.version
    return dashboard._build_frames(store, pid, v, None), arrow


def _report(f: Any) -> str:
    gt = f.ground_truth if not f.ground_truth.empty else None
    dec = f.decisions if not f.decisions.empty else None
    if f.annotations.empty:
        return "empty"
    return json.dumps(to_jsonable(metrics_report(f.annotations, gt, f.params, decisions=dec)), sort_keys=True)


def _dashboard(store: Store, pid: int, builder: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The dashboard's numbers with ``builder`` making the frames (cache emptied: a cold open)."""
    with monkeypatch.context() as patch:  # undone on return: later checks in the test use the real builder
        patch.setattr(frames_mod, "build_frames", builder)
        with dashboard._CACHE_LOCK:
            dashboard._CACHE.clear()
        d = compute_dashboard(store, pid, save=False)
        with dashboard._CACHE_LOCK:
            dashboard._CACHE.clear()
    payload = {"matrices": {str(c): {"rows": list(m.rows), "columns": list(m.columns), "matrix": m.matrix,
                                     "counts": m.counts} for c, m in d.matrices.items()},
               "quality": d.quality.to_dict(orient="records") if not d.quality.empty else [],
               "leaderboard": d.leaderboard.reset_index().to_dict(orient="records") if not d.leaderboard.empty
               else [],
               "difficulty": d.difficulty.to_dict(orient="records") if not d.difficulty.empty else []}
    return json.dumps(to_jsonable(payload), sort_keys=True, default=str)


def assert_same_frames(store: Store, pid: int, monkeypatch: pytest.MonkeyPatch | None = None) -> Any:
    old, new = _frames_both(store, pid)
    # row for row in the same order (the engine keeps the last of duplicate rows), then also sorted
    pd.testing.assert_frame_equal(old.annotations, new.annotations)
    pd.testing.assert_frame_equal(old.ground_truth, new.ground_truth)
    pd.testing.assert_frame_equal(old.decisions, new.decisions)
    keys = ["task", "evaluator", "control"]
    pd.testing.assert_frame_equal(old.annotations.sort_values(keys, kind="stable").reset_index(drop=True),
                                  new.annotations.sort_values(keys, kind="stable").reset_index(drop=True))
    assert old.controls == new.controls and dict(old.members) == dict(new.members)
    assert old.params == new.params and old.version == new.version
    assert _report(old) == _report(new)
    if monkeypatch is not None and not new.annotations.empty:
        assert _dashboard(store, pid, dashboard._build_frames, monkeypatch) == \
            _dashboard(store, pid, frames_mod.build_frames, monkeypatch)
    return new


def test_demo_project(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = ensure_demo(store)
    f = assert_same_frames(store, pid, monkeypatch)
    assert len(f.annotations) > 0


@pytest.mark.parametrize("path", REAL_FILES, ids=[f.stem for f in REAL_FILES])
def test_real_export(path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    config = path.with_suffix(".xml").read_text(encoding="utf-8")
    pid = ProjectService(store).import_file(path, config, path.stem).summary.project_id
    assert_same_frames(store, pid, monkeypatch)


def test_edits_decisions_undo_push_pull_and_deletions(store: Store, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pid = _import(store, tmp_path, _export())
    assert_same_frames(store, pid)
    with store.session() as s:  # single items with a region id: stored as a template + the id apart
        assert s.scalar(text("SELECT count(*) FROM result_values WHERE item_id IS NOT NULL")) > 0
    _decide_all(store, pid)  # accepts, fixes, a reject, an accepted prediction (ground-truth rows)
    assert_same_frames(store, pid, monkeypatch)
    tid, aid = _annotation(store, pid, 13, 2)
    rec = DecisionService(store).record(pid, [DecisionRequest(tid, "accept", annotation_id=aid)], reviewer=REVIEWER)
    DecisionService(store).retract(rec.decisions[0].uuid, reviewer=REVIEWER)  # undo: a retraction
    assert_same_frames(store, pid)
    _push_and_pull(store, pid)  # flags, reviewer annotations, meta records, effects
    assert_same_frames(store, pid, monkeypatch)
    with store.transaction() as s:
        # a pull brings a changed annotation (the ORM update the pull makes) ...
        a = s.get(Annotation, _annotation(store, pid, 15, 3)[1])
        assert a is not None
        a.result = [_rating(5), _choice("neg"), _span(9, "PER"), _choice("pos")]  # two items of one control
        # ... a server-side ground-truth flag on another ...
        s.execute(update(Annotation).where(Annotation.id == _annotation(store, pid, 12, 2)[1])
                  .values(ground_truth=True))
        # ... deletes an annotation on the server (soft) and one outright, and a task
        s.execute(update(Annotation).where(Annotation.id == _annotation(store, pid, 14, 3)[1]).values(deleted=True))
        s.execute(update(Task).where(Task.project_id == pid, Task.server_id == 16).values(deleted=True))
    with store.transaction() as s:
        gone = _annotation(store, pid, 13, 4)[1]
        s.execute(text("DELETE FROM comments WHERE annotation_id = :a"), {"a": gone})
        if not s.scalar(text("SELECT count(*) FROM decisions WHERE annotation_id = :a"), {"a": gone}) and \
                not s.scalar(select(GroundTruth.id).where(GroundTruth.annotation_id == gone)):
            s.execute(text("DELETE FROM annotations WHERE id = :a"), {"a": gone})
    assert_same_frames(store, pid, monkeypatch)
    with store.session() as s:  # no value left behind for a row that is gone, none missing for one there
        assert s.scalar(text("SELECT count(*) FROM result_values rv WHERE rv.kind = 'a' AND NOT EXISTS "
                             "(SELECT 1 FROM annotations a WHERE a.id = rv.row_id)")) == 0


def test_odd_results_fall_back_to_the_stored_json(store: Store, tmp_path: Path) -> None:
    """Results that are not arrays, items that are not objects or name no control, a prediction without a
    result, NaN (not strict JSON: decoded from the row, as before)."""
    pid = _import(store, tmp_path, _export())
    with store.transaction() as s:
        tids = s.scalars(select(Task.id).where(Task.project_id == pid).order_by(Task.id)).all()
        anns = s.scalars(select(Annotation).join(Task).where(Task.project_id == pid).order_by(Annotation.id)).all()
        anns[0].result = {"from_name": "sentiment"}  # type: ignore[assignment]
        anns[1].result = [1, "x", None, {"from_name": 5}, {"no": "name"}, _choice("neg")]
        anns[2].result = [{**_rating(2), "value": {"rating": float("nan")}}, _choice("pos")]
        anns[3].result = [{**_choice("pos"), "from_name": "not_a_control"}, _choice("neg")]
        anns[4].result = []
        s.add(Prediction(task_id=tids[1], model_version="v2", result=None, position=9))
        s.add(Prediction(task_id=tids[2], model_version="v2", result=[{**_rating(1), "score": float("inf")}],
                         position=9))
        s.add(GroundTruth(task_id=tids[3], result=[_choice("neutral"), {"from_name": "quality", "value": {"rating": float("nan")}}],
                          source="import", annotation_id=anns[9].id, created_at="2026-05-01T00:00:00Z"))
        s.add(GroundTruth(task_id=tids[4], result=None, source="import", created_at="2026-05-01T00:00:00Z"))
    with store.session() as s:
        assert s.scalar(text("SELECT count(*) FROM result_values WHERE ord < 0")) == 3
    assert_same_frames(store, pid)


def test_ground_truth_from_an_imported_row_that_equals_its_annotation(store: Store, tmp_path: Path) -> None:
    """A ground-truth row without a decision whose result is its annotation's: that annotation is its source."""
    pid = _import(store, tmp_path, _export())
    with store.transaction() as s:
        for sid, uid in ((10, 2), (11, 3)):
            tid, aid = _annotation(store, pid, sid, uid)
            res = s.scalar(select(Annotation.result).where(Annotation.id == aid))
            s.add(GroundTruth(task_id=tid, result=res if sid == 10 else [_choice("neg")], source="import",
                              annotation_id=aid, created_at="2026-05-01T00:00:00Z"))
    f = assert_same_frames(store, pid)
    assert f.ground_truth["source_evaluator"].notna().any()


def test_real_pull_of_a_changed_annotation_and_a_removed_task(store: Store) -> None:
    from app.sync.pull import pull_project
    from tests.unit.sync.fakels import URL, FakeLS, client_for

    fake = FakeLS()
    for i in range(8):
        fake.add_task(f"text {i}", n_ann=3)
    with store.transaction() as s:
        srv = Server(url=URL, edition="community", created_at="2026-01-01T00:00:00Z")
        s.add(srv)
        s.flush()
        server = srv.id
    c = client_for(fake)
    pid = pull_project(store, c, server, 7, media=False).project_id
    assert_same_frames(store, pid)
    tasks = list(fake.tasks.values())
    fake.clock = fake.clock.replace(year=2027)
    tasks[0]["annotations"][0]["result"] = [{"from_name": "c", "to_name": "text", "type": "choices",
                                             "value": {"choices": ["b"]}}]
    tasks[0]["annotations"][0]["updated_at"] = fake.tick()
    fake.touch(tasks[0]["id"])
    tasks[1]["annotations"].pop()
    tasks[1]["predictions"][0]["result"] = [{"from_name": "c", "to_name": "text", "type": "choices",
                                             "value": {"choices": ["a"]}}]
    fake.touch(tasks[1]["id"])
    del fake.tasks[tasks[2]["id"]]
    pull_project(store, c, server, 7, media=False, reconcile_ids=True)
    with store.session() as s:
        changed = s.scalar(select(Annotation.result).join(Task).where(Task.server_id == tasks[0]["id"])
                           .order_by(Annotation.id))
    assert changed is not None and changed[0]["value"]["choices"] == ["b"]
    assert_same_frames(store, pid)


def test_migration_backfills_an_old_store(tmp_path: Path) -> None:
    """A store at 0006 with rows: opening it migrates and fills ``result_values`` as the triggers would."""
    data = tmp_path / "data"
    store = Store.open(data)
    try:
        pid = _import(store, tmp_path, _export())
        _decide_all(store, pid)
        _push_and_pull(store, pid)
        with store.transaction() as s:
            s.execute(update(Annotation).where(Annotation.id == _annotation(store, pid, 15, 3)[1])
                      .values(result=[_choice("neg"), {"from_name": "quality", "value": {"rating": float("nan")}}]))
        with store.session() as s:
            expected = s.execute(text("SELECT * FROM result_values ORDER BY project_id, kind, row_id, ord")).all()
        old_frames = dashboard._build_frames(store, pid, data_version(store, pid), None)
    finally:
        store.close()
    assert len(expected) > 50
    # take the store back to 0006: drop what 0007 made (its table, index and triggers), stamp 0006
    path = data / STORE_FILENAME
    con = sqlite3.connect(path)
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%values%'"):
        con.execute(f"DROP TRIGGER {name}")
    con.execute("DROP TABLE result_values")
    con.execute("UPDATE alembic_version SET version_num = '0006'")
    con.commit()
    con.close()
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0006"
    engine.dispose()
    assert _alembic_config() is not None
    store = Store.open(data)
    try:
        assert store.revision() == head_revision()  # migrated through every later revision to the head
        with store.session() as s:
            got = s.execute(text("SELECT * FROM result_values ORDER BY project_id, kind, row_id, ord")).all()
        assert got == expected
        new = frames_mod.build_frames(store, pid, data_version(store, pid), None)
        pd.testing.assert_frame_equal(old_frames.annotations, new.annotations)
        pd.testing.assert_frame_equal(old_frames.ground_truth, new.ground_truth)
    finally:
        store.close()
