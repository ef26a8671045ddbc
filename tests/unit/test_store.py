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


# -- rolling backups and restore ----------------------------------------------------------------

def _fake_backup(data_dir: Path, when: str, label: str) -> Path:
    folder = data_dir / "backups"
    folder.mkdir(exist_ok=True)
    p = folder / f"reviewdesk-{when}-{label}.sqlite"
    p.write_bytes(b"x")
    return p


def test_a_daily_backup_is_taken_on_open_and_old_ones_roll_off(data_dir: Path) -> None:
    from app.models.store import BACKUP_KEEP, list_backups

    Store.open(data_dir).close()  # a new store: nothing worth backing up yet
    assert list_backups(data_dir) == []
    s = Store.open(data_dir)
    s.close()
    assert s.daily_backup is not None and [b.kind for b in list_backups(data_dir)] == ["daily"]
    con = sqlite3.connect(s.daily_backup)  # a real, complete copy
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone() == (head_revision(),)
    con.close()
    again = Store.open(data_dir)  # the same day: no second one
    again.close()
    assert again.daily_backup is None and len(list_backups(data_dir)) == 1
    # a day later (the newest backup is older than a day), with many old dailies and a migration backup
    for p in (data_dir / "backups").iterdir():
        p.unlink()
    for day in range(1, 12):
        _fake_backup(data_dir, f"202601{day:02d}T000000000000Z", "daily")
    _fake_backup(data_dir, "20250101T000000000000Z", "before-0003")
    later = Store.open(data_dir)
    later.close()
    kinds = [b.kind for b in list_backups(data_dir)]
    assert kinds.count("daily") == BACKUP_KEEP and kinds.count("migration") == 1
    assert list_backups(data_dir)[-1].path == later.daily_backup  # the new one is kept, the oldest went


def test_every_refusal_names_the_newest_backup(data_dir: Path) -> None:
    Store.open(data_dir).close()
    s = Store.open(data_dir)  # takes the daily backup
    s.close()
    manual = Store.open(data_dir)
    newest = manual.backup("manual")
    manual.close()
    path = data_dir / STORE_FILENAME
    path.write_bytes(b"garbage" * 1000)
    with pytest.raises(StoreError) as err:
        Store.open(data_dir)
    assert str(newest) in str(err.value) and err.value.backup == newest
    assert "reviewdesk restore" in str(err.value)


def test_restore_moves_a_damaged_store_aside_and_migrates_an_old_backup(data_dir: Path, tmp_path: Path) -> None:
    from app.models.store import restore_backup

    old_dir = tmp_path / "old"
    old_dir.mkdir()
    _make_old_store(old_dir, "0002")  # a backup made by an older ReviewDesk
    old_copy = tmp_path / "old-backup.sqlite"
    (old_dir / STORE_FILENAME).rename(old_copy)
    path = data_dir / STORE_FILENAME
    path.write_bytes(b"damaged" * 1000)
    res = restore_backup(data_dir, old_copy)
    assert res.previous_damaged and res.previous is not None and res.previous.read_bytes() == b"damaged" * 1000
    assert res.revision == head_revision()
    s = Store.open(data_dir)
    try:
        with s.session() as ses:
            assert ses.scalars(select(Project.title)).all() == ["old"]
    finally:
        s.close()


def test_restore_refuses_a_bad_backup_and_changes_nothing(data_dir: Path, tmp_path: Path) -> None:
    from app.models.store import restore_backup

    s = Store.open(data_dir)
    s.close()
    path = data_dir / STORE_FILENAME
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    before = path.read_bytes()
    newer = tmp_path / "newer.sqlite"
    con = sqlite3.connect(newer)
    con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    con.execute("INSERT INTO alembic_version VALUES ('9999')")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer ReviewDesk"):
        restore_backup(data_dir, newer)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"nope" * 100)
    with pytest.raises(StoreError, match="not a SQLite database"):
        restore_backup(data_dir, junk)
    with pytest.raises(StoreError, match="No backup file"):
        restore_backup(data_dir, tmp_path / "missing.sqlite")
    assert path.read_bytes() == before
