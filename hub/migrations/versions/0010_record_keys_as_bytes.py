"""Record keys are kept as bytes, of any length: a key longer than 255 characters failed
the insert of its retry or dead letter on PostgreSQL (and with it the record), and a key
not in UTF-8 was sent on with replacement characters, to another partition.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("outbox", "dead_letter")


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "key", existing_type=sa.String(length=255), type_=sa.LargeBinary(),
                existing_nullable=True,
                postgresql_using="convert_to(key, 'UTF8')" if postgresql else None,
            )
        if not postgresql:  # SQLite keeps a copied value's type: make the text keys blobs
            op.execute(f"UPDATE {table} SET key = CAST(key AS BLOB) WHERE key IS NOT NULL")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "key", existing_type=sa.LargeBinary(), type_=sa.String(length=255),
                existing_nullable=True,
                postgresql_using="left(convert_from(key, 'UTF8'), 255)" if postgresql else None,
            )
        if not postgresql:
            op.execute(f"UPDATE {table} SET key = CAST(key AS TEXT) WHERE key IS NOT NULL")
