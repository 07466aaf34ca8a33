"""Follow-ups the hub refuses by who sends them: each a dead letter that says why."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from itertools import count
from typing import Any

import sqlalchemy as sa

from hub import topics
from hub.followup import notification_id
from hub.intake import Record
from hub.model import FollowUpEvent, Status, TakenEvent
from hub.routing import Directory
from hub.service import Hub
from tests.support import FakePublisher, web_record

OFFSETS = count()
"""The hub passes over an offset of a partition it has taken before."""


async def send(service: Hub, publisher: FakePublisher, tracking_id: str, agency: str,
               status: Status, event_id: str | None = None, at: datetime | None = None,
               **extra: str) -> list[dict[str, str]]:
    """Apply one event (stamped `at`, now if not given); the dead letters it made."""
    publisher.sent.clear()
    event = FollowUpEvent(event_id=event_id or f"{agency}-{status}-{extra}",
                          tracking_id=tracking_id, agency_code=agency, status=status,
                          at=at or datetime.now(UTC), **extra)
    await service.follow_up([Record(topics.FOLLOW_UP, 0, next(OFFSETS), None,
                                    event.model_dump_json().encode(), {}, datetime.now(UTC))])
    return [json.loads(p.value) for p in publisher.sent if p.topic == topics.DEAD_LETTER]


async def routed_to_national(service: Hub, publisher: FakePublisher) -> str:
    # No category and no place: no rule and no coordinator, so the national admin.
    await service.intake([web_record("national-1", "Mohon informasi prosedur pengaduan "
                                     "pelayanan publik secara umum", kategori=None, lokasi={})])
    (routed,) = [json.loads(p.value) for p in publisher.sent]
    assert routed["agency_code"] == service.rules.directory.national.code
    return str(routed["tracking_id"])


async def test_the_national_admin_cannot_decline(driven: tuple[Hub, FakePublisher]) -> None:
    service, publisher = driven
    tracking_id = await routed_to_national(service, publisher)
    national = service.rules.directory.national.code
    (letter,) = await send(service, publisher, tracking_id, national, Status.NOT_AUTHORITY)
    assert letter["reason"] == "illegal_transition"
    assert "archive it with a reason" in letter["detail"]
    assert not [p for p in publisher.sent if p.topic.startswith("lapor.agency.")]
    assert not await send(service, publisher, tracking_id, national, Status.DISPOSITIONED,
                          target_agency="kota-bekasi-dinkes")


async def test_an_agency_not_in_the_registry_is_named_so(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, publisher = driven
    tracking_id = await routed_to_national(service, publisher)
    (letter,) = await send(service, publisher, tracking_id, "kota-bekasi-dinkse",
                           Status.IN_PROGRESS)
    assert (letter["reason"], letter["detail"]) == (
        "unknown_agency", "agency kota-bekasi-dinkse is not in the registry")
    (letter,) = await send(service, publisher, tracking_id, "kota-bekasi-dinkes",
                           Status.IN_PROGRESS)
    assert letter["reason"] == "not_holder"


async def test_an_event_id_used_on_another_complaint_is_refused_not_passed_over(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # An agency numbering its events per complaint: the second complaint's "1" was taken for
    # a re-send of the first's and passed over, with nothing said.
    service, publisher = driven
    await service.intake([web_record(f"ids-{n}", f"Sampah menumpuk di pasar nomor {n} sejak "
                                     "minggu lalu dan berbau") for n in (1, 2)])
    first, second = sorted({(json.loads(p.value)["tracking_id"], json.loads(p.value)
                             ["agency_code"]) for p in publisher.sent})
    assert not await send(service, publisher, *first, Status.VERIFIED, event_id="1")
    assert not await send(service, publisher, *first, Status.VERIFIED, event_id="1")  # re-sent
    (letter,) = await send(service, publisher, *second, Status.VERIFIED, event_id="1")
    assert letter["reason"] == "duplicate_event_id"
    assert letter["detail"] == (f"event_id '1' was applied to {first[0]}; an agency's event "
                                "ids must be unique")


async def test_an_event_id_used_again_on_the_same_complaint_for_another_answer_is_refused(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # An agency naming its events by complaint and status: its second answer, after the
    # reporter's reply, came under the first's id and was passed over as a re-send - the
    # complaint stayed waiting for an answer, its citizen heard nothing and nothing was said.
    service, publisher = driven
    tracking_id, holder = await clinic_complaint(service, publisher, "same-id-1")
    answer = f"{tracking_id}-responded"
    assert not await send(service, publisher, tracking_id, holder, Status.RESPONDED,
                          event_id=answer, message="Loket ditambah")
    assert not await send(service, publisher, tracking_id, holder, Status.RESPONDED,
                          event_id=answer, message="Loket ditambah")  # re-sent: passed over
    assert not await send(service, publisher, tracking_id, holder, Status.REPORTER_REPLIED,
                          event_id=f"{tracking_id}-reporter_replied")
    (letter,) = await send(service, publisher, tracking_id, holder, Status.RESPONDED,
                           event_id=answer, message="Dokter jaga ditambah dua orang")
    assert letter["reason"] == "duplicate_event_id"
    assert letter["detail"].startswith(f"event_id {answer!r} was applied to {tracking_id} as "
                                       "another event (responded")


async def test_archiving_needs_a_reason(driven: tuple[Hub, FakePublisher]) -> None:
    service, publisher = driven
    tracking_id = await routed_to_national(service, publisher)
    national = service.rules.directory.national.code
    (letter,) = await send(service, publisher, tracking_id, national, Status.ARCHIVED)
    assert (letter["reason"], letter["detail"]) == ("invalid_follow_up", "archived needs a reason")
    assert not await send(service, publisher, tracking_id, national, Status.ARCHIVED,
                          reason="Bukan pengaduan pelayanan publik")


async def test_an_event_on_no_complaint_is_named_so(driven: tuple[Hub, FakePublisher]) -> None:
    service, publisher = driven
    (letter,) = await send(service, publisher, "123456789012345678", "kota-bekasi-dinkes",
                           Status.IN_PROGRESS)
    assert (letter["reason"], letter["detail"]) == (
        "unknown_complaint", "no complaint 123456789012345678")


async def test_an_event_id_at_its_limit_is_applied_and_its_citizen_told(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # The notification's id was "notify-" + the event's: past the 100 characters an id may
    # have, so the batch failed, was retried and ended a dead letter processing_error.
    service, publisher = driven
    tracking_id = await routed_to_national(service, publisher)
    national = service.rules.directory.national.code
    long_id = "e" * 100
    assert not await send(service, publisher, tracking_id, national, Status.VERIFIED,
                          event_id=long_id)
    (note,) = [json.loads(p.value) for p in publisher.sent if p.topic == topics.NOTIFICATION]
    assert note["status"] == "verified" and len(note["event_id"]) <= 100
    assert not [p for p in publisher.sent if p.topic in (topics.RETRY, topics.DEAD_LETTER)]


async def clinic_complaint(service: Hub, publisher: FakePublisher, ref: str) -> tuple[str, str]:
    """A health complaint in Kota Bekasi, routed; its tracking id and holder."""
    await service.intake([web_record(ref, "Puskesmas tutup saat jam pelayanan",
                                     kategori="kesehatan")])
    (routed,) = [json.loads(p.value) for p in publisher.sent]
    return str(routed["tracking_id"]), str(routed["agency_code"])


def without(directory: Directory, code: str) -> Directory:
    """The registry with agency `code` and its rules taken out."""
    return Directory(directory.national.code,
                     [a for a in directory.agencies.values() if a.code != code],
                     [r for r in directory.rules if r.agency != code])


def on_agency_topics(publisher: FakePublisher, kind: str) -> list[dict[str, Any]]:
    return [event for p in publisher.sent if p.topic.startswith("lapor.agency.")
            if (event := json.loads(p.value))["type"] == kind]


def handed_on(publisher: FakePublisher) -> list[dict[str, Any]]:
    return on_agency_topics(publisher, "routing")


async def test_a_decline_names_in_the_history_who_has_the_complaint_now(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # The not_authority row named nobody: the history never said who held the complaint.
    service, publisher = driven
    tracking_id, holder = await clinic_complaint(service, publisher, "decline-1")
    assert not await send(service, publisher, tracking_id, holder, Status.NOT_AUTHORITY)
    (rerouted,) = handed_on(publisher)
    with service.engine.connect() as conn:
        named = conn.execute(sa.text(
            "SELECT target_agency FROM status_history WHERE status = 'not_authority'"
        )).scalar_one()
    assert named == rerouted["agency_code"] != holder


async def test_an_agency_above_the_holder_may_take_the_complaint_from_it(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # The coordinator an escalation went to could do nothing about it: not_holder.
    service, publisher = driven
    tracking_id, holder = await clinic_complaint(service, publisher, "above-1")
    assert holder == "kota-bekasi-dinkes"
    # A sibling may not; the coordinator may not answer for the holder.
    (sibling,) = await send(service, publisher, tracking_id, "kota-bekasi-dbmsda",
                            Status.DISPOSITIONED, target_agency="kota-bekasi-rsud")
    (answer,) = await send(service, publisher, tracking_id, "kota-bekasi", Status.IN_PROGRESS)
    assert {sibling["reason"], answer["reason"]} == {"not_holder"}
    assert not await send(service, publisher, tracking_id, "kota-bekasi", Status.DISPOSITIONED,
                          target_agency="kota-bekasi-rsud")
    (handed,) = handed_on(publisher)
    assert handed["agency_code"] == "kota-bekasi-rsud"
    national = service.rules.directory.national.code
    assert not await send(service, publisher, tracking_id, national, Status.ARCHIVED,
                          reason="Bukan pengaduan pelayanan publik.")


async def test_the_holder_hears_on_its_topic_that_a_complaint_was_taken_from_it(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # It heard nothing: its system kept the complaint open, and each answer it gave after
    # was a dead letter not_holder it never saw.
    service, publisher = driven
    tracking_id, holder = await clinic_complaint(service, publisher, "taken-1")
    assert not await send(service, publisher, tracking_id, holder, Status.VERIFIED)
    assert not on_agency_topics(publisher, "taken")
    assert not await send(service, publisher, tracking_id, "kota-bekasi", Status.DISPOSITIONED,
                          event_id="take-1", message="Ditangani RSUD",
                          target_agency="kota-bekasi-rsud")
    (taken,) = [p for p in publisher.sent if p.headers.get("event-type") == "taken"]
    assert (taken.topic, taken.key) == ("lapor.agency.kota-bekasi-dinkes", tracking_id)
    event = TakenEvent.model_validate_json(taken.value)
    assert (event.event_id, event.agency_code, event.by_agency, event.status, event.to_agency,
            event.message) == (f"taken-{tracking_id}-1", holder, "kota-bekasi",
                               Status.DISPOSITIONED, "kota-bekasi-rsud", "Ditangani RSUD")
    assert taken.headers.get("event-id") == event.event_id
    # The same disposition again is a re-send: nothing more to hear.
    assert not await send(service, publisher, tracking_id, "kota-bekasi", Status.DISPOSITIONED,
                          event_id="take-1", message="Ditangani RSUD",
                          target_agency="kota-bekasi-rsud")
    assert not publisher.sent
    # A hand-on by the holder itself, and its decline, tell it nothing it does not know.
    assert not await send(service, publisher, tracking_id, "kota-bekasi-rsud",
                          Status.NOT_AUTHORITY)
    (rerouted,) = handed_on(publisher)
    assert not on_agency_topics(publisher, "taken")
    # The national admin archives it over the new holder's head.
    national = service.rules.directory.national.code
    assert not await send(service, publisher, tracking_id, national, Status.ARCHIVED,
                          reason="Laporan ganda")
    (archived,) = on_agency_topics(publisher, "taken")
    assert (archived["agency_code"], archived["by_agency"], archived["status"],
            archived["to_agency"], archived["reason"], archived["event_id"]) == (
        rerouted["agency_code"], national, "archived", None, "Laporan ganda",
        f"taken-{tracking_id}-3")


async def test_a_disposition_goes_down_or_sideways_not_up_nor_away(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # Any agency was taken: a city's health office handed a complaint to another province,
    # or up to its own city (not_authority is the way up, so the level above re-routes it).
    service, publisher = driven
    tracking_id, holder = await clinic_complaint(service, publisher, "direction-1")
    for target in ("prov-papua", "kota-bekasi", "prov-jabar"):
        (letter,) = await send(service, publisher, tracking_id, holder, Status.DISPOSITIONED,
                               target_agency=target)
        assert letter["reason"] == "illegal_transition"
        assert f"cannot disposition to {target}" in letter["detail"]
    assert not handed_on(publisher)
    # Sideways to another office of the city, then down to the sub-unit of the one holding it.
    assert not await send(service, publisher, tracking_id, holder, Status.DISPOSITIONED,
                          target_agency="kota-bekasi-disdik")
    assert not await send(service, publisher, tracking_id, "kota-bekasi-disdik",
                          Status.DISPOSITIONED, target_agency="kota-bekasi-dinkes")
    assert not await send(service, publisher, tracking_id, "kota-bekasi-dinkes",
                          Status.DISPOSITIONED, target_agency="kota-bekasi-rsud")
    assert handed_on(publisher)[-1]["agency_code"] == "kota-bekasi-rsud"


async def test_the_national_admin_takes_a_complaint_whose_agency_left_the_registry(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # Its complaints were refused to everyone (not_holder, unknown_agency) while the watch
    # escalated them to the national admin: nobody could act on them.
    service, publisher = driven
    tracking_id, holder = await clinic_complaint(service, publisher, "left-1")
    service.rules = replace(service.rules, directory=without(service.rules.directory, holder))
    (own,) = await send(service, publisher, tracking_id, holder, Status.IN_PROGRESS)
    assert own["reason"] == "unknown_agency"
    (parent,) = await send(service, publisher, tracking_id, "kota-bekasi", Status.DISPOSITIONED,
                           target_agency="kota-bekasi-rsud")
    assert parent["reason"] == "not_holder"
    national = service.rules.directory.national.code
    assert not await send(service, publisher, tracking_id, national, Status.DISPOSITIONED,
                          target_agency="kota-bekasi-rsud")
    assert handed_on(publisher)[-1]["agency_code"] == "kota-bekasi-rsud"


async def test_event_ids_are_each_agencys_own(driven: tuple[Hub, FakePublisher]) -> None:
    # The holder numbers its events 1, 2; the unit it passes the complaint to numbers its
    # own from 1 too: its "1" was passed over as a re-send of the holder's. So was an
    # agency's "received-<tracking id>", the id of the hub's own history row.
    service, publisher = driven
    tracking_id, holder = await clinic_complaint(service, publisher, "own-ids-1")
    assert not await send(service, publisher, tracking_id, holder, Status.VERIFIED,
                          event_id="1")
    assert not await send(service, publisher, tracking_id, holder, Status.DISPOSITIONED,
                          event_id="2", target_agency="kota-bekasi-rsud")
    assert not await send(service, publisher, tracking_id, "kota-bekasi-rsud",
                          Status.NEEDS_INFO, event_id="1")
    assert not await send(service, publisher, tracking_id, "kota-bekasi-rsud",
                          Status.RECEIVED, event_id=f"received-{tracking_id}")
    assert not await send(service, publisher, tracking_id, "kota-bekasi-rsud",
                          Status.NEEDS_INFO, event_id="1")  # a re-send: passed over
    with service.engine.connect() as conn:
        history = conn.execute(sa.text(
            "SELECT agency_code, status FROM status_history WHERE tracking_id = :t ORDER BY id"
        ), {"t": tracking_id}).all()
    assert [tuple(r) for r in history] == [
        (holder, "received"), (holder, "verified"), (holder, "dispositioned"),
        ("kota-bekasi-rsud", "needs_info"), ("kota-bekasi-rsud", "received")]


def test_two_agencies_events_never_share_a_notification_id() -> None:
    at = datetime.now(UTC)
    ids = {notification_id(FollowUpEvent(event_id=event_id, tracking_id="1" * 18,
                                         agency_code=agency, status=Status.RESPONDED, at=at))
           for agency, event_id in (("kota-bekasi", "dinkes-7"), ("kota-bekasi-dinkes", "7"))}
    assert len(ids) == 2


async def test_the_history_names_no_agency_the_complaint_did_not_go_to(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # A target_agency on an event that hands nothing on (a progress note, an archive) was
    # written into the history: it read as a hand-on to an agency that never had it.
    service, publisher = driven
    tracking_id, holder = await clinic_complaint(service, publisher, "stray-target-1")
    assert not await send(service, publisher, tracking_id, holder, Status.IN_PROGRESS,
                          target_agency="kota-bekasi-rsud")
    national = service.rules.directory.national.code
    assert not await send(service, publisher, tracking_id, national, Status.ARCHIVED,
                          event_id="stray-archive", reason="Spam",
                          target_agency="kota-bekasi-rsud")
    assert not handed_on(publisher)
    with service.engine.connect() as conn:
        named = conn.execute(sa.text(
            "SELECT status, target_agency FROM status_history WHERE status <> 'received' "
            "ORDER BY id")).all()
    assert [tuple(n) for n in named] == [("in_progress", None), ("archived", None)]


async def test_a_citizens_notification_carries_no_nik(driven: tuple[Hub, FakePublisher]) -> None:
    # The reporter as stored went out whole as the notification's address: the NIK too, on
    # a topic every replying channel reads, though no channel reaches anyone by it.
    service, publisher = driven
    await service.intake([web_record(
        "nik-1", "Puskesmas tutup saat jam pelayanan", kategori="kesehatan",
        pelapor={"nama": "Siti Rahayu", "nik": "3275011203900004", "telepon": "081234567890"})])
    (routed,) = [json.loads(p.value) for p in publisher.sent]
    assert routed["complaint"]["reporter"]["nik"] == "3275011203900004"  # the agency may verify
    assert not await send(service, publisher, str(routed["tracking_id"]),
                          str(routed["agency_code"]), Status.VERIFIED)
    (note,) = [json.loads(p.value) for p in publisher.sent if p.topic == topics.NOTIFICATION]
    assert note["address"]["nik"] is None
    assert (note["address"]["name"], note["address"]["phone"]) == ("Siti Rahayu", "+6281234567890")
