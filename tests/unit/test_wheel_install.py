"""Packaging: a wheel of this repository, installed into a clean venv, starts outside the source tree (issue 12).

The wheel is built from a copy of the project (``pyproject.toml``, ``README.md``, ``app/``) the way ``pip
install .`` builds it, then installed with its dependencies into a new virtual environment -- no editable
install, no ``PYTHONPATH``, the working directory a temporary folder -- and the installed ``reviewdesk`` is run:
``--version``, the ``demo`` command (demo project from the package's data), the default keymap, and a first
start of the window on the demo (offscreen). A resource left out of the package data fails here.

Needs the package index pip is configured with (build requirements and dependencies); about 40 s here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app import __version__

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    source: Path  # the copy the wheel was built from
    venv: Path
    site_packages: Path
    work: Path  # the working directory of every run: outside the checkout
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), cwd=self.work, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def python(self, code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        # -I: no PYTHON* variables, no user site, and neither the cwd nor a script folder on sys.path.
        return self.run(str(self.venv / "bin" / "python"), "-I", "-c", textwrap.dedent(code), timeout=timeout)


def _check(proc: subprocess.CompletedProcess[str], what: str) -> str:
    assert proc.returncode == 0, f"{what} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment minus everything that could make the checkout importable or move resources."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "REVIEWDESK_", "VIRTUAL_ENV", "CONDA_", "__PYVENV"))}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("wheel-install")
    source, dist, venv, work = base / "src", base / "dist", base / "venv", base / "work"
    source.mkdir()
    work.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "app", source / "app", ignore=IGNORE)

    pip_env = _clean_env()
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
                           cwd=base, env=pip_env, capture_output=True, text=True, timeout=300, check=False)
    _check(build, "pip wheel")
    (wheel,) = dist.glob("reviewdesk-*.whl")
    # The base interpreter, not this venv: the new venv sees none of the dev venv's packages (editable app).
    base_python = getattr(sys, "_base_executable", sys.executable)
    _check(subprocess.run([base_python, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=120,
                          check=False, env=pip_env), "python -m venv")
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                             cwd=work, env=pip_env, capture_output=True, text=True, timeout=600, check=False)
    _check(install, "pip install <wheel>")
    purelib = subprocess.run([str(venv / "bin" / "python"), "-I", "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, cwd=work)
    home = base / "home"
    env = _clean_env(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"),
                     XDG_CACHE_HOME=str(home / "cache"), QT_QPA_PLATFORM="offscreen",
                     PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    try:
        yield Installed(wheel, source, venv, Path(purelib.stdout.strip()).resolve(), work, env)
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # ~1 GB with Qt; pytest keeps the last runs' tmp folders


def test_wheel_holds_every_file_of_the_package(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as zf:
        names = set(zf.namelist())
    tree = {p.relative_to(installed.source).as_posix() for p in (installed.source / "app").rglob("*") if p.is_file()}
    assert not tree - names, f"left out of the wheel: {sorted(tree - names)}"
    # and the ones the first run needs, by name, in case the tree itself lost them
    for name in ("app/resources/__init__.py", "app/resources/keymap.toml", "app/resources/demo/config.xml",
                 "app/resources/demo/tasks.json", "app/resources/demo/instructions.html",
                 "app/resources/demo/media/screen_01.png", "app/resources/demo/media/voicemail_01.wav",
                 "app/models/migrations/env.py", "app/models/migrations/versions/0001_initial.py"):
        assert name in names
    assert not any(n.startswith(("resources/", "tests/")) for n in names)


def test_installed_package_is_the_one_imported(installed: Installed) -> None:
    out = _check(installed.python("""
        import json, app, app.resources
        print(json.dumps({"app": app.__file__, "resources": str(app.resources.resources_dir()),
                          "demo": str(app.resources.demo_dir())}))
    """), "import app")
    where = {k: Path(v).resolve() for k, v in json.loads(out).items()}
    for key, path in where.items():
        assert path.is_relative_to(installed.site_packages), f"{key} imported from {path}, not the new venv"
        assert not path.is_relative_to(ROOT), f"{key} leaked in from the checkout: {path}"
    assert where["resources"] == installed.site_packages / "app" / "resources"


def test_installed_console_script_version(installed: Installed) -> None:
    exe = installed.venv / "bin" / "reviewdesk"
    assert exe.exists()
    assert _check(installed.run(str(exe), "--version"), "reviewdesk --version").strip() == f"reviewdesk {__version__}"


def test_installed_demo_and_keymap_load_from_the_package(installed: Installed) -> None:
    data = installed.work / "data-cli"
    exe = str(installed.venv / "bin" / "reviewdesk")
    assert _check(installed.run(exe, "--data-dir", str(data), "demo"), "reviewdesk demo").strip() == "Demo project: 1"
    projects = json.loads(_check(installed.run(exe, "--data-dir", str(data), "projects", "--json"), "projects"))
    assert [(p["id"], p["title"], p["tasks"]) for p in projects] == [(1, "Demo: support ticket triage", 320)]
    # idempotent: a second run finds the project instead of importing again
    assert _check(installed.run(exe, "--data-dir", str(data), "demo"), "reviewdesk demo").strip() == "Demo project: 1"

    out = _check(installed.python(f"""
        import json
        from pathlib import Path
        from app.models.store import Store
        from app.services.keymap import default_keymap
        from app.services.projects import ProjectService
        store = Store.open({str(data)!r})
        root = Path(ProjectService(store).media_root(1))
        store.close()
        km = default_keymap()
        print(json.dumps({{"media_root": str(root), "png": len(list((root / "media").glob("*.png"))),
                          "wav": len(list((root / "media").glob("*.wav"))),
                          "instructions": (root / "instructions.html").is_file(),
                          "accept": list(km.keys("accept")), "undo": list(km.keys("undo"))}}))
    """), "keymap + media root")
    got = json.loads(out)
    assert Path(got["media_root"]).resolve() == installed.site_packages / "app" / "resources" / "demo"
    assert (got["png"], got["wav"], got["instructions"]) == (40, 24, True)
    assert got["accept"] == ["A"] and got["undo"]


def test_installed_app_first_start_opens_the_demo(installed: Installed) -> None:
    """``reviewdesk --demo`` on an empty data folder: store, migrations, demo import, keymap, main window."""
    out = _check(installed.python(f"""
        import json, sys
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        qapp = QApplication(["reviewdesk"])
        seen = []
        def look():
            seen.extend(w.windowTitle() for w in qapp.topLevelWidgets() if w.isVisible())
            qapp.quit()
        QTimer.singleShot(1500, look)
        from app.main import main
        code = main(["--data-dir", {str(installed.work / "data-gui")!r}, "--demo"])
        print(json.dumps(seen))
        sys.exit(code)
    """, timeout=180), "first start of the window")
    titles = json.loads(out.strip().splitlines()[-1])
    assert "ReviewDesk" in titles, titles


def test_resources_override_and_zip_extraction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: ``REVIEWDESK_RESOURCES`` wins; a resource tree that is not on disk is copied out whole."""
    from app import resources

    (tmp_path / "over" / "demo").mkdir(parents=True)
    (tmp_path / "over" / "keymap.toml").write_text("[review]\n")
    monkeypatch.setenv("REVIEWDESK_RESOURCES", str(tmp_path / "over"))
    assert resources.resources_dir() == tmp_path / "over"
    assert resources.demo_dir() == tmp_path / "over" / "demo"
    assert resources.resource("keymap.toml").read_text() == "[review]\n"
    monkeypatch.setenv("REVIEWDESK_RESOURCES", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="REVIEWDESK_RESOURCES"):
        resources.resources_dir()
    monkeypatch.delenv("REVIEWDESK_RESOURCES")
    assert resources.resource("demo/config.xml").read_text(encoding="utf-8").lstrip().startswith("<View")

    archive = tmp_path / "res.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("res/__init__.py", "")
        zf.writestr("res/keymap.toml", "[x]\n")
        zf.writestr("res/demo/media/a.png", b"\x89PNG")
    resources.extract(zipfile.Path(archive, "res/"), tmp_path / "out")
    files = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert files == [".complete", "demo/media/a.png", "keymap.toml"]
    assert (tmp_path / "out" / "demo" / "media" / "a.png").read_bytes() == b"\x89PNG"
