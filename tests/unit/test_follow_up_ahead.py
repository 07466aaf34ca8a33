"""Agency clocks: an event stamped a little ahead is applied; one stamped years ahead, or at
a time the database cannot hold, is refused at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from hub import topics
from hub.intake import Record
from hub.model import FollowUpEvent, Status
from hub.service import Hub
from tests.support import FakePublisher, web_record


def follow_up(tracking_id: str, agency: str, at: datetime | str) -> Record:
    event = FollowUpEvent(event_id=f"ahead-{at}", tracking_id=tracking_id, agency_code=agency,
                          status=Status.VERIFIED, at=datetime.now(UTC))
    body = json.loads(event.model_dump_json())
    body["at"] = at if isinstance(at, str) else at.isoformat()
    return Record(topics.FOLLOW_UP, 0, 0, None, json.dumps(body).encode(), {},
                  datetime.now(UTC))


@pytest.mark.parametrize(("at", "refused"), [
    # The demo's agencies stamp their simulated time, days ahead of the hub's.
    (datetime.now(UTC) + timedelta(days=20), None),
    (datetime.now(UTC) + timedelta(days=400), "ahead of the hub's clock"),
    ("9999-12-30T00:00:00+00:00", "ahead of the hub's clock"),  # counting to it: 5 s of CPU
    ("9999-12-31T23:59:59-05:00", "no UTC equivalent"),  # storing it would overflow
    ("0001-01-01T00:00:00+05:00", "no UTC equivalent"),
])
async def test_an_event_stamped_years_ahead_or_out_of_range_is_a_dead_letter(
    driven: tuple[Hub, FakePublisher], at: datetime | str, refused: str | None,
) -> None:
    service, publisher = driven
    await service.intake([web_record("ahead-1", "Jembatan penyeberangan di Jalan Ahmad Yani "
                                     "rusak dan berbahaya")])
    (routed,) = [json.loads(p.value) for p in publisher.sent]
    publisher.sent.clear()
    await service.follow_up([follow_up(routed["tracking_id"], routed["agency_code"], at)])
    letters = [json.loads(p.value) for p in publisher.sent if p.topic == topics.DEAD_LETTER]
    if refused is None:
        assert not letters
    else:
        (letter,) = letters
        assert letter["reason"] == "invalid_follow_up" and refused in letter["detail"]
