"""alert time indexes: ``alerts.received_at`` and ``alerts.last_seen_at``

The shift handover counts the alerts that fired in the last hours (received or seen again since then); without
these indexes that read every alert ever received, and the alerts table only grows. See
``bench/handover_bench.py`` and docs/benchmarks.md.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_alerts_received_at", "alerts", ["received_at"])
    op.create_index("ix_alerts_last_seen_at", "alerts", ["last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_last_seen_at", table_name="alerts")
    op.drop_index("ix_alerts_received_at", table_name="alerts")
