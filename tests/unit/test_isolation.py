"""One poison record: retried through the retry topic with backoff, then dead-lettered,
while the good records of its batch go through."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from hub import dlq, metrics, store, topics
from hub.calendar import load_calendar_config
from hub.deadlines import Rules
from hub.intake import Record
from hub.model import MAX_EVENT_BYTES
from hub.routing import Directory
from hub.service import (
    ATTEMPT,
    NOT_BEFORE,
    ORIGINAL_PLACE,
    ORIGINAL_TOPIC,
    RETRY_DELAYS,
    RETRY_HEADERS,
    Hub,
    as_first_came,
    retry_wait,
)
from tests.support import FakePublisher


def record(n: int, headers: dict[str, str] | None = None) -> Record:
    return Record(topics.raw("web"), 0, n, None, f"body-{n}".encode(), headers or {},
                  datetime.now(UTC))


@pytest.fixture
def hub(tmp_path: Path) -> tuple[Hub, FakePublisher]:
    engine = store.make_engine(f"sqlite:///{tmp_path}/hub.db")
    SQLModel.metadata.create_all(engine)
    publisher = FakePublisher()
    rules = Rules.of(Directory.load(), load_calendar_config())
    return Hub(engine, publisher, rules), publisher  # type: ignore[arg-type]


async def test_poison_record_is_retried_then_dead_lettered(hub: tuple[Hub, FakePublisher]) -> None:
    service, publisher = hub
    handled: list[int] = []

    async def handle(records: Sequence[Record]) -> None:
        if any(r.offset == 2 for r in records):
            raise RuntimeError("cannot handle record 2")
        handled.extend(r.offset or 0 for r in records)

    await service._in_isolation([record(1), record(2), record(3)], "intake", handle)
    assert handled == [1, 3]
    (retry,) = publisher.sent
    headers = dict(retry.headers)
    assert retry.topic == topics.RETRY and retry.value == b"body-2"
    assert headers[ATTEMPT] == "1" and headers[ORIGINAL_TOPIC] == topics.raw("web")
    wait = datetime.fromisoformat(headers[NOT_BEFORE]) - datetime.now(UTC)
    assert timedelta(seconds=RETRY_DELAYS[0] - 2) < wait <= timedelta(seconds=RETRY_DELAYS[0])

    # Each retry fails again; after the last delay it is a dead letter, not a retry.
    current = record(2, headers)
    for attempt in range(2, len(RETRY_DELAYS) + 2):
        publisher.sent.clear()
        await service._in_isolation([current], "intake", handle)
        (out,) = publisher.sent
        if attempt <= len(RETRY_DELAYS):
            assert out.topic == topics.RETRY
            current = record(2, dict(out.headers))
            assert current.headers[ATTEMPT] == str(attempt)
        else:
            assert out.topic == topics.DEAD_LETTER
            letter = json.loads(out.value)
            assert letter["reason"] == "processing_error"
            assert f"after {len(RETRY_DELAYS)} retries" in letter["detail"]
    with service.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM dead_letter")).scalar_one() == 1


async def test_a_failing_record_too_large_to_retry_is_dead_lettered_at_once(
    hub: tuple[Hub, FakePublisher],
) -> None:
    """Sent back with the retry headers it would exceed the broker's limit for ever."""
    service, publisher = hub
    big = Record(topics.raw("web"), 0, 7, None, b"{" + b"x" * 999_900, {}, datetime.now(UTC))

    async def handle(records: Sequence[Record]) -> None:
        raise RuntimeError("cannot handle it")

    await service._in_isolation([big], "intake", handle)
    (out,) = publisher.sent
    letter = json.loads(out.value)
    assert out.topic == topics.DEAD_LETTER and "too large to retry" in letter["detail"]
    # Its bytes are too large to travel with the event as well: the row keeps them.
    assert (letter["original"], letter["original_omitted"]) == ("", True)
    assert len(out.value) < MAX_EVENT_BYTES
    with service.engine.connect() as conn:
        sealed = conn.execute(sa.text("SELECT original FROM dead_letter")).scalar_one()
    assert service.rules.sealer.open(sealed) == big.value


async def test_a_hub_attempt_header_that_is_not_a_number_counts_as_none(
    hub: tuple[Hub, FakePublisher],
) -> None:
    """The record's own headers travel on with it; a producer may have set this one."""
    service, publisher = hub

    async def handle(records: Sequence[Record]) -> None:
        raise RuntimeError("cannot handle it")

    await service._in_isolation([record(5, {ATTEMPT: "banana"})], "intake", handle)
    (retry,) = publisher.sent
    assert retry.topic == topics.RETRY and dict(retry.headers)[ATTEMPT] == "1"


