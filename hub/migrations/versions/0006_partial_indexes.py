"""Partial indexes for duplicate_of and unsent routing events.

The full index on duplicate_of led SQLite to find duplicate candidates through
`duplicate_of IS NULL` – every original in the table – on each intake batch.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_complaint_duplicate_of", table_name="complaint")
    op.drop_index("ix_complaint_routing_sent", table_name="complaint")
    op.create_index(
        "ix_complaint_duplicate_of", "complaint", ["duplicate_of"],
        sqlite_where=sa.text("duplicate_of IS NOT NULL"),
        postgresql_where=sa.text("duplicate_of IS NOT NULL"),
    )
    op.create_index(
        "ix_complaint_routing_unsent", "complaint", ["routed_at"],
        sqlite_where=sa.text("routing_sent = 0"),
        postgresql_where=sa.text("routing_sent = false"),
    )


def downgrade() -> None:
    op.drop_index("ix_complaint_routing_unsent", table_name="complaint")
    op.drop_index("ix_complaint_duplicate_of", table_name="complaint")
    op.create_index("ix_complaint_routing_sent", "complaint", ["routing_sent"])
    op.create_index("ix_complaint_duplicate_of", "complaint", ["duplicate_of"])
