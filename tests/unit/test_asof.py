"""Metrics "as of" an audit point (issue 16, point 2; docs/adr/0015): numbers reported earlier are recomputed
from the record after later decisions, fixes, retractions and pulls changed them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text

from app.main import main
from app.models.audit import append_event
from app.models.schema import Annotation
from app.models.store import Store
from app.services.dashboard import agreement_long, compute_dashboard
from app.services.decisions import DecisionRequest, DecisionService
from tests.conftest import SMALL_CONFIG, choice

LABELS = ["pos", "neg", "neutral"]


def team_export(n_tasks: int = 8) -> list[dict[str, Any]]:
    """Three annotators (users 1..3) per task who disagree now and then, plus a model."""
    tasks = []
    for i in range(n_tasks):
        anns = []
        for u in (1, 2, 3):
            label = LABELS[(i + (u == 3) * (i % 2) + (u == 2) * (i % 3 == 0)) % 3]
            anns.append({"id": 100 * (i + 1) + u, "completed_by": u, "result": [choice(label)],
                         "lead_time": 3.0 + u, "created_at": f"2026-10-0{1 + u}T10:00:{i:02d}Z"})
        tasks.append({"id": i + 1, "data": {"text": f"task {i}"}, "annotations": anns,
                      "predictions": [{"id": 900 + i, "model_version": "m1", "result": [choice(LABELS[i % 3])]}]})
    return tasks


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def team(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, int]:
    data = str(tmp_path / "d")
    (tmp_path / "in.json").write_text(json.dumps(team_export()))
    (tmp_path / "c.xml").write_text(SMALL_CONFIG)
    code, out, _ = run(capsys, "--data-dir", data, "import", str(tmp_path / "in.json"), "--config",
                       str(tmp_path / "c.xml"), "--json")
    assert code == 0
    return data, json.loads(out)["project_id"]


def _ann(store: Store, task_sid: int, user: int) -> tuple[int, int]:
    with store.session() as s:
        tid, aid = s.execute(text("SELECT t.id, a.id FROM tasks t JOIN annotations a ON a.task_id = t.id "
                                  "WHERE t.server_id = :t AND a.completed_by = :u"), {"t": task_sid, "u": user}).one()
    return tid, aid


def _decide(store: Store, pid: int, task_sid: int, user: int, verdict: str, **kw: Any) -> str:
    tid, aid = _ann(store, task_sid, user)
    rec = DecisionService(store).record(pid, [DecisionRequest(task_id=tid, verdict=verdict, annotation_id=aid, **kw)],
                                        reviewer="rev@example.com")
    return rec.decisions[0].uuid


def _last_event(store: Store) -> tuple[int, str]:
    with store.session() as s:
        ev_id, at = s.execute(text("SELECT id, at FROM audit_events ORDER BY id DESC LIMIT 1")).one()
    return ev_id, at


def _metrics(capsys: pytest.CaptureFixture[str], data: str, pid: int, *extra: str) -> dict[str, Any]:
    code, out, err = run(capsys, "--data-dir", data, "metrics", str(pid), "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_metrics_as_of_an_event_and_a_time_equal_the_numbers_reported_then(
        team: tuple[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    data, pid = team
    store = Store.open(data)
    try:
        _decide(store, pid, 1, 1, "accept")
        _decide(store, pid, 2, 2, "reject", reason="wrong label")
        ev_id, at = _last_event(store)
    finally:
        store.close()
    then = _metrics(capsys, data, pid)
    then_kappa = _metrics(capsys, data, pid, "--stat", "kappa")
    store = Store.open(data)
    try:  # later: fixes and accepts that change the ground truth, an undo, another reject
        _decide(store, pid, 3, 3, "fix", result=[choice("neg")])
        _decide(store, pid, 4, 1, "accept")
        undo = _decide(store, pid, 5, 2, "accept")
        DecisionService(store).retract(undo, reviewer="rev@example.com")
        _decide(store, pid, 1, 2, "fix", result=[choice("neutral")])  # overrides an earlier reference
    finally:
        store.close()
    now = _metrics(capsys, data, pid)
    assert now != then  # the later decisions changed the numbers (else this test could not fail)
    for spec in (str(ev_id), at, at.replace("Z", "+00:00"), at[:-1]):  # an id; a time with Z, offset, naive UTC
        past = _metrics(capsys, data, pid, "--as-of", spec)
        info = past.pop("as_of")
        assert past == then, spec
        assert (info["event_id"], info["exact"], info["rewind"]["decisions_after"]) == (ev_id, True, 5)
    past_kappa = _metrics(capsys, data, pid, "--stat", "kappa", "--as-of", str(ev_id))
    past_kappa.pop("as_of")
    assert past_kappa == then_kappa
    # the text report says which event it was computed as of
    code, out, _ = run(capsys, "--data-dir", data, "metrics", str(pid), "--as-of", str(ev_id))
    assert code == 0 and f"As of audit event {ev_id} ({at})." in out


def test_the_dashboard_as_of_an_event_equals_the_dashboard_then(team: tuple[str, int]) -> None:
    data, pid = team
    store = Store.open(data)
    try:
        _decide(store, pid, 1, 1, "accept")
        ev_id, _ = _last_event(store)
        then = compute_dashboard(store, pid, save=False)
        _decide(store, pid, 2, 3, "fix", result=[choice("pos")])
        _decide(store, pid, 3, 1, "reject", reason="no")
        now = compute_dashboard(store, pid, save=False)
        past = compute_dashboard(store, pid, save=False, as_of=ev_id)
    finally:
        store.close()
    assert not agreement_long(now).equals(agreement_long(then))
    assert agreement_long(past).equals(agreement_long(then))
    assert past.quality.equals(then.quality)
    assert then.as_of is None and past.as_of is not None and past.as_of["event_id"] == ev_id


def test_a_later_pull_is_rewound_and_what_cannot_be_is_reported(team: tuple[str, int],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A pull after the cut-off that added an annotation and flagged another as ground truth (written here as
    the pull writes it: rows plus its ``sync.pulled`` event) is undone; a changed result is counted."""
    data, pid = team
    store = Store.open(data)
    try:
        ev_id, _ = _last_event(store)
        then = _metrics(capsys, data, pid)
        tid1, aid1 = _ann(store, 1, 1)
        tid2, _ = _ann(store, 2, 1)
        with store.transaction() as s:
            s.execute(insert(Annotation).values(task_id=tid2, server_id=7777, completed_by=4, completed_by_raw=4,
                                                result=[choice("neg")], ground_truth=False, was_cancelled=False,
                                                lead_time=1.0, created_at="2026-12-01T00:00:00Z",
                                                updated_at="2026-12-01T00:00:00Z", position=9))
            s.execute(text("UPDATE annotations SET ground_truth = 1, updated_at = 'u2' WHERE id = :a"), {"a": aid1})
            append_event(s, "sync", "sync.pulled", {"project_id": pid, "changes": [
                {"task": tid2, "annotation": 7777, "from": None, "to": "2026-12-01T00:00:00Z"},
                {"task": tid1, "annotation": 101, "from": "u1", "to": "u2",
                 "ground_truth": {"from": False, "to": True}}], "changes_truncated": False, "deleted": 2})
    finally:
        store.close()
    assert _metrics(capsys, data, pid) != then
    past = _metrics(capsys, data, pid, "--as-of", str(ev_id))
    info = past.pop("as_of")
    assert past == then
    r = info["rewind"]
    assert (r["annotations_added_after"], r["flags_restored"], r["changed_since"], r["tasks_deleted_since"]) == (
        1, 1, 1, 2)
    assert info["exact"] is False  # the flagged annotation's result may have changed too: said, not hidden


