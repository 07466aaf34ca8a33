"""Initial schema: the tables of hub/store.py.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "complaint",
        sa.Column("tracking_id", sa.String(length=18), nullable=False),
        sa.Column("source_system", sa.String(length=64), nullable=False),
        sa.Column("source_message_id", sa.String(length=256), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("report_type", sa.String(length=30), nullable=False),
        sa.Column("needs_inspection", sa.Boolean(), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("region_code", sa.String(length=13), nullable=True),
        sa.Column("agency_code", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("confidential", sa.Boolean(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("route_seq", sa.Integer(), nullable=False),
        sa.Column("declined", sa.Text(), nullable=False),
        sa.Column("pauses", sa.Text(), nullable=False),
        sa.Column("duplicate_of", sa.String(length=18), nullable=True),
        sa.Column("reporter_key", sa.String(length=32), nullable=True),
        sa.Column("place_key", sa.String(length=32), nullable=True),
        sa.Column("text_key", sa.String(length=32), nullable=True),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("routed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_follow_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_seconds", sa.Float(), nullable=False),
        sa.Column("due_kind", sa.String(length=20), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_kind", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("tracking_id"),
        sa.UniqueConstraint("source_system", "source_message_id"),
    )
    op.create_index("ix_complaint_agency_code", "complaint", ["agency_code"])
    op.create_index("ix_complaint_due_at", "complaint", ["due_at"])
    op.create_index("ix_complaint_duplicate_of", "complaint", ["duplicate_of"])
    op.create_index("ix_complaint_place_key", "complaint", ["place_key"])
    op.create_index("ix_complaint_received_at", "complaint", ["received_at"])
    op.create_index("ix_complaint_region_code", "complaint", ["region_code"])
    op.create_index("ix_complaint_reporter_key", "complaint", ["reporter_key"])
    op.create_index("ix_complaint_status", "complaint", ["status"])
    op.create_index("ix_complaint_text_key", "complaint", ["text_key"])
    op.create_table(
        "dead_letter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=400), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=True),
        sa.Column("offset", sa.Integer(), nullable=True),
        sa.Column("key", sa.String(length=255), nullable=True),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("original", sa.LargeBinary(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index("ix_dead_letter_reason", "dead_letter", ["reason"])
    op.create_table(
        "fragment",
        sa.Column("group_key", sa.String(length=255), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("message_id", sa.String(length=256), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_key", "idx"),
    )
    op.create_index("ix_fragment_received_at", "fragment", ["received_at"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_sent_at", "outbox", ["sent_at"])
    op.create_table(
        "status_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("tracking_id", sa.String(length=18), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("agency_code", sa.String(length=63), nullable=False),
        sa.Column("target_agency", sa.String(length=63), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_status_history_tracking_id", "status_history", ["tracking_id"])


def downgrade() -> None:
    op.drop_table("status_history")
    op.drop_table("outbox")
    op.drop_table("fragment")
    op.drop_table("dead_letter")
    op.drop_table("complaint")
