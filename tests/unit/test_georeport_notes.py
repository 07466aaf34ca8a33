"""A GeoReport request's last note is the one its status came with, whatever time the agency
systems stamped on their events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.model import Status
from hub.service import Hub
from tests.support import FakePublisher
from tests.unit.test_follow_up_refusals import send
from tests.unit.test_georeport_duplicates import looked_up, open311_record


async def test_the_answer_is_the_last_note_though_its_clock_runs_behind(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # The holder passes the request to the unit beside it, whose clock runs five minutes
    # behind: its answer was stamped before the hand-on, and the lookup, reading notes by
    # their stamps, showed the holder's note to the unit under the status of the answer.
    service, publisher = driven
    await service.intake([open311_record(0, "Ani")])
    (routed,) = [p for p in publisher.sent if p.topic.startswith("lapor.agency.")]
    tracking_id = str(routed.key)
    now = datetime.now(UTC)
    assert not await send(service, publisher, tracking_id, "kota-bekasi-dbmsda",
                          Status.DISPOSITIONED, "hand-on", target_agency="kota-bekasi-dlh",
                          message="Mohon koordinasi dengan DLH.", at=now)
    assert not await send(service, publisher, tracking_id, "kota-bekasi-dlh", Status.RESPONDED, "answer",
                          message="Saluran sudah dibersihkan.", at=now - timedelta(minutes=5))
    (shown,) = looked_up(service, [tracking_id])
    assert shown["status_notes"] == "responded – Saluran sudah dibersihkan."
