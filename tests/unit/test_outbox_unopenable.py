"""Outbox rows sealed under a key no longer configured: skipped, never in the others' way."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from hub import store, topics
from hub.sealing import Sealer
from hub.service import Hub
from hub.settings import Settings
from tests.support import FakePublisher


def row(n: int) -> dict[str, object]:
    return {"topic": topics.NOTIFICATION, "key": f"k-{n}", "value": f'{{"n": {n}}}'.encode(),
            "headers": {}, "created_at": datetime.now(UTC) - timedelta(hours=1)}


async def test_rows_sealed_under_a_dropped_key_do_not_hold_up_the_relay(
    driven: tuple[Hub, FakePublisher], database_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    # A relay pass reads up to 5000 unsent rows and skipped those it could not open after
    # reading them: 5000 such rows, first by id, filled every pass, and no row after them
    # was ever sent again (each pass logging 5000 warnings).
    service, publisher = driven
    lost = Sealer.from_settings(Settings(database_url=database_url,
                                         secret_key=SecretStr("a-key-since-dropped-0123")))
    with store.transaction(service.engine) as conn:
        store.add_outbox(conn, [row(n) for n in range(5000)], lost)
        store.add_outbox(conn, [row(5000)], service.rules.sealer)
    with caplog.at_level(logging.WARNING, logger="hub.store"):
        await service.relay_outbox()
    assert [p.value for p in publisher.sent] == [b'{"n": 5000}']
    assert len([r for r in caplog.records if r.name == "hub.store"]) <= 1
