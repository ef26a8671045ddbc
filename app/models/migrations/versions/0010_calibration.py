"""Calibration: a project's calibration requirement, reviewers' rounds and their judgements.

Revision ID: 0010
Revises: 0009

Additive (three new tables; no existing row changed, nothing to backfill).

* ``calibration_settings``: one row per project that ever set a requirement -- on/off, how many
  ground-truth tasks a round has (``n_tasks``) and the pass threshold (0..1, per control).
* ``calibration_rounds``: one reviewer's round of a project: the requirement it was started under, when it
  finished, its per-control scores (JSON) and whether it passed.
* ``calibration_items``: the tasks of a round in order (the annotation shown), and the reviewer's judgement of
  each (verdict, a fix's result, when). Calibration judgements are not decisions: they never touch the
  production record, the ground truth or the server.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE IF NOT EXISTS calibration_settings (project_id INTEGER NOT NULL PRIMARY KEY "
               "REFERENCES projects (id), required BOOLEAN NOT NULL DEFAULT 0, n_tasks INTEGER NOT NULL, "
               "threshold FLOAT NOT NULL, updated_at VARCHAR NOT NULL)")
    op.execute("CREATE TABLE IF NOT EXISTS calibration_rounds (id INTEGER NOT NULL PRIMARY KEY, "
               "project_id INTEGER NOT NULL REFERENCES projects (id), reviewer VARCHAR NOT NULL, "
               "n_tasks INTEGER NOT NULL, threshold FLOAT NOT NULL, started_at VARCHAR NOT NULL, "
               "finished_at VARCHAR, passed BOOLEAN, scores JSON)")
    op.execute("CREATE INDEX IF NOT EXISTS ix_calibration_rounds_reviewer ON calibration_rounds "
               "(project_id, reviewer)")
    op.execute("CREATE TABLE IF NOT EXISTS calibration_items (round_id INTEGER NOT NULL "
               "REFERENCES calibration_rounds (id), position INTEGER NOT NULL, task_id INTEGER NOT NULL "
               "REFERENCES tasks (id), annotation_id INTEGER REFERENCES annotations (id), verdict VARCHAR, "
               "result JSON, judged_at VARCHAR, PRIMARY KEY (round_id, position))")


def downgrade() -> None:
    raise NotImplementedError("ReviewDesk stores are never downgraded; restore a backup instead")
