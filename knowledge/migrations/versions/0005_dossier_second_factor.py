"""dossier second factor: the last 4 digits of the filer's phone / ID number, verified chats, lookup attempts

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only the last 4 digits are stored, never the full numbers (see reminders/models.py).
    # Plain ADD COLUMN (no batch copy): on SQLite, recreating `dossiers` would cascade-delete its history and follows.
    op.add_column('dossiers', sa.Column('phone_last4', sa.String(length=4), nullable=True))
    op.add_column('dossiers', sa.Column('id_last4', sa.String(length=4), nullable=True))
    op.add_column('dossiers', sa.Column('scan_problem', sa.Text(), nullable=True))
    op.create_table('dossier_verifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('chat_id', sa.String(length=128), nullable=False),
    sa.Column('dossier_code', sa.String(length=64), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dossier_code'], ['dossiers.code'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'chat_id', 'dossier_code', name='uq_dossier_verifications_chat_code')
    )
    op.create_index('ix_dossier_verifications_dossier_code', 'dossier_verifications', ['dossier_code'], unique=False)
    op.create_table('dossier_lookup_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('chat_hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_dossier_lookup_attempts_chat_at', 'dossier_lookup_attempts', ['chat_hash', 'at'], unique=False)
    op.create_index('ix_dossier_lookup_attempts_at', 'dossier_lookup_attempts', ['at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_dossier_lookup_attempts_at', table_name='dossier_lookup_attempts')
    op.drop_index('ix_dossier_lookup_attempts_chat_at', table_name='dossier_lookup_attempts')
    op.drop_table('dossier_lookup_attempts')
    op.drop_index('ix_dossier_verifications_dossier_code', table_name='dossier_verifications')
    op.drop_table('dossier_verifications')
    op.drop_column('dossiers', 'scan_problem')
    op.drop_column('dossiers', 'id_last4')
    op.drop_column('dossiers', 'phone_last4')
