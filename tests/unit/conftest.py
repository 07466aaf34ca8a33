"""A `Hub` driven directly, on each database, with a publisher that only keeps what it got."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub import migrate, store
from hub.calendar import load_calendar_config
from hub.deadlines import Rules
from hub.routing import Directory
from hub.service import Hub
from tests.support import FakePublisher


@pytest.fixture
def driven(database_url: str) -> Iterator[tuple[Hub, FakePublisher]]:
    migrate.upgrade(database_url)
    engine = store.make_engine(database_url)
    publisher = FakePublisher()
    rules = Rules.of(Directory.load(), load_calendar_config())
    yield Hub(engine, publisher, rules), publisher  # type: ignore[arg-type]
    engine.dispose()
