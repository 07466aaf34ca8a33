"""Kafka entrypoint for agencies' follow-up events: decode the batch, apply, commit."""

from __future__ import annotations

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from hub import topics
from hub.consumers.records import batch_subscriber, settle, to_records
from hub.service import Hub
from hub.settings import Settings


def register(broker: KafkaBroker, hub: Hub, settings: Settings) -> None:
    # Events of one complaint share a key, hence a partition, hence their order here.
    # Deadlines count in working days: a fetch may wait 100 ms for more, sparing the
    # broker and the hub 50 idle polls a second (the intake's wait is for latency).
    @batch_subscriber(
        broker,
        topics.FOLLOW_UP,
        group=f"{settings.kafka_group}-followup",
        settings=settings,
        fetch_max_wait_ms=max(settings.fetch_max_wait_ms, 100),
        title="follow-up",
        description="Agencies' status events (FollowUpEvent), keyed by tracking id.",
    )
    async def follow_up(body: list[bytes], msg: KafkaMessage) -> None:
        await settle(msg, hub.follow_up(to_records(msg.raw_message)), "follow-up")
