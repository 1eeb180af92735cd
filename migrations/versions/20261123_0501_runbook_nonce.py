"""runbook executions: a one-time nonce for approval buttons

Revision ID: 0501
Revises: 0001
Create Date: 2026-11-23 18:45:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0501'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runbook_executions') as batch:
        batch.add_column(sa.Column('nonce', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runbook_executions') as batch:
        batch.drop_column('nonce')
