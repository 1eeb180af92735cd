"""job resent_at: when a sweeper last sent a job to the broker again

With several replicas, each one's sweeper found the same lost jobs and sent each of them again (two replicas:
about 1.8 copies per job lost in a Redis flush, ``bench/sweeper_bench.py``). A sweeper now takes a job's resend
with a compare-and-set on this column, so one replica sends it, and the others skip it for 15 s. ``/warroom status``
counts the jobs resent in the last hour through a partial index (only resent jobs are in it: inserting a job costs
nothing more).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("resent_at", sa.DateTime(), nullable=True))
    op.create_index("ix_jobs_resent_at", "jobs", ["resent_at"], postgresql_where=sa.text("resent_at IS NOT NULL"),
                    sqlite_where=sa.text("resent_at IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_jobs_resent_at", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("resent_at")
