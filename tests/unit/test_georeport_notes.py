"""A GeoReport request's last note is the one its status came with, whatever time the agency
systems stamped on their events, and no close a reply undid."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from hub import store, topics, watcher
from hub.followup import store_follow_ups
from hub.intake import Record, plan_intake, store_intake
from hub.model import FollowUpEvent, Status
from hub.service import Hub
from tests.support import FakePublisher
from tests.unit.test_follow_up_refusals import send
from tests.unit.test_georeport_duplicates import looked_up, open311_record

WIB = timezone(timedelta(hours=7))


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


async def test_a_reply_that_reopened_an_auto_close_does_not_show_the_close(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # The reporter replied a minute before the auto-close, the reply was applied after it and
    # reopened the request: its note said it was closed for want of a reply.
    service, _ = driven
    engine, rules = service.engine, service.rules
    received = datetime(2026, 11, 2, 9, 0, tzinfo=WIB)
    with store.transaction(engine) as conn:
        stored = store_intake(conn, plan_intake(
            [replace(open311_record(0, "Ani"), timestamp=received)], rules, received),
            rules, received)
    ((complaint, decision),) = stored.routed

    def post(n: int, status: Status, at: datetime, message: str, arrives: datetime) -> None:
        event = FollowUpEvent(event_id=f"r-{n}", tracking_id=complaint.tracking_id,
                              agency_code=decision.agency.code, status=status, at=at,
                              message=message)
        with store.transaction(engine) as conn:
            applied = store_follow_ups(conn, [Record(topics.FOLLOW_UP, 0, n, None,
                                                     event.model_dump_json().encode(), {},
                                                     arrives)], rules, arrives)
        assert applied.dead_letters == []

    answered = datetime(2026, 11, 2, 11, 0, tzinfo=WIB)
    post(0, Status.RESPONDED, answered, "Saluran sudah dibersihkan.", answered)
    with store.transaction(engine) as conn:  # ten working days on: Tue 17 Nov 00:00 WIB
        assert watcher.sweep(conn, rules, datetime(2026, 11, 17, 0, 1, tzinfo=WIB)).pending
    post(1, Status.REPORTER_REPLIED, datetime(2026, 11, 16, 23, 59, tzinfo=WIB),
         "Masih banjir.", datetime(2026, 11, 17, 0, 2, tzinfo=WIB))
    (shown,) = looked_up(service, [complaint.tracking_id])
    assert shown["status"] == "open"
    assert shown["status_notes"] == "reporter_replied – Saluran sudah dibersihkan."
