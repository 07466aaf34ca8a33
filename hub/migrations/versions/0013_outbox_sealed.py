"""Outbox values sealed at rest: a notification's address, a duplicate report's reporter and a
dead letter's original stood in the table in plain text for a day after they were sent (for
ever while unsent). Rows written before stay plain, marked so.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sealed", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    # The older code sends a value as stored: the sealed ones not yet sent would go out
    # as ciphertext, so they are left out (sent rows are only kept a day).
    op.execute("DELETE FROM outbox WHERE sealed")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("sealed")
