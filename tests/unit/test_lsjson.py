from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.models.config import ConfigError
from app.models.lsjson import LSFormatError
from app.models.schema import Annotation, Member, Prediction, Project, Task
from app.models.store import Store
from app.services.projects import ProjectService
from tests.conftest import DEMO, SMALL_CONFIG, choice


def _write(tmp_path: Path, obj: object, name: str = "export.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(obj))
    return p


def _counts(store: Store) -> tuple[int, int, int, int]:
    with store.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (Project, Task, Annotation, Prediction))  # type: ignore[return-value]


def test_round_trip_is_lossless(store: Store, tmp_path: Path, small_export: list[dict]) -> None:
    svc = ProjectService(store)
    src = _write(tmp_path, small_export)
    res = svc.import_file(src, SMALL_CONFIG, "small")
    s = res.summary
    assert (s.tasks, s.annotations, s.predictions, s.predictions_ids_only) == (2, 3, 3, 2)
    assert res.changes.projects and res.changes.tasks
    out = tmp_path / "out.json"
    assert svc.export_file(s.project_id, out) == 2
    exported = json.loads(out.read_text())
    assert exported == small_export
    # key order is kept too
    assert list(exported[0].keys()) == list(small_export[0].keys())
    assert list(exported[0]["annotations"][0].keys()) == list(small_export[0]["annotations"][0].keys())
    # import -> export -> import -> export changes nothing
    again = svc.import_file(out, SMALL_CONFIG, "again")
    out2 = tmp_path / "out2.json"
    svc.export_file(again.summary.project_id, out2)
    assert json.loads(out2.read_text()) == exported


def test_members_from_int_and_object_completed_by(store: Store, tmp_path: Path, small_export: list[dict]) -> None:
    svc = ProjectService(store)
    pid = svc.import_file(_write(tmp_path, small_export), SMALL_CONFIG, "m").summary.project_id
    with store.session() as s:
        members = {m.user_id: m.email for m in s.scalars(select(Member).where(Member.project_id == pid))}
    assert members == {2: "ann@example.com", 3: None}
    detail = svc.task_detail(svc.find_task(pid, 11))
    assert [a.evaluator for a in detail.annotations] == ["ann@example.com", "user #3"]
    assert detail.annotations[1].ground_truth is True
    assert detail.predictions[0].model_version == "v1" and detail.predictions[0].score == 0.8
    ids_only = svc.task_detail(svc.find_task(pid, 12)).predictions
    assert [p.server_id for p in ids_only] == [502, 503] and ids_only[0].result is None


def test_demo_round_trip(store: Store, tmp_path: Path) -> None:
    svc = ProjectService(store)
    original = json.loads((DEMO / "tasks.json").read_text())
    res = svc.import_file(DEMO / "tasks.json", (DEMO / "config.xml").read_text(), "demo")
    assert res.summary.tasks == len(original) >= 300
    out = tmp_path / "demo-out.json"
    svc.export_file(res.summary.project_id, out)
    assert json.loads(out.read_text()) == original


BAD_CASES = [
    ("not json at all", "not JSON", None),
    ("<html><body>502 Bad Gateway</body></html>", "HTML", None),
    ('{"tasks": []}', "one JSON object", None),
    ("", "empty", None),
    ("[]", "no tasks", None),
    ('[{"data": {"text": "a"}}, {"data": {"text": "b"}', "not valid JSON after task index 0", 1),
    ('[{"data": {"text": "a"}}, 5]', "task index 1: a task must be an object", 1),
    ('[{"data": {"text": "a"}}, {"id": 9, "meta": {}}]', "task index 1 \\(id 9\\): the task has no 'data'", 1),
    ('[{"data": {"text": "a"}, "annotations": {}}]', "'annotations' must be a list", 0),
    ('[{"data": {"text": "a"}, "annotations": [{"result": "x"}]}]', "'result' must be a list", 0),
    ('[{"data": {"text": "a"}, "annotations": [{"result": [], "completed_by": "bob"}]}]', "completed_by", 0),
    ('[{"data": {"text": "a"}, "annotations": [{"result": [], "lead_time": "slow"}]}]', "lead_time", 0),
    ('[{"data": {"text": "a"}, "predictions": ["x"]}]', "neither an object nor an id", 0),
    ('[{"id": 1, "data": {}}, {"id": 1, "data": {}}]', "appears twice", 1),
]


@pytest.mark.parametrize(("content", "message", "index"), BAD_CASES)
def test_malformed_exports_fail_cleanly_and_import_nothing(
    store: Store, tmp_path: Path, content: str, message: str, index: int | None
) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(LSFormatError, match=message) as err:
        ProjectService(store).import_file(p, SMALL_CONFIG, "bad")
    assert err.value.task_index == index
    assert _counts(store) == (0, 0, 0, 0)


def test_result_naming_unknown_control_is_refused_after_valid_tasks(store: Store, tmp_path: Path) -> None:
    tasks = [{"id": i, "data": {"text": str(i)}, "annotations": [{"result": [choice("pos")]}]} for i in range(5000)]
    tasks[4321]["annotations"][0]["result"] = [choice("pos", name="mood")]
    with pytest.raises(LSFormatError, match=r"task index 4321 \(id 4321\): annotation 0: .*'mood'") as err:
        ProjectService(store).import_file(_write(tmp_path, tasks), SMALL_CONFIG, "bad")
    assert err.value.task_index == 4321
    assert _counts(store) == (0, 0, 0, 0)  # the first 4321 tasks (several chunks) were rolled back


def test_bad_config_fails_before_reading_tasks(store: Store, tmp_path: Path, small_export: list[dict]) -> None:
    with pytest.raises(ConfigError):
        ProjectService(store).import_file(_write(tmp_path, small_export), "<View><Choices name='c'/>", "x")
    assert _counts(store) == (0, 0, 0, 0)


def test_missing_file(store: Store, tmp_path: Path) -> None:
    with pytest.raises(LSFormatError, match="Cannot read"):
        ProjectService(store).import_file(tmp_path / "nope.json", SMALL_CONFIG, "x")


def test_task_page_is_lazy_and_ordered(store: Store, tmp_path: Path) -> None:
    tasks = [{"id": 100 + i, "data": {"text": f"task {i}"}} for i in range(450)]
    svc = ProjectService(store)
    pid = svc.import_file(_write(tmp_path, tasks), SMALL_CONFIG, "paged").summary.project_id
    assert svc.task_count(pid) == 450
    page = svc.task_page(pid, 400, 100)
    assert [r.server_id for r in page] == list(range(500, 550))
    assert page[0].preview == "task 400"
