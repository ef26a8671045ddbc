"""Coverage: reviewed / eligible annotations per annotator, control, reviewer and overall, counting local and
pulled (``origin`` server) judgements; counts computed by hand for the small project of test_queues."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.cli import main
from app.models.store import Store
from app.services.coverage import CoverageRow, coverage
from app.services.decisions import DecisionRequest, DecisionService
from app.services.queues import QueueSpec
from tests.unit.test_queues import _ann, pulled, small  # noqa: F401 - the fixture

ME = "me@example.com"


def _decide(store: Store, pid: int, task: int, server_ann: int, verdict: str, **kw) -> str:
    rec = DecisionService(store).record(pid, [DecisionRequest(task_id=task, verdict=verdict,
                                                              annotation_id=_ann(store, server_ann), **kw)],
                                        reviewer=ME)
    return rec.decisions[0].uuid


@pytest.fixture
def reviewed(small):  # noqa: F811
    store, pid, ids = small
    _decide(store, pid, ids[11], 101, "accept")  # later overtaken by Priya's pulled accept
    _decide(store, pid, ids[12], 104, "reject", reason="wrong")
    undone = _decide(store, pid, ids[11], 102, "accept")
    DecisionService(store).retract_many([undone], reviewer=ME)  # undone: does not count
    _decide(store, pid, ids[14], 107, "escalate", reason="?")  # an escalation is no judgement
    far = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    pulled(store, pid, ids[11], _ann(store, 101), "accept", at=far)
    pulled(store, pid, ids[14], _ann(store, 106), "accept")
    pulled(store, pid, ids[13], _ann(store, 105), "reject", reason="x")
    return store, pid, ids


def test_coverage_counts_by_hand(reviewed) -> None:
    store, pid, _ = reviewed
    cov = coverage(store, pid)
    # live judgements: 101 Priya (pulled, newer than mine), 104 me, 105 Priya, 106 Priya; 102 undone; 103, 107 none
    assert cov.overall == CoverageRow("overall", 4, 7, 3)
    assert cov.tasks == CoverageRow("tasks", 1, 4)  # only task 13 has every annotation judged
    assert cov.annotators == (CoverageRow("user #2", 2, 3, 2), CoverageRow("user #3", 2, 3, 1),
                              CoverageRow("user #4", 0, 1, 0))
    assert cov.controls == (CoverageRow("sentiment", 4, 7, 3),)
    assert cov.reviewers == (CoverageRow("priya.shah@example.com", 3, 7, 3), CoverageRow(ME, 1, 7, 0))
    assert cov.overall.share == pytest.approx(4 / 7)


def test_coverage_of_a_queue_preset_counts_its_tasks_only(reviewed) -> None:
    store, pid, _ = reviewed
    cov = coverage(store, pid, QueueSpec(annotators=(4,)))  # task 14: annotations 106 (Priya) and 107
    assert cov.overall == CoverageRow("overall", 1, 2, 1)
    assert cov.annotators == (CoverageRow("user #3", 1, 1, 1), CoverageRow("user #4", 0, 1, 0))


def test_coverage_cli_json(reviewed, capsys: pytest.CaptureFixture[str]) -> None:
    store, pid, _ = reviewed
    data = str(store.data_dir)
    assert main(["--data-dir", data, "coverage", str(pid), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["overall"] == {"key": "overall", "reviewed": 4, "eligible": 7, "share": 0.5714, "pulled": 3}
    assert [r["key"] for r in out["annotators"]] == ["user #2", "user #3", "user #4"]
    assert set(out) == {"project", "overall", "tasks", "annotators", "controls", "reviewers"}


def test_queue_cli_json_shape(reviewed, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store, pid, _ = reviewed
    data = str(store.data_dir)
    assert main(["--data-dir", data, "queue", str(pid), "--order", "oldest", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["count"] == len(out["items"]) == 3  # task 14 is escalated: the expert's
    assert [set(i) for i in out["items"]] == [{"task", "agreement", "confidence", "uncertainty", "reasons"}] * 3
    assert [i["task"] for i in out["items"]] == [12, 13, 11]  # the ids `decide` takes
    assert out["items"][1]["agreement"] is None  # one annotation: no agreement
    assert main(["--data-dir", data, "queue", str(pid), "--role", "expert", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [i["task"] for i in out["items"]] == [14] and out["items"][0]["reasons"][0].startswith("escalated by")
    # presets through the CLI, then the queue by preset
    assert main(["--data-dir", data, "queue-preset", "save", str(pid), "neg", "--control", "sentiment",
                 "--value", "neg", "--order", "oldest", "--json"]) == 0
    capsys.readouterr()
    assert main(["--data-dir", data, "queue", str(pid), "--preset", "neg", "--json"]) == 0
    assert [i["task"] for i in json.loads(capsys.readouterr().out)["items"]] == [12, 13]
    assert main(["--data-dir", data, "queue-preset", "list", str(pid), "--json"]) == 0
    assert [p["name"] for p in json.loads(capsys.readouterr().out)["items"]] == ["neg"]
    # decide takes the queue's task id
    assert main(["--data-dir", data, "decide", str(pid), "12", "--annotation", "103", "--accept", "--json"]) == 0
