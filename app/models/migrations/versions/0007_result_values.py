"""Per-control result values next to every annotation, prediction and ground-truth row (``result_values``).

Revision ID: 0007
Revises: 0006

Additive (a new table, its triggers and a backfill; no existing row changed). Cold metric frames
(``app.services.frames``) read the items of each (row, control) from here instead of decoding and
splitting every stored result (issue 14; docs/adr/0011-frames-from-store.md).

One row per (kind, row, control present in the result): ``kind`` is ``a`` (annotations), ``p``
(predictions) or ``g`` (ground_truth); ``ord`` is the array index of the control's first item (the
order a Python pass over the result meets the controls in); ``items`` is the compact JSON array of the
result's items (JSON objects only) whose ``from_name`` is that control, in result order. A result that
is not strict JSON (``NaN`` or ``Infinity`` written by Python) gets one marker row, ``ord = -1`` and no
control: readers decode that row's stored result themselves. A result that is not an array has no row.

Kept consistent by triggers in the same statement as the write (insert, update of ``result`` or
``task_id``, delete) on the three tables, whatever code path writes them: import, pull, decisions, fixes.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KINDS = (("a", "annotations"), ("p", "predictions"), ("g", "ground_truth"))


def _array(expr: str) -> str:
    """``expr`` when it is a strict JSON array, else NULL (``json_each(NULL)`` has no rows)."""
    return f"(CASE WHEN json_valid({expr}) THEN (CASE WHEN json_type({expr}) = 'array' THEN {expr} END) END)"


def _insert(kind: str, row: str) -> str:
    """Rows of ``result_values`` for the row alias/record ``row`` (``NEW`` in a trigger)."""
    arr = _array(f"{row}.result")
    project = f"coalesce((SELECT t.project_id FROM tasks t WHERE t.id = {row}.task_id), -1)"
    return (
        "INSERT OR REPLACE INTO result_values (project_id, kind, row_id, ord, task_id, control, items) "
        f"SELECT {project}, '{kind}', {row}.id, c.ord, {row}.task_id, c.fn, "
        f"(SELECT json_group_array(json(j2.value)) FROM json_each({arr}) j2 "
        " WHERE j2.type = 'object' AND json_type(j2.value, '$.from_name') = 'text' "
        " AND json_extract(j2.value, '$.from_name') = c.fn) "
        f"FROM (SELECT min(j.key) AS ord, json_extract(j.value, '$.from_name') AS fn FROM json_each({arr}) j "
        " WHERE j.type = 'object' AND json_type(j.value, '$.from_name') = 'text' GROUP BY fn) c; "
        "INSERT OR REPLACE INTO result_values (project_id, kind, row_id, ord, task_id, control, items) "
        f"SELECT {project}, '{kind}', {row}.id, -1, {row}.task_id, NULL, NULL "
        f"WHERE {row}.result IS NOT NULL AND NOT json_valid({row}.result);"
    )


def _delete(kind: str, row: str) -> str:
    return f"DELETE FROM result_values WHERE kind = '{kind}' AND row_id = {row}.id;"


def upgrade() -> None:
    op.execute("CREATE TABLE IF NOT EXISTS result_values (project_id INTEGER NOT NULL, kind VARCHAR(1) NOT NULL, "
               "row_id INTEGER NOT NULL, ord INTEGER NOT NULL, task_id INTEGER NOT NULL, control VARCHAR, "
               "items TEXT, PRIMARY KEY (project_id, kind, row_id, ord)) WITHOUT ROWID")
    op.execute("CREATE INDEX IF NOT EXISTS ix_result_values_row ON result_values (kind, row_id)")
    for kind, table in KINDS:
        op.execute(f"CREATE TRIGGER IF NOT EXISTS trg_{table}_values_insert AFTER INSERT ON {table} "
                   f"BEGIN {_insert(kind, 'NEW')} END")
        op.execute(f"CREATE TRIGGER IF NOT EXISTS trg_{table}_values_update AFTER UPDATE OF result, task_id "
                   f"ON {table} BEGIN {_delete(kind, 'OLD')} {_insert(kind, 'NEW')} END")
        op.execute(f"CREATE TRIGGER IF NOT EXISTS trg_{table}_values_delete AFTER DELETE ON {table} "
                   f"BEGIN {_delete(kind, 'OLD')} END")
    for kind, table in KINDS:  # backfill: the same statements, over every existing row
        op.execute(f"DELETE FROM result_values WHERE kind = '{kind}'")
        for statement in backfill(kind, table):
            op.execute(statement)


def backfill(kind: str, table: str) -> tuple[str, str]:
    """Set-based statements filling ``result_values`` for every row of ``table`` (values, then markers)."""
    values = (
        "INSERT OR REPLACE INTO result_values (project_id, kind, row_id, ord, task_id, control, items) "
        f"SELECT coalesce(t.project_id, -1), '{kind}', c.id, c.ord, c.task_id, c.fn, "
        f"(SELECT json_group_array(json(j2.value)) FROM {table} r2, json_each({_array('r2.result')}) j2 "
        " WHERE r2.id = c.id AND j2.type = 'object' AND json_type(j2.value, '$.from_name') = 'text' "
        " AND json_extract(j2.value, '$.from_name') = c.fn) "
        "FROM (SELECT r.id AS id, r.task_id AS task_id, min(j.key) AS ord, json_extract(j.value, '$.from_name') AS fn "
        f"FROM {table} r, json_each({_array('r.result')}) j "
        "WHERE j.type = 'object' AND json_type(j.value, '$.from_name') = 'text' "
        "GROUP BY r.id, fn) c LEFT JOIN tasks t ON t.id = c.task_id"
    )
    markers = (
        "INSERT OR REPLACE INTO result_values (project_id, kind, row_id, ord, task_id, control, items) "
        f"SELECT coalesce(t.project_id, -1), '{kind}', r.id, -1, r.task_id, NULL, NULL FROM {table} r "
        "LEFT JOIN tasks t ON t.id = r.task_id WHERE r.result IS NOT NULL AND NOT json_valid(r.result)"
    )
    return values, markers


def downgrade() -> None:
    raise NotImplementedError("ReviewDesk stores are never downgraded; restore a backup instead")
