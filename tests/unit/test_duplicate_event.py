"""A second report of a complaint reaches the agency holding the first, as a duplicate event."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub import metrics, migrate, store, topics
from hub.calendar import load_calendar_config
from hub.deadlines import Rules
from hub.followup import store_follow_ups
from hub.intake import Record, plan_intake, store_intake
from hub.model import DuplicateEvent, FollowUpEvent, RoutingEvent, Status
from hub.routing import Directory
from hub.service import Hub
from tests.support import FakePublisher, overdue, reworded, web_record

T = TypeVar("T")
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


async def test_the_second_reports_citizen_hears_the_answer_and_its_status_follows(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # It stayed "received" for ever and its citizen heard nothing: the answer went to the
    # first report's citizen alone.
    service, publisher = driven
    await service.intake([web_record("n-1", TEXT, pelapor={"telepon": "+6281234567890"})])
    ((_, routing),) = by_type(publisher, "routing")
    original, agency = str(routing["tracking_id"]), str(routing["agency_code"])
    await service.intake([web_record("n-2", TEXT, pelapor={"telepon": "+6281299990000"})])
    ((_, duplicate),) = by_type(publisher, "duplicate")
    second = str(duplicate["duplicate"]["tracking_id"])  # type: ignore[index]
    publisher.sent.clear()
    now = datetime.now(UTC)
    for n, status in enumerate((Status.DISPOSITIONED, Status.RESPONDED)):
        event = FollowUpEvent(event_id=f"n-{n}", tracking_id=original, agency_code=agency,
                              status=status, at=now, message="Lampu sudah diganti.")
        await service.follow_up([Record(topics.FOLLOW_UP, 0, n, None,
                                        event.model_dump_json().encode(), {}, now)])
    notes = [json.loads(p.value) for p in publisher.sent if p.topic == topics.NOTIFICATION]
    assert [(n["tracking_id"], n["status"], n["address"]["phone"]) for n in notes] == [
        (original, "responded", "+6281234567890"), (second, "responded", "+6281299990000")]
    assert notes[1]["message"] == "Lampu sudah diganti."
    assert status_of(service, second) == "responded"
    # A third report, after the answer, starts where the first has got to.
    await service.intake([web_record("n-3", TEXT, pelapor={"telepon": "+6281277770000"})])
    (third,) = {str(e["duplicate"]["tracking_id"])  # type: ignore[index]
                for _, e in by_type(publisher, "duplicate")} - {second}
    assert status_of(service, third) == "responded"

    # The reporter never replies: the watcher closes both.
    publisher.sent.clear()
    with service.engine.begin() as conn:
        overdue(conn, [original])
    # Its receipt moved back with its clock: still within the window of a repeat.
    service.rules = replace(service.rules, duplicate_window=timedelta(days=365))
    await service.watch_deadlines()
    notes = [json.loads(p.value) for p in publisher.sent if p.topic == topics.NOTIFICATION]
    assert sorted((n["tracking_id"], n["status"]) for n in notes) == sorted([
        (original, "closed"), (second, "closed"), (third, "closed")])
    assert status_of(service, second) == status_of(service, third) == "closed"

    # A report after the close is a complaint of its own, routed: linked, it was closed at
    # once and its citizen heard nothing. An agency answering a second report itself is told
    # to answer the first.
    publisher.sent.clear()
    await service.intake([web_record("n-4", TEXT, pelapor={"telepon": "+6281266660000"})])
    assert not by_type(publisher, "duplicate")
    ((_, fourth),) = by_type(publisher, "routing")
    assert fourth["tracking_id"] != original
    assert status_of(service, str(fourth["tracking_id"])) == "received"
    # One made before the close and come late (an export replayed) is still its repeat.
    with service.engine.connect() as conn:
        closed_at = conn.execute(sa.text("SELECT closed_at FROM complaint WHERE tracking_id = :t"),
                                 {"t": original}).scalar_one()
    made = datetime.fromisoformat(str(closed_at)).replace(tzinfo=UTC) - timedelta(days=1)
    await service.intake([web_record("n-5", TEXT, received_at=made,
                                     pelapor={"telepon": "+6281255550000"})])
    ((_, fifth),) = by_type(publisher, "duplicate")
    assert fifth["tracking_id"] == original
    publisher.sent.clear()
    event = FollowUpEvent(event_id="n-own", tracking_id=second, agency_code=agency,
                          status=Status.RESPONDED, at=now)
    await service.follow_up([Record(topics.FOLLOW_UP, 0, 9, None,
                                    event.model_dump_json().encode(), {}, now)])
    (letter,) = [json.loads(p.value) for p in publisher.sent if p.topic == topics.DEAD_LETTER]
    assert (letter["reason"], letter["detail"]) == (
        "duplicate_complaint", f"{second} is a report of {original}: follow up on that one")


def status_of(service: Hub, tracking_id: str) -> str:
    with service.engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT status FROM complaint WHERE tracking_id = :t"),
                                {"t": tracking_id}).scalar_one())


async def test_a_second_report_is_counted_received_on_its_own_channel(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, _ = driven
    received = metrics.received.labels("mobile", "mobile")
    before = received._value.get()
    await service.intake([web_record("c-1", TEXT)])
    mobile = web_record("c-2", TEXT)
    await service.intake([replace(mobile, topic=topics.raw("mobile"))])
    # Linked as a duplicate, not routed: still a complaint received through the app.
    assert received._value.get() - before == 1


async def test_an_anonymous_report_is_never_linked_by_its_reporter(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # Linked "by reporter", the agency holding either report learned who wrote the anonymous
    # one: its phone on the duplicate event, or "same reporter" beside a name it had.
    service, publisher = driven
    phone = {"nama": "Siti", "telepon": "+6281299887766"}
    text = "Lampu penerangan jalan mati sepanjang Jl. Ahmad Yani depan Stasiun Bekasi sejak Senin"
    await service.intake([web_record("anon-1", text, anonim=True, pelapor=phone)])
    await service.intake([web_record("named-1", reworded(text), pelapor=phone)])
    await service.intake([web_record("named-2", text + " malam", pelapor=phone)])
    await service.intake([web_record("anon-2", reworded(text + " malam"), anonim=True,
                                     pelapor=phone)])
    kinds = [DuplicateEvent.model_validate(e).matched_by
             for _, e in by_type(publisher, "duplicate")]
    assert "reporter" not in kinds
    assert len(by_type(publisher, "routing")) + len(kinds) == 4


async def test_the_same_words_reported_months_apart_are_two_complaints(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # All rows of one export (or a backlog re-sent) come at one moment: a report of June was
    # linked to January's same words and never routed. Within one batch and across two.
    service, publisher = driven
    siti = {"nama": "Siti", "telepon": "+6281234567890"}
    await service.intake([
        web_record("jan", TEXT, pelapor=siti, dikirim_pada="2026-01-05T08:15:00+07:00"),
        web_record("jun", TEXT, pelapor=siti, dikirim_pada="2026-06-20T19:40:00+07:00"),
    ])
    await service.intake([
        web_record("jul", TEXT, pelapor=siti, dikirim_pada="2026-07-01T10:00:00+07:00"),
        web_record("jul-again", TEXT, pelapor=siti, dikirim_pada="2026-07-01T11:00:00+07:00"),
    ])
    routed = [RoutingEvent.model_validate(e).complaint.source.message_id
              for _, e in by_type(publisher, "routing")]
    assert routed == ["jan", "jun", "jul"]
    assert [DuplicateEvent.model_validate(e).duplicate.source.message_id
            for _, e in by_type(publisher, "duplicate")] == ["jul-again"]


ON_POSTGRES = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
"""Races of several instances sharing PostgreSQL (SQLite takes one writer at a time)."""


def instances(database_url: str) -> tuple[sa.Engine, Rules, datetime]:
    """What each instance shares: the database, the rules, and now."""
    migrate.upgrade(database_url)
    return (store.make_engine(database_url), Rules.of(Directory.load(), load_calendar_config()),
            datetime.now(UTC))


def meanwhile(engine: sa.Engine, mine: Callable[[Connection], T], other: Callable[[], None]) -> T:
    """`mine` in a transaction held open while `other` (another instance) runs in a thread:
    `other` waits for the commit, or goes ahead unaware of what `mine` wrote."""
    with engine.connect() as conn, conn.begin():
        result = mine(conn)
        thread = threading.Thread(target=other)
        thread.start()
        thread.join(1.0)
    thread.join(30)
    return result


@ON_POSTGRES
def test_one_complaint_through_two_doors_into_two_instances_at_once_is_linked(
    database_url: str,
) -> None:
    # Neither transaction saw the other's complaint (not yet committed): both were routed.
    engine, rules, now = instances(database_url)
    siti = {"nama": "Siti", "telepon": "+6281234567890"}
    first, second = (web_record(ref, TEXT, pelapor=siti) for ref in ("door-1", "door-2"))
    linked: list[int] = []

    def other_instance() -> None:
        with engine.begin() as conn:
            linked.append(len(store_intake(conn, plan_intake([second], rules, now), rules,
                                           now).duplicates))

    mine = meanwhile(engine, lambda conn: store_intake(conn, plan_intake([first], rules, now),
                                                      rules, now), other_instance)
    engine.dispose()
    assert (len(mine.routed), linked) == (1, [1])


@ON_POSTGRES
def test_a_report_stored_while_its_original_is_answered_follows_the_answer(
    database_url: str,
) -> None:
    # The follow-up did not see the report (not yet committed) and the report had read the
    # original's status before: it stayed "received" and its citizen never heard.
    engine, rules, now = instances(database_url)
    with engine.begin() as conn:
        (original,) = [c.tracking_id for c, _ in store_intake(conn, plan_intake(
            [web_record("ans-1", TEXT, pelapor={"telepon": "+6281234567890"})], rules, now),
            rules, now).routed]
    event = FollowUpEvent(event_id="ans-verified", tracking_id=original,
                          agency_code="kota-bekasi-dbmsda", status=Status.VERIFIED, at=now)
    heard: list[str] = []

    def agency_answers() -> None:
        with engine.begin() as conn:
            applied = store_follow_ups(conn, [Record(
                topics.FOLLOW_UP, 0, 0, None, event.model_dump_json().encode(), {}, now)],
                rules, now)
            heard.extend(str(p.key) for p in applied.pending if p.topic == topics.NOTIFICATION)

    second = web_record("ans-2", TEXT, pelapor={"telepon": "+6281299990000"})
    stored = meanwhile(engine, lambda conn: store_intake(conn, plan_intake([second], rules, now),
                                                        rules, now), agency_answers)
    ((report, _),) = stored.duplicates
    with engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM complaint WHERE tracking_id = :t"),
                              {"t": report.tracking_id}).scalar_one()
    engine.dispose()
    assert (status, sorted(heard)) == ("verified", sorted([original, report.tracking_id]))


async def test_a_nul_in_a_stored_description_does_not_stop_the_intake(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # PostgreSQL refused to read such a stored document as JSON: every later complaint
    # sharing a key with it failed, was retried and ended a dead letter, never routed.
    service, publisher = driven
    await service.intake([web_record("z-1", TEXT + " \x00", pelapor={"telepon": "+6281234567890"})])
    await service.intake([web_record("z-2", TEXT, pelapor={"telepon": "+6281299990000"})])
    assert [e["type"] for _, e in by_type(publisher, "routing") + by_type(
        publisher, "duplicate")] == ["routing", "duplicate"]
    assert not [p for p in publisher.sent if p.topic == topics.DEAD_LETTER]
