"""The Arrow read of the frames (ADBC SQLite driver, issue 14) gives the same frames as the ``sqlite3`` read.

The driver infers each column's Arrow type from its first batch of rows (65,536): a column that is NULL on
every row of the first batch and holds values later would fail or change type. The read makes every column
one SQLite type on every row; this test puts the NULLs first (no user, no lead time, no created-at, no
region id apart) and the values only after the first batch, plus a result that is not strict JSON (NaN), and compares with the ``sqlite3`` read and the JSON path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import text

from app.models.store import Store
from app.services import dashboard
from app.services import frames as frames_mod
from app.services.dashboard import data_version
from tests.unit.test_reference_frames import _choice, _export, _import, _rating, _span

FIRST_BATCH = 65_536


def _rows(store: Store, pid: int) -> None:
    with store.session() as s:
        tasks = [r[0] for r in s.execute(text("SELECT id FROM tasks WHERE project_id = :p ORDER BY id"),
                                         {"p": pid})]
    rows: list[dict[str, Any]] = []
    for k in range(FIRST_BATCH + 3_000):
        late = k >= FIRST_BATCH
        result: Any = [_choice(("pos", "neg", "neutral")[k % 3]), _span(5 * (k % 3), "ORG" if k % 2 else "PER"),
                       _rating(1 + k % 5)]
        if not late:  # no region ids: nothing stored apart
            result = [{key: v for key, v in item.items() if key != "id"} for item in result]
        # the read goes task by task: the first half of the tasks holds exactly the first batch
        task = tasks[k * 4 // FIRST_BATCH] if not late else tasks[4 + k % 4]
        rows.append({"task": task, "user": (2 + k % 3) if late else None,
                     "raw": json.dumps((2 + k % 3) if late else None),
                     "result": json.dumps([{**_rating(2), "value": {"rating": float("nan")}}])  # NaN: not strict
                     if k == FIRST_BATCH + 7 else json.dumps(result),
                     "lead": 3.5 + k % 11 if late else None,
                     "at": f"2026-04-{1 + k % 28:02d}T10:00:00Z" if late else None})
    with store.transaction() as s:
        s.execute(text(
            "INSERT INTO annotations (task_id, completed_by, completed_by_raw, result, ground_truth, was_cancelled, "
            "lead_time, created_at, position) VALUES (:task, :user, :raw, :result, 0, 0, :lead, :at, 0)"), rows)


def test_nulls_in_the_first_batch_values_after_it(store: Store, tmp_path: Path) -> None:
    pid = _import(store, tmp_path, [{**t, "annotations": [], "predictions": []} for t in _export()])
    _rows(store, pid)
    v = data_version(store, pid)
    arrow = frames_mod.build_frames(store, pid, v, None, reader="arrow-only")  # raises if it fell back
    plain = frames_mod.build_frames(store, pid, v, None, reader="sqlite3")
    for name in ("annotations", "ground_truth", "decisions"):
        pd.testing.assert_frame_equal(getattr(plain, name), getattr(arrow, name))
    ann = arrow.annotations
    assert (ann["evaluator"] == "unknown").sum() > 0 and ann["lead_time"].isna().sum() > 0
    assert ann["created_at"].isna().sum() > 0 and ann["created_at"].notna().sum() > 0
    ner = ann.loc[ann["control"] == "ner", "result"]
    assert any(r and "id" in r[0] for r in ner) and any(r and "id" not in r[0] for r in ner)
    with store.session() as s:
        assert s.scalar(text("SELECT count(*) FROM result_values WHERE kind = 'a' AND ord < 0")) == 1
    old = dashboard._build_frames(store, pid, v, None)  # the JSON path: same rows in the same order
    pd.testing.assert_frame_equal(old.annotations, arrow.annotations)


def test_a_driver_failure_falls_back_to_sqlite3(store: Store, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pid = _import(store, tmp_path, _export())
    v = data_version(store, pid)
    expected = frames_mod.build_frames(store, pid, v, None, reader="sqlite3")

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError("driver library missing")

    import adbc_driver_sqlite.dbapi as adbc

    monkeypatch.setattr(adbc, "connect", broken)
    monkeypatch.setattr(frames_mod, "ARROW_READS", True)  # as in the metrics process
    got = frames_mod.build_frames(store, pid, v, None)
    pd.testing.assert_frame_equal(expected.annotations, got.annotations)
    with pytest.raises(RuntimeError, match="Arrow read"):
        frames_mod.build_frames(store, pid, v, None, reader="arrow-only")


def test_only_the_metrics_process_reads_with_the_driver(store: Store, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver's SQLite is a second copy of SQLite: in a process that has the store open with sqlite3 (the
    GUI, the CLI) the default read never opens it (frames.ARROW_READS is set by the metrics process only)."""
    pid = _import(store, tmp_path, _export())
    v = data_version(store, pid)

    def forbidden(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the ADBC driver was used in a process that has the store open with sqlite3")

    assert frames_mod.ARROW_READS is False
    monkeypatch.setattr(frames_mod, "_arrow_reads", forbidden)
    frames_mod.build_frames(store, pid, v, None)
    dashboard.compute_dashboard(store, pid, save=False)
