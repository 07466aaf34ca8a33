"""A complaint remembers how long the reporter took to reply to a timely answer: the settle
clock stops for that wait, or a reply that came after the settle deadline made the agency
that had answered in time late at once. Timely by the answer's own time (`answered_at`), not
by when the hub applied it.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Complaints waiting on an agency after a reply keep their deadline as it was set.
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reply_waits", sa.Text(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.drop_column("answered_at")
        batch_op.drop_column("reply_waits")
