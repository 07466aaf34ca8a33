"""Kafka entrypoint for every raw topic: decode the batch, hand it to the hub, commit."""

from __future__ import annotations

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from hub import topics
from hub.adapters import SOURCES
from hub.consumers.records import batch_subscriber, settle, to_records
from hub.service import Hub
from hub.settings import Settings


def register(broker: KafkaBroker, hub: Hub, settings: Settings) -> None:
    @batch_subscriber(
        broker,
        *[topics.raw(name) for name in SOURCES],
        group=f"{settings.kafka_group}-intake",
        settings=settings,
        title="intake",
        description="Raw messages from every source, normalized into complaints and routed.",
    )
    async def intake(body: list[bytes], msg: KafkaMessage) -> None:
        await settle(msg, hub.intake(to_records(msg.raw_message)), "intake")
