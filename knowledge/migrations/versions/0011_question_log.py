"""question log: every question asked (no chat ids), for the overview figures

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('question_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('entry_id', sa.String(length=64), nullable=True),
    sa.Column('aspects', sa.String(length=255), nullable=True),
    sa.Column('typed', sa.Boolean(), nullable=False),
    sa.Column('citizen', sa.String(length=64), nullable=False),
    sa.Column('vote', sa.String(length=8), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    # Covering: the overview's figures are read from this index alone (knowledge.question_log).
    op.create_index('ix_question_log_asked_at', 'question_log',
                    ['asked_at', 'typed', 'outcome', 'channel', 'vote', 'entry_id', 'citizen'])
    op.create_index('ix_question_log_citizen_entry', 'question_log', ['citizen', 'entry_id'])


def downgrade() -> None:
    op.drop_index('ix_question_log_citizen_entry', table_name='question_log')
    op.drop_index('ix_question_log_asked_at', table_name='question_log')
    op.drop_table('question_log')
