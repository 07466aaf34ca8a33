"""The publisher keeps its topics on the real broker: one topic stands for all each watch
interval, the full list is compared only every FULL_CHECK_EVERY intervals."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from hub.producers import publisher as publisher_module
from hub.producers.publisher import Publisher
from hub.settings import Settings
from tests.support import wait_for

pytestmark = pytest.mark.broker


async def test_one_topic_stands_for_all_between_full_checks(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher_module, "FULL_CHECK_EVERY", 10)
    run = uuid.uuid4().hex[:8]
    names = [f"pt{run}.agency.{code}" for code in ("a", "b", "c")]
    publisher = Publisher(Settings(kafka_bootstrap=kafka_bootstrap), watch_interval=0.1)
    await publisher.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await publisher.ensure_topics(names)
        listed = asked = 0
        list_topics, has_sentinel = publisher._admin.list_topics, publisher._has_sentinel

        async def counted_list() -> list[str]:
            nonlocal listed
            listed += 1
            topics: list[str] = await list_topics()
            return topics

        async def counted_ask() -> bool:
            nonlocal asked
            asked += 1
            return await has_sentinel()

        monkeypatch.setattr(publisher._admin, "list_topics", counted_list)
        monkeypatch.setattr(publisher, "_has_sentinel", counted_ask)

        async def intervals() -> bool:
            return listed + asked >= 20  # each interval either asks or lists

        await wait_for(intervals, 20, "20 watch intervals", every=0.05)
        assert 1 <= listed <= 3, (listed, asked)  # every 10th interval, not every one

        async def back(name: str) -> bool:
            return name in await admin.list_topics()

        # The stand-in (the first name) gone: noticed at the next interval (0.1 s).
        await admin.delete_topics([names[0]])
        assert await wait_for(lambda: back(names[0]), 5, "the stand-in back", every=0.05) < 5
        # Another one gone: noticed at the next full comparison (every 10 intervals, 1 s).
        await admin.delete_topics([names[2]])
        assert await wait_for(lambda: back(names[2]), 10, "another topic back", every=0.05) < 10
    finally:
        await admin.close()
        await publisher.stop()
