"""Audit chain checkpoint: the last audit event verified, so the check on open is incremental.

Revision ID: 0008
Revises: 0007

Additive (one new table; no existing row changed). ``audit_events`` rows have always been hash-chained
by ``app.models.audit.append_event`` (each stores the previous event's hash and the SHA-256 of the
canonical JSON of [prev_hash, at, actor, kind, payload]), so existing events need no re-chaining: the
backfill leaves the checkpoint empty, and the first open after the upgrade verifies the whole existing
chain once and records where it ended. One row at most (``id = 1``). Kept inside the store (not beside
it) so a backup and a restored backup carry their own checkpoint (docs/adr/0012-audit-chain.md).
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE IF NOT EXISTS audit_checkpoint (id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1), "
               "event_id INTEGER NOT NULL, hash VARCHAR NOT NULL, verified_at VARCHAR NOT NULL)")
    # backfill: nothing verified yet; the first open checks every existing event (see the docstring)
    op.execute("DELETE FROM audit_checkpoint")


def downgrade() -> None:
    raise NotImplementedError("ReviewDesk stores are never downgraded; restore a backup instead")
