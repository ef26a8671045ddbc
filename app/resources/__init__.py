"""Bundled resources (demo project, default keymap), shipped inside this package.

Everything is located through :mod:`importlib.resources`, so an installed wheel or installer finds its data
wherever the ``app`` package lives -- never relative to a source checkout. ``REVIEWDESK_RESOURCES`` names
another folder with the same layout (``keymap.toml``, ``demo/``) and wins when set (docs/adr/0010).

- :func:`resource` -- one file, to ``open()``/``read_text()`` (works whatever the package's storage);
- :func:`resources_dir` / :func:`demo_dir` -- a real folder, for code that needs filesystem paths (the demo
  import records its media folder in the store, so that folder must outlive the process).
"""

from __future__ import annotations

import os
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import platformdirs

from app import __version__

ENV_VAR = "REVIEWDESK_RESOURCES"
_COMPLETE = ".complete"


def _override() -> Path | None:
    env = os.environ.get(ENV_VAR)
    if not env:
        return None
    path = Path(env)
    if not path.is_dir():
        raise FileNotFoundError(f"{ENV_VAR}={env} is not a folder")
    return path


def resource(name: str) -> Traversable:
    """The bundled resource ``name`` (``"keymap.toml"``, ``"demo/config.xml"``), not necessarily on disk."""
    node: Traversable = _override() or files(__name__)
    for part in name.split("/"):
        node = node.joinpath(part)
    return node


def resources_dir() -> Path:
    """The resources as a real folder: the package folder itself in a normal install.

    When the package is not stored as plain files (imported from a zip), the tree is copied once to a
    per-version folder of the user cache -- a persistent path, unlike ``importlib.resources.as_file``'s
    temporary one, because the demo project keeps referring to its media after this process ends.
    """
    override = _override()
    if override is not None:
        return override
    root = files(__name__)
    if isinstance(root, Path):
        return root
    dest = Path(platformdirs.user_cache_dir("reviewdesk", appauthor=False)) / f"resources-{__version__}"
    if not (dest / _COMPLETE).exists():
        extract(root, dest)
    return dest


def extract(src: Traversable, dest: Path) -> None:
    """Copy the resource tree ``src`` into the folder ``dest``; the completion marker is written last."""
    _copy_tree(src, dest)
    (dest / _COMPLETE).touch()


def _copy_tree(src: Traversable, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for child in src.iterdir():
        if child.name in ("__init__.py", "__pycache__"):
            continue
        if child.is_dir():
            _copy_tree(child, dest / child.name)
        else:
            (dest / child.name).write_bytes(child.read_bytes())


def demo_dir() -> Path:
    """The bundled demo project's folder (``config.xml``, ``tasks.json``, ``media/``, ``instructions.html``)."""
    return resources_dir() / "demo"
