"""Claims for more than one node: tasks.owner, attempt and lease_until; the nodes table; the
control requests between nodes and the settings they share; and, on PostgreSQL, pgqueuer's
tables (the queue workers claim tasks from).

pgqueuer's schema is one SQL script; asyncpg takes a multi-statement script only through the
driver connection's own ``execute`` (not as a prepared statement).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.util import await_only

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "nodes",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "control_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_control_requests_node", "control_requests", ["node"])
    op.create_table(
        "cluster_settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from draftdl.cluster.jobs import install_sql

        driver = bind.connection.driver_connection
        if driver is None:
            raise RuntimeError("no driver connection to install pgqueuer's schema on")
        await_only(driver.execute(install_sql()))


def downgrade() -> None:
    op.drop_table("cluster_settings")
    op.drop_table("control_requests")
    op.drop_table("nodes")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("attempt")
        batch.drop_column("owner")
