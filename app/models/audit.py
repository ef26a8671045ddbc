"""Hash-chained audit events: every change to local state leaves an immutable record."""

from __future__ import annotations

import hashlib
import json
from typing import Any, cast

from sqlalchemy import CursorResult, insert, select
from sqlalchemy.orm import Session

from app.models.schema import AuditEvent
from app.models.store import now_iso

GENESIS = "0" * 64


def _digest(prev: str, at: str, actor: str, kind: str, payload: dict[str, Any]) -> str:
    body = json.dumps([prev, at, actor, kind, payload], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def append_event(session: Session, actor: str, kind: str, payload: dict[str, Any]) -> AuditEvent:
    prev = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)) or GENESIS
    at = now_iso()
    digest = _digest(prev, at, actor, kind, payload)
    # a Core INSERT: no unit-of-work flush for an append-only row (decisions are the hot path)
    res = cast(CursorResult[Any], session.execute(insert(AuditEvent).values(
        at=at, actor=actor, kind=kind, payload=payload, prev_hash=prev, hash=digest)))
    ev_id = res.lastrowid  # lastrowid: no RETURNING needed (older SQLite builds)
    return AuditEvent(id=ev_id, at=at, actor=actor, kind=kind, payload=payload, prev_hash=prev, hash=digest)


def verify_chain(session: Session) -> int | None:
    """Return the id of the first event whose hash does not follow, or None when the chain holds."""
    prev = GENESIS
    for ev in session.scalars(select(AuditEvent).order_by(AuditEvent.id)):
        if ev.prev_hash != prev or ev.hash != _digest(prev, ev.at, ev.actor, ev.kind, ev.payload):
            return ev.id
        prev = ev.hash
    return None
