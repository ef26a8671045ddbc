"""Review queues: named queue presets per project, and reviewers assigned to queues.

Revision ID: 0009
Revises: 0008

Additive (two new tables; no existing row changed, nothing to backfill).

* ``queue_presets``: a named, saved queue definition of a project -- its eligibility rules, ordering and
  role as canonical JSON (``app.services.queues.QueueSpec``); one name per project.
* ``queue_assignments``: which reviewer works which queue of a project; ``source`` says where the
  assignment came from (``local``: set here; ``server``: read from the server's task assignments).
* ``queue_settings``: per project, the agreement below which tasks are routed to the expert queue.
* ``ix_decisions_expert``: a partial index of expert decisions (the expert queue's resolution test);
  ``ix_ground_truth_task_decision``: (task, decision) of the reference rows, for the ground-truth rule;
  ``ix_annotations_version``, ``ix_tasks_version``: covering indexes for the per-task scores' version check.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE IF NOT EXISTS queue_presets (id INTEGER NOT NULL PRIMARY KEY, "
               "project_id INTEGER NOT NULL REFERENCES projects (id), name VARCHAR NOT NULL, "
               "spec JSON NOT NULL, created_at VARCHAR NOT NULL, updated_at VARCHAR NOT NULL, "
               "UNIQUE (project_id, name))")
    op.execute("CREATE TABLE IF NOT EXISTS queue_assignments (id INTEGER NOT NULL PRIMARY KEY, "
               "project_id INTEGER NOT NULL REFERENCES projects (id), reviewer VARCHAR NOT NULL, "
               "queue VARCHAR NOT NULL, source VARCHAR NOT NULL DEFAULT 'local', created_at VARCHAR NOT NULL, "
               "UNIQUE (project_id, reviewer, queue, source))")
    op.execute("CREATE TABLE IF NOT EXISTS queue_settings (project_id INTEGER NOT NULL PRIMARY KEY "
               "REFERENCES projects (id), expert_threshold FLOAT, updated_at VARCHAR NOT NULL)")
    # the expert queue asks which tasks an expert judged: a partial index over the (few) expert decisions
    op.execute("CREATE INDEX IF NOT EXISTS ix_decisions_expert ON decisions (project_id, task_id) "
               "WHERE role = 'expert'")
    # the ground-truth rule reads (task, decision) of every reference row: a covering index, not the wide rows
    op.execute("CREATE INDEX IF NOT EXISTS ix_ground_truth_task_decision ON ground_truth (task_id, decision_uuid)")
    # the per-task scores' version check (count, max id, max updated_at, deleted, cancelled of a project's
    # annotations) reads this narrow covering index instead of the wide annotation rows: 135 -> 68 ms at 100k tasks
    op.execute("CREATE INDEX IF NOT EXISTS ix_annotations_version ON annotations "
               "(task_id, id, updated_at, deleted, was_cancelled)")
    # and the tasks' side of it (count, max id, max updated_at of the live tasks): 33 -> 12 ms
    op.execute("CREATE INDEX IF NOT EXISTS ix_tasks_version ON tasks (project_id, deleted, id, updated_at)")


def downgrade() -> None:
    raise NotImplementedError("ReviewDesk stores are never downgraded; restore a backup instead")
