"""Sync: annotations deleted on the server; a server's custom CA bundle.

Revision ID: 0003
Revises: 0002

Additive only. ``annotations.deleted`` marks an annotation that disappeared from the server but is still
referenced locally (a decision, a ground-truth row, a comment), so the reference and the history stay
intact; unreferenced ones are simply removed by the pull. ``servers.ca_bundle`` is the path of a custom
CA bundle for TLS verification (never a secret; tokens live in the OS keyring).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (SQLite allows it with a constant default): no table rebuild under foreign keys
    op.add_column("annotations", sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("servers", sa.Column("ca_bundle", sa.String(), nullable=True))
    op.create_index("ix_annotations_server_id", "annotations", ["server_id"], unique=False)


def downgrade() -> None:
    raise NotImplementedError("ReviewDesk stores are never downgraded; restore a backup instead")
