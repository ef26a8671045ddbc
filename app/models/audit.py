"""Hash-chained audit events: every change to local state leaves an immutable record."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.models.schema import AuditCheckpoint, AuditEvent
from app.models.store import now_iso

GENESIS = "0" * 64


def _digest(prev: str, at: str, actor: str, kind: str, payload: dict[str, Any]) -> str:
    body = json.dumps([prev, at, actor, kind, payload], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def append_event(session: Session, actor: str, kind: str, payload: dict[str, Any]) -> AuditEvent:
    """Append an event to the chain in the session's transaction (:func:`append_event_cursor` on the
    session's own DB-API connection, after the session's pending rows are written, as a query would)."""
    session.flush()
    dbapi = session.connection().connection.driver_connection
    assert dbapi is not None
    cur = dbapi.cursor()
    try:
        ev_id, digest, prev, at = _append(cur, actor, kind, payload)
    finally:
        cur.close()
    return AuditEvent(id=ev_id, at=at, actor=actor, kind=kind, payload=payload, prev_hash=prev, hash=digest)


LAST_HASH_SQL = "SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1"
INSERT_EVENT_SQL = "INSERT INTO audit_events (at, actor, kind, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)"


def append_event_cursor(cur: Any, actor: str, kind: str, payload: dict[str, Any]) -> tuple[int, str]:
    """:func:`append_event` on a DB-API cursor of the session's connection, in its transaction (the review
    loop's hot path: no SQLAlchemy statement per row). The row is the one :func:`append_event` writes: the
    payload serialised as the JSON column does (``json.dumps``), the same hash; returns (id, hash)."""
    ev_id, digest, _prev, _at = _append(cur, actor, kind, payload)
    return ev_id, digest


def _append(cur: Any, actor: str, kind: str, payload: dict[str, Any]) -> tuple[int, str, str, str]:
    row = cur.execute(LAST_HASH_SQL).fetchone()
    prev = row[0] if row is not None and row[0] else GENESIS
    at = now_iso()
    digest = _digest(prev, at, actor, kind, payload)
    cur.execute(INSERT_EVENT_SQL, (at, actor, kind, json.dumps(payload), prev, digest))
    return int(cur.lastrowid), digest, prev, at



# -- verification ------------------------------------------------------------------------------
# The chain is keyless: anyone who rewrites the file can recompute every hash after an edit. What it
# guarantees is that an edit, removal, reordering or insertion that does NOT rewrite every later hash is
# found, and names the first event whose link fails. The checkpoint (last verified id + hash, a small
# row in the store) makes the check on open incremental, and it also catches a cut-off tail
# (events removed from the end) and a rewrite of already-verified history: the checkpointed event must
# still be there with the same hash, or the check falls back to the whole chain and reports it. The
# checkpoint lives in the store (table ``audit_checkpoint``), so a restored backup carries its own.


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int  # events hashed in this check
    verified_through: int | None  # id of the last event that verified
    first_bad: int | None = None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "events": self.events, "verified_through": self.verified_through}
        return {"ok": False, "first_bad": self.first_bad, "reason": self.reason,
                "verified_through": self.verified_through}


def _walk(session: Session, prev: str, after: int | None, through: int | None) -> ChainReport:
    q = "SELECT id, at, actor, kind, payload, prev_hash, hash FROM audit_events"
    q += " WHERE id > :after ORDER BY id" if after is not None else " ORDER BY id"
    n = 0
    last = through
    for ev_id, at, actor, kind, raw, prev_hash, digest in session.execute(text(q), {"after": after}):
        try:
            payload = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            return ChainReport(False, n, last, ev_id, "its payload is not valid JSON (edited)")
        n += 1
        if prev_hash != prev:
            return ChainReport(False, n, last, ev_id, "it does not follow the event before it "
                                                      "(an event was removed, reordered or inserted)")
        if digest != _digest(prev, at, actor, kind, payload):
            return ChainReport(False, n, last, ev_id, "its hash does not match its contents (edited)")
        prev = digest
        last = ev_id
    return ChainReport(True, n, last)


def read_checkpoint(session: Session) -> tuple[int, str] | None:
    row = session.get(AuditCheckpoint, 1)
    return (row.event_id, row.hash) if row is not None else None


def write_checkpoint(session: Session, ev_id: int, digest: str) -> None:
    row = session.get(AuditCheckpoint, 1)
    if row is None:
        session.add(AuditCheckpoint(id=1, event_id=ev_id, hash=digest, verified_at=now_iso()))
    else:
        row.event_id, row.hash, row.verified_at = ev_id, digest, now_iso()


def _checkpoint_holds(session: Session, cp: tuple[int, str]) -> bool:
    return session.scalar(select(AuditEvent.hash).where(AuditEvent.id == cp[0])) == cp[1]


def verify_full(session: Session, checkpoint: tuple[int, str] | None = None) -> ChainReport:
    """Hash the whole chain; with ``checkpoint``, also require the checkpointed event to be intact."""
    rep = _walk(session, GENESIS, None, None)
    if rep.ok and checkpoint is not None and not _checkpoint_holds(session, checkpoint):
        return ChainReport(False, rep.events, rep.verified_through, checkpoint[0],
                           "an event verified earlier is missing or was rewritten (events removed from "
                           "the end, or the chain recomputed)")
    return rep


def verify_incremental(session: Session, checkpoint: tuple[int, str] | None) -> ChainReport:
    """Hash only the events after ``checkpoint`` (the whole chain when there is none or it does not hold)."""
    if checkpoint is None:
        return _walk(session, GENESIS, None, None)
    if not _checkpoint_holds(session, checkpoint):
        return verify_full(session, checkpoint)
    return _walk(session, checkpoint[1], checkpoint[0], checkpoint[0])


def check_store(session: Session, *, full: bool = False) -> ChainReport:
    """Verify the chain (incrementally unless ``full``); when it holds, move the checkpoint forward in
    ``session`` (the caller commits)."""
    cp = read_checkpoint(session)
    rep = verify_full(session, cp) if full else verify_incremental(session, cp)
    if rep.ok and rep.verified_through is not None:
        digest = session.scalar(select(AuditEvent.hash).where(AuditEvent.id == rep.verified_through))
        if digest is not None and cp != (rep.verified_through, digest):
            write_checkpoint(session, rep.verified_through, digest)
    return rep


def verify_chain(session: Session) -> int | None:
    """Return the id of the first event whose hash does not follow, or None when the chain holds."""
    rep = _walk(session, GENESIS, None, None)
    return None if rep.ok else rep.first_bad


def append_event_file(store_path: Path, actor: str, kind: str, payload: dict[str, Any]) -> None:
    """Append one event to the store file at ``store_path`` without an open :class:`Store` (settings)."""
    if not Path(store_path).exists():
        return
    conn = sqlite3.connect(store_path, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute("SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1").fetchone()
        prev = row[0] if row else GENESIS
        at = now_iso()
        digest = _digest(prev, at, actor, kind, payload)
        conn.execute("INSERT INTO audit_events (at, actor, kind, payload, prev_hash, hash) VALUES (?,?,?,?,?,?)",
                     (at, actor, kind, json.dumps(payload, default=str), prev, digest))
        conn.commit()
    except sqlite3.Error:
        conn.rollback()
    finally:
        conn.close()
