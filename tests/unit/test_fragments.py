"""A multi-part SMS whose last part never comes is not held back for ever."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from hub import topics
from hub.adapters.sms_gateway import missing_part
from hub.intake import Record
from hub.model import SourceRef, tracking_id_for
from hub.service import Hub
from hub.store import FragmentRow, table_of
from tests.support import FakePublisher

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sms-gateway"
TRACKING_ID = tracking_id_for(SourceRef(system="sms-gateway", message_id="smsc-8b2c01"))


def parts(*numbers: int) -> list[Record]:
    return [
        Record(topics.raw("sms-gateway"), 0, n, None, (FIXTURES / f"fragment_{n}.json").read_bytes(),
               {"content-type": "application/json"}, datetime.now(UTC))
        for n in numbers
    ]


def routed(publisher: FakePublisher) -> dict[str, dict[str, object]]:
    return {p.key or "": json.loads(p.value) for p in publisher.sent}


def fragments_left(service: Hub) -> int:
    with service.engine.connect() as conn:
        return int(conn.execute(
            sa.select(sa.func.count()).select_from(table_of(FragmentRow))
        ).scalar_one())


async def test_a_complete_group_is_routed_at_once(driven: tuple[Hub, FakePublisher]) -> None:
    service, publisher = driven
    await service.intake(parts(2, 3))
    assert routed(publisher) == {}
    await service.intake(parts(1))
    assert list(routed(publisher)) == [TRACKING_ID]
    assert fragments_left(service) == 0


async def test_a_group_missing_a_part_is_routed_with_the_gap_after_the_wait(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, publisher = driven
    await service.intake(parts(1, 3))
    assert await service.expire_fragments(timedelta(hours=1)) == 0  # not waited long enough
    assert routed(publisher) == {} and fragments_left(service) == 2

    assert await service.expire_fragments(timedelta(0)) == 1
    event = routed(publisher)[TRACKING_ID]
    description = event["complaint"]["description"]  # type: ignore[index]
    assert missing_part(2, 3).strip() in description
    assert "Jembatan penghubung" in description
    assert fragments_left(service) == 0
    assert await service.expire_fragments(timedelta(0)) == 0  # joined once
    assert len(publisher.sent) == 1
