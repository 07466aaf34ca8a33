"""Shared fixtures: the real broker (embedded, or HUB_KAFKA_BOOTSTRAP) once per session, and
a fresh database per test (or per module) on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.embedded_broker import EmbeddedBroker

# A server where we may create databases; each PostgreSQL test gets its own and drops it.
POSTGRES_ADMIN_URL = os.environ.get(
    "HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    external = os.environ.get("HUB_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[sa.Engine]:
    """The PostgreSQL server, once per session; its tests skip (with the reason) if it is away."""
    engine = sa.create_engine(
        POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        reason = str(exc).strip().splitlines()[0]
        pytest.skip(f"PostgreSQL unreachable at {engine.url!r} (HUB_TEST_POSTGRES_URL): {reason}")
    yield engine
    engine.dispose()


@contextmanager
def _fresh_database(request: pytest.FixtureRequest, folder: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{folder}/hub.db"
        return
    admin: sa.Engine = request.getfixturevalue("postgres_admin")
    name = f"hub_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            # FORCE: a hub process or a leaked pool may still hold connections.
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test, on each of SQLite and PostgreSQL."""
    with _fresh_database(request, tmp_path) as url:
        yield url


@pytest.fixture(scope="module", params=DATABASES)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One fresh database per module and kind, for a hub process the module's tests share."""
    with _fresh_database(request, tmp_path_factory.mktemp("db")) as url:
        yield url
