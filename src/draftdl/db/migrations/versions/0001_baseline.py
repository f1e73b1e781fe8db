"""Baseline: the schema when Alembic took over, as frozen in migrations/baseline.py.

Revision ID: 0001
Revises:
"""

from alembic import op

from draftdl.db.migrations.baseline import BASELINE

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    BASELINE.create_all(op.get_bind(), checkfirst=False)


def downgrade() -> None:
    BASELINE.drop_all(op.get_bind(), checkfirst=False)
