"""``reviewdesk export PROJECT --what W --format F`` (issue 16, point 3): every table read back equals the service
data it was written from, the Label Studio JSON ground truth re-imports into the same references, and a failed
export leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from app.models.store import Store
from app.services.consensus import consensus_labels
from app.services.dashboard import agreement_long, compute_dashboard, load_frames
from app.services.decisions import DecisionService
from app.services.exports import SCHEMAS, WHATS, export_table, references
from tests.conftest import choice
from tests.unit.test_asof import _decide, run, team  # noqa: F401 - the fixture

TABLE_FORMATS = ("csv", "parquet")
_PANDAS = {"int64": "Int64", "float64": "Float64", "bool": "boolean", "string": "string"}


@pytest.fixture
def decided(team: tuple[str, int]) -> tuple[str, int]:  # noqa: F811 - the imported fixture
    """The team project with accepts, fixes (one of them of a task's earlier reference), a reject and an undo."""
    data, pid = team
    store = Store.open(data)
    try:
        _decide(store, pid, 1, 1, "accept")
        _decide(store, pid, 2, 3, "fix", result=[choice("neg")], comment="it is a complaint")
        _decide(store, pid, 3, 2, "reject", reason="wrong label")
        undo = _decide(store, pid, 4, 1, "accept")
        DecisionService(store).retract(undo, reviewer="rev@example.com")
        _decide(store, pid, 1, 2, "fix", result=[choice("pos")])
    finally:
        store.close()
    return data, pid


def read_back(path: Path, what: str, fmt: str) -> pd.DataFrame:
    """A written table as pandas nullable columns (CSV: an empty field is null)."""
    if fmt == "parquet":
        table = pq.read_table(path)
        assert [(f.name, str(f.type)) for f in table.schema] == [
            (c, {"float64": "double"}.get(t, t)) for c, t in SCHEMAS[what]]
        df = table.to_pandas()
    else:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        df = df.replace({"": None})
        for c, t in SCHEMAS[what]:
            if t == "bool":
                df[c] = df[c].map({"True": True, "False": False, None: None})
            elif t != "string":
                df[c] = pd.to_numeric(df[c])
    assert list(df.columns) == [c for c, _ in SCHEMAS[what]]
    return df.astype({c: _PANDAS[t] for c, t in SCHEMAS[what]})


def _rows(df: pd.DataFrame) -> list[tuple[Any, ...]]:
    return [tuple(None if pd.isna(v) else v for v in r) for r in df.itertuples(index=False, name=None)]


@pytest.mark.parametrize("fmt", TABLE_FORMATS)
@pytest.mark.parametrize("what", WHATS)
def test_every_table_reads_back_equal_to_the_service_data(decided: tuple[str, int], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str], what: str,
                                                          fmt: str) -> None:
    data, pid = decided
    out = tmp_path / f"out.{fmt}"
    code, text, err = run(capsys, "--data-dir", data, "export", str(pid), "--what", what, "--format", fmt,
                          "-o", str(out), "--json")
    assert code == 0, err
    res = json.loads(text)
    back = read_back(out, what, fmt)
    assert res["rows"] == len(back) > 0
    store = Store.open(data)
    try:
        table = export_table(store, pid, what)
        if fmt == "csv":  # CSV has one empty field for null and "" (an empty label: nothing selected)
            table = table.replace({"": None})
        assert _rows(back) == _rows(table)
        _check_against_services(store, pid, what, back)
    finally:
        store.close()
    assert not list(tmp_path.glob("*.part"))


def _check_against_services(store: Store, pid: int, what: str, back: pd.DataFrame) -> None:
    """The table against the services it comes from (not only against itself)."""
    if what == "tasks":
        from app.services.projects import ProjectService

        page = ProjectService(store).task_page(pid, 0, 1000)
        assert sorted((r.id, r.server_id, r.annotations, r.predictions) for r in page) == sorted(
            back[["task", "server_id", "annotations", "predictions"]].itertuples(index=False, name=None))
        assert json.loads(back["data"][0]) == {"text": "task 0"}
    elif what == "ground-truth":
        refs = {r.task: r for r in references(store, pid)}
        frames = load_frames(store, pid)
        assert set(back["task"]) == set(refs) == set(frames.ground_truth["task"])
        for r in back.itertuples(index=False):
            assert json.loads(r.result) == refs[r.task].result
        by_task = dict(zip(back["server_id"], back["result"], strict=True))
        assert json.loads(by_task[1]) == [choice("pos")]  # the later fix replaced the accepted reference
        assert json.loads(by_task[2]) == [choice("neg")]
        assert 4 not in by_task  # the accept was undone
    elif what == "decisions":
        decs = DecisionService(store).list_decisions(pid, include_retractions=True)
        assert sorted(back["uuid"]) == sorted(d.uuid for d in decs)
        assert sorted(back["verdict"]) == sorted(d.verdict for d in decs)
        assert back["retracted"].sum() == 1 and (back["verdict"] == "retract").sum() == 1
        assert "it is a complaint" in set(back["comment"].dropna())
    elif what == "metrics":
        want = agreement_long(compute_dashboard(store, pid, save=False))
        assert _rows(back) == _rows(want.astype(back.dtypes.to_dict()))
    elif what == "consensus":
        ds = consensus_labels(store, pid)
        rows = {(r.task, r.control): r for r in back.itertuples(index=False)}
        adjudicated = {r.task for r in references(store, pid) if r.source == "decision"}
        assert adjudicated and {t for (t, _c), r in rows.items() if r.source == "adjudicated"} == adjudicated
        for r in ds.itertuples(index=False):
            got = rows[(r.task, r.control)]
            if r.task in adjudicated and r.control == "sentiment":  # the references answer sentiment only
                assert (got.source, pd.isna(got.posterior)) == ("adjudicated", True)
            else:
                label = "" if pd.isna(got.label) else got.label  # CSV: an empty label reads back as null
                assert (got.source, label, got.posterior) == ("dawid-skene", r.label, pytest.approx(r.confidence))
        fixed = [r for (t, c), r in rows.items() if r.source == "adjudicated" and c == "sentiment"]
        assert {r.label for r in fixed} >= {"pos", "neg"}


