"""Kafka entrypoint for the retry topic: wait until each record's not-before, then retry it."""

from __future__ import annotations

import asyncio

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from hub import topics
from hub.consumers.records import batch_subscriber, settle, to_records
from hub.service import Hub, retry_wait, utcnow
from hub.settings import Settings


def register(broker: KafkaBroker, hub: Hub, settings: Settings) -> None:
    # Small batches: a record may wait minutes for its time, and its batch waits with it.
    # A long fetch wait: retries are seconds late anyway, and each idle poll costs the
    # hub and the broker CPU (at 20 ms, 50 fetches a second for nothing).
    @batch_subscriber(
        broker,
        topics.RETRY,
        group=f"{settings.kafka_group}-retry",
        settings=settings,
        max_records=50,
        fetch_max_wait_ms=max(settings.fetch_max_wait_ms, 500),
        title="retry",
        description="Records that failed for an unknown reason, retried after a delay "
        "(headers hub-attempt, hub-not-before, hub-original-topic), then dead-lettered.",
    )
    async def retry(body: list[bytes], msg: KafkaMessage) -> None:
        async def work() -> None:
            for record in to_records(msg.raw_message):
                wait = retry_wait(record.headers, utcnow())
                if wait > 0:
                    await asyncio.sleep(wait)
                await hub.retry(record)

        await settle(msg, work(), "retry")
