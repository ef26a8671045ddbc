from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.main import main
from tests.conftest import SMALL_CONFIG


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_projects_export_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           small_export: list[dict]) -> None:
    data = str(tmp_path / "d")
    src = tmp_path / "in.json"
    src.write_text(json.dumps(small_export))
    cfg = tmp_path / "config.xml"
    cfg.write_text(SMALL_CONFIG)
    code, out, _ = run(capsys, "--data-dir", data, "import", str(src), "--config", str(cfg), "--title", "T", "--json")
    assert code == 0
    pid = json.loads(out)["project_id"]
    code, out, _ = run(capsys, "--data-dir", data, "projects", "--json")
    projects = json.loads(out)
    assert [(p["id"], p["title"], p["tasks"]) for p in projects] == [(pid, "T", 2)]
    dest = tmp_path / "out.json"
    code, out, _ = run(capsys, "--data-dir", data, "export", str(pid), "--format", "ls-json", "-o", str(dest))
    assert code == 0 and "Wrote 2 tasks" in out
    assert json.loads(dest.read_text()) == small_export
    # --data-dir may also follow the subcommand
    code, out, _ = run(capsys, "projects", "--json", "--data-dir", data)
    assert json.loads(out)[0]["id"] == pid


def test_errors_exit_nonzero_with_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "d")
    bad = tmp_path / "bad.json"
    bad.write_text("<html>proxy login</html>")
    cfg = tmp_path / "c.xml"
    cfg.write_text(SMALL_CONFIG)
    code, out, err = run(capsys, "--data-dir", data, "import", str(bad), "--config", str(cfg), "--json")
    assert code == 1
    assert "HTML" in json.loads(out)["error"] and "HTML" in err
    code, _, err = run(capsys, "--data-dir", data, "export", "42", "-o", str(tmp_path / "x.json"))
    assert code == 1 and "No project 42" in err
    code, _, err = run(capsys, "--data-dir", data, "import", str(bad), "--config", str(tmp_path / "missing.xml"))
    assert code == 1 and "Cannot read the labeling config" in err


