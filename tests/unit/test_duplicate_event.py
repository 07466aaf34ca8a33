"""A second report of a complaint reaches the agency holding the first, as a duplicate event."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hub import topics
from hub.intake import Record
from hub.model import DuplicateEvent, RoutingEvent
from hub.service import Hub
from tests.support import FakePublisher

TEXT = "Lampu penerangan jalan mati sepanjang Jl. Ahmad Yani depan Stasiun Bekasi sejak seminggu"


def web(form_id: str, **extra: object) -> Record:
    form = {"id": form_id, "isi": TEXT, "kategori": "infrastruktur",
            "lokasi": {"kode_wilayah": "32.75"}, **extra}
    return Record(topics.raw("web"), 0, 0, None, json.dumps(form).encode(),
                  {"content-type": "application/json"}, datetime.now(UTC))


def by_type(publisher: FakePublisher, kind: str) -> list[tuple[str, dict[str, object]]]:
    events = [(p.topic, json.loads(p.value)) for p in publisher.sent]
    return [(topic, e) for topic, e in events if e.get("type") == kind]


async def test_the_holder_hears_of_a_second_report_without_the_anonymous_reporter(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, publisher = driven
    await service.intake([web("w-1", pelapor={"nama": "Siti", "telepon": "+6281234567890"})])
    ((topic, routing),) = by_type(publisher, "routing")
    first = RoutingEvent.model_validate(routing)

    await service.intake([web("w-2", anonim=True, pelapor={"nama": "Budi"})])
    assert len(by_type(publisher, "routing")) == 1  # not routed on its own
    ((dup_topic, raw),) = by_type(publisher, "duplicate")
    event = DuplicateEvent.model_validate(raw)
    assert dup_topic == topic
    assert (event.tracking_id, event.agency_code) == (first.tracking_id, first.agency_code)
    assert event.duplicate.tracking_id != first.tracking_id
    assert event.matched_by == "text"
    assert event.duplicate.reporter.is_empty()  # anonymous: nobody named downstream
    assert publisher.sent[-1].key == first.tracking_id  # ordered with the original's events

    await service.intake([web("w-2", anonim=True)])  # the same report delivered again
    assert len(by_type(publisher, "duplicate")) == 1
