"""The migrations build exactly the tables the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from hub import migrate, store


def schema_diffs(url: str) -> list[object]:
    engine = store.make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, SQLModel.metadata))
    finally:
        engine.dispose()


def version(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [v for (v,) in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()


def test_one_line_of_revisions() -> None:
    scripts = ScriptDirectory(str(migrate.SCRIPTS))
    assert len(scripts.get_heads()) == 1


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    """Fails when a model changes without a migration: write one (see hub/migrate.py)."""
    migrate.upgrade(database_url)
    assert schema_diffs(database_url) == []


def test_instances_starting_together_migrate_once(database_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        for done in [pool.submit(migrate.upgrade, database_url) for _ in range(4)]:
            done.result()
    heads = ScriptDirectory(str(migrate.SCRIPTS)).get_heads()
    assert version(database_url) == heads
    migrate.upgrade(database_url)  # at head already: nothing to do
    assert schema_diffs(database_url) == []
