from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import IntegrityError

from app.models.audit import append_event, verify_chain
from app.models.schema import Decision, Project, Task
from app.models.store import (
    STORE_FILENAME,
    Store,
    StoreError,
    _alembic_config,
    head_revision,
    resolve_data_dir,
)


def test_new_store_is_at_head_with_durable_pragmas(store: Store) -> None:
    assert store.revision() == head_revision()
    with store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    assert store.integrity_check() == ["ok"]


def test_data_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REVIEWDESK_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(None) == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv("REVIEWDESK_DATA_DIR")
    assert "reviewdesk" in str(resolve_data_dir(None)).lower()


def _make_old_store(data_dir: Path, revision: str) -> None:
    engine = create_engine(f"sqlite:///{data_dir / STORE_FILENAME}")
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.execute(text("INSERT INTO projects (title, label_config, fold_ground_truth, created_at) "
                          "VALUES ('old', '<View/>', 1, '2026-01-01T00:00:00Z')"))
    engine.dispose()


def test_old_schema_is_backed_up_then_migrated(data_dir: Path) -> None:
    _make_old_store(data_dir, "0001")
    store = Store.open(data_dir)
    try:
        assert store.revision() == head_revision()
        assert store.migration_backup is not None and store.migration_backup.exists()
        old = sqlite3.connect(store.migration_backup)
        assert old.execute("SELECT version_num FROM alembic_version").fetchone() == ("0001",)
        assert old.execute("SELECT title FROM projects").fetchall() == [("old",)]
        old.close()
        with store.session() as s:
            assert s.scalars(select(Project.title)).all() == ["old"]
            # the table added by 0002 exists now
            s.execute(text("SELECT count(*) FROM media_cache")).scalar_one()
    finally:
        store.close()
    # opening again does not back up again
    again = Store.open(data_dir)
    assert again.migration_backup is None
    again.close()


def test_garbage_file_is_refused_and_left_untouched(data_dir: Path) -> None:
    path = data_dir / STORE_FILENAME
    path.write_bytes(b"this is not a database" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError) as err:
        Store.open(data_dir)
    assert "not a SQLite database" in str(err.value)
    assert "No backup exists yet" in str(err.value)
    assert path.read_bytes() == before


def test_damaged_pages_are_refused_with_backup_named(data_dir: Path) -> None:
    _make_old_store(data_dir, "0001")
    Store.open(data_dir).close()  # migrates, leaving a backup
    path = data_dir / STORE_FILENAME
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    raw = bytearray(path.read_bytes())
    page = 4096
    for off in range(page, len(raw), page):  # wreck every page after the header page
        raw[off:off + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError) as err:
        Store.open(data_dir)
    msg = str(err.value)
    assert "cannot be opened" in msg and "backups" in msg
    assert err.value.backup is not None and err.value.backup.exists()
    assert path.read_bytes() == bytes(raw)


def test_newer_schema_is_refused(data_dir: Path) -> None:
    Store.open(data_dir).close()
    con = sqlite3.connect(data_dir / STORE_FILENAME)
    con.execute("UPDATE alembic_version SET version_num='9999'")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer ReviewDesk"):
        Store.open(data_dir)


def test_foreign_sqlite_file_is_refused(data_dir: Path) -> None:
    con = sqlite3.connect(data_dir / STORE_FILENAME)
    con.execute("CREATE TABLE photos (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="another program"):
        Store.open(data_dir)


def _add_task(store: Store) -> int:
    with store.transaction() as s:
        p = Project(title="p", label_config="<View/>", created_at="2026-01-01T00:00:00Z")
        s.add(p)
        s.flush()
        t = Task(project_id=p.id, position=0, data={"text": "x"})
        s.add(t)
        s.flush()
        return p.id


def test_decisions_are_append_only(store: Store) -> None:
    pid = _add_task(store)
    with store.transaction() as s:
        tid = s.scalar(select(Task.id))
        s.add(Decision(uuid="u1", project_id=pid, task_id=tid, verdict="accept", reviewer="r",
                       created_at="2026-01-01T00:00:00Z"))
    with pytest.raises(IntegrityError, match="append-only"), store.transaction() as s:
        s.execute(text("UPDATE decisions SET verdict='reject'"))
    with pytest.raises(IntegrityError, match="append-only"), store.transaction() as s:
        s.execute(text("DELETE FROM decisions"))
    with store.session() as s:
        assert s.scalars(select(Decision.verdict)).all() == ["accept"]


def test_full_disk_is_a_clear_error_and_keeps_committed_work(store: Store) -> None:
    pid = _add_task(store)
    with store.engine.connect() as c:
        pages = c.exec_driver_sql("PRAGMA page_count").scalar()
    with pytest.raises(StoreError, match="full") as err, store.transaction() as s:
        s.execute(text(f"PRAGMA max_page_count={pages + 1}"))
        for i in range(2000):
            s.add(Task(project_id=pid, position=i + 1, data={"text": "y" * 2000}))
        s.flush()
    assert "intact" in str(err.value)
    with store.session() as s:
        assert s.scalar(select(Task.id).where(Task.position == 0)) is not None
        assert len(s.scalars(select(Task.id)).all()) == 1


def test_audit_chain_detects_tampering(store: Store) -> None:
    with store.transaction() as s:
        for i in range(3):
            append_event(s, "tester", "thing", {"i": i})
    with store.session() as s:
        assert verify_chain(s) is None
    # break the chain behind the trigger's back (a tamperer with raw access)
    con = sqlite3.connect(store.path)
    con.execute("DROP TRIGGER audit_events_no_update")
    con.execute("UPDATE audit_events SET payload='{\"i\": 99}' WHERE id=2")
    con.commit()
    con.close()
    with store.session() as s:
        assert verify_chain(s) == 2
