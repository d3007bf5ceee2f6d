"""dossiers and reminders

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dossiers',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('procedure', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('new_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('status_since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status_history_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('delivery', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=256), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('dossier_status_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dossier_code', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('noticed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=256), nullable=False),
    sa.ForeignKeyConstraint(['dossier_code'], ['dossiers.code'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_dossier_status_history_dossier_code', 'dossier_status_history', ['dossier_code'], unique=False)
    op.create_table('dossier_follows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('chat_id', sa.String(length=128), nullable=False),
    sa.Column('dossier_code', sa.String(length=64), nullable=False),
    sa.Column('muted', sa.Boolean(), nullable=False),
    sa.Column('unreachable', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dossier_code'], ['dossiers.code'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'chat_id', 'dossier_code', name='uq_dossier_follows_chat_code')
    )
    op.create_index('ix_dossier_follows_dossier_code', 'dossier_follows', ['dossier_code'], unique=False)
    op.create_table('reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('follow_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('chat_id', sa.String(length=128), nullable=False),
    sa.Column('dossier_code', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['follow_id'], ['dossier_follows.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('follow_id', 'key', name='uq_reminders_follow_key')
    )
    op.create_index('ix_reminders_state_due', 'reminders', ['state', 'due_at'], unique=False)
    op.create_index('ix_reminders_follow_id', 'reminders', ['follow_id'], unique=False)
    op.create_index('ix_reminders_dossier_code', 'reminders', ['dossier_code'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_reminders_dossier_code', table_name='reminders')
    op.drop_index('ix_reminders_follow_id', table_name='reminders')
    op.drop_index('ix_reminders_state_due', table_name='reminders')
    op.drop_table('reminders')
    op.drop_index('ix_dossier_follows_dossier_code', table_name='dossier_follows')
    op.drop_table('dossier_follows')
    op.drop_index('ix_dossier_status_history_dossier_code', table_name='dossier_status_history')
    op.drop_table('dossier_status_history')
    op.drop_table('dossiers')
