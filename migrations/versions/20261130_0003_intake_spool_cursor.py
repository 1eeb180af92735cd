"""intake spool cursor: how far the processor has copied the webhook door's spool file (SQLite)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_spool_cursor",
        sa.Column("epoch", sa.String(64), primary_key=True),
        sa.Column("last_id", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("intake_spool_cursor")
