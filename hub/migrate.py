"""Database migrations (Alembic), run from code: at hub start and by `lapor-hub db upgrade`.

The Alembic configuration is built here rather than read from an alembic.ini, so the
installed package carries all it needs. Several hub instances may start at once on one
database: each runs the upgrade in one transaction that first takes a lock (a PostgreSQL
advisory lock, SQLite's write lock). One instance migrates; the others wait, then find
the schema at head and do nothing.

A new revision after a model change (against a database at head):
    python -c 'from hub.migrate import new_revision; new_revision("sqlite:///var/hub.db", "what")'
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

from hub import store

log = logging.getLogger("hub.migrate")
SCRIPTS = Path(__file__).parent / "migrations"
# The advisory lock's name: any 64-bit number, the same in every instance ("LAPOR").
LOCK_ID = 0x4C41504F52


def config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`."""
    store.make_sqlite_folder(url)
    engine = store.make_engine(url)
    try:
        upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """The same on an engine the caller keeps (the hub's own, at start)."""
    deadline = time.monotonic() + 60.0
    while True:
        try:
            with engine.connect() as conn:
                _lock(conn)
                command.upgrade(config(conn), revision)
                conn.commit()
        except sa.exc.OperationalError as exc:
            # SQLite refuses at once, without its busy wait, when a new file is switched to
            # WAL by another process meanwhile; the upgrade is idempotent, so go again.
            locked = engine.dialect.name == "sqlite" and "database is locked" in str(exc)
            if not locked or time.monotonic() > deadline:
                raise
            log.info("database locked by another instance; migrating again")
            time.sleep(0.2)
        else:
            return


def new_revision(url: str, message: str) -> None:
    """Autogenerate a revision from the difference between the models and the database."""
    engine = store.make_engine(url)
    try:
        with engine.connect() as conn:
            command.revision(config(conn), message=message, autogenerate=True)
    finally:
        engine.dispose()


def _lock(conn: Connection) -> None:
    """Serialize migrators; held until the upgrade's transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
    elif conn.dialect.name == "sqlite":
        # A plain BEGIN would let two migrators both read "no tables" before either writes.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
