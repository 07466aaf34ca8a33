"""The outbox relay leaves alone what the intake is still sending (e.g. waiting out a
broker outage): once the broker is back, each event goes out once, not twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hub import topics
from hub.intake import Record
from hub.service import Hub
from tests.support import FakePublisher


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


def web(body: bytes) -> Record:
    return Record(topics.raw("web"), 0, 0, None, body, {"content-type": "application/json"},
                  datetime.now(UTC))


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
    form = {"id": "held-1", "isi": "Jalan desa berlubang besar di depan sekolah dasar",
            "kategori": "infrastruktur", "lokasi": {"kode_wilayah": "32.75"}}
    held = HeldBroker()
    await relay_while_held(driven[0], held, [web(json.dumps(form).encode())])
    assert held.sent[0].key is not None  # the routing event, keyed by its tracking id


async def test_an_outbox_event_being_sent_is_not_relayed(
    driven: tuple[Hub, FakePublisher],
) -> None:
    held = HeldBroker()
    await relay_while_held(driven[0], held, [web(b"{not json")])
    assert held.sent[0].topic == topics.DEAD_LETTER
