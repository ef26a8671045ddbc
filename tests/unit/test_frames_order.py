"""Frames list annotations by id although the store reads them without ``ORDER BY a.id`` (issue 14: the
rows come in task order and are put in id order in numpy): a later annotation on an earlier task, as a pull
or a new annotator adds, lands where the JSON path puts it."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.models.schema import Annotation
from app.models.store import Store
from app.services import frames as frames_mod
from app.services.dashboard import data_version
from tests.unit.test_frames import assert_same_frames
from tests.unit.test_reference_frames import _annotation, _choice, _export, _import, _rating


def test_annotations_added_later_to_earlier_tasks_keep_the_id_order(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = _import(store, tmp_path, _export())
    with store.transaction() as s:  # new ids on the first tasks: task order is no longer id order
        for task_sid, user, late in ((10, 2, 5), (11, 3, 7), (10, 9, 2)):
            tid = _annotation(store, pid, task_sid, 2 if task_sid == 10 else 3)[0]
            s.add(Annotation(task_id=tid, completed_by=user + 40, completed_by_raw=user + 40,
                             result=[_choice("neg"), _rating(late)],
                             lead_time=float(late), created_at="2026-03-20T10:00:00Z"))
    new = assert_same_frames(store, pid, monkeypatch)
    with store.session() as s:
        conn = s.connection().connection.driver_connection
        assert conn is not None
        natural = [r[0] for r in conn.execute(
            "SELECT a.id FROM annotations a JOIN tasks t ON t.id = a.task_id WHERE t.project_id = ? "
            "AND t.deleted = 0 AND a.was_cancelled = 0 AND a.deleted = 0", (pid,))]
    assert natural != sorted(natural)  # the case the reordering is for
    frames = frames_mod.build_frames(store, pid, data_version(store, pid), None)
    assert frames.annotations.equals(new.annotations)
