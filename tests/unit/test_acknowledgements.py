"""An acknowledgement the broker did not keep is a failure of the send, not a success."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from hub.producers.publisher import BrokerWentBackError, Publisher, went_back
from hub.settings import Settings
from hub.store import Pending


def test_an_offset_not_above_the_last_of_its_partition_went_back() -> None:
    acked: dict[tuple[str, int], int] = {}
    assert not any(went_back(acked, "t", 0, offset) for offset in (0, 1, 2))
    assert not went_back(acked, "t", 1, 0)  # another partition counts its own
    assert went_back(acked, "t", 0, 2)  # the same offset twice: one of them was not kept
    assert not went_back(acked, "t", 0, 3)
    assert went_back(acked, "t", 0, 0)  # a broker restarted empty
    assert not went_back(acked, "t", 0, 1)  # counted from there on


class Broker:
    """A producer whose acknowledgements carry the offsets it is given."""

    def __init__(self, offsets: Iterator[int]) -> None:
        self.offsets = offsets

    async def send(self, topic: str, value: bytes, **_: object) -> asyncio.Future[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        # Resolved later, as the broker's answer resolves it.
        asyncio.get_running_loop().call_soon(future.set_result, SimpleNamespace(
            topic=topic, partition=0, offset=next(self.offsets)))
        return future


async def test_a_send_whose_record_went_back_fails_and_the_publisher_checks_its_topics(
) -> None:
    # The embedded broker restarted fast acknowledged records it then did not have: the
    # ingress answered 202 for complaints that were nowhere (2-4 of 500 in a restart).
    publisher = Publisher(Settings())
    publisher._producer = Broker(iter([5, 6, 7, 0, 1]))
    publisher._known_topics = {"t"}
    one = [Pending(0, "t", None, b"x", {})]
    assert await publisher.send(one + one) == [0, 0]
    with pytest.raises(BrokerWentBackError):
        await publisher.send(one + one)  # 7, then 0
    assert publisher._unsure
    publisher._unsure = False
    assert await publisher.send(one) == [0]  # 1: counted from the restart
