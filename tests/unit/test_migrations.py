"""The migrations build exactly the tables the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from hub import migrate, store
from tests.support import LAPOR_HUB


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


def test_db_upgrade_makes_the_folder_of_a_new_sqlite_database(tmp_path: Path) -> None:
    """The deploy files run `lapor-hub db upgrade` before `run`: on a fresh machine the
    default ./var/ is not there yet, and SQLite said only "unable to open database file"."""
    url = f"sqlite:///{tmp_path}/var/hub.db"
    out = subprocess.run([LAPOR_HUB, "db", "upgrade"], capture_output=True, text=True,
                         check=False, timeout=60, env={**os.environ, "HUB_DATABASE_URL": url})
    assert out.returncode == 0, out.stderr
    assert "complaint" in sa.inspect(store.make_engine(url)).get_table_names()
    (tmp_path / "file").write_text("")
    taken = subprocess.run(
        [LAPOR_HUB, "db", "upgrade"], capture_output=True, text=True, check=False, timeout=60,
        env={**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path}/file/hub.db"},
    )
    assert (taken.returncode, taken.stderr) == (2, "lapor-hub: cannot make the folder of the "
                                               f"SQLite database {tmp_path}/file: File exists\n")
