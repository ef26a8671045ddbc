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


_ITEM = "j.type = 'object' AND json_type(j.value, '$.from_name') = 'text'"
# a control with one item whose id is a plain LS region id: that id is kept apart (item_id) and the item
# stored with "id": null in its place, so equal answers of different annotators have equal item texts
_SPLIT = ("c.n = 1 AND json_type(c.first, '$.id') = 'text' "
          "AND NOT (json_extract(c.first, '$.id') GLOB '*[^A-Za-z0-9_-]*')")


def _select(arr: str, arr2: str) -> str:
    """``ord, control, items, item_id`` per control of the result array ``arr`` (``arr2``: the same array,
    for the correlated subquery; a trigger's ``NEW.result``)."""
    return (
        f"c.ord, c.fn, CASE WHEN {_SPLIT} THEN json_array(json_replace(c.first, '$.id', NULL)) ELSE "
        f"(SELECT json_group_array(json(j.value)) FROM json_each({arr2}) j "
        f" WHERE {_ITEM} AND json_extract(j.value, '$.from_name') = c.fn) END, "
        f"CASE WHEN {_SPLIT} THEN json_extract(c.first, '$.id') END "
        f"FROM (SELECT min(j.key) AS ord, count(*) AS n, max(j.value) AS first, "
        f"json_extract(j.value, '$.from_name') AS fn FROM json_each({arr}) j WHERE {_ITEM} GROUP BY fn) c"
    )


COLUMNS = "(project_id, kind, row_id, task_id, ord, control, items, item_id)"


def _insert(kind: str, row: str) -> str:
    """Rows of ``result_values`` for the record ``row`` (``NEW`` in a trigger)."""
    arr = _array(f"{row}.result")
    project = f"coalesce((SELECT t.project_id FROM tasks t WHERE t.id = {row}.task_id), -1)"
    return (
        f"INSERT OR REPLACE INTO result_values {COLUMNS} "
        f"SELECT {project}, '{kind}', {row}.id, {row}.task_id, {_select(arr, arr)}; "
        f"INSERT OR REPLACE INTO result_values {COLUMNS} "
        f"SELECT {project}, '{kind}', {row}.id, {row}.task_id, -1, NULL, NULL, NULL "
        f"WHERE {row}.result IS NOT NULL AND NOT json_valid({row}.result);"
    )


def _delete(kind: str, row: str) -> str:
    return f"DELETE FROM result_values WHERE kind = '{kind}' AND row_id = {row}.id;"


def upgrade() -> None:
    op.execute("CREATE TABLE IF NOT EXISTS result_values (project_id INTEGER NOT NULL, kind VARCHAR(1) NOT NULL, "
               "row_id INTEGER NOT NULL, ord INTEGER NOT NULL, task_id INTEGER NOT NULL, control VARCHAR, "
               "items TEXT, item_id VARCHAR, PRIMARY KEY (project_id, kind, row_id, ord)) WITHOUT ROWID")
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
    """Set-based statements filling ``result_values`` for every row of ``table`` (values, then markers): the
    trigger's statement, grouped by row."""
    values = (
        f"INSERT OR REPLACE INTO result_values {COLUMNS} "
        f"SELECT coalesce((SELECT t.project_id FROM tasks t WHERE t.id = c.task_id), -1), '{kind}', c.id, "
        f"c.task_id, c.ord, c.fn, CASE WHEN {_SPLIT} THEN json_array(json_replace(c.first, '$.id', NULL)) ELSE "
        f"(SELECT json_group_array(json(j.value)) FROM {table} r2, json_each({_array('r2.result')}) j "
        f" WHERE r2.id = c.id AND {_ITEM} AND json_extract(j.value, '$.from_name') = c.fn) END, "
        f"CASE WHEN {_SPLIT} THEN json_extract(c.first, '$.id') END "
        "FROM (SELECT r.id AS id, r.task_id AS task_id, min(j.key) AS ord, count(*) AS n, max(j.value) AS first, "
        f"json_extract(j.value, '$.from_name') AS fn FROM {table} r, json_each({_array('r.result')}) j "
        f"WHERE {_ITEM} GROUP BY r.id, fn) c"
    )
    markers = (
        f"INSERT OR REPLACE INTO result_values {COLUMNS} "
        f"SELECT coalesce(t.project_id, -1), '{kind}', r.id, r.task_id, -1, NULL, NULL, NULL FROM {table} r "
        "LEFT JOIN tasks t ON t.id = r.task_id WHERE r.result IS NOT NULL AND NOT json_valid(r.result)"
    )
    return values, markers


def downgrade() -> None:
    raise NotImplementedError("ReviewDesk stores are never downgraded; restore a backup instead")
