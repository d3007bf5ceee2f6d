"""chat states: what the bot remembers of each chat, per feature, with an expiry (kept across restarts)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('chat_states',
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('chat_id', sa.String(length=128), nullable=False),
    sa.Column('feature', sa.String(length=64), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('channel', 'chat_id', 'feature')
    )
    op.create_index('ix_chat_states_expires_at', 'chat_states', ['expires_at'])


def downgrade() -> None:
    op.drop_index('ix_chat_states_expires_at', table_name='chat_states')
    op.drop_table('chat_states')
