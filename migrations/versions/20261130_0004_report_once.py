"""one incident per reported message: a unique index on the "Open an incident" button's key; card_ts indexed

Two clicks on the button under one answer (or a retried delivery) raced to open two incidents: each
looked for the key, found none, and inserted. The index makes the second insert fail, and the skill
then names the incident the first one opened. Partial, so alert groups (several incidents over time
for one Alertmanager group key) are untouched. ``card_ts`` gets an index because every mention in a thread
now asks which incident's card the thread belongs to.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

WHERE = sa.text("group_key LIKE 'slack-report:%'")


def upgrade() -> None:
    op.create_index("uq_incidents_report_key", "incidents", ["group_key"], unique=True,
                    sqlite_where=WHERE, postgresql_where=WHERE)
    op.create_index("ix_incidents_card_ts", "incidents", ["card_ts"])


def downgrade() -> None:
    op.drop_index("ix_incidents_card_ts", table_name="incidents")
    op.drop_index("uq_incidents_report_key", table_name="incidents")
