"""Alembic environment: runs on the connection handed over by ``app.models.store``.

``app.models.store`` runs migrations on a copy of the store and swaps it in only when every one
succeeded; the revisions applied so far are reported through ``attributes["applied"]`` so a failure
names the migration that failed.
"""

from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo

from app.models.schema import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs the alembic CLI by hand
    raise RuntimeError("ReviewDesk migrations run through app.models.store.Store.open()")
applied: list[str] | None = context.config.attributes.get("applied")


def _on_version_apply(ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any],
                      run_args: Mapping[str, Any]) -> None:
    if applied is not None:
        applied.append(str(step.up_revision_id))


context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                  on_version_apply=_on_version_apply)
with context.begin_transaction():
    context.run_migrations()
