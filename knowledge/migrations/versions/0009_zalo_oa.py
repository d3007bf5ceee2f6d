"""zalo_oa: the OA's token pair, the reply window per citizen, events already handled

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('zalo_oa_tokens',
    sa.Column('oa_key', sa.String(length=64), nullable=False),
    sa.Column('access_token', sa.Text(), nullable=False),
    sa.Column('refresh_token', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('refreshing_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('oa_key')
    )
    op.create_table('zalo_oa_users',
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('last_message_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_in_window', sa.Integer(), nullable=False),
    sa.Column('following', sa.Boolean(), nullable=True),
    sa.Column('offered', sa.JSON(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('zalo_oa_events',
    sa.Column('event_key', sa.String(length=160), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_key')
    )
    op.create_index('ix_zalo_oa_events_received_at', 'zalo_oa_events', ['received_at'])


def downgrade() -> None:
    op.drop_index('ix_zalo_oa_events_received_at', table_name='zalo_oa_events')
    op.drop_table('zalo_oa_events')
    op.drop_table('zalo_oa_users')
    op.drop_table('zalo_oa_tokens')
