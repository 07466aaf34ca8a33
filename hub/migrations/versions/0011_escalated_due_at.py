"""A complaint remembers the deadline last escalated, not only its kind: coming back to the
same deadline after a detour (an answer, then the reporter's reply) escalated the same
breach again, under the same event id.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("escalated_due_at", sa.DateTime(timezone=True), nullable=True)
        )
    # Until now the kind was kept only while its deadline ran: that deadline was escalated.
    op.execute("UPDATE complaint SET escalated_due_at = due_at WHERE escalated_kind IS NOT NULL")


def downgrade() -> None:
    # The old reading: a kind kept only while its deadline runs.
    op.execute("UPDATE complaint SET escalated_kind = NULL WHERE escalated_due_at IS NULL "
               "OR due_at IS NULL OR escalated_due_at <> due_at")
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.drop_column("escalated_due_at")
