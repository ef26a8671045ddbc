"""The ground-truth set (issue 15 point 5): one reference per task with provenance, history kept, and the
metrics reading the new reference after a re-decision."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from app.metrics import GROUND_TRUTH
from app.models.store import Store
from app.services.dashboard import compute_dashboard, load_frames
from app.services.decisions import DecisionRequest, DecisionService
from app.services.groundtruth import GroundTruthService
from app.services.projects import ProjectService
from tests.conftest import SMALL_CONFIG, choice


def _import(store: Store, export: list[dict[str, Any]]) -> int:
    data = io.BytesIO(json.dumps(export).encode())
    return ProjectService(store).import_file(data, SMALL_CONFIG, "P").summary.project_id


def _ids(store: Store, pid: int) -> tuple[dict[int, int], dict[int, int]]:
    from sqlalchemy import select

    from app.models.schema import Annotation, Task

    with store.session() as s:
        tasks = dict(s.execute(select(Task.server_id, Task.id).where(Task.project_id == pid)).all())
        anns = dict(s.execute(select(Annotation.server_id, Annotation.id)).all())
    return tasks, anns


def test_reference_provenance_and_history(store: Store, small_export: list[dict]) -> None:
    pid = _import(store, small_export)
    tasks, anns = _ids(store, pid)
    gt = GroundTruthService(store)
    # imported: task 11 has a server flag on annotation 102 (user #3); task 12 none
    c = gt.counts(pid)
    assert (c.tasks, c.references, dict(c.by_source), c.revised) == (2, 1, {"server-flag": 1}, 0)
    ref = gt.reference(pid, tasks[11])
    assert ref is not None and ref.provenance.source == "server-flag"
    assert ref.provenance.decision_uuid is None and ref.provenance.reviewer == "user #3"
    assert ref.provenance.annotation_id == anns[102]
    assert [i["value"] for i in ref.result] == [{"choices": ["neutral"]}]
    assert gt.reference(pid, tasks[12]) is None

    dec = DecisionService(store)
    acc = dec.record(pid, [DecisionRequest(tasks[11], "accept", annotation_id=anns[101])],
                     reviewer="rev@example.com").decisions[0]
    ref = gt.reference(pid, tasks[11])
    assert ref is not None
    assert (ref.provenance.source, ref.provenance.decision_uuid, ref.provenance.reviewer, ref.provenance.verdict,
            ref.provenance.origin, ref.provenance.at) == ("decision", acc.uuid, "rev@example.com", "accept", "local",
                                                          acc.created_at)
    assert ref.result[0]["value"] == {"choices": ["neg"]} and ref.revisions == 2

    fixed = [choice("pos")]
    fix = dec.record(pid, [DecisionRequest(tasks[11], "fix", annotation_id=anns[101], result=fixed)],
                     reviewer="lead@example.com").decisions[0]
    ref = gt.reference(pid, tasks[11])
    assert ref is not None and ref.provenance.decision_uuid == fix.uuid and ref.provenance.verdict == "fix"
    assert list(ref.result) == fixed and ref.provenance.reviewer == "lead@example.com"
    hist = gt.history(pid, tasks[11])
    assert [(h.provenance.source, h.provenance.verdict, h.current, h.retracted) for h in hist] == [
        ("decision", "fix", True, False), ("decision", "accept", False, False), ("server-flag", None, False, False)]
    assert gt.counts(pid).revised == 1

    # undo the fix: the accept's reference is current again, the fix stays in history marked undone
    dec.retract(fix.uuid, reviewer="lead@example.com")
    ref = gt.reference(pid, tasks[11])
    assert ref is not None and ref.provenance.decision_uuid == acc.uuid
    hist = gt.history(pid, tasks[11])
    assert [(h.provenance.verdict, h.current, h.retracted) for h in hist] == [
        ("fix", False, True), ("accept", True, False), (None, False, False)]

    page = gt.references(pid, 0, 10)
    assert [r.task_id for r in page] == [tasks[11]]
    assert gt.references(pid, 1, 10) == ()
    with pytest.raises(LookupError):
        gt.history(pid, 999_999)
    with pytest.raises(LookupError):
        gt.count(4242)


def test_metrics_use_the_new_reference_and_the_old_one_stays_in_history(store: Store,
                                                                         small_export: list[dict]) -> None:
    pid = _import(store, small_export)
    tasks, anns = _ids(store, pid)
    dec = DecisionService(store)
    # the lead accepts user #3's "neutral": ann@example.com said "neg" -> 0 against the reference
    dec.record(pid, [DecisionRequest(tasks[11], "accept", annotation_id=anns[102])], reviewer="lead@example.com")
    m = compute_dashboard(store, pid, save=False).matrices["sentiment"]
    assert m.cell("ann@example.com", GROUND_TRUTH) == 0.0
    # a re-decision: fixed to "neg" -> ann@example.com now agrees with the reference
    dec.record(pid, [DecisionRequest(tasks[11], "fix", annotation_id=anns[102], result=[choice("neg")])],
               reviewer="expert@example.com", role="expert")
    frames = load_frames(store, pid)
    row = frames.ground_truth[(frames.ground_truth["task"] == tasks[11])
                              & (frames.ground_truth["control"] == "sentiment")]
    assert [i["value"]["choices"] for i in row.iloc[0]["result"]] == [["neg"]]
    m = compute_dashboard(store, pid, save=False).matrices["sentiment"]
    assert m.cell("ann@example.com", GROUND_TRUTH) == 1.0
    # the browser agrees with the metrics, and the old reference is still there
    gt = GroundTruthService(store)
    ref = gt.reference(pid, tasks[11])
    assert ref is not None and ref.result[0]["value"] == {"choices": ["neg"]}
    hist = gt.history(pid, tasks[11])
    assert [h.result[0]["value"]["choices"] for h in hist[:2]] == [["neg"], ["neutral"]]
    assert [h.current for h in hist] == [True, False, False]


def test_the_cached_index_follows_a_pull_that_moves_a_server_flag(store: Store, small_export: list[dict]) -> None:
    """What a pull does to flags (``annotations.ground_truth`` updated in place) invalidates the cached index."""
    from sqlalchemy import update

    from app.models.schema import Annotation

    pid = _import(store, small_export)
    tasks, anns = _ids(store, pid)
    gt = GroundTruthService(store)
    ref = gt.reference(pid, tasks[11])
    assert ref is not None and ref.provenance.annotation_id == anns[102]
    assert gt.count(pid) == 1
    with store.transaction() as s:  # the server moved the flag from 102 to 101, and flagged 103 too
        s.execute(update(Annotation).where(Annotation.id == anns[102]).values(ground_truth=False))
        s.execute(update(Annotation).where(Annotation.id.in_([anns[101], anns[103]])).values(ground_truth=True))
    ref = gt.reference(pid, tasks[11])
    assert ref is not None and ref.provenance.annotation_id == anns[101]
    assert ref.provenance.reviewer == "ann@example.com"  # the flagged annotation's author (no decision behind it)
    assert gt.count(pid) == 2
    # check=False pages the index as last built (views refresh it from Changes)
    with store.transaction() as s:
        s.execute(update(Annotation).where(Annotation.id == anns[103]).values(ground_truth=False))
    assert gt.count(pid, check=False) == 2 and gt.count(pid) == 1
