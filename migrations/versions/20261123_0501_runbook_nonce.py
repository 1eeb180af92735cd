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


# Plain ALTER TABLE ADD/DROP COLUMN (SQLite >= 3.35 and PostgreSQL): no table copy, so the foreign key
# from audit_log to runbook_executions is never in the way.
def upgrade() -> None:
    op.add_column('runbook_executions', sa.Column('nonce', sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column('runbook_executions', 'nonce')
