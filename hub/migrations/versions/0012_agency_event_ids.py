"""An agency's follow-up is kept in the history under its agency's code and its own event id:
event ids are unique per agency, and a second agency's event with an id the first had used on
the same complaint (both numbering from 1), or an id like the hub's own (`received-<id>`),
was passed over as a re-send.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The rows the hub writes itself (hub.intake, hub.watcher) keep their ids.
HUB_ROWS = ("event_id = 'received-' || tracking_id "
            "OR (event_id LIKE 'auto-close-%' AND reason = 'auto_close')")


def upgrade() -> None:
    with op.batch_alter_table("status_history", schema=None) as batch_op:
        batch_op.alter_column("event_id", existing_type=sa.String(length=100),
                              type_=sa.String(length=200), existing_nullable=False)
    op.execute("UPDATE status_history SET event_id = agency_code || ':' || event_id "
               f"WHERE NOT ({HUB_ROWS})")


def downgrade() -> None:
    op.execute("UPDATE status_history "
               "SET event_id = substr(event_id, length(agency_code) + 2) "
               "WHERE substr(event_id, 1, length(agency_code) + 1) = agency_code || ':'")
    with op.batch_alter_table("status_history", schema=None) as batch_op:
        batch_op.alter_column("event_id", existing_type=sa.String(length=200),
                              type_=sa.String(length=100), existing_nullable=False)
