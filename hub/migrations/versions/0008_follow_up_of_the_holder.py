"""A complaint handed to another agency is not followed up until that agency acts.

Before, the first follow-up of an earlier holder stayed on the row, so the report and the
followed-up gauge counted the new holder as followed up before it had seen the complaint.
Such rows are recognised by a first follow-up older than their routing; each takes the first
follow-up its holder made since (in_progress, responded or needs_info in status_history), or
none.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE complaint SET first_follow_up_at = ("
        " SELECT min(h.at) FROM status_history h"
        " WHERE h.tracking_id = complaint.tracking_id AND h.agency_code = complaint.agency_code"
        " AND h.status IN ('in_progress', 'responded', 'needs_info')"
        " AND h.at >= complaint.routed_at)"
        " WHERE first_follow_up_at < routed_at"
    )


def downgrade() -> None:
    # Which earlier holder followed up is still in status_history; the column was wrong.
    pass
