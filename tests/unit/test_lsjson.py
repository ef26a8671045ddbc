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


# -- real-world shapes: Label Studio < 1.0, null results, embedded predictions -------------------------------

LEGACY = [  # the shape Label Studio 0.x wrote: "completions", no completed_by, Unix-seconds created_at
    {"completions": [
        {"created_at": 1613699361, "id": 1, "lead_time": 20.597, "result": [choice("pos")]},
        {"created_at": 1613699362, "id": 2, "lead_time": 3, "result": [choice("neg")]}],
     "data": {"text": "one"}, "id": 0},
    {"completions": [{"created_at": 1613699385, "id": 1001, "lead_time": 7.034, "result": [], "was_cancelled": True}],
     "data": {"text": "two"}, "id": 1},
    {"completions": [{"created_at": 1613699364.5, "id": 2001, "lead_time": 2.539, "result": None}],
     "data": {"text": "three"}, "id": 2, "predictions": [{"result": [choice("pos")], "score": 1}]},
]


def test_legacy_completions_are_annotations_and_export_back_as_completions(store: Store, tmp_path: Path) -> None:
    svc = ProjectService(store)
    src = tmp_path / "legacy.json"
    src.write_text(json.dumps(LEGACY, indent=1))
    res = svc.import_file(src, SMALL_CONFIG, "legacy")
    s = res.summary
    assert (s.tasks, s.annotations, s.legacy_tasks, s.predictions) == (3, 4, 3, 1)
    detail = svc.task_detail(svc.find_task(s.project_id, 0))
    assert [a.server_id for a in detail.annotations] == [1, 2]
    assert detail.annotations[0].created_at == "2021-02-19T01:49:21Z"  # Unix seconds, read as UTC
    assert detail.annotations[1].lead_time == 3.0
    cancelled = svc.task_detail(svc.find_task(s.project_id, 1)).annotations[0]
    assert cancelled.was_cancelled and cancelled.result == ()
    null = svc.task_detail(svc.find_task(s.project_id, 2)).annotations[0]
    assert null.result == () and null.created_at == "2021-02-19T01:49:24.500000Z"
    out = tmp_path / "out.json"
    svc.export_file(s.project_id, out)
    text = out.read_text()
    exported = json.loads(text)
    assert exported == LEGACY  # completions, ints, the null result, the int score: as they were
    assert '"lead_time":3,' in text and '"result":null' in text and '"annotations"' not in text
    again = svc.import_file(out, SMALL_CONFIG, "again")
    out2 = tmp_path / "out2.json"
    svc.export_file(again.summary.project_id, out2)
    assert out2.read_text() == text


def test_a_task_with_both_annotations_and_completions_keeps_completions_verbatim(store: Store, tmp_path: Path) -> None:
    task = {"id": 5, "data": {"text": "x"}, "annotations": [{"id": 1, "result": [choice("pos")]}],
            "completions": [{"id": 9, "result": [choice("neg")]}]}
    svc = ProjectService(store)
    s = svc.import_file(_write(tmp_path, [task]), SMALL_CONFIG, "both").summary
    assert (s.annotations, s.legacy_tasks) == (1, 0)
    out = tmp_path / "out.json"
    svc.export_file(s.project_id, out)
    assert json.loads(out.read_text()) == [task]


def test_an_edited_field_is_exported_as_edited_not_as_the_files_raw_value(store: Store, tmp_path: Path) -> None:
    svc = ProjectService(store)
    s = svc.import_file(_write(tmp_path, LEGACY), SMALL_CONFIG, "legacy").summary
    with store.transaction() as ses:
        a = ses.scalars(select(Annotation).where(Annotation.server_id == 2001)).one()
        a.result = [choice("neutral")]  # e.g. a pull or a fix replaced the null result
    out = tmp_path / "out.json"
    svc.export_file(s.project_id, out)
    assert json.loads(out.read_text())[2]["completions"][0]["result"] == [choice("neutral")]


def test_null_results_import_and_leave_metrics_and_dashboard_standing(store: Store, tmp_path: Path) -> None:
    from app.services.dashboard import compute_dashboard, load_frames

    tasks = [{"id": 1, "data": {"text": "a"}, "annotations": [
        {"id": 1, "completed_by": 1, "result": None, "lead_time": 4.0},
        {"id": 2, "completed_by": 2, "result": [choice("pos")], "lead_time": 5.0}]},
        {"id": 2, "data": {"text": "b"}, "annotations": [
            {"id": 3, "completed_by": 1, "result": [choice("neg")]},
            {"id": 4, "completed_by": 2, "result": None}]}]
    svc = ProjectService(store)
    pid = svc.import_file(_write(tmp_path, tasks), SMALL_CONFIG, "nulls").summary.project_id
    # and a null stored by anything else (an older pull): the JSON value null in the column
    with store.transaction() as ses:
        ses.execute(Annotation.__table__.update().where(Annotation.server_id == 3).values(result=None))
    frames = load_frames(store, pid)
    assert set(frames.annotations["evaluator"]) == {"user #1", "user #2"}
    d = compute_dashboard(store, pid, save=False)
    assert None in d.matrices and set(d.quality["evaluator"]) == {"user #1", "user #2"}
    out = tmp_path / "out.json"
    svc.export_file(pid, out)
    assert json.loads(out.read_text())[0]["annotations"][0]["result"] is None
    from app.main import main  # and `reviewdesk metrics`, the command the issue saw crash

    for extra in ([], ["--json"]):
        assert main(["--data-dir", str(store.data_dir), "metrics", str(pid), *extra]) == 0


def test_predictions_given_as_ids_take_their_result_from_the_embedded_prediction(store: Store, tmp_path: Path) -> None:
    embedded = {"id": 11, "result": [choice("neg")], "model_version": "llm-v1", "score": None,
                "created_at": "2026-03-16T17:22:09.022269Z", "task": 1}
    tasks = [{"id": 1, "data": {"text": "a"}, "predictions": [11, 12], "annotations": [
        {"id": 7, "completed_by": 2, "result": [choice("neg")], "prediction": embedded},
        {"id": 8, "completed_by": 3, "result": [choice("pos")], "prediction": {}}]}]
    svc = ProjectService(store)
    s = svc.import_file(_write(tmp_path, tasks), SMALL_CONFIG, "emb").summary
    assert (s.predictions, s.predictions_embedded, s.predictions_ids_only) == (2, 1, 1)
    preds = svc.task_detail(svc.find_task(s.project_id, 1)).predictions
    assert [(p.server_id, p.model_version, p.result) for p in preds] == [
        (11, "llm-v1", (choice("neg"),)), (12, None, None)]
    out = tmp_path / "out.json"
    svc.export_file(s.project_id, out)
    assert json.loads(out.read_text()) == tasks  # still bare ids in "predictions"
    from app.services.dashboard import load_frames

    assert "model:llm-v1" in set(load_frames(store, s.project_id).annotations["evaluator"])
