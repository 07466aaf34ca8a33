"""Reporter identity sealed at rest (hub.sealing).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 17:12:38.920660
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reporter_sealed', sa.LargeBinary(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.drop_column('reporter_sealed')

