"""risk readings: failure-risk assessments per service and incident

Revision ID: 0201
Revises: 0001
Create Date: 2026-11-23 18:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0201'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'risk_readings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=True),
        sa.Column('service_name', sa.String(length=100), nullable=True),
        sa.Column('source', sa.String(length=32), nullable=False),
        sa.Column('probability', sa.Float(), nullable=False),
        sa.Column('band', sa.String(length=16), nullable=False),
        sa.Column('model_version', sa.String(length=100), nullable=False),
        sa.Column('inputs', sa.JSON(), nullable=False),
        sa.Column('factors', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['incident_id'], ['incidents.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('risk_readings', schema=None) as batch_op:
        batch_op.create_index('ix_risk_readings_incident_id', ['incident_id'], unique=False)
        batch_op.create_index('ix_risk_readings_service_name', ['service_name'], unique=False)
        batch_op.create_index('ix_risk_readings_created_at', ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('risk_readings', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_readings_created_at')
        batch_op.drop_index('ix_risk_readings_service_name')
        batch_op.drop_index('ix_risk_readings_incident_id')
    op.drop_table('risk_readings')
