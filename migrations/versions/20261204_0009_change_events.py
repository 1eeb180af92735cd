"""change_events: deploys, config pushes, feature flags and rollbacks per service, reported by CI/CD

Most incidents follow a change. The bot had no record of any, so "what changed before #113?" had no answer and the
card could not say "payments-api was deployed 12 minutes before this opened". Changes come in through
``POST /api/v1/changes`` or ``warroom changes add``; a sender's own id (``source``, ``external_id``) makes a retry a
no-op; ``(service, at)`` is the card's lookup.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("version", sa.String(200), nullable=True),
        sa.Column("author", sa.String(200), nullable=True),
        sa.Column("url", sa.String(1000), nullable=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("source", "external_id"),
    )
    op.create_index("ix_change_events_at", "change_events", ["at"])
    op.create_index("ix_change_events_service_at", "change_events", ["service", "at"])


def downgrade() -> None:
    op.drop_index("ix_change_events_service_at", table_name="change_events")
    op.drop_index("ix_change_events_at", table_name="change_events")
    op.drop_table("change_events")
