"""Open skips ``PRAGMA quick_check`` only for a store file unchanged since it last passed it (issue 14).

Any write after the check -- a session's commit, damaged pages written over the file -- changes the file's
fingerprint, and the next open checks again (and refuses a damaged file, as before)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import app.models.store as store_mod
from app.models.store import STORE_FILENAME, VERIFIED_FILENAME, Store, StoreError

SETTLE = 0.2  # shorter than the product's 2 s, for the test; still longer than a coarse file-clock tick


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, per inspection of the store file on open, whether quick_check ran."""
    monkeypatch.setattr(store_mod, "VERIFIED_SETTLE_S", SETTLE)
    ran: list[bool] = []
    real = store_mod._inspect_sqlite

    def spy(path: Path, data_dir: Path, *, what: str, quick_check: bool = True) -> Any:
        if what == "store":
            ran.append(quick_check)
        return real(path, data_dir, what=what, quick_check=quick_check)

    monkeypatch.setattr(store_mod, "_inspect_sqlite", spy)
    return ran


def _settled_open(data_dir: Path) -> Store:
    time.sleep(SETTLE + 0.1)  # the file is older than the settle time when checked
    return Store.open(data_dir)


def test_an_unchanged_store_is_checked_once(tmp_path: Path, checks: list[bool]) -> None:
    data_dir = tmp_path / "data"
    Store.open(data_dir).close()  # a new store: nothing to check yet
    _settled_open(data_dir).close()  # checked, fingerprint recorded
    assert (data_dir / VERIFIED_FILENAME).exists()
    Store.open(data_dir).close()  # unchanged: not checked again
    Store.open(data_dir).close()
    assert checks == [True, False, False]


def test_a_write_after_the_check_makes_the_next_open_check(tmp_path: Path, checks: list[bool]) -> None:
    data_dir = tmp_path / "data"
    Store.open(data_dir).close()
    store = _settled_open(data_dir)
    with store.transaction() as s:  # a commit goes to the WAL, then into the file at close
        s.execute(text("CREATE TABLE scratch (x)"))
    store.close()
    Store.open(data_dir).close()
    assert checks == [True, True]


def test_damage_written_after_the_check_is_refused(tmp_path: Path, checks: list[bool]) -> None:
    data_dir = tmp_path / "data"
    Store.open(data_dir).close()
    _settled_open(data_dir).close()
    Store.open(data_dir).close()
    assert checks == [True, False]
    path = data_dir / STORE_FILENAME
    raw = bytearray(path.read_bytes())
    for off in range(4096, len(raw), 4096):  # same size, every page after the header wrecked
        raw[off:off + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match="cannot be opened"):
        Store.open(data_dir)
    assert checks[-1] is True


def test_a_record_older_than_a_day_or_unreadable_is_not_trusted(tmp_path: Path, checks: list[bool]) -> None:
    data_dir = tmp_path / "data"
    Store.open(data_dir).close()
    _settled_open(data_dir).close()
    marker = data_dir / VERIFIED_FILENAME
    rec = json.loads(marker.read_text())
    marker.write_text(json.dumps({**rec, "checked": rec["checked"] - store_mod.VERIFIED_MAX_AGE_S - 1}))
    Store.open(data_dir).close()
    marker.write_text("not json")
    Store.open(data_dir).close()
    assert checks == [True, True, True]


def test_a_fresh_check_of_a_just_written_file_is_not_trusted(tmp_path: Path, checks: list[bool]) -> None:
    """A file changed moments before its check could be changed again within the same file-clock tick."""
    data_dir = tmp_path / "data"
    Store.open(data_dir).close()
    con = sqlite3.connect(data_dir / STORE_FILENAME)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("CREATE TABLE scratch (x)")  # written just now
    con.close()
    Store.open(data_dir).close()  # checked, but the file had not settled
    Store.open(data_dir).close()  # so it is checked again
    assert checks == [True, True]


def test_the_metrics_process_opens_without_a_second_check(tmp_path: Path, checks: list[bool]) -> None:
    data_dir = tmp_path / "data"
    Store.open(data_dir).close()
    Store.open(data_dir).close()
    Store.open(data_dir, check=False).close()
    assert checks == [True, False]
