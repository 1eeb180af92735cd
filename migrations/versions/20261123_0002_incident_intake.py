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


def upgrade() -> None:
    with op.batch_alter_table("incidents") as b:
        b.add_column(sa.Column("card_hash", sa.String(64), nullable=True))
        b.add_column(sa.Column("dedicated_channel", sa.Boolean(), nullable=False, server_default=sa.false()))
        b.add_column(sa.Column("alert_count", sa.Integer(), nullable=False, server_default="0"))
        b.create_index("ix_incidents_channel_id", ["channel_id"])
    with op.batch_alter_table("alerts") as b:
        b.add_column(sa.Column("occurrences", sa.Integer(), nullable=False, server_default="1"))
        b.add_column(sa.Column("last_seen_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("webhook_inbox") as b:
        b.create_index("ix_webhook_inbox_pending", ["status", "id"])


def downgrade() -> None:
    with op.batch_alter_table("webhook_inbox") as b:
        b.drop_index("ix_webhook_inbox_pending")
    with op.batch_alter_table("alerts") as b:
        b.drop_column("last_seen_at")
        b.drop_column("occurrences")
    with op.batch_alter_table("incidents") as b:
        b.drop_index("ix_incidents_channel_id")
        b.drop_column("alert_count")
        b.drop_column("dedicated_channel")
        b.drop_column("card_hash")
