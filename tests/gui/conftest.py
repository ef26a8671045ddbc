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


@pytest.fixture
def team_store(demo_store):
    """The demo store with a second reviewer (Priya, user 9001) as a member of the project."""
    from app.models.schema import Member
    from tests.gui.helpers import PRIYA

    store, pid = demo_store
    with store.transaction() as s:
        s.add(Member(project_id=pid, user_id=9001, email=PRIYA, first_name="Priya", last_name="Shah"))
    return store, pid
