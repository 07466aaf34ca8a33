"""The outbox relay leaves alone what the intake is still sending (e.g. waiting out a
broker outage): once the broker is back, each event goes out once, not twice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hub import topics
from hub.intake import Record
from hub.service import Hub
from tests.support import FakePublisher, web_record


class HeldBroker(FakePublisher):
    """Takes every send, acknowledges none until released."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.called = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, pending: Sequence[Any]) -> list[int]:
        self.calls += 1
        self.called.set()
        await self.release.wait()
        return await super().send(pending)


async def relay_while_held(service: Hub, held: HeldBroker, records: list[Record]) -> None:
    service.publisher = held  # type: ignore[assignment]
    intake = asyncio.create_task(service.intake(records))
    await asyncio.wait_for(held.called.wait(), 10)
    # With no grace, everything stored and unsent is due; a relay that sent the held event
    # again would wait for the broker here too.
    assert await asyncio.wait_for(service.relay_outbox(grace=timedelta(0)), 10) == 0
    assert held.calls == 1
    held.release.set()
    await asyncio.wait_for(intake, 10)
    assert await service.relay_outbox(grace=timedelta(0)) == 0  # noted sent by now
    assert len(held.sent) == 1


async def test_a_routing_event_being_sent_is_not_relayed(
    driven: tuple[Hub, FakePublisher],
) -> None:
    held = HeldBroker()
    record = web_record("held-1", "Jalan desa berlubang besar di depan sekolah dasar")
    await relay_while_held(driven[0], held, [record])
    assert held.sent[0].key is not None  # the routing event, keyed by its tracking id


async def test_an_outbox_event_being_sent_is_not_relayed(
    driven: tuple[Hub, FakePublisher],
) -> None:
    held = HeldBroker()
    malformed = Record(topics.raw("web"), 0, 0, None, b"{not json",
                       {"content-type": "application/json"}, datetime.now(UTC))
    await relay_while_held(driven[0], held, [malformed])
    assert held.sent[0].topic == topics.DEAD_LETTER
