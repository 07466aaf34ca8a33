"""`hub-received-at` comes with the record; one the database cannot hold must not cost the
complaint its routing (it would fail to store, be retried four times and dead-lettered)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from itertools import count

import pytest
import sqlalchemy as sa

from hub import store, topics
from hub.adapters import RawMessage
from hub.intake import Record, to_raw
from hub.model import FollowUpEvent, Status
from hub.service import Hub
from hub.store import ComplaintRow, table_of
from tests.support import FakePublisher, overdue, web_record

OFFSETS = count()


@pytest.mark.parametrize("received", [
    "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "yesterday",
])
async def test_a_received_at_without_a_utc_equivalent_falls_back_to_the_record_time(
    driven: tuple[Hub, FakePublisher], received: str,
) -> None:
    service, publisher = driven
    base = web_record(f"rcv-{received}", "Lampu jalan di depan balai desa mati sejak Senin")
    record = replace(base, headers={**base.headers, "hub-received-at": received})
    raw = to_raw(record)
    assert isinstance(raw, RawMessage) and raw.received_at == record.timestamp
    await service.intake([record])
    (event,) = [json.loads(p.value) for p in publisher.sent]
    assert event["type"] == "routing"
    assert event["complaint"]["received_at"].startswith(f"{record.timestamp:%Y-%m-%d}")


def test_a_received_at_far_in_the_past_is_kept() -> None:
    """A provincial backlog may be years old; only times the database cannot hold fall back."""
    base = web_record("rcv-old", "Jalan berlubang di Kampung Baru belum diperbaiki")
    record = replace(base, headers={**base.headers, "hub-received-at": "2019-03-04T05:06:07+07:00"})
    raw = to_raw(record)
    assert isinstance(raw, RawMessage)
    assert raw.received_at.isoformat() == "2019-03-04T05:06:07+07:00"


async def answer(service: Hub, tracking_id: str, agency: str, *statuses: Status) -> list[str]:
    """Apply the agency's events in turn; the topics of what each left to send."""
    publisher: FakePublisher = service.publisher  # type: ignore[assignment]
    topics_sent: list[str] = []
    for status in statuses:
        publisher.sent.clear()
        event = FollowUpEvent(event_id=f"{tracking_id}-{status}", tracking_id=tracking_id,
                              agency_code=agency, status=status, at=datetime.now(UTC))
        await service.follow_up([Record(topics.FOLLOW_UP, 0, next(OFFSETS), None,
                                        event.model_dump_json().encode(), {}, datetime.now(UTC))])
        topics_sent += [p.topic for p in publisher.sent]
    return topics_sent


async def routed(service: Hub, record: Record) -> tuple[str, str]:
    publisher: FakePublisher = service.publisher  # type: ignore[assignment]
    publisher.sent.clear()
    await service.intake([record])
    (event,) = [json.loads(p.value) for p in publisher.sent]
    return event["tracking_id"], event["agency_code"]


async def test_a_received_at_ahead_of_the_hub_blocks_neither_the_answer_nor_the_watch(
    driven: tuple[Hub, FakePublisher],
) -> None:
    """A raw record stamped on the last day a date holds (its `hub-received-at`, or its
    producer's clock) was stored so: the agency's close of it failed with OverflowError, was
    retried and dead-lettered, and once its auto-close came due the deadline watch failed at
    every pass – no complaint of any agency was escalated or closed any more."""
    service, _ = driven
    ahead = datetime(9999, 12, 31, tzinfo=UTC)
    record = web_record("rcv-ahead", "Antrian di puskesmas kecamatan lambat sekali setiap pagi",
                        received_at=ahead)
    raw = to_raw(record)
    assert isinstance(raw, RawMessage) and raw.received_at == record.timestamp
    closed, agency = await routed(service, record)
    sent = await answer(service, closed, agency, Status.IN_PROGRESS, Status.RESPONDED,
                        Status.CLOSED)
    assert topics.RETRY not in sent and topics.DEAD_LETTER not in sent

    # One stored so before the hub held such times back, its auto-close due; and another
    # complaint past its deadline: the watch closes the one and escalates the other.
    stored, agency = await routed(service, web_record(
        "rcv-stored", "Lampu penerangan jalan di gang tujuh padam dua minggu"))
    await answer(service, stored, agency, Status.IN_PROGRESS, Status.RESPONDED)
    late, _ = await routed(service, web_record(
        "rcv-late", "Jalan berlubang di depan pasar belum ditambal"))
    with store.transaction(service.engine) as conn:
        assert overdue(conn, [stored, late]) == 2
        table = table_of(ComplaintRow)
        conn.execute(sa.update(table).where(table.c.tracking_id == stored)
                     .values(received_at=ahead))
    assert await service.watch_deadlines() == 2
