"""Hash-chained audit events: every change to local state leaves an immutable record."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
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
    ev = AuditEvent(at=at, actor=actor, kind=kind, payload=payload, prev_hash=prev,
                    hash=_digest(prev, at, actor, kind, payload))
    session.add(ev)
    session.flush()
    return ev


def verify_chain(session: Session) -> int | None:
    """Return the id of the first event whose hash does not follow, or None when the chain holds."""
    prev = GENESIS
    for ev in session.scalars(select(AuditEvent).order_by(AuditEvent.id)):
        if ev.prev_hash != prev or ev.hash != _digest(prev, ev.at, ev.actor, ev.kind, ev.payload):
            return ev.id
        prev = ev.hash
    return None
