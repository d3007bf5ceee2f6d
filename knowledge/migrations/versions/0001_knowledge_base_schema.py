"""knowledge base schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('entries',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('short_name', sa.Text(), nullable=True),
    sa.Column('group_slug', sa.String(length=64), nullable=False),
    sa.Column('level', sa.String(length=128), nullable=True),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('result', sa.Text(), nullable=True),
    sa.Column('online_level', sa.String(length=16), nullable=False),
    sa.Column('online_portals', sa.JSON(), nullable=False),
    sa.Column('online_note', sa.Text(), nullable=True),
    sa.Column('postal_submit', sa.Boolean(), nullable=True),
    sa.Column('postal_receive_result', sa.Boolean(), nullable=True),
    sa.Column('postal_note', sa.Text(), nullable=True),
    sa.Column('steps', sa.JSON(), nullable=False),
    sa.Column('conditions', sa.JSON(), nullable=False),
    sa.Column('legal_basis', sa.JSON(), nullable=False),
    sa.Column('notes', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entries_group_slug'), ['group_slug'], unique=False)

    op.create_table('kb_meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('entry_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('form', sa.String(length=32), nullable=True),
    sa.Column('count', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('entry_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entry_documents_entry_id'), ['entry_id'], unique=False)

    op.create_table('entry_durations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('working_days', sa.Float(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('entry_durations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entry_durations_entry_id'), ['entry_id'], unique=False)

    op.create_table('entry_equivalents',
    sa.Column('entry_id', sa.String(length=64), nullable=False),
    sa.Column('equivalent_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('entry_id', 'equivalent_id')
    )
    op.create_table('entry_fees',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('amount_vnd', sa.Integer(), nullable=True),
    sa.Column('set_by_province', sa.Boolean(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('exemptions', sa.Text(), nullable=True),
    sa.Column('basis', sa.Text(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('entry_fees', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entry_fees_entry_id'), ['entry_id'], unique=False)

    op.create_table('entry_phrases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('entry_phrases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entry_phrases_entry_id'), ['entry_id'], unique=False)

    op.create_table('entry_places',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.String(length=64), nullable=False),
    sa.Column('agency', sa.Text(), nullable=False),
    sa.Column('level', sa.String(length=128), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('entry_places', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entry_places_entry_id'), ['entry_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('entry_places', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_entry_places_entry_id'))

    op.drop_table('entry_places')
    with op.batch_alter_table('entry_phrases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_entry_phrases_entry_id'))

    op.drop_table('entry_phrases')
    with op.batch_alter_table('entry_fees', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_entry_fees_entry_id'))

    op.drop_table('entry_fees')
    op.drop_table('entry_equivalents')
    with op.batch_alter_table('entry_durations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_entry_durations_entry_id'))

    op.drop_table('entry_durations')
    with op.batch_alter_table('entry_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_entry_documents_entry_id'))

    op.drop_table('entry_documents')
    op.drop_table('kb_meta')
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_entries_group_slug'))

    op.drop_table('entries')
