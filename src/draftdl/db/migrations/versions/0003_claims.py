"""Claims for more than one node: tasks.owner, attempt and lease_until; the nodes table; the
control requests between nodes and the settings they share; a task's own draft folder key
(a regenerate's, built by whichever worker takes it); and, on PostgreSQL, the sequence tasks
are numbered from in a cluster. (pgqueuer's tables are made by the first cluster node that
starts: cluster/jobs.py; a single process on PostgreSQL needs neither them nor pgqueuer.)

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("build_key", sa.String(32), nullable=True))
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
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_control_requests_node", "control_requests", ["node"])
    op.create_table(
        "cluster_settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Numbers for tasks submitted on any node (each api node counting on its own would
        # hand out the same ones), from above the highest stored.
        op.execute("CREATE SEQUENCE tasks_seq")
        op.execute("SELECT setval('tasks_seq', COALESCE(max(seq), 0) + 1, false) FROM tasks")


def downgrade() -> None:
    op.drop_table("cluster_settings")
    op.drop_table("control_requests")
    op.drop_table("nodes")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE tasks_seq")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("build_key")
        batch.drop_column("lease_until")
        batch.drop_column("attempt")
        batch.drop_column("owner")
