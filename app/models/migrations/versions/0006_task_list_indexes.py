"""Indexes for the Tasks tab's filters over large projects (``app.services.taskfilter``).

Revision ID: 0006
Revises: 0005

Additive only (no table rewritten, no data changed). What the task-list queries read, without touching the
wide rows (annotation results, task data):

* ``ix_tasks_project_live``: the live (not deleted) tasks of a project in queue order -- counts and the
  default page without reading task data (partial index, covering).
* ``ix_annotations_live_task``: annotations that count for review (not cancelled, not deleted) per task --
  the "all annotations decided" test (partial index, covering).
* ``ix_annotations_gt_task``: tasks with a ground-truth annotation (the GT column's sort), partial.
* ``ix_annotations_completed_by``: tasks of an annotator (the annotator filter), covering.
* ``ix_decisions_project_verdict``: live judgements and escalations of a project, covering the status query.
* ``ix_decisions_retracts``: the retracted decisions of a project (undo), partial.
* ``ix_decision_sync_state``: decisions in conflict (and pending), without a scan of the sync states.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS ix_tasks_project_live ON tasks (project_id, position) WHERE deleted = 0")
    op.execute("CREATE INDEX IF NOT EXISTS ix_annotations_live_task ON annotations (task_id) "
               "WHERE was_cancelled = 0 AND deleted = 0")
    op.execute("CREATE INDEX IF NOT EXISTS ix_annotations_gt_task ON annotations (task_id) WHERE ground_truth = 1")
    op.execute("CREATE INDEX IF NOT EXISTS ix_annotations_completed_by ON annotations (completed_by, task_id)")
    op.execute("CREATE INDEX IF NOT EXISTS ix_decisions_project_verdict ON decisions "
               "(project_id, verdict, task_id, annotation_id, uuid)")
    op.execute("CREATE INDEX IF NOT EXISTS ix_decisions_retracts ON decisions (project_id, retracts) "
               "WHERE retracts IS NOT NULL")
    op.execute("CREATE INDEX IF NOT EXISTS ix_decision_sync_state ON decision_sync (state)")


def downgrade() -> None:
    raise NotImplementedError("ReviewDesk stores are never downgraded; restore a backup instead")
