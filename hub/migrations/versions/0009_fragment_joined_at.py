"""The parts of a joined multi-part SMS are kept, marked joined, as long as a gateway may
send one again: deleted at once, a re-sent part started a new SMS and a second complaint.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fragment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("joined_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_fragment_joined_at", "fragment", ["joined_at"])


def downgrade() -> None:
    op.execute("DELETE FROM fragment WHERE joined_at IS NOT NULL")
    op.drop_index("ix_fragment_joined_at", table_name="fragment")
    with op.batch_alter_table("fragment", schema=None) as batch_op:
        batch_op.drop_column("joined_at")