@pytest.mark.parametrize(("not_before", "wait"), [
    (None, 0.0), ("soon", 0.0), ("2026-11-24T10:00:00", 0.0),  # absent, unreadable, no zone
    ("2026-11-24T09:59:00+00:00", 0.0), ("2026-11-24T10:00:30+00:00", 30.0),
    ("9999-12-31T00:00:00+00:00", max(RETRY_DELAYS)),  # never longer than the hub waits
])
def test_retry_wait(not_before: str | None, wait: float) -> None:
    headers = {NOT_BEFORE: not_before} if not_before is not None else {}
    assert retry_wait(headers, datetime(2026, 11, 24, 10, tzinfo=UTC)) == wait


async def test_a_retried_record_is_the_record_it_first_was(
    hub: tuple[Hub, FakePublisher], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A rebalance while a retry waited: two copies on the retry topic, each dead-lettered
    # at last – two letters for one record, each naming the retry topic's place as the
    # original topic's (an operator following it found an unrelated record).
    service, publisher = hub

    async def handle(records: Sequence[Record]) -> None:
        raise RuntimeError("cannot handle it")

    first = Record(topics.raw("web"), 2, 34, None, b"body", {}, datetime(2026, 11, 25, tzinfo=UTC))
    await service._in_isolation([first], "intake", handle)
    (retry,) = publisher.sent
    last = {**dict(retry.headers), ATTEMPT: str(len(RETRY_DELAYS))}
    monkeypatch.setattr(service, "_intake", handle)
    for partition, offset in ((1, 1), (2, 1)):  # the copies' places on the retry topic
        await service.retry(Record(topics.RETRY, partition, offset, None, b"body", last,
                                   datetime.now(UTC)))
    with service.engine.connect() as conn:
        letters = conn.execute(sa.text(
            'SELECT topic, partition, "offset" FROM dead_letter')).all()
    assert [tuple(r) for r in letters] == [(topics.raw("web"), 2, 34)]


async def test_a_letter_written_once_counts_once(hub: tuple[Hub, FakePublisher]) -> None:
    # A retry record whose letter was written, delivered again (the hub stopped before it
    # committed the offset): no second letter, and lapor_dead_letters_total counted two.
    service, publisher = hub
    spent = {ATTEMPT: str(len(RETRY_DELAYS)), ORIGINAL_TOPIC: topics.raw("web"),
             ORIGINAL_PLACE: f"0:77:{datetime(2026, 11, 25, tzinfo=UTC).isoformat()}"}
    again = Record(topics.RETRY, 0, 5, None, b"body", spent, datetime.now(UTC))
    counted = metrics.dead_letters.labels("intake", "processing_error")
    before = counted._value.get()
    for _ in range(2):
        await service.retry_later(as_first_came(again), "intake", "RuntimeError: failed")
    assert [p.topic for p in publisher.sent] == [topics.DEAD_LETTER]
    assert counted._value.get() - before == 1


async def test_a_replayed_letter_is_a_record_anew(hub: tuple[Hub, FakePublisher]) -> None:
    # Replayed with the retry headers it was dead-lettered with, a record had no retry left
    # (hub-attempt 4), and a failure of it was taken for its first one's, whose letter was
    # already replayed: no letter at all.
    service, publisher = hub

    async def handle(records: Sequence[Record]) -> None:
        raise RuntimeError("cannot handle it")

    spent = {ATTEMPT: str(len(RETRY_DELAYS)), ORIGINAL_TOPIC: topics.raw("web"),
             ORIGINAL_PLACE: f"0:500:{datetime(2026, 11, 25, tzinfo=UTC).isoformat()}"}
    await service.retry(Record(topics.RETRY, 1, 1, None, b"body", spent, datetime.now(UTC)))
    (pending,) = dlq.replayable(service.engine, service.rules.sealer, [], None).pending
    assert not set(pending.headers) & set(RETRY_HEADERS)
    dlq.mark_replayed(service.engine, [pending.id])
    publisher.sent.clear()
    replayed = Record(pending.topic, 0, 9000, None, pending.value, dict(pending.headers),
                      datetime.now(UTC))
    await service._in_isolation([replayed], "intake", handle)
    (retry,) = publisher.sent
    assert retry.topic == topics.RETRY  # a retry of its own, from its own place
    assert dict(retry.headers)[ORIGINAL_PLACE].startswith("0:9000:")
