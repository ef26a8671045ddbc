"""``app.api``: the documented Python surface (issue 16, point 4) -- and the README's example, run as written."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from pathlib import Path

import pytest

from app import api
from tests.conftest import SMALL_CONFIG, choice
from tests.unit.test_asof import team_export

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    """The first ```python block of the README's "Python API" section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python API"):]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m, "the README's Python API section has no python example"
    return m.group(1)


def test_the_readme_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = readme_example()
    assert "api.record_decision" in code and "as_of=" in code and "api.export" in code
    exec(compile(code, "README.md:Python API", "exec"), {"__name__": "readme_example"})  # noqa: S102
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("[(1, 'Demo") and lines[1].split() == ["task", "control", "label"]
    assert len(lines) > 2 and all(line.split()[1] == "1" for line in lines[2:])  # the accepted task's labels


def test_every_public_name_is_documented_and_typed() -> None:
    for name in api.__all__:
        obj = getattr(api, name)
        if inspect.isfunction(obj):
            assert obj.__doc__ and len(obj.__doc__.strip()) > 20, name
            hints = inspect.signature(obj)
            assert hints.return_annotation is not inspect.Signature.empty, name
            assert all(p.annotation is not inspect.Parameter.empty for p in hints.parameters.values()), name
    for cls in (api.Metrics, api.ExportResult, api.AsOf, api.ProjectSummary, api.TaskRow, api.DecisionInfo):
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, cls  # type: ignore[attr-defined]


@pytest.fixture
def project(tmp_path: Path) -> tuple[api.Store, int, Path]:
    (tmp_path / "in.json").write_text(json.dumps(team_export()))
    (tmp_path / "c.xml").write_text(SMALL_CONFIG)
    store = api.open_store(tmp_path / "d")
    pid = api.import_project(store, tmp_path / "in.json", tmp_path / "c.xml", title="Team")
    yield store, pid, tmp_path
    store.close()


def test_projects_tasks_decisions_metrics_and_export(project: tuple[api.Store, int, Path]) -> None:
    store, pid, tmp = project
    assert [(p.id, p.title, p.tasks, p.annotations) for p in api.list_projects(store)] == [(pid, "Team", 8, 24)]
    tasks = api.list_tasks(store, pid, offset=2, limit=3)
    assert [t.server_id for t in tasks] == [3, 4, 5]
    with pytest.raises(LookupError, match="No project 99"):
        api.list_tasks(store, 99)
    detail = api.task_detail(store, tasks[0].id)
    first = api.compute_metrics(store, pid)
    assert first.as_of is None and isinstance(first.event_id, int)
    d = api.record_decision(store, pid, detail.id, "fix", annotation_id=detail.annotations[0].id,
                            result=[choice("neutral")], reviewer="me@example.com")
    assert (d.verdict, d.reviewer, d.result) == ("fix", "me@example.com", (choice("neutral"),))
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.verdict = "accept"  # type: ignore[misc]
    with pytest.raises(api.DecisionError, match="Unknown verdict"):
        api.record_decision(store, pid, detail.id, "approve", annotation_id=detail.annotations[0].id, reviewer="x")
    with pytest.raises(api.DecisionError):  # a reject needs a reason: the keyboard's rules
        api.record_decision(store, pid, detail.id, "reject", annotation_id=detail.annotations[1].id, reviewer="x")
    now = api.compute_metrics(store, pid)
    assert now.report != first.report and now.event_id is not None and now.event_id > first.event_id
    again = api.compute_metrics(store, pid, as_of=first.event_id)
    assert again.report == first.report and again.as_of is not None and again.as_of.event_id == first.event_id
    with pytest.raises(api.AsOfError, match="No audit event"):
        api.compute_metrics(store, pid, as_of=10**6)
    with pytest.raises(LookupError, match="no control 'nope'"):
        api.compute_metrics(store, pid, control="nope")

    res = api.export(store, pid, tmp / "gt.csv", what="ground-truth", fmt="csv")
    assert (res.rows, res.what, res.format) == (1, "ground-truth", "csv")
    assert api.export_table(store, pid, "ground-truth")["verdict"].tolist() == ["fix"]
    old = api.export(store, pid, tmp / "gt-then.csv", what="ground-truth", fmt="csv", as_of=first.event_id)
    assert old.rows == 0
    with pytest.raises(api.ExportError, match="ls-json"):
        api.export(store, pid, tmp / "x.json", what="consensus", fmt="ls-json")
    with pytest.raises(OSError):
        api.export(store, pid, tmp / "missing" / "x.csv", what="tasks", fmt="csv")
    assert not (tmp / "missing").exists()


def test_the_metrics_command_reports_what_the_api_computes(project: tuple[api.Store, int, Path],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from app.main import main

    store, pid, tmp = project
    want = api.compute_metrics(store, pid, control="sentiment").report
    assert main(["--data-dir", str(tmp / "d"), "metrics", str(pid), "--control", "sentiment", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(want))
