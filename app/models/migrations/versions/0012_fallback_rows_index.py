"""A partial index of the results that are not strict JSON, so the frames find them without a scan.

Revision ID: 0012
Revises: 0011

Additive (an index only; no row changed). The frames ask each project for the ``result_values`` marker rows
(``ord < 0``: a result that is not strict JSON, decoded from the row itself). The primary key cannot seek on
``ord`` past ``row_id``, so that question scanned every value row of the project: 0.085 s of a 1M-annotation
dashboard's cold open for, usually, no row at all (issue 14).
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS ix_result_values_fallback ON result_values (project_id, kind, row_id) "
               "WHERE ord < 0")


def downgrade() -> None:
    raise NotImplementedError("ReviewDesk stores are never downgraded; restore a backup instead")
