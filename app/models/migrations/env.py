"""Alembic environment: runs on the connection handed over by ``app.models.store``."""

from alembic import context

from app.models.schema import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs the alembic CLI by hand
    raise RuntimeError("ReviewDesk migrations run through app.models.store.Store.open()")
context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
