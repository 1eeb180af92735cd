"""log templates (issue 4)

Revision ID: 0101
Revises: 0001
Create Date: 2026-11-23 19:05:00
"""
import sqlalchemy as sa
from alembic import op

revision = "0101"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.String(length=16), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("n_tokens", sa.Integer(), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("example", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_incident_id", sa.Integer(), nullable=True),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["first_incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("template_id"),
    )
    with op.batch_alter_table("log_templates", schema=None) as batch_op:
        batch_op.create_index("ix_log_templates_n_tokens", ["n_tokens"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("log_templates", schema=None) as batch_op:
        batch_op.drop_index("ix_log_templates_n_tokens")
    op.drop_table("log_templates")
