"""deploy_freezes: deploy freezes said in Slack or set through the API

The deploy check said it did not know a change freeze, and nothing could tell a CI pipeline to stop. A freeze covers
one service (``service``, lowercased) or every service (NULL), from ``starts_at`` until ``ends_at`` or until lifted
(``lifted_at``, ``lifted_by``); who set it and why are kept.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deploy_freezes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("service", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("lifted_at", sa.DateTime(), nullable=True),
        sa.Column("lifted_by", sa.String(200), nullable=True),
    )
    op.create_index("ix_deploy_freezes_lifted_at", "deploy_freezes", ["lifted_at"])


def downgrade() -> None:
    op.drop_index("ix_deploy_freezes_lifted_at", table_name="deploy_freezes")
    op.drop_table("deploy_freezes")