def test_ls_json_ground_truth_reimports_into_the_same_references(decided: tuple[str, int], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data, pid = decided
    out = tmp_path / "gt.json"
    code, text, err = run(capsys, "--data-dir", data, "export", str(pid), "--what", "ground-truth",
                          "--format", "ls-json", "-o", str(out), "--json")
    assert code == 0, err
    tasks = json.loads(out.read_text())
    assert json.loads(text)["tasks"] == len(tasks) == 2
    assert all(len(t["annotations"]) == 1 and t["annotations"][0]["ground_truth"] is True for t in tasks)
    code, text, err = run(capsys, "--data-dir", data, "import", str(out), "--config", str(tmp_path / "c.xml"),
                          "--json")
    assert code == 0, err
    pid2 = json.loads(text)["project_id"]
    store = Store.open(data)
    try:
        def refs(p: int) -> dict[tuple[Any, str], Any]:
            f = load_frames(store, p)
            sid = {r.task: r.server_id for r in references(store, p)}
            return {(sid[r.task], r.control): r.result for r in f.ground_truth.itertuples(index=False)}

        original, again = refs(pid), refs(pid2)
    finally:
        store.close()
    assert again == original and len(original) == 2 * 3  # two tasks x three controls


def test_the_default_export_is_the_lossless_label_studio_export(decided: tuple[str, int], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_asof import team_export

    data, pid = decided
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert run(capsys, "--data-dir", data, "export", str(pid), "-o", str(a))[0] == 0
    assert run(capsys, "--data-dir", data, "export", str(pid), "--what", "tasks", "--format", "ls-json",
               "-o", str(b))[0] == 0
    assert a.read_bytes() == b.read_bytes()
    assert json.loads(a.read_text()) == team_export()


@pytest.mark.parametrize(("argv", "words"), [
    (["--what", "decisions", "--format", "ls-json"], "exists for --what tasks and ground-truth"),
    (["--what", "metrics", "--format", "ls-json"], "use --format csv or parquet"),
])
def test_a_bad_combination_is_refused(decided: tuple[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      argv: list[str], words: str) -> None:
    data, pid = decided
    out = tmp_path / "x.json"
    code, text, _ = run(capsys, "--data-dir", data, "export", str(pid), *argv, "-o", str(out), "--json")
    assert code == 1 and words in json.loads(text)["error"] and not out.exists()


@pytest.mark.parametrize("fmt", ["ls-json", *TABLE_FORMATS])
def test_a_failed_export_leaves_no_partial_file_and_keeps_the_old_one(decided: tuple[str, int], tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str],
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      fmt: str) -> None:
    """A full disk, simulated where the bytes are flushed to disk: one error line, the earlier file intact."""
    import os

    data, pid = decided
    out = tmp_path / "out.bin"
    out.write_bytes(b"an earlier export")

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    what = "tasks" if fmt == "ls-json" else "decisions"
    code, text, err = run(capsys, "--data-dir", data, "export", str(pid), "--what", what, "--format", fmt,
                          "-o", str(out), "--json")
    assert code == 1 and "No space left on device" in json.loads(text)["error"]
    assert err.count("\n") == 1
    assert out.read_bytes() == b"an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == ["out.bin"]
    code, text, _ = run(capsys, "--data-dir", data, "export", str(pid), "--what", what, "--format", fmt,
                        "-o", str(tmp_path / "no-such-folder" / "x"), "--json")
    assert code == 1 and "Cannot write" in json.loads(text)["error"]


def test_progress_bar_on_request_goes_to_stderr_only(decided: tuple[str, int], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    data, pid = decided
    code, text, err = run(capsys, "--data-dir", data, "export", str(pid), "-o", str(tmp_path / "a.json"), "--json",
                          "--progress")
    assert code == 0 and json.loads(text)["tasks"] == 8
    assert "exporting tasks  8/8 [" in err and "100%" in err
    code, text, err = run(capsys, "--data-dir", data, "export", str(pid), "-o", str(tmp_path / "b.json"), "--json")
    assert code == 0 and err == ""  # not a terminal, not asked: no bar
    code, text, err = run(capsys, "--data-dir", data, "import", str(tmp_path / "a.json"), "--config",
                          str(tmp_path / "c.xml"), "--progress")
    assert code == 0 and "importing tasks  8" in err