def test_console_script_runs_without_qt(tmp_path: Path) -> None:
    """CLI subcommands must not load Qt (fast start, works on machines without a display stack)."""
    code = ("import sys, app.main; rc = app.main.main(['--data-dir', sys.argv[1], 'projects', '--json']);"
            "assert not any(m.startswith('PySide6') for m in sys.modules), 'Qt loaded'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_demo_command_imports_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "d")
    _, out1, _ = run(capsys, "--data-dir", data, "demo", "--json")
    _, out2, _ = run(capsys, "--data-dir", data, "demo", "--json")
    assert json.loads(out1) == json.loads(out2)
    _, out, _ = run(capsys, "--data-dir", data, "projects", "--json")
    assert len(json.loads(out)) == 1 and json.loads(out)[0]["tasks"] >= 300


# -- every subcommand: a failure is one JSON object with --json, one plain line without, never a traceback --

def _bad_inputs(tmp: Path, data: str, garbage: str) -> dict[str, list[str]]:
    """A bad input for every subcommand (``data`` holds project 1 with tasks 11 and 12; ``garbage`` is a data
    folder whose store file is not a database)."""
    cfg = tmp / "config.xml"
    return {
        "import": ["--data-dir", data, "import", str(tmp / "missing.json"), "--config", str(cfg)],
        "projects": ["--data-dir", garbage, "projects"],
        "export": ["--data-dir", data, "export", "42", "-o", str(tmp / "out.json")],
        # more bad inputs of one subcommand: NAME#what
        "export#combo": ["--data-dir", data, "export", "1", "--what", "metrics", "--format", "ls-json",
                         "-o", str(tmp / "out.json")],
        "export#path": ["--data-dir", data, "export", "1", "--what", "decisions", "--format", "parquet",
                        "-o", str(tmp / "no-such-folder" / "out.parquet")],
        "export#as-of": ["--data-dir", data, "export", "1", "-o", str(tmp / "out.json"), "--as-of", "99999"],
        "metrics#as-of": ["--data-dir", data, "metrics", "1", "--as-of", "2999-01-01T00:00:00Z"],
        "tasks": ["--data-dir", data, "tasks", "42"],
        "audit": ["--data-dir", data, "audit", "log", "42"],
        "demo": ["--data-dir", garbage, "demo"],
        "decide": ["--data-dir", data, "decide", "1", "11", "--annotation", "999", "--accept"],
        "decisions": ["--data-dir", data, "decisions", "42"],
        "escalations": ["--data-dir", data, "escalations", "42"],
        # the case from issue 12: a CSV into a folder that does not exist
        "metrics": ["--data-dir", data, "metrics", "1", "--csv", "/nonexistent/x.csv"],
        "login": ["--data-dir", data, "login", "http://127.0.0.1:9", "--token-stdin"],  # empty stdin
        "pull": ["--data-dir", data, "pull", "http://127.0.0.1:9", "--project", "1"],  # not logged in
        "push": ["--data-dir", data, "push", "--url", "http://127.0.0.1:9"],
        "sync": ["--data-dir", data, "sync", "--url", "http://127.0.0.1:9"],
        "conflicts": ["--data-dir", data, "conflicts", "--keep-mine", "no-such-uuid"],
        "media": ["--data-dir", data, "media", "--cap-mb", "-5"],
        "backup": ["--data-dir", garbage, "backup"],
        "restore": ["--data-dir", data, "restore", "no-such-backup.sqlite"],
        "ground-truth": ["--data-dir", data, "ground-truth", "42"],
        # project 1 has one ground-truth task (a server flag): a round of 5 cannot be drawn
        "calibration": ["--data-dir", data, "calibration", "1", "--require", "5"],
        "webhook": ["--data-dir", data, "webhook", "set", "ftp://example.com/hook", "--secret-stdin"],
        "queue": ["--data-dir", data, "queue", "1", "--preset", "no-such-preset"],
        "coverage": ["--data-dir", data, "coverage", "42"],
        "queue-preset": ["--data-dir", data, "queue-preset", "delete", "1", "no-such-preset"],
        "queue-assign": ["--data-dir", data, "queue-assign", "1", "ann@example.com", "no-such-queue"],
        "expert-threshold": ["--data-dir", data, "expert-threshold", "1", "1.5"],
    }


@pytest.fixture
def cli_env(tmp_path: Path, capsys: pytest.CaptureFixture[str], small_export: list[dict],
            monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    import io

    import keyring

    monkeypatch.delenv("REVIEWDESK_TOKEN", raising=False)
    monkeypatch.setattr(keyring, "get_password", lambda *a: None)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    data = str(tmp_path / "d")
    src = tmp_path / "in.json"
    src.write_text(json.dumps(small_export))
    (tmp_path / "config.xml").write_text(SMALL_CONFIG)
    assert run(capsys, "--data-dir", data, "import", str(src), "--config", str(tmp_path / "config.xml"))[0] == 0
    garbage = tmp_path / "g"
    garbage.mkdir()
    (garbage / "reviewdesk.sqlite").write_bytes(b"not a database at all" * 50)
    return _bad_inputs(tmp_path, data, str(garbage))


def _run_any(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors exit from parse_args
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _check_shape(code: int, out: str, err: str, as_json: bool, what: str) -> dict:
    assert code != 0, what
    assert "Traceback" not in out + err, what
    err_lines = [line for line in err.splitlines() if line.strip()]
    assert len(err_lines) == 1 and err_lines[0].startswith("reviewdesk: error: "), (what, err)
    if not as_json:
        assert out == "", (what, out)
        return {}
    lines = out.splitlines()
    assert len(lines) == 1, (what, out)
    payload = json.loads(lines[0])
    assert isinstance(payload, dict) and set(payload) == {"error", "kind"}, (what, payload)
    assert isinstance(payload["error"], str) and payload["error"].strip(), what
    assert err_lines[0] == f"reviewdesk: error: {payload['error']}", what
    return payload


def test_every_subcommand_reports_a_bad_input_in_one_shape(cli_env: dict[str, list[str]],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from app import cli

    cli.build_parser()
    registered = set(cli.registered_commands())
    named = {k.split("#")[0] for k in cli_env}
    assert registered == named, (
        f"give these subcommands a bad input in _bad_inputs: {sorted(registered ^ named)}")
    expected_words = {"metrics": "/nonexistent/x.csv", "projects": "not a SQLite database",
                      "backup": "not a SQLite database", "restore": "no-such-backup", "export": "42",
                      "ground-truth": "No project 42", "calibration": "has 1 ground-truth task",
                      "webhook": "http:// or https://",
                      "export#combo": "ls-json is a Label Studio import file", "export#path": "Cannot write",
                      "export#as-of": "No audit event 99999", "metrics#as-of": "in the future",
                      "queue": "no-such-preset", "queue-preset": "no-such-preset", "queue-assign": "no-such-queue",
                      "expert-threshold": "1.5", "coverage": "42"}
    for name, argv in sorted(cli_env.items()):
        for as_json in (False, True):
            code, out, err = _run_any(capsys, argv + (["--json"] if as_json else []))
            payload = _check_shape(code, out, err, as_json, f"{name} json={as_json}")
            assert code == 1, (name, code)
            if as_json and name in expected_words:
                assert expected_words[name] in payload["error"], (name, payload)


@pytest.mark.parametrize("as_json", [False, True])
def test_every_subcommand_reports_bad_usage_in_one_shape(as_json: bool, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from app import cli

    cli.build_parser()
    for name in sorted(cli.registered_commands()):
        argv = ["--data-dir", str(tmp_path / "d"), name, "--no-such-option"] + (["--json"] if as_json else [])
        code, out, err = _run_any(capsys, argv)
        payload = _check_shape(code, out, err, as_json, name)
        assert code == 2, name
        assert f"reviewdesk {name} --help" in err
        if as_json:
            assert payload["kind"] == "UsageError"
    code, out, err = _run_any(capsys, ["metrics", "not-a-number", "--json"])
    assert code == 2 and "invalid int value" in _check_shape(code, out, err, True, "metrics int")["error"]


def test_an_unexpected_failure_is_one_line_too(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from app import cli

    def boom(args: object) -> int:
        raise ZeroDivisionError("division by zero")

    cli.build_parser()
    monkeypatch.setitem(cli._COMMANDS, "projects", boom)
    for as_json in (False, True):
        code, out, err = _run_any(capsys, ["--data-dir", str(tmp_path / "d"), "projects"]
                                  + (["--json"] if as_json else []))
        payload = _check_shape(code, out, err, as_json, "boom")
        assert "ZeroDivisionError" in err and "REVIEWDESK_DEBUG" in err
        if as_json:
            assert payload["kind"] == "ZeroDivisionError"
    monkeypatch.setenv("REVIEWDESK_DEBUG", "1")  # for bug reports: the traceback, on request only
    code, _, err = _run_any(capsys, ["--data-dir", str(tmp_path / "d"), "projects"])
    assert code == 1 and "Traceback" in err


def test_metrics_on_a_project_with_nothing_to_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "d")
    src = tmp_path / "in.json"
    src.write_text(json.dumps([{"id": 1, "data": {"text": "a"}, "annotations": []},
                               {"id": 2, "data": {"text": "b"}, "annotations": [
                                   {"id": 7, "completed_by": 1, "result": [], "was_cancelled": True}]}]))
    cfg = tmp_path / "c.xml"
    cfg.write_text(SMALL_CONFIG)
    assert run(capsys, "--data-dir", data, "import", str(src), "--config", str(cfg))[0] == 0
    code, out, _ = run(capsys, "--data-dir", data, "metrics", "1", "--json")
    assert code == 0
    payload = json.loads(out)
    assert (payload["tasks"], payload["annotations"], payload["cancelled"]) == (2, 1, 1)
    assert payload["per_annotator"] == [] and "no annotations to compare" in payload["note"]
    code, out, _ = run(capsys, "--data-dir", data, "metrics", "1")
    assert code == 0 and "2 tasks, 1 annotations (1 cancelled)" in out


def test_backup_list_and_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 small_export: list[dict]) -> None:
    data = str(tmp_path / "d")
    src = tmp_path / "in.json"
    src.write_text(json.dumps(small_export))
    cfg = tmp_path / "c.xml"
    cfg.write_text(SMALL_CONFIG)
    code, out, _ = run(capsys, "--data-dir", data, "backup", "--list", "--json")
    assert code == 0 and json.loads(out)["backups"] == []
    code, out, _ = run(capsys, "--data-dir", data, "backup", "--json")
    first = json.loads(out)["backup"]
    assert code == 0 and first["kind"] == "manual" and Path(first["path"]).exists()
    assert run(capsys, "--data-dir", data, "import", str(src), "--config", str(cfg))[0] == 0
    code, out, _ = run(capsys, "--data-dir", data, "restore", Path(first["path"]).name, "--json")
    res = json.loads(out)
    assert code == 0 and res["restored"] == first["path"] and not res["previous_damaged"]
    _, out, _ = run(capsys, "--data-dir", data, "projects", "--json")
    assert json.loads(out) == []  # back to the empty store
    code, out, _ = run(capsys, "--data-dir", data, "restore", res["previous"])  # undo the restore
    assert code == 0 and "Restored" in out
    _, out, _ = run(capsys, "--data-dir", data, "projects", "--json")
    assert [p["tasks"] for p in json.loads(out)] == [2]
    code, out, _ = run(capsys, "--data-dir", data, "backup", "--list")
    kinds = [line.split()[2] for line in out.splitlines()]
    assert code == 0 and "manual" in kinds and kinds.count("restore") == 2


def test_ground_truth_and_calibration_json(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           small_export: list[dict]) -> None:
    data = str(tmp_path / "d")
    src = tmp_path / "in.json"
    src.write_text(json.dumps(small_export))
    cfg = tmp_path / "config.xml"
    cfg.write_text(SMALL_CONFIG)
    pid = json.loads(run(capsys, "--data-dir", data, "import", str(src), "--config", str(cfg), "--json")[1])["project_id"]
    code, out, _ = run(capsys, "--data-dir", data, "decide", str(pid), "11", "--annotation", "101", "--accept",
                       "--reviewer", "rev@example.com", "--json")
    assert code == 0
    uuid = json.loads(out)["uuid"]
    code, out, _ = run(capsys, "--data-dir", data, "ground-truth", str(pid), "--json")
    payload = json.loads(out)
    assert code == 0 and payload["counts"] == {"tasks": 2, "references": 1, "by_source": {"decision": 1},
                                               "revised": 1}
    item = payload["items"][0]
    assert (item["task"], item["source"], item["decision"], item["reviewer"], item["verdict"]) == (
        11, "decision", uuid, "rev@example.com", "accept")
    code, out, _ = run(capsys, "--data-dir", data, "ground-truth", str(pid), "--task", "11", "--history", "--json")
    hist = json.loads(out)["history"]
    assert [(h["source"], h["current"]) for h in hist] == [("decision", True), ("server-flag", False)]
    code, out, _ = run(capsys, "--data-dir", data, "ground-truth", str(pid), "--task", "12", "--json")
    assert json.loads(out) == {"task": 12, "reference": None}
    code, out, err = run(capsys, "--data-dir", data, "ground-truth", str(pid), "--history", "--json")
    assert code == 1 and "--history needs --task" in json.loads(out)["error"]

    code, out, _ = run(capsys, "--data-dir", data, "calibration", str(pid), "--require", "1", "--threshold", "0.9",
                       "--json")
    assert code == 0 and json.loads(out)["requirement"]["required"] is True
    code, out, _ = run(capsys, "--data-dir", data, "calibration", str(pid), "--reviewer", "new@example.com", "--json")
    st = json.loads(out)
    assert (st["locked"], st["passed"], st["requirement"]["n_tasks"], st["requirement"]["threshold"]) == (
        True, False, 1, 0.9)
    # the gate holds on the command line too: no production decision before the round is passed
    code, out, _ = run(capsys, "--data-dir", data, "decide", str(pid), "11", "--annotation", "101", "--accept",
                       "--reviewer", "new@example.com", "--json")
    assert code == 1 and "has not passed this project's calibration round" in json.loads(out)["error"]
    code, out, _ = run(capsys, "--data-dir", data, "decisions", str(pid), "--json")
    assert [d["reviewer"] for d in json.loads(out)] == ["rev@example.com"]
    code, out, _ = run(capsys, "--data-dir", data, "calibration", str(pid), "--results", "--json")
    assert json.loads(out)["rounds"] == []
    code, out, _ = run(capsys, "--data-dir", data, "calibration", str(pid), "--off", "--json")
    assert json.loads(out)["requirement"]["required"] is False
    code, out, _ = run(capsys, "--data-dir", data, "calibration", str(pid), "--require", "1", "--threshold", "1.5",
                       "--json")
    assert code == 1 and "between 0 and 1" in json.loads(out)["error"]
