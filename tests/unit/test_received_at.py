"""`hub-received-at` comes with the record; one the database cannot hold must not cost the
complaint its routing (it would fail to store, be retried four times and dead-lettered)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from hub.adapters import RawMessage
from hub.intake import to_raw
from hub.service import Hub
from tests.support import FakePublisher, web_record


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
