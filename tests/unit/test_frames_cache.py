"""Frames kept beside the store (``load_frames(..., persist=True)``, used by ``reviewdesk metrics``) are read
back only while the data version is unchanged: a decision, an undo or an edit after caching changes the
numbers, exactly as a fresh build from the store gives them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from app.main import main
from app.metrics import metrics_report, to_jsonable
from app.models.store import Store
from app.services import dashboard
from app.services import frames as frames_mod
from app.services.decisions import DecisionRequest, DecisionService
from tests.unit.test_reference_frames import REVIEWER, _annotation, _export, _import


def _cold(store: Store, pid: int) -> Any:
    with dashboard._CACHE_LOCK:  # a new process: nothing in memory
        dashboard._CACHE.clear()
    frames = dashboard.load_frames(store, pid, persist=True)
    dashboard.flush_frames_cache()  # the file is written on a thread; a command waits for it before it ends
    return frames


def _report(f: Any) -> dict[str, Any]:
    gt = f.ground_truth if not f.ground_truth.empty else None
    dec = f.decisions if not f.decisions.empty else None
    return json.loads(json.dumps(to_jsonable(metrics_report(f.annotations, gt, f.params, decisions=dec))))


def _fresh(store: Store, pid: int) -> Any:
    return frames_mod.build_frames(store, pid, dashboard.data_version(store, pid), None)


def _assert_frames_equal(a: Any, b: Any) -> None:
    pd.testing.assert_frame_equal(a.annotations, b.annotations)
    pd.testing.assert_frame_equal(a.ground_truth, b.ground_truth)
    pd.testing.assert_frame_equal(a.decisions, b.decisions)
    assert a.version == b.version


def test_unchanged_data_is_read_back_and_a_decision_changes_the_numbers(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = _import(store, tmp_path, _export())
    first = _cold(store, pid)
    assert dashboard._frames_cache_path(store, pid).exists()
    built = frames_mod.build_frames

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("unchanged data: the frames come from the cache")

    monkeypatch.setattr(frames_mod, "build_frames", refuse)
    again = _cold(store, pid)
    _assert_frames_equal(again, first)
    before = _report(again)
    monkeypatch.setattr(frames_mod, "build_frames", built)

    tid, aid = _annotation(store, pid, 13, 2)  # a decision after caching
    rec = DecisionService(store).record(pid, [DecisionRequest(tid, "accept", annotation_id=aid)], reviewer=REVIEWER)
    t2, a2 = _annotation(store, pid, 12, 3)
    DecisionService(store).record(pid, [DecisionRequest(t2, "reject", annotation_id=a2, reason="wrong")],
                                  reviewer=REVIEWER)
    after = _cold(store, pid)
    _assert_frames_equal(after, _fresh(store, pid))
    assert _report(after) != before  # the new reference and the reject are counted
    assert _report(after) == _report(_fresh(store, pid))

    DecisionService(store).retract(rec.decisions[0].uuid, reviewer=REVIEWER)  # an undo, too
    undone = _cold(store, pid)
    _assert_frames_equal(undone, _fresh(store, pid))
    assert _report(undone) != _report(after)


def test_an_unreadable_or_foreign_cache_is_rebuilt(store: Store, tmp_path: Path) -> None:
    pid = _import(store, tmp_path, _export())
    first = _cold(store, pid)
    path = dashboard._frames_cache_path(store, pid)
    path.write_bytes(b"not a pickle")
    _assert_frames_equal(_cold(store, pid), first)
    assert path.read_bytes() != b"not a pickle"  # rewritten
    import pickle

    fmt, code, where, frames = pickle.loads(path.read_bytes())  # noqa: S301 - the test's own file
    path.write_bytes(pickle.dumps((fmt, "another build", where, frames)))
    assert dashboard._read_frames_cache(store, pid, dashboard.data_version(store, pid)) is None


def test_the_metrics_cli_follows_a_decision_made_after_its_last_run(
        store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pid = _import(store, tmp_path, _export())
    data = str(store.data_dir)

    def run() -> dict[str, Any]:
        with dashboard._CACHE_LOCK:
            dashboard._CACHE.clear()
        assert main(["--data-dir", data, "metrics", str(pid), "--json"]) == 0
        out: dict[str, Any] = json.loads(capsys.readouterr().out)
        return out

    one, two = run(), run()  # the second run reads the cached frames
    assert one == two
    tid, aid = _annotation(store, pid, 15, 3)
    DecisionService(store).record(pid, [DecisionRequest(tid, "accept", annotation_id=aid)], reviewer=REVIEWER)
    three = run()
    assert three != two
    assert three == json.loads(json.dumps(to_jsonable(_report(_fresh(store, pid)))))
