"""knowledge column limits: group slugs up to 255 characters (national field names run to ~190)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite does not enforce VARCHAR lengths, and rebuilding `entries` there (batch mode) would drop
    # the parent table of cascading foreign keys: only databases that enforce the length are altered.
    if op.get_bind().dialect.name == 'sqlite':
        return
    op.alter_column('entries', 'group_slug', existing_type=sa.String(length=64), type_=sa.String(length=255),
                    existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        return
    # longer slugs would not fit back: cut them, as the old column would have refused them whole
    op.execute("UPDATE entries SET group_slug = LEFT(group_slug, 64) WHERE LENGTH(group_slug) > 64")
    op.alter_column('entries', 'group_slug', existing_type=sa.String(length=255), type_=sa.String(length=64),
                    existing_nullable=False)
