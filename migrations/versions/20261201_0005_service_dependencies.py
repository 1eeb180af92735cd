"""service dependencies: ``services.depends_on``, the names of the services each one calls

An incident on a service that others depend on is the likely cause of their incidents, and theirs are its
impact: the incident card and ``/incident status`` name the related open incidents (knowledge/service_graph.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("services", sa.Column("depends_on", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    # SQLite >= 3.35 drops a column in place (a batch copy of the table would trip over its foreign keys)
    op.drop_column("services", "depends_on")
