"""A migration that fails half-way leaves the store exactly as it was, and openable.

Every migration shipped in ``app/models/migrations/versions`` is found through Alembic's script directory
(so a new migration is covered without touching this file) and made to fail twice: after its first
operation, and after all of its operations but before its revision is stamped (the "duplicate column name"
state the issue reported when the store was migrated in place). Each time the store file must be
byte-for-byte unchanged, still at the old revision, and the next ordinary open must migrate it with the
data intact. A process killed during a migration, and a failure while the migrated copy is written back,
leave the store unchanged as well.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.operations.base import Operations
from alembic.runtime.migration import RevisionStep
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from app.models import store as store_mod
from app.models.store import (
    MIGRATING_SUFFIX,
    STORE_FILENAME,
    Store,
    StoreError,
    _alembic_config,
    head_revision,
    list_backups,
)


class InjectedFailure(RuntimeError):
    pass


def _revisions() -> list[tuple[str, str | None]]:
    script = ScriptDirectory.from_config(_alembic_config())
    return [(s.revision, s.down_revision) for s in reversed(list(script.walk_revisions()))]  # type: ignore[misc]


REVISIONS = _revisions()


def test_every_shipped_migration_is_covered() -> None:
    shipped = sorted(p.name.split("_")[0] for p in
                     (Path(store_mod.__file__).parent / "migrations" / "versions").glob("[0-9]*.py"))
    assert [r for r, _ in REVISIONS] == shipped
    assert len(shipped) >= 5


def _make_store_at(data_dir: Path, revision: str | None) -> None:
    """A store at ``revision`` holding a project (and, when the schema has them, a task and an annotation)."""
    if revision is None:
        return
    path = data_dir / STORE_FILENAME
    engine = create_engine(f"sqlite:///{path}")
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.execute(text("INSERT INTO projects (title, label_config, fold_ground_truth, created_at) "
                          "VALUES ('old', '<View/>', 1, '2026-01-01T00:00:00Z')"))
        conn.execute(text("INSERT INTO tasks (project_id, position, data, deleted) VALUES (1, 0, '{\"t\": 1}', 0)"))
    engine.dispose()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")  # as a store left by ReviewDesk is
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def _fingerprint(path: Path) -> tuple[str, list[str]] | None:
    if not path.exists():
        return None
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        dump = list(con.iterdump())
    finally:
        con.close()
    return hashlib.sha256(path.read_bytes()).hexdigest(), dump


def _count_ops(revision: str, down: str | None, tmp: Path) -> int:
    """How many Alembic operations ``revision``'s upgrade runs (measured on a scratch store)."""
    counted = [0]
    orig_invoke = Operations.invoke
    orig_init = RevisionStep.__init__

    def init(self: RevisionStep, revision_map: Any, rev: Any, is_upgrade: bool) -> None:
        orig_init(self, revision_map, rev, is_upgrade)
        if rev.revision == revision:
            fn = self.migration_fn

            def counting(**kw: Any) -> None:
                def invoke(ops: Operations, operation: Any) -> Any:
                    counted[0] += 1
                    return orig_invoke(ops, operation)

                Operations.invoke = invoke  # type: ignore[method-assign]
                try:
                    fn(**kw)
                finally:
                    Operations.invoke = orig_invoke  # type: ignore[method-assign]

            self.migration_fn = counting

    scratch = tmp / f"count-{revision}"
    scratch.mkdir()
    _make_store_at(scratch, down)
    RevisionStep.__init__ = init  # type: ignore[method-assign]
    try:
        Store.open(scratch).close()
    finally:
        RevisionStep.__init__ = orig_init  # type: ignore[method-assign]
    return counted[0]


