"""Alembic environment: runs on the connection handed over by playground.store.db (no alembic.ini)."""

from alembic import context

from playground.store.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
