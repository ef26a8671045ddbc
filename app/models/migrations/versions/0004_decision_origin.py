"""Team review: where a decision was made (``local`` here, or ``server``: another reviewer's, pulled).

Revision ID: 0004
Revises: 0003

Additive only. ``decisions.origin`` is ``local`` for decisions recorded in this store and ``server`` for
other reviewers' decision records that a pull materialised from the task meta (read-only here, never
pushed). Existing rows are all local. The index serves the "decided by someone else" and escalation reads.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN with a constant default: the append-only triggers refuse UPDATE, not ALTER
    op.add_column("decisions", sa.Column("origin", sa.String(), nullable=False, server_default="local"))
    op.create_index("ix_decisions_annotation", "decisions", ["annotation_id"], unique=False)


def downgrade() -> None:
    raise NotImplementedError("ReviewDesk stores are never downgraded; restore a backup instead")
