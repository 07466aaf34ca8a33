"""Agency clocks: an event stamped a little ahead is applied; one stamped years ahead, or at
a time the database cannot hold, is refused at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

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


async def test_a_reply_stamped_before_the_question_ends_the_pause_at_once(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # The agency's system asks the reporter with a clock ten minutes ahead; the reply comes
    # from another system, on time. The pause cannot end before it began: it lasts nothing,
    # and the complaint goes on (it was stuck in needs_info, its clock stopped, after retries).
    service, publisher = driven
    await service.intake([web_record("skew-1", "Lampu penerangan jalan di Jalan Cut Meutia "
                                     "mati sudah seminggu")])
    (routed,) = [json.loads(p.value) for p in publisher.sent]
    tracking_id, agency = routed["tracking_id"], routed["agency_code"]
    now = datetime.now(UTC)
    steps = [(Status.DISPOSITIONED, now), (Status.NEEDS_INFO, now + timedelta(minutes=10)),
             (Status.REPORTER_REPLIED, now), (Status.IN_PROGRESS, now + timedelta(minutes=11))]
    publisher.sent.clear()
    for i, (status, at) in enumerate(steps):
        event = FollowUpEvent(event_id=f"skew-{i}", tracking_id=tracking_id,
                              agency_code=agency, status=status, at=at)
        await service.follow_up([Record(topics.FOLLOW_UP, 0, i, None,
                                        event.model_dump_json().encode(), {}, now)])
    assert not [p for p in publisher.sent if p.topic in (topics.DEAD_LETTER, topics.RETRY)]
    with service.engine.connect() as conn:
        status, due_kind = conn.execute(sa.text(
            "SELECT status, due_kind FROM complaint WHERE tracking_id = :t"), {"t": tracking_id},
        ).one()
    assert (status, due_kind) == ("in_progress", "settle")
