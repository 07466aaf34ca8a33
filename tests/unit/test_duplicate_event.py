"""A second report of a complaint reaches the agency holding the first, as a duplicate event."""

from __future__ import annotations

import json

from hub.model import DuplicateEvent, RoutingEvent
from hub.service import Hub
from tests.support import FakePublisher, web_record

TEXT = "Lampu penerangan jalan mati sepanjang Jl. Ahmad Yani depan Stasiun Bekasi sejak seminggu"


def by_type(publisher: FakePublisher, kind: str) -> list[tuple[str, dict[str, object]]]:
    events = [(p.topic, json.loads(p.value)) for p in publisher.sent]
    return [(topic, e) for topic, e in events if e.get("type") == kind]


async def test_the_holder_hears_of_a_second_report_without_the_anonymous_reporter(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, publisher = driven
    siti = {"nama": "Siti", "telepon": "+6281234567890"}
    await service.intake([web_record("w-1", TEXT, pelapor=siti)])
    ((topic, routing),) = by_type(publisher, "routing")
    first = RoutingEvent.model_validate(routing)

    await service.intake([web_record("w-2", TEXT, anonim=True, pelapor={"nama": "Budi"})])
    assert len(by_type(publisher, "routing")) == 1  # not routed on its own
    ((dup_topic, raw),) = by_type(publisher, "duplicate")
    event = DuplicateEvent.model_validate(raw)
    assert dup_topic == topic
    assert (event.tracking_id, event.agency_code) == (first.tracking_id, first.agency_code)
    assert event.duplicate.tracking_id != first.tracking_id
    assert event.matched_by == "text"
    assert event.duplicate.reporter.is_empty()  # anonymous: nobody named downstream
    assert publisher.sent[-1].key == first.tracking_id  # ordered with the original's events

    await service.intake([web_record("w-2", TEXT, anonim=True)])  # the same report delivered again
    assert len(by_type(publisher, "duplicate")) == 1
