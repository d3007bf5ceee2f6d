"""mask names and numbers in the unanswered questions kept before masking existed

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The bot promised these were kept without the citizen's name or account; rows from before the
    # masking existed are made true to that word.
    from knowledge.unanswered import mask_stored

    mask_stored(op.get_bind())


def downgrade() -> None:
    pass  # the original words are gone on purpose
