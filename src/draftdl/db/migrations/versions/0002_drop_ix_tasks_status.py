"""Drop the redundant ix_tasks_status.

Databases made before 0001 have it; ix_tasks_status_seq (status, seq) serves every query it
did, and a fresh database never had it.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_tasks_status", table_name="tasks", if_exists=True)


def downgrade() -> None:
    pass  # the index was redundant: nothing to restore