@pytest.fixture
def inject(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``inject(revision, after_ops)``: that migration raises after ``after_ops`` of its operations ran
    (``None``: after all of them, before its revision is stamped)."""

    def arm(revision: str, after_ops: int | None) -> None:
        orig_init = RevisionStep.__init__
        orig_invoke = Operations.invoke

        def init(self: RevisionStep, revision_map: Any, rev: Any, is_upgrade: bool) -> None:
            orig_init(self, revision_map, rev, is_upgrade)
            if rev.revision != revision:
                return
            fn = self.migration_fn

            def failing(**kw: Any) -> None:
                done = [0]

                def invoke(ops: Operations, operation: Any) -> Any:
                    if after_ops is not None and done[0] >= after_ops:
                        raise InjectedFailure(f"injected failure in {revision} after {done[0]} operations")
                    done[0] += 1
                    return orig_invoke(ops, operation)

                monkeypatch.setattr(Operations, "invoke", invoke)
                try:
                    fn(**kw)
                finally:
                    monkeypatch.setattr(Operations, "invoke", orig_invoke)
                raise InjectedFailure(f"injected failure in {revision} after all {done[0]} operations")

            self.migration_fn = failing

        monkeypatch.setattr(RevisionStep, "__init__", init)

    yield arm


@pytest.mark.parametrize("revision,down", REVISIONS, ids=[r for r, _ in REVISIONS])
@pytest.mark.parametrize("where", ["first-op", "all-ops"])
def test_failed_migration_leaves_store_exactly_as_it_was(revision: str, down: str | None, where: str,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         inject: Any) -> None:
    n_ops = _count_ops(revision, down, tmp_path)
    assert n_ops >= 1, f"migration {revision} runs no operation?"
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _make_store_at(data_dir, down)
    path = data_dir / STORE_FILENAME
    before = _fingerprint(path)
    inject(revision, 1 if where == "first-op" else None)
    with pytest.raises(StoreError) as err:
        Store.open(data_dir)
    monkeypatch.undo()
    msg = str(err.value)
    assert f"failed in migration {revision}" in msg and "InjectedFailure" in msg
    assert "left exactly as it was" in msg
    # byte-for-byte and row-for-row the same file (or still no file, for a store being created)
    assert _fingerprint(path) == before
    assert not (data_dir / (STORE_FILENAME + MIGRATING_SUFFIX)).exists()
    if down is None:
        assert not path.exists() and "No backup exists yet" in msg
    else:
        assert store_mod._inspect_file(path, data_dir) == down  # what the previous version opens
        newest = list_backups(data_dir)[-1].path
        assert str(newest) in msg and err.value.backup == newest  # the refusal names the newest backup
    # the next open (the bug fixed, or a retry) migrates it, data intact
    s = Store.open(data_dir)
    try:
        assert s.revision() == head_revision()
        assert s.integrity_check() == ["ok"]
        with s.session() as ses:
            titles = ses.execute(text("SELECT title FROM projects")).scalars().all()
        assert titles == ([] if down is None else ["old"])
    finally:
        s.close()


def test_failure_while_writing_the_migrated_copy_back(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    down = REVISIONS[-1][1]
    _make_store_at(data_dir, down)
    path = data_dir / STORE_FILENAME
    before = _fingerprint(path)
    real = store_mod._sqlite_backup
    calls = []

    def flaky(src: sqlite3.Connection, dst: sqlite3.Connection, **kw: Any) -> None:
        calls.append(1)
        if len(calls) == 3:  # 1: backup, 2: working copy, 3: the copy written back over the store
            raise sqlite3.OperationalError("disk I/O error")
        real(src, dst, **kw)

    monkeypatch.setattr(store_mod, "_sqlite_backup", flaky)
    with pytest.raises(StoreError, match="left as it was"):
        Store.open(data_dir)
    monkeypatch.undo()
    assert _fingerprint(path) == before
    Store.open(data_dir).close()


def test_process_killed_during_a_migration_leaves_the_store_unchanged(data_dir: Path) -> None:
    revision, down = REVISIONS[-1]
    _make_store_at(data_dir, down)
    path = data_dir / STORE_FILENAME
    before = _fingerprint(path)
    code = textwrap.dedent(f"""
        import os, sys
        from alembic.runtime.migration import RevisionStep
        from app.models.store import Store
        orig = RevisionStep.__init__
        def init(self, m, rev, up):
            orig(self, m, rev, up)
            if rev.revision == {revision!r}:
                fn = self.migration_fn
                def die(**kw):
                    fn(**kw)
                    os._exit(9)  # killed after the migration's changes, before its stamp
                self.migration_fn = die
        RevisionStep.__init__ = init
        Store.open(sys.argv[1])
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(data_dir)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    assert _fingerprint(path) == before
    assert (data_dir / (STORE_FILENAME + MIGRATING_SUFFIX)).exists()  # the abandoned copy
    s = Store.open(data_dir)
    try:
        assert s.revision() == head_revision()
    finally:
        s.close()
    assert not (data_dir / (STORE_FILENAME + MIGRATING_SUFFIX)).exists()
