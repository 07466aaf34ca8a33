"""A batch whose handling fails in a way nobody foresaw is fetched again, not passed over.

The service turns a failing record into a retry or a dead letter, so this is the last line.
Before it, FastStream went on to the next batch, whose commit passed over the failed one:
its records were lost without a trace.
"""

from __future__ import annotations

import uuid

import pytest
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from hub.consumers.records import batch_subscriber, settle
from hub.settings import Settings
from tests.support import produce, wait_for

pytestmark = pytest.mark.broker


async def test_a_batch_that_fails_unforeseen_is_fetched_again(kafka_bootstrap: str) -> None:
    topic, group = f"unforeseen-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    await produce(kafka_bootstrap, topic, [(None, b"%d" % i, {}) for i in range(20)])
    seen: list[bytes] = []
    failures: list[int] = []
    broker = KafkaBroker(kafka_bootstrap)

    @batch_subscriber(broker, topic, group=group, settings=Settings(kafka_bootstrap=kafka_bootstrap),
                      title="t", description="t")
    async def handle(body: list[bytes], msg: KafkaMessage) -> None:
        async def work() -> None:
            if not failures:
                failures.append(len(body))
                raise RuntimeError("unforeseen")
            seen.extend(body)

        await settle(msg, work(), "test", pause=0.1)

    async with broker:
        await broker.start()

        async def all_seen() -> bool:
            return len(set(seen)) == 20

        await wait_for(all_seen, 30, "every record, the failed batch's too")
    assert failures and failures[0] > 0
    assert set(seen) == {b"%d" % i for i in range(20)}
