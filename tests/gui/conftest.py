from __future__ import annotations

import os
from pathlib import Path

import pytest

SHOTS = Path(os.environ.get("REVIEWDESK_SCREENSHOTS", Path(__file__).resolve().parents[2] / "screenshots"))


@pytest.fixture(scope="session")
def shots_dir() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nScreenshots are saved in {SHOTS}")
    return SHOTS


@pytest.fixture
def demo_store(store):
    from app.services.demo import ensure_demo

    pid = ensure_demo(store)
    return store, pid
