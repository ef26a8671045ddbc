"""The local SQLite store: open (check, back up, migrate), sessions, backups, clear failures.

A store is one SQLite file per data directory. Opening it:

1. refuses a file that is not SQLite, fails ``PRAGMA quick_check`` or carries a schema revision
   newer than this build knows -- with a message naming the newest backup, never replacing it. The check
   is skipped when the file (and its WAL) is unchanged -- size, inode, mtime, ctime -- since it last passed
   it, less than a day ago (``.store-verified`` beside the store; ADR 0011 follow-up);
2. upgrades an older schema on a *copy*: the store is backed up (SQLite online backup API), copied to
   ``reviewdesk.sqlite.migrating``, the pending Alembic migrations run on the copy, and only a fully
   migrated copy is written back over the store in one SQLite transaction (the backup API into the open
   store). A migration that fails half-way -- or a process killed during it -- leaves the store exactly
   as it was, still openable by the previous version;
3. keeps rolling backups in ``backups/``: one a day on open (when none is younger than a day), the last
   :data:`BACKUP_KEEP` of each kind (``daily``, ``manual``, ``migration``, ``restore``);
4. sets ``journal_mode=WAL``, ``synchronous=FULL``, ``foreign_keys=ON`` and a busy timeout on
   every connection, so a committed decision survives a crash or power loss.

:func:`restore_backup` puts a backup back (the store as it was is kept as a ``restore`` backup, or moved
aside when it is damaged).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import platformdirs
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

STORE_FILENAME = "reviewdesk.sqlite"
BACKUP_DIRNAME = "backups"
MIGRATING_SUFFIX = ".migrating"
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 5000
BACKUP_KEEP = 7  # per kind of backup
BACKUP_EVERY = timedelta(days=1)
_MIGRATIONS = Path(__file__).with_name("migrations")
_STAMP = "%Y%m%dT%H%M%S%fZ"
_BACKUP_NAME = re.compile(r"^reviewdesk-(\d{8}T\d{12}Z)-([A-Za-z0-9_.-]+)\.sqlite$")


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


def _pending_revisions(current: str | None) -> list[str]:
    """Revisions an upgrade from ``current`` applies, in order."""
    script = ScriptDirectory.from_config(_alembic_config())
    return [s.revision for s in reversed(list(script.iterate_revisions("heads", current or "base")))]


# -- backups ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    created_at: datetime  # UTC, from the file name
    kind: str  # daily | manual | migration | restore | other
    label: str
    size: int


def _kind(label: str) -> str:
    if label.startswith("before-restore"):
        return "restore"
    if label.startswith("before-"):
        return "migration"
    return label if label in ("daily", "manual") else "other"


def list_backups(data_dir: str | os.PathLike[str]) -> list[BackupInfo]:
    """Every backup in ``backups/``, oldest first (unfinished ``.part`` copies are not backups)."""
    folder = Path(data_dir) / BACKUP_DIRNAME
    out = []
    for p in folder.glob("reviewdesk-*.sqlite"):
        m = _BACKUP_NAME.match(p.name)
        if not m:
            continue
        try:
            at = datetime.strptime(m.group(1), _STAMP).replace(tzinfo=UTC)
            size = p.stat().st_size
        except (ValueError, OSError):
            continue
        out.append(BackupInfo(p, at, _kind(m.group(2)), m.group(2), size))
    return sorted(out, key=lambda b: (b.created_at, b.path.name))


def latest_backup(data_dir: Path) -> Path | None:
    backups = list_backups(data_dir)
    return backups[-1].path if backups else None


def _backup_hint(data_dir: Path) -> tuple[str, Path | None]:
    backup = latest_backup(data_dir)
    if backup is None:
        return " No backup exists yet.", None
    return (f" The latest backup is {backup} (put it back with `reviewdesk restore`).", backup)


def _sqlite_backup(src: sqlite3.Connection, dst: sqlite3.Connection, *, wait_s: float = 30.0) -> None:
    """``src.backup(dst)`` in one step, giving up after ``wait_s`` of busy/locked retries.

    (Python retries a busy backup step forever; the progress callback is the only way out.)
    """
    waited = [0]

    def progress(status: int, _remaining: int, _total: int) -> None:
        if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            waited[0] += 1
            if waited[0] * 0.25 > wait_s:
                raise sqlite3.OperationalError("database is locked (gave up waiting for the copy)")

    src.backup(dst, progress=progress, sleep=0.25)


def _copy_sqlite(src: sqlite3.Connection, target: Path) -> None:
    """Online-backup ``src`` into a new file ``target`` (written as ``.part`` and renamed)."""
    part = target.with_name(target.name + ".part")
    part.unlink(missing_ok=True)
    dst = sqlite3.connect(str(part))
    try:
        _sqlite_backup(src, dst)
    except BaseException:
        dst.close()
        part.unlink(missing_ok=True)
        raise
    dst.close()
    os.replace(part, target)


def _backup_target(data_dir: Path, label: str) -> Path:
    folder = data_dir / BACKUP_DIRNAME
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"reviewdesk-{datetime.now(UTC).strftime(_STAMP)}-{label}.sqlite"


def backup_file(path: Path, data_dir: Path, label: str) -> Path:
    """Copy the store with SQLite's online backup API into ``backups/``; return the copy's path."""
    target = _backup_target(data_dir, label)
    src = sqlite3.connect(str(path))
    try:
        src.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _copy_sqlite(src, target)
    finally:
        src.close()
    prune_backups(data_dir)
    return target


def prune_backups(data_dir: Path, keep: int = BACKUP_KEEP) -> list[Path]:
    """Keep the newest ``keep`` backups of each kind; return the removed ones."""
    by_kind: dict[str, list[BackupInfo]] = {}
    for b in list_backups(data_dir):
        by_kind.setdefault(b.kind, []).append(b)
    removed = []
    for items in by_kind.values():
        for b in items[:-keep] if keep > 0 else items:
            with contextlib.suppress(OSError):
                b.path.unlink()
                removed.append(b.path)
    return removed


def _backup_due(data_dir: Path, now: datetime | None = None) -> bool:
    backups = list_backups(data_dir)
    if not backups:
        return True
    return (now or datetime.now(UTC)) - backups[-1].created_at >= BACKUP_EVERY


# -- opening --------------------------------------------------------------------------------------


def _set_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.close()


VERIFIED_FILENAME = ".store-verified"  # the store file's fingerprint when it last passed quick_check
VERIFIED_SETTLE_S = 2.0  # a fingerprint is trusted only for a file unchanged this long before its check
VERIFIED_MAX_AGE_S = 24 * 3600.0  # and for a day at most: then the file is checked again


def _fingerprint(path: Path) -> list[Any] | None:
    """Size, inode, mtime and ctime of the store file and of its WAL (``None`` when absent or empty)."""
    out: list[Any] = []
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            st = p.stat()
        except FileNotFoundError:
            out.append(None)
            continue
        except OSError:
            return None
        if p is not path and st.st_size == 0:  # an empty WAL (a reader leaves one) holds nothing
            out.append(None)
            continue
        out.append([st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns])
    return out


def _verified_unchanged(path: Path, data_dir: Path) -> bool:
    """True when the store file (and WAL) still has the fingerprint recorded after its last quick_check,
    that fingerprint settled (unchanged for ``VERIFIED_SETTLE_S`` before the check, so a write in the same
    coarse file-system clock tick cannot hide) and the check is less than a day old."""
    import json
    import time

    try:
        rec = json.loads((data_dir / VERIFIED_FILENAME).read_text(encoding="utf-8"))
        checked, fp = float(rec["checked"]), rec["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    now = _fingerprint(path)
    if now is None or fp != now or not 0 <= time.time() - checked < VERIFIED_MAX_AGE_S:
        return False
    changed = max(max(f[2], f[3]) for f in now if f is not None) / 1e9
    return bool(checked - changed >= VERIFIED_SETTLE_S)


def _record_verified(path: Path, data_dir: Path, fingerprint: list[Any] | None, checked: float) -> None:
    """Remember the fingerprint the file had when it passed quick_check (best effort)."""
    import json

    if fingerprint is None:
        return
    target = data_dir / VERIFIED_FILENAME
    try:
        tmp = target.with_suffix(".part")
        tmp.write_text(json.dumps({"checked": checked, "fingerprint": fingerprint}), encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        pass  # no record only means the next open checks again


def _inspect_file(path: Path, data_dir: Path, *, check: bool = True) -> str | None:
    """Return the schema revision of an existing store file, or None for a new/empty one.

    ``PRAGMA quick_check`` runs unless ``check`` is false or the file is unchanged since it last passed
    (:func:`_verified_unchanged`: same size, inode, mtime and ctime of the file and its WAL, settled before
    that check, less than a day ago). Any write -- ours, another program's, a damaged copy put in place --
    changes the ctime, so such a file is checked again."""
    import time

    if not path.exists() or path.stat().st_size == 0:
        return None
    if not check or _verified_unchanged(path, data_dir):
        return _inspect_sqlite(path, data_dir, what="store", quick_check=False)
    fingerprint, checked = _fingerprint(path), time.time()
    revision = _inspect_sqlite(path, data_dir, what="store")
    if fingerprint is not None and fingerprint == _fingerprint(path):  # not written during the check
        _record_verified(path, data_dir, fingerprint, checked)
    return revision


def _inspect_sqlite(path: Path, data_dir: Path, *, what: str, quick_check: bool = True) -> str | None:
    def refuse(why: str) -> StoreError:
        hint, backup = _backup_hint(data_dir)
        return StoreError(
            f"The {what} {path} cannot be opened: {why}. It has not been changed.{hint}",
            path=path,
            backup=backup,
        )

    try:
        with path.open("rb") as fh:
            header = fh.read(16)
    except OSError as exc:
        raise refuse(f"it cannot be read ({exc.strerror})") from exc
    if header != SQLITE_HEADER:
        raise refuse("it is not a SQLite database (the file is damaged or is something else)")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise refuse(f"SQLite refused it ({exc})") from exc
    try:
        ok = conn.execute("PRAGMA quick_check").fetchall() if quick_check else [("ok",)]
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


def _unlink_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def _migrate_copy(work: Path, revision: str | None) -> None:
    """Run the pending migrations on ``work`` (a copy of the store, or a new file)."""
    engine = create_engine(f"sqlite:///{work}", future=True, poolclass=NullPool)
    event.listen(engine, "connect", _set_pragmas)
    applied: list[str] = []
    cfg = _alembic_config()
    cfg.attributes["applied"] = applied
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except Exception as exc:
        pending = _pending_revisions(revision)
        failed = pending[len(applied)] if len(applied) < len(pending) else None
        exc.add_note(f"reviewdesk: failed in migration {failed}" if failed else "reviewdesk: failed")
        exc.failed_revision = failed  # type: ignore[attr-defined]
        raise
    finally:
        engine.dispose()  # the last connection closes: the copy's WAL is checkpointed and removed


def _migrate(path: Path, folder: Path, head: str) -> tuple[Path | None, str | None]:
    """Bring the store at ``path`` (new, or an older schema) to ``head``; never half-way.

    Returns ``(backup taken before migrating, revision migrated from)``. Holds the store's write lock (without
    writing) from the first read to the end of the migration, so no other process writes in between; a
    second ReviewDesk opening the same store waits, then finds it migrated.
    """
    work = folder / (STORE_FILENAME + MIGRATING_SUFFIX)
    _unlink_sqlite(work)  # what a process killed during an earlier migration left
    existed = path.exists()
    backup: Path | None = None
    revision: str | None = None
    timeout = BUSY_TIMEOUT_MS / 1000
    lock = sqlite3.connect(str(path), isolation_level=None, timeout=timeout)
    try:
        reader = sqlite3.connect(str(path), isolation_level=None, timeout=timeout)
        try:
            try:
                lock.execute("BEGIN IMMEDIATE")
                tables = {r[0] for r in reader.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if "alembic_version" in tables:
                    row = reader.execute("SELECT version_num FROM alembic_version").fetchone()
                    revision = row[0] if row else None
            except sqlite3.OperationalError as exc:
                hint, newest = _backup_hint(folder)
                raise StoreError(f"The store {path} is busy (another ReviewDesk may be upgrading it): {exc}. "
                                 f"Nothing was changed.{hint}", path=path, backup=newest) from exc
            if revision == head:
                lock.execute("COMMIT")
                return None, revision  # another process migrated it while we waited
            if revision is not None:
                try:
                    backup = _backup_target(folder, f"before-{head}")
                    _copy_sqlite(reader, backup)
                    _copy_sqlite(reader, work)
                except (sqlite3.Error, OSError) as exc:
                    _unlink_sqlite(work)
                    hint, newest = _backup_hint(folder)
                    raise StoreError(
                        f"Cannot back up {path} before upgrading its schema ({exc}); nothing was changed.{hint}",
                        path=path, backup=newest,
                    ) from exc
        finally:
            reader.close()
        try:
            _migrate_copy(work, revision)
        except Exception as exc:
            _unlink_sqlite(work)
            failed = getattr(exc, "failed_revision", None)
            hint, newest = _backup_hint(folder)
            was = f"at schema {revision}" if revision else "not created"
            raise StoreError(
                f"Upgrading the store {path} to schema {head} failed"
                + (f" in migration {failed}" if failed else "")
                + f" ({type(exc).__name__}: {exc}). The store was left exactly as it was ({was}); "
                  f"nothing was changed.{hint}",
                path=path, backup=newest,
            ) from exc
        lock.execute("COMMIT")
        # Swap in: the backup API writes the migrated copy over the store in ONE transaction (through the
        # store's journal), so a crash during it leaves the old store, never a mix.
        src = sqlite3.connect(str(work))
        try:
            _sqlite_backup(src, lock)
        except sqlite3.Error as exc:
            hint, newest = _backup_hint(folder)
            raise StoreError(f"The upgraded store could not be written over {path} ({exc}); it was left as it "
                             f"was (schema {revision}).{hint}", path=path, backup=newest) from exc
        finally:
            src.close()
        with contextlib.suppress(sqlite3.Error):
            lock.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except BaseException:
        lock.close()
        _unlink_sqlite(work)
        if not existed and path.exists() and path.stat().st_size == 0:
            _unlink_sqlite(path)  # a new store that could not be created: leave no empty file behind
        raise
    lock.close()
    _unlink_sqlite(work)
    prune_backups(folder)
    return backup, revision


class Store:
    """An open store. Use :meth:`open`; share one per process; sessions are per thread."""

    def __init__(self, data_dir: Path, engine: Engine, backup: Path | None) -> None:
        self.data_dir = data_dir
        self.path = data_dir / STORE_FILENAME
        self.engine = engine
        self.migration_backup = backup
        self.daily_backup: Path | None = None
        self.backup_warning: str | None = None  # a daily backup that could not be written (disk full, ...)
        self.audit_warning: str | None = None  # the audit chain did not verify on open (see ADR 0012)
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str] | None = None, *, daily_backup: bool = True,
             check: bool = True) -> Store:
        """Open (check, back up, migrate; module doc). ``check=False`` skips ``PRAGMA quick_check`` (the
        header, the schema revision and the audit chain are still read): for a process of ReviewDesk that
        opens a store its parent has just opened and checked (the dashboard's metrics process)."""
        folder = resolve_data_dir(data_dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create the data folder {folder}: {exc.strerror}") from exc
        path = folder / STORE_FILENAME
        revision = _inspect_file(path, folder, check=check)
        backup = None
        head = head_revision()
        if revision != head:
            backup, revision = _migrate(path, folder, head)
        daily = None
        warning = None
        if daily_backup and revision is not None and backup is None and _backup_due(folder):
            try:
                daily = backup_file(path, folder, "daily")
            except (sqlite3.Error, OSError) as exc:
                warning = f"The daily backup of {path} could not be written: {exc}"
        engine = create_engine(f"sqlite:///{path}", future=True)
        event.listen(engine, "connect", _set_pragmas)
        store = cls(folder, engine, backup)
        store.daily_backup = daily
        store.backup_warning = warning
        store.check_audit()
        return store

    def check_audit(self) -> None:
        """Verify the audit chain from the last verified event on (cheap); never refuses to open.

        A broken chain sets :attr:`audit_warning` (shown by the app and the CLI); `reviewdesk audit
        verify` checks the whole chain and names the first bad event.
        """
        from app.models.audit import check_store  # audit imports this module

        try:
            with self.transaction() as s:  # commits the moved checkpoint
                rep = check_store(s)
        except StoreError as exc:  # a read-only or busy file: report, open anyway
            self.audit_warning = f"The audit trail could not be checked: {exc}"
            return
        if not rep.ok:
            self.audit_warning = (f"The audit trail is broken at event {rep.first_bad}: {rep.reason}. "
                                  "Run `reviewdesk audit verify` for details.")

    def close(self) -> None:
        self.engine.dispose()

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").fetchone()
            return row[0] if row else None

    def backup(self, label: str = "manual") -> Path:
        """A consistent copy of the store now (online backup API, safe while it is in use)."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", label):
            raise ValueError(f"bad backup label {label!r}")
        try:
            return backup_file(self.path, self.data_dir, label)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"Cannot back up {self.path}: {exc}", path=self.path) from exc

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


# -- restore --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreResult:
    restored: Path  # the backup that was put back
    store: Path
    previous: Path | None  # the store as it was: a ``before-restore`` backup, or the damaged file moved aside
    previous_damaged: bool
    revision: str | None  # schema revision of the store now (the backup's, migrated to head)


def resolve_backup(data_dir: str | os.PathLike[str] | None, backup: str | os.PathLike[str] | None) -> Path:
    """The backup named on the command line: a path, a file name in ``backups/``, or None for the newest."""
    folder = resolve_data_dir(data_dir)
    if backup is None:
        newest = latest_backup(folder)
        if newest is None:
            raise StoreError(f"There is no backup in {folder / BACKUP_DIRNAME} to restore.")
        return newest
    p = Path(backup).expanduser()
    if not p.exists() and not p.is_absolute() and (folder / BACKUP_DIRNAME / p).exists():
        p = folder / BACKUP_DIRNAME / p
    if not p.is_file():
        raise StoreError(f"No backup file {backup} (backups are listed by `reviewdesk backup --list`).")
    return p


def restore_backup(data_dir: str | os.PathLike[str] | None, backup: str | os.PathLike[str] | None = None) -> RestoreResult:
    """Put a backup back as the store. Close ReviewDesk first.

    The backup is checked (SQLite, integrity, a schema this version knows) before anything changes. A healthy
    store is first saved as a ``before-restore`` backup; a damaged one is moved aside (``.damaged-<time>``),
    never deleted. The copy is one SQLite transaction; then the store opens (and migrates when the backup is
    from an older version).
    """
    folder = resolve_data_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    src_path = resolve_backup(folder, backup)
    if _inspect_sqlite(src_path, folder, what="backup") is None:
        raise StoreError(f"The backup {src_path} holds no ReviewDesk store; nothing was changed.", path=src_path)
    path = folder / STORE_FILENAME
    previous: Path | None = None
    damaged = False
    if path.exists() and path.stat().st_size > 0:
        try:
            _inspect_file(path, folder)
        except StoreError:
            damaged = True
        if damaged:
            previous = path.with_name(f"{path.name}.damaged-{datetime.now(UTC).strftime(_STAMP)}")
            for suffix in ("", "-wal", "-shm", "-journal"):
                p = Path(str(path) + suffix)
                if p.exists():
                    os.replace(p, Path(str(previous) + suffix))
        else:
            try:
                previous = backup_file(path, folder, "before-restore")
            except (sqlite3.Error, OSError) as exc:
                raise StoreError(f"Cannot save the current store before restoring ({exc}); nothing was changed.",
                                 path=path) from exc
    src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True)
    dst = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        _sqlite_backup(src, dst)
        dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        raise StoreError(f"Restoring {src_path} failed ({exc}); the store was not changed"
                         + (f" (it is saved as {previous})" if previous else "") + ".", path=path) from exc
    finally:
        dst.close()
        src.close()
    store = Store.open(folder, daily_backup=False)
    try:
        rev = store.revision()
    finally:
        store.close()
    return RestoreResult(src_path, path, previous, damaged, rev)


def now_iso() -> str:
    """UTC now as ISO 8601 with microseconds and ``Z`` (the Label Studio style)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
