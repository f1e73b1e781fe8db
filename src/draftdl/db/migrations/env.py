"""Alembic's entry point, run by db/schema.py only: the connection comes in
``config.attributes``, already inside the transaction the caller opened, so every revision
of one start commits (or rolls back) together. SQLite alters a table by rebuilding it
(``render_as_batch``); ``target_metadata`` lets autogenerate draft the next revision."""

from alembic import context

from draftdl.db.tables import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
