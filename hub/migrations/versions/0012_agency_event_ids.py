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
    # Back to the bare id where it is free: two agencies may have used one id on a
    # complaint, which the old schema cannot hold twice; the second keeps its prefix.
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, event_id, agency_code FROM status_history")).all()
    taken = {event_id for _, event_id, _ in rows}
    for id_, event_id, agency in rows:
        bare = event_id.removeprefix(f"{agency}:")
        if bare != event_id and bare not in taken:
            conn.execute(sa.text("UPDATE status_history SET event_id = :bare WHERE id = :id"),
                         {"bare": bare, "id": id_})
            taken.add(bare)
    # The column stays 200 wide: an id kept with its prefix may need it, and the older code
    # writes ids of at most 100 characters into it all the same.