@pytest.mark.parametrize(("spec", "words"), [
    ("99999", "No audit event 99999"),
    ("yesterday", "neither an audit event id nor an ISO 8601 timestamp"),
    ("2999-01-01T00:00:00Z", "in the future"),
    ("2001-01-01T00:00:00Z", "Nothing was recorded at or before"),
])
def test_a_bad_cut_off_is_one_clear_line(team: tuple[str, int], capsys: pytest.CaptureFixture[str],
                                         spec: str, words: str) -> None:
    data, pid = team
    code, out, err = run(capsys, "--data-dir", data, "metrics", str(pid), "--json", "--as-of", spec)
    assert code == 1 and words in json.loads(out)["error"]
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_project_imported_after_the_cut_off_is_refused(team: tuple[str, int], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    data, _pid = team
    store = Store.open(data)
    try:
        ev_id, _ = _last_event(store)
    finally:
        store.close()
    code, out, _ = run(capsys, "--data-dir", data, "import", str(tmp_path / "in.json"), "--config",
                       str(tmp_path / "c.xml"), "--json")
    pid2 = json.loads(out)["project_id"]
    code, out, _ = run(capsys, "--data-dir", data, "metrics", str(pid2), "--json", "--as-of", str(ev_id))
    assert code == 1 and "did not exist yet" in json.loads(out)["error"]


def test_a_broken_trail_before_the_cut_off_is_refused(team: tuple[str, int],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    data, pid = team
    store = Store.open(data)
    try:
        _decide(store, pid, 1, 1, "accept")
        ev_id, _ = _last_event(store)
        path = store.path
    finally:
        store.close()
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER audit_events_no_update")
    con.execute("UPDATE audit_events SET actor = 'mallory' WHERE id = 1")
    con.commit()
    con.close()
    code, out, _ = run(capsys, "--data-dir", data, "metrics", str(pid), "--json", "--as-of", str(ev_id))
    assert code == 1 and "audit trail is broken at event 1" in json.loads(out)["error"]
