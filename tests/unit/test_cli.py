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
