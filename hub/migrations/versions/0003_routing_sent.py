"""Routing events sent without an outbox row: why the holder holds it, and whether sent.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows from before were routed by rule mostly, and sent through the outbox.
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("route_reason", sa.String(length=20), nullable=False, server_default="rule")
        )
        batch_op.add_column(
            sa.Column("routing_sent", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.create_index(
            batch_op.f("ix_complaint_routing_sent"), ["routing_sent"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_complaint_routing_sent"))
        batch_op.drop_column("routing_sent")
        batch_op.drop_column("route_reason")
