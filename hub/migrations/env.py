"""Alembic environment: runs on the connection `hub.migrate` hands over (no alembic.ini)."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from hub import store  # registers the tables on SQLModel.metadata

connection: sa.Connection = context.config.attributes["connection"]


def render_item(kind: str, obj: Any, autogen: AutogenContext) -> str | Literal[False]:
    """Write wrapper types as what they store, so a revision imports neither hub nor sqlmodel."""
    if kind == "type" and isinstance(obj, store.UtcDateTime):
        return "sa.DateTime(timezone=True)"
    if kind == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    # SQLite cannot ALTER most things: later revisions copy the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    render_item=render_item,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
