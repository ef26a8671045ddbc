"""Where bundled resources (demo project, keymap, icons) live."""

from __future__ import annotations

import os
from pathlib import Path


def resources_dir() -> Path:
    env = os.environ.get("REVIEWDESK_RESOURCES")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here / "resources", here.parent / "resources"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("ReviewDesk resources folder not found; set REVIEWDESK_RESOURCES")


def demo_dir() -> Path:
    return resources_dir() / "demo"
