"""Turn aiokafka records into the hub's `Record`, the only Kafka type the core sees."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from hub.intake import Record
from hub.settings import Settings


async def keep_bytes(msg: KafkaMessage) -> bytes:
    """FastStream decoder that leaves the body alone.

    Decoding is ours: a malformed body must reach the adapter or the follow-up
    parser (and so the dead-letter topic) rather than fail inside FastStream.
    """
    return msg.body


def to_records(raw: Any) -> list[Record]:
    """FastStream hands a batch as a tuple of ConsumerRecords, a single one otherwise."""
    batch: Iterable[Any] = raw if isinstance(raw, tuple) else (raw,)
    return [
        Record(
            topic=r.topic,
            partition=r.partition,
            offset=r.offset,
            key=r.key,
            value=r.value if r.value is not None else b"",
            headers={k: v.decode(errors="replace") for k, v in (r.headers or ())},
            timestamp=datetime.fromtimestamp(r.timestamp / 1000, UTC),
        )
        for r in batch
    ]


def batch_subscriber(
    broker: KafkaBroker, *topics: str, group: str, settings: Settings, title: str,
    description: str, max_records: int | None = None, fetch_max_wait_ms: int | None = None,
) -> Callable[[Callable[..., Awaitable[None]]], Any]:
    """A batch subscriber the way every hub entrypoint needs it.

    MANUAL acknowledgement: FastStream's ACK policy commits even when the handler
    raises, so each handler commits itself, only after its batch is stored and its
    events acknowledged. Bodies stay bytes (`keep_bytes`).
    """
    subscriber: Callable[[Callable[..., Awaitable[None]]], Any] = broker.subscriber(
        *topics,
        group_id=group,
        batch=True,
        max_records=max_records or settings.batch_size,
        batch_timeout_ms=settings.batch_timeout_ms,
        fetch_max_wait_ms=settings.fetch_max_wait_ms if fetch_max_wait_ms is None
        else fetch_max_wait_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        decoder=keep_bytes,
        title=title,
        description=description,
    )
    return subscriber
