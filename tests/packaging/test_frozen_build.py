"""The Linux installer build (docs/adr/0016): PyInstaller makes the one-folder app from installers/reviewdesk.spec
into a temporary folder, and the frozen binary -- run from another folder, with a clean HOME -- answers
``--version``, runs CLI subcommands that are imported by name, and passes ``--self-test`` offscreen.

Part of ``make test`` (about 1.5-2 min on two cores, most of it PyInstaller's analysis). Needs the ``[build]``
extra (``make venv``) and binutils (``.ci/run`` installs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import __version__

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("frozen")
    env = {**os.environ, "PY": sys.executable, "DIST": str(out / "dist"), "WORK": str(out / "work"),
           "SKIP_SELF_TEST": "1"}
    proc = subprocess.run(["bash", str(ROOT / "installers" / "build-linux.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / "dist" / "reviewdesk"


def _run(bundle: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVIEWDESK_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CACHE_HOME=str(home / "cache"),
               XDG_CONFIG_HOME=str(home / "config"), QT_QPA_PLATFORM="offscreen")
    return subprocess.run([str(bundle / "reviewdesk"), *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_bundle_carries_resources_migrations_and_qt_plugins(bundle: Path) -> None:
    internal = bundle / "_internal"
    assert (internal / "app" / "resources" / "keymap.toml").is_file()
    assert (internal / "app" / "resources" / "demo" / "tasks.json").is_file()
    assert (internal / "app" / "models" / "migrations" / "env.py").is_file()
    versions = {p.name for p in (internal / "app" / "models" / "migrations" / "versions").glob("0*.py")}
    assert versions == {p.name for p in (ROOT / "app" / "models" / "migrations" / "versions").glob("0*.py")}
    plugins = internal / "PySide6" / "Qt" / "plugins"
    assert (plugins / "platforms" / "libqoffscreen.so").is_file() and (plugins / "platforms" / "libqxcb.so").is_file()
    assert list(internal.rglob("libQt6Multimedia.so*")), "QtMultimedia (audio playback) is missing"
    assert not list(internal.rglob("libQt6WebEngineCore.so*"))


def test_the_frozen_binary_runs(bundle: Path, tmp_path: Path) -> None:
    v = _run(bundle, tmp_path, "--version")
    assert v.returncode == 0 and v.stdout.strip() == f"reviewdesk {__version__}", v.stderr
    # subcommands registered from modules imported by name (app.cli.EXTENSION_MODULES), and a migration run
    data = str(tmp_path / "store")
    demo = _run(bundle, tmp_path, "--data-dir", data, "demo", "--json")
    assert demo.returncode == 0, demo.stderr
    assert json.loads(demo.stdout)["project_id"] == 1
    st = _run(bundle, tmp_path, "--data-dir", data, "webhook", "status", "--json")
    assert st.returncode == 0 and json.loads(st.stdout)["url"] is None, st.stderr
    m = _run(bundle, tmp_path, "--data-dir", data, "metrics", "1", "--json")
    assert m.returncode == 0, m.stderr


def test_the_frozen_self_test_passes(bundle: Path, tmp_path: Path) -> None:
    proc = _run(bundle, tmp_path, "--self-test")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["OK store", "OK review", "OK tasks", "OK dashboard", "OK window",
                                                  "OK self-test"], proc.stdout
    assert "AudioRenderer" in lines[1] and "ImageRenderer" in lines[1]
