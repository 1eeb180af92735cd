"""incident intake: card hash, dedicated channel, alert occurrences

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


# Plain ALTER TABLE ADD/DROP COLUMN (SQLite >= 3.35 and PostgreSQL): no table copy, so foreign keys that
# point at incidents and alerts are never in the way on downgrade.
def upgrade() -> None:
    op.add_column("incidents", sa.Column("card_hash", sa.String(64), nullable=True))
    op.add_column("incidents", sa.Column("dedicated_channel", sa.Boolean(), nullable=False,
                                         server_default=sa.false()))
    op.add_column("incidents", sa.Column("alert_count", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_incidents_channel_id", "incidents", ["channel_id"])
    op.add_column("alerts", sa.Column("occurrences", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("alerts", sa.Column("last_seen_at", sa.DateTime(), nullable=True))
    op.create_index("ix_webhook_inbox_pending", "webhook_inbox", ["status", "id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_inbox_pending", table_name="webhook_inbox")
    op.drop_column("alerts", "last_seen_at")
    op.drop_column("alerts", "occurrences")
    op.drop_index("ix_incidents_channel_id", table_name="incidents")
    op.drop_column("incidents", "alert_count")
    op.drop_column("incidents", "dedicated_channel")
    op.drop_column("incidents", "card_hash")
