"""The local SQLite store: open (check, back up, migrate), sessions, clear failures.

A store is one SQLite file per data directory. Opening it:

1. refuses a file that is not SQLite, fails ``PRAGMA quick_check`` or carries a schema revision
   newer than this build knows -- with a message naming the latest backup, never replacing it;
2. backs the file up (SQLite online backup API) before applying any pending Alembic migration;
3. sets ``journal_mode=WAL``, ``synchronous=FULL``, ``foreign_keys=ON`` and a busy timeout on
   every connection, so a committed decision survives a crash or power loss.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

STORE_FILENAME = "reviewdesk.sqlite"
BACKUP_DIRNAME = "backups"
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 5000
_MIGRATIONS = Path(__file__).with_name("migrations")


class StoreError(Exception):
    """The store cannot be opened or written; the message is meant for the user."""

    def __init__(self, message: str, *, path: Path | None = None, backup: Path | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.backup = backup


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--data-dir`` wins, then ``REVIEWDESK_DATA_DIR``, then the platform's user data dir."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("REVIEWDESK_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("reviewdesk", appauthor=False))


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    return {s.revision for s in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def latest_backup(data_dir: Path) -> Path | None:
    backups = sorted((data_dir / BACKUP_DIRNAME).glob("*.sqlite"))
    return backups[-1] if backups else None


def _set_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.close()


def _inspect_file(path: Path, data_dir: Path) -> str | None:
    """Return the schema revision of an existing store file, or None for a new/empty one."""
    if not path.exists() or path.stat().st_size == 0:
        return None

    def refuse(why: str) -> StoreError:
        backup = latest_backup(data_dir)
        hint = f" The latest backup is {backup}." if backup else " No backup exists yet."
        return StoreError(
            f"The store {path} cannot be opened: {why}. It has not been changed.{hint}",
            path=path,
            backup=backup,
        )

    with path.open("rb") as fh:
        if fh.read(16) != SQLITE_HEADER:
            raise refuse("it is not a SQLite database (the file is damaged or is something else)")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise refuse(f"SQLite refused it ({exc})") from exc
    try:
        ok = conn.execute("PRAGMA quick_check").fetchall()
        if ok != [("ok",)]:
            detail = "; ".join(str(r[0]) for r in ok[:3])
            raise refuse(f"the integrity check failed ({detail})")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "alembic_version" not in tables:
            if tables:
                raise refuse("it is a SQLite file from another program (no ReviewDesk schema version)")
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise refuse(f"SQLite could not read it ({exc})") from exc
    finally:
        conn.close()
    revision = row[0] if row else None
    if revision is not None and revision not in known_revisions():
        raise refuse(
            f"it was written by a newer ReviewDesk (schema {revision}, this version knows up to "
            f"{head_revision()}); update ReviewDesk"
        )
    return revision


def backup_file(path: Path, data_dir: Path, label: str) -> Path:
    """Copy the store with SQLite's online backup API into ``backups/``; return the copy's path."""
    folder = data_dir / BACKUP_DIRNAME
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"reviewdesk-{stamp}-{label}.sqlite"
    src = sqlite3.connect(str(path))
    dst = sqlite3.connect(str(target))
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return target


class Store:
    """An open store. Use :meth:`open`; share one per process; sessions are per thread."""

    def __init__(self, data_dir: Path, engine: Engine, backup: Path | None) -> None:
        self.data_dir = data_dir
        self.path = data_dir / STORE_FILENAME
        self.engine = engine
        self.migration_backup = backup
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str] | None = None) -> Store:
        folder = resolve_data_dir(data_dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create the data folder {folder}: {exc.strerror}") from exc
        path = folder / STORE_FILENAME
        revision = _inspect_file(path, folder)
        backup = None
        head = head_revision()
        if revision is not None and revision != head:
            try:
                backup = backup_file(path, folder, f"before-{head}")
            except (sqlite3.Error, OSError) as exc:
                raise StoreError(
                    f"Cannot back up {path} before upgrading its schema ({exc}); nothing was changed.",
                    path=path,
                ) from exc
        engine = create_engine(f"sqlite:///{path}", future=True)
        event.listen(engine, "connect", _set_pragmas)
        if revision != head:
            cfg = _alembic_config()
            try:
                with engine.begin() as conn:
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
            except Exception as exc:
                engine.dispose()
                raise StoreError(
                    f"Upgrading the store schema failed ({exc}); the file was left as it was"
                    + (f"; a copy is at {backup}" if backup else ""),
                    path=path,
                    backup=backup,
                ) from exc
        return cls(folder, engine, backup)

    def close(self) -> None:
        self.engine.dispose()

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").fetchone()
            return row[0] if row else None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read session (no commit)."""
        with self._sessions() as s:
            yield s

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error.

        A full disk or a locked file surface as :class:`StoreError` with a plain message; the
        transaction is rolled back, so what was committed before stays intact.
        """
        with self._sessions() as s:
            try:
                with s.begin():
                    yield s
            except OperationalError as exc:
                msg = str(exc.orig) if exc.orig is not None else str(exc)
                if "full" in msg:
                    raise StoreError(
                        f"The disk holding {self.path} is full; the last change was not saved. "
                        "Free some space and try again — everything saved before is intact.",
                        path=self.path,
                    ) from exc
                if "locked" in msg:
                    raise StoreError(
                        f"The store {self.path} is busy (another ReviewDesk may have it open); "
                        "the last change was not saved.",
                        path=self.path,
                    ) from exc
                raise StoreError(f"Writing to the store failed: {msg}", path=self.path) from exc

    def integrity_check(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check").fetchall()]


def now_iso() -> str:
    """UTC now as ISO 8601 with microseconds and ``Z`` (the Label Studio style)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
