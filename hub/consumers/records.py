"""Turn aiokafka records into the hub's `Record`, the only Kafka type the core sees."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aiokafka.structs import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage

from hub.intake import Record
from hub.settings import Settings

log = logging.getLogger(__name__)


async def settle(msg: KafkaMessage, work: Awaitable[None], what: str, pause: float = 5.0) -> None:
    """Commit the batch once `work` is done; if it raised, fetch the batch again.

    The service turns a failing record into a retry or a dead letter and waits out outages,
    so an error here is one nobody foresaw. Left to FastStream, the next batch's commit
    would pass over this one and its records would be lost unseen; fetched again they wait,
    and the consumer's lag shows it.
    """
    try:
        await work
    except Exception as exc:
        # By type only: a traceback may quote a citizen's data.
        log.error("%s batch failed unforeseen (%s); fetching it again in %.0f s",  # noqa: TRY400
                  what, type(exc).__name__, pause)
        await asyncio.sleep(pause)
        await msg.nack()
        return
    await msg.ack()


async def keep_bytes(msg: KafkaMessage) -> bytes:
    """FastStream decoder that leaves the body alone.

    Decoding is ours: a malformed body must reach the adapter or the follow-up
    parser (and so the dead-letter topic) rather than fail inside FastStream.
    """
    return msg.body


async def readable_headers(
    records: tuple[ConsumerRecord[bytes, bytes], ...],
    original: Callable[[Any], Awaitable[StreamMessage[Any]]],
) -> StreamMessage[Any]:
    """FastStream parser that lets a batch with a header value not in UTF-8, or null, through.

    FastStream's batch parser decodes every header value strictly and fails the whole batch
    before the handler runs, and the next batch's commit then passes over it: one producer's
    stray byte lost every record fetched beside it. Here it parses copies whose values are
    readable, and the handler gets the records as they came (`to_records` reads them so).
    """
    try:
        return await original(records)
    except (UnicodeDecodeError, AttributeError):  # a value not UTF-8, or null (None)
        copies = tuple(
            replace(r, headers=[(k, (v or b"").decode(errors="replace").encode())
                                for k, v in r.headers])
            for r in records
        )
        message = await original(copies)
        message.raw_message = records
        return message


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
            headers={k: (v or b"").decode(errors="replace") for k, v in (r.headers or ())},
            timestamp=_stamped(r.timestamp),
        )
        for r in batch
    ]


def _stamped(ms: int) -> datetime:
    """A record's timestamp; now when its producer set one no datetime can hold (past year
    9999): it failed the whole batch before any record of it was looked at."""
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def batch_subscriber(
    broker: KafkaBroker, *topics: str, group: str, settings: Settings, title: str,
    description: str, max_records: int | None = None, fetch_max_wait_ms: int | None = None,
) -> Callable[[Callable[..., Awaitable[None]]], Any]:
    """A batch subscriber the way every hub entrypoint needs it.

    MANUAL acknowledgement: FastStream's ACK policy commits even when the handler
    raises, so each handler commits itself, only after its batch is stored and its
    events acknowledged. Bodies stay bytes (`keep_bytes`), headers need not be UTF-8
    (`readable_headers`).
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
        parser=readable_headers,
        decoder=keep_bytes,
        title=title,
        description=description,
    )
    return subscriber
