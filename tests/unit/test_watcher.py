"""The deadline watcher: one escalation per breach, auto-close after the response."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from prometheus_client import generate_latest
from sqlmodel import SQLModel

from hub import metrics, migrate, store, topics, watcher
from hub.calendar import load_calendar_config
from hub.deadlines import Rules
from hub.followup import Applied, store_follow_ups
from hub.intake import Record, plan_intake, store_intake
from hub.model import FollowUpEvent, Status
from hub.routing import Directory
from hub.store import ComplaintRow

RULES = Rules.of(Directory.load(), load_calendar_config())
MONDAY = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 09:00 WIB


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = store.make_engine(f"sqlite:///{tmp_path}/w.db")
    SQLModel.metadata.create_all(engine)
    return engine


def intake(engine: sa.Engine, ref: str) -> str:
    return intake_at(engine, ref, MONDAY)


def intake_at(engine: sa.Engine, ref: str, at: datetime) -> str:
    body = json.dumps({"id": ref, "isi": f"Puskesmas tutup {ref}", "kategori": "kesehatan",
                       "lokasi": {"kode_wilayah": "32.75"}}).encode()
    with store.transaction(engine) as conn:
        stored = store_intake(conn, plan_intake(
            [Record(topics.raw("web"), 0, 0, None, body, {}, at)], RULES, at), RULES, at)
    return stored.routed[0][0].tracking_id


def follow(engine: sa.Engine, tid: str, status: Status, at: datetime) -> None:
    event = FollowUpEvent(event_id=f"{tid}-{status.value}", tracking_id=tid,
                          agency_code="kota-bekasi-dinkes", status=status, at=at)
    with store.transaction(engine) as conn:
        store_follow_ups(conn, [Record(topics.FOLLOW_UP, 0, 0, None,
                                       event.model_dump_json().encode(), {}, at)], RULES, at)


def sweep(engine: sa.Engine, now: datetime) -> watcher.Sweep:
    with store.transaction(engine) as conn:
        return watcher.sweep(conn, RULES, now)


def test_a_breach_is_escalated_once_to_the_coordinator(engine: sa.Engine) -> None:
    tid = intake(engine, "late")
    # Verification: 3 working days from Monday = due Friday 00:00 WIB.
    assert not sweep(engine, datetime(2026, 11, 26, 16, 59, tzinfo=UTC)).pending
    first = sweep(engine, datetime(2026, 11, 26, 17, 1, tzinfo=UTC))
    assert [p.topic for p in first.pending] == [topics.agency("kota-bekasi")]
    event = json.loads(first.pending[0].value)
    assert (event["tracking_id"], event["deadline"], event["coordinator_code"]) == (
        tid, "verification", "kota-bekasi")
    assert not sweep(engine, datetime(2026, 11, 27, 9, 0, tzinfo=UTC)).pending
    # A new deadline (first follow-up after the disposition) may be escalated again.
    follow(engine, tid, Status.DISPOSITIONED, datetime(2026, 11, 27, 3, 0, tzinfo=UTC))
    later = sweep(engine, datetime(2026, 12, 31, 0, 0, tzinfo=UTC))
    assert [json.loads(p.value)["deadline"] for p in later.pending] == ["first_follow_up"]


def test_a_deadline_follows_collective_leave_added_after_it_was_set(engine: sa.Engine) -> None:
    # The decree for a year's collective leave comes out late; the operator adds it and
    # restarts. Complaints already open were escalated on the days stored without it.
    tid = intake(engine, "before-the-decree")
    config = RULES.config
    with_leave = Rules.of(RULES.directory, config.model_copy(update={
        "collective_leave": config.collective_leave | {date(2026, 11, 25)}}))
    thursday_end = datetime(2026, 11, 26, 17, 1, tzinfo=UTC)  # was due Fri 00:00 WIB
    with store.transaction(engine) as conn:
        assert not watcher.sweep(conn, with_leave, thursday_end).pending
    with engine.connect() as conn:
        due = conn.execute(sa.select(watcher.TABLE.c.due_at)).scalar_one()
    # Tue, Thu and Fri: due as Monday begins in Bekasi.
    assert due == datetime(2026, 11, 29, 17, 0, tzinfo=UTC)
    with store.transaction(engine) as conn:
        late = watcher.sweep(conn, with_leave, datetime(2026, 11, 29, 17, 1, tzinfo=UTC))
    (event,) = [json.loads(p.value) for p in late.pending]
    assert (event["tracking_id"], event["due_at"]) == (tid, "2026-11-30T00:00:00+07:00")


def test_a_response_without_reply_closes_after_ten_working_days(engine: sa.Engine) -> None:
    tid = intake(engine, "answered")
    follow(engine, tid, Status.DISPOSITIONED, MONDAY + timedelta(hours=1))
    follow(engine, tid, Status.RESPONDED, MONDAY + timedelta(hours=2))
    # The response day does not count: ten working days are Tue 24 Nov .. Mon 7 Dec, so the
    # complaint closes at Tue 8 Dec 00:00 WIB (no holiday between).
    assert not sweep(engine, datetime(2026, 12, 7, 16, 59, tzinfo=UTC)).pending
    before = metrics.latency.labels("kota-bekasi-dinkes", "close")._sum.get()
    swept = sweep(engine, datetime(2026, 12, 7, 17, 1, tzinfo=UTC))
    swept.count()
    assert [p.topic for p in swept.pending] == [topics.NOTIFICATION]
    assert json.loads(swept.pending[0].value)["status"] == "closed"
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT status, closed_at FROM complaint WHERE tracking_id = :t"),
                           {"t": tid}).one()
    assert row[0] == "closed"
    # Closed at the deadline, not at the sweep; 10 working days of working time.
    assert metrics.latency.labels("kota-bekasi-dinkes", "close")._sum.get() - before == (
        10 * 86_400)



def test_closes_are_counted_by_who_closed(engine: sa.Engine) -> None:
    # The share closed by the reporter, not for want of a reply, was in no metric: the close
    # latency counted both alike.
    dinkes = "kota-bekasi-dinkes"
    metrics.agencies_known(["kota-bekasi-dbmsda"])
    scraped = generate_latest(metrics.REGISTRY).decode()
    for by in ("reporter", "auto_close"):  # there from the start, for rate() to see the first
        assert f'lapor_complaints_closed_total{{agency="kota-bekasi-dbmsda",by="{by}"}}' in scraped

    def closes() -> tuple[float, float]:
        return (metrics.closes.labels(dinkes, "reporter")._value.get(),
                metrics.closes.labels(dinkes, "auto_close")._value.get())

    confirmed, silent = intake(engine, "confirmed"), intake(engine, "silent")
    for tid in (confirmed, silent):
        follow(engine, tid, Status.DISPOSITIONED, MONDAY + timedelta(hours=1))
        follow(engine, tid, Status.RESPONDED, MONDAY + timedelta(hours=2))
    before = closes()
    event = FollowUpEvent(event_id="confirmed-closed", tracking_id=confirmed,
                          agency_code=dinkes, status=Status.CLOSED, at=MONDAY + timedelta(days=1))
    with store.transaction(engine) as conn:
        store_follow_ups(conn, [Record(topics.FOLLOW_UP, 0, 0, None,
                                       event.model_dump_json().encode(), {}, event.at)],
                         RULES, event.at).count()
    sweep(engine, datetime(2026, 12, 7, 17, 1, tzinfo=UTC)).count()
    assert tuple(a - b for a, b in zip(closes(), before, strict=True)) == (1, 1)


def test_an_answer_applied_late_gives_the_reporter_ten_days_from_now(engine: sa.Engine) -> None:
    # An answer stamped weeks before it reaches the hub (an agency system syncing late) was
    # auto-closed at the next sweep: the reporter, told of it only now, had no time to reply.
    tid = intake(engine, "synced-late")
    post(engine, tid, Status.DISPOSITIONED, MONDAY + timedelta(hours=1))
    arrives = MONDAY + timedelta(days=30)  # Wed 23 Dec 2026
    post(engine, tid, Status.RESPONDED, MONDAY + timedelta(days=1), arrives=arrives)
    assert not sweep(engine, arrives + timedelta(minutes=1)).pending
    table = store.table_of(ComplaintRow)
    with engine.connect() as conn:
        row = conn.execute(sa.select(table.c.status, table.c.due_kind, table.c.due_at)
                           .where(table.c.tracking_id == tid)).one()
    assert (row[0], row[1]) == ("responded", "auto_close")
    assert row[2] > arrives + timedelta(days=14)  # ten working days, a holiday week among them


WIB = timezone(timedelta(hours=7))
_events = itertools.count()


def post(engine: sa.Engine, tid: str, status: Status, at: datetime, *,
         arrives: datetime | None = None) -> list[str]:
    """Apply a follow-up of the holder stamped `at` that reaches the hub at `arrives`;
    returns the reasons of the dead letters it made."""
    n = next(_events)  # the offset too: a dead letter is stored once per record
    event = FollowUpEvent(event_id=f"{tid}-{status.value}-{n}", tracking_id=tid,
                          agency_code="kota-bekasi-dinkes", status=status, at=at)
    now = arrives or at
    with store.transaction(engine) as conn:
        applied = store_follow_ups(conn, [Record(topics.FOLLOW_UP, 0, n, None,
                                                 event.model_dump_json().encode(), {}, now)],
                                   RULES, now)
    return [letter.reason for letter in applied.dead_letters]


def escalated(engine: sa.Engine, now: datetime) -> list[tuple[str, str]]:
    return [(json.loads(p.value)["deadline"], json.loads(p.value)["due_at"])
            for p in sweep(engine, now).pending]


def dispositioned(engine: sa.Engine, ref: str, then: Status, on: datetime) -> str:
    """A complaint received Monday 2 Nov 09:00 WIB, passed to its agency an hour later,
    which posts `then` at `on`."""
    tid = intake_at(engine, ref, datetime(2026, 11, 2, 9, 0, tzinfo=WIB))
    post(engine, tid, Status.DISPOSITIONED, datetime(2026, 11, 2, 10, 0, tzinfo=WIB))
    post(engine, tid, then, on)
    return tid


def test_a_disposition_within_the_holder_after_its_follow_up_leaves_the_answer_due(
    engine: sa.Engine,
) -> None:
    # Monday 2 Nov 09:00 WIB; followed up on Tuesday; a week later passed to a sub-unit.
    tid = dispositioned(engine, "sideways", Status.IN_PROGRESS,
                        datetime(2026, 11, 3, 10, 0, tzinfo=WIB))
    assert post(engine, tid, Status.DISPOSITIONED, datetime(2026, 11, 10, 10, 0, tzinfo=WIB)) == []
    # The first follow-up was met on day 1: nothing to escalate now. The settle deadline
    # (14 working days: Mon 23 Nov 00:00 WIB) still runs and is escalated once it passes.
    assert escalated(engine, datetime(2026, 11, 10, 10, 1, tzinfo=WIB)) == []
    assert escalated(engine, datetime(2026, 12, 31, 10, 0, tzinfo=WIB)) == [
        ("settle", "2026-11-23T00:00:00+07:00")]


def test_a_breach_is_not_escalated_again_after_a_detour(engine: sa.Engine) -> None:
    tid = dispositioned(engine, "detour", Status.IN_PROGRESS,
                        datetime(2026, 11, 3, 10, 0, tzinfo=WIB))
    assert escalated(engine, datetime(2026, 11, 24, 8, 0, tzinfo=WIB)) == [
        ("settle", "2026-11-23T00:00:00+07:00")]
    for day in (24, 25, 26):  # answered, the reporter not satisfied, answered again ...
        post(engine, tid, Status.RESPONDED, datetime(2026, 11, day, 9, 0, tzinfo=WIB))
        post(engine, tid, Status.REPORTER_REPLIED, datetime(2026, 11, day, 10, 0, tzinfo=WIB))
        assert escalated(engine, datetime(2026, 11, day + 1, 8, 0, tzinfo=WIB)) == []

    # A question to the reporter after the verification deadline does not move it.
    late = intake_at(engine, "asked-late", datetime(2026, 11, 2, 9, 0, tzinfo=WIB))
    assert escalated(engine, datetime(2026, 11, 6, 8, 0, tzinfo=WIB)) == [
        ("verification", "2026-11-06T00:00:00+07:00")]
    post(engine, late, Status.NEEDS_INFO, datetime(2026, 11, 9, 9, 0, tzinfo=WIB))
    post(engine, late, Status.RECEIVED, datetime(2026, 11, 10, 9, 0, tzinfo=WIB))
    assert escalated(engine, datetime(2026, 11, 12, 8, 0, tzinfo=WIB)) == []


def test_a_reply_to_a_timely_answer_leaves_the_agency_the_time_it_had_left(
    engine: sa.Engine,
) -> None:
    # Answered on day 5 of 14; the reporter took two weeks to say it is not solved. The
    # settle deadline (Mon 23 Nov 00:00 WIB) had passed meanwhile, and the agency that had
    # answered in time was escalated the moment the reply came.
    tid = dispositioned(engine, "replied-late", Status.RESPONDED,
                        datetime(2026, 11, 10, 9, 0, tzinfo=WIB))
    assert post(engine, tid, Status.REPORTER_REPLIED,
                datetime(2026, 11, 23, 10, 0, tzinfo=WIB)) == []
    assert escalated(engine, datetime(2026, 11, 23, 11, 0, tzinfo=WIB)) == []
    # 5.375 working days used to the answer, 0.583 on the day of the reply: the 8.042 left
    # run out an hour into Friday 4 December.
    assert escalated(engine, datetime(2026, 12, 4, 0, 59, tzinfo=WIB)) == []
    assert escalated(engine, datetime(2026, 12, 4, 1, 1, tzinfo=WIB)) == [
        ("settle", "2026-12-04T01:00:00+07:00")]


def test_an_answer_stamped_in_time_but_applied_after_the_deadline_was_in_time(
    engine: sa.Engine,
) -> None:
    # Stamped Friday 23:00, applied a minute after the settle deadline (Mon 23 Nov 00:00 WIB):
    # judged by when it was applied, the reporter's reply two days later escalated at once.
    tid = dispositioned(engine, "applied-late", Status.IN_PROGRESS,
                        datetime(2026, 11, 3, 10, 0, tzinfo=WIB))
    assert post(engine, tid, Status.RESPONDED, datetime(2026, 11, 20, 23, 0, tzinfo=WIB),
                arrives=datetime(2026, 11, 23, 0, 1, tzinfo=WIB)) == []
    assert post(engine, tid, Status.REPORTER_REPLIED,
                datetime(2026, 11, 25, 10, 0, tzinfo=WIB)) == []
    assert escalated(engine, datetime(2026, 11, 25, 10, 59, tzinfo=WIB)) == []
    # The hour left at the answer runs out an hour after the reply.
    assert escalated(engine, datetime(2026, 11, 25, 11, 1, tzinfo=WIB)) == [
        ("settle", "2026-11-25T11:00:00+07:00")]


def test_an_escalation_tells_its_due_in_the_agencys_time_and_each_breach_its_own_id(
    engine: sa.Engine,
) -> None:
    # The coordinator read a deadline in UTC: the evening before the day it fell on. And
    # two breaches of one kind (the deadline set anew after the first: here a leave day
    # added meanwhile, and an hour waiting for the reporter) had one event id, so an
    # idempotent reader passed the second over as a re-send.
    tid = intake_at(engine, "breached-twice", datetime(2026, 11, 2, 9, 0, tzinfo=WIB))
    with store.transaction(engine) as conn:
        first = watcher.sweep(conn, RULES, datetime(2026, 11, 6, 8, 0, tzinfo=WIB))
    config = RULES.config
    with_leave = Rules.of(RULES.directory, config.model_copy(update={
        "collective_leave": config.collective_leave | {date(2026, 11, 4)}}))
    for n, (status, hour) in enumerate(((Status.NEEDS_INFO, 9), (Status.RECEIVED, 10))):
        at = datetime(2026, 11, 6, hour, 0, tzinfo=WIB)
        event = FollowUpEvent(event_id=f"{tid}-{n}", tracking_id=tid,
                              agency_code="kota-bekasi-dinkes", status=status, at=at)
        with store.transaction(engine) as conn:
            store_follow_ups(conn, [Record(topics.FOLLOW_UP, 0, n, None,
                                           event.model_dump_json().encode(), {}, at)],
                             with_leave, at)
    with store.transaction(engine) as conn:
        second = watcher.sweep(conn, with_leave, datetime(2026, 11, 9, 8, 0, tzinfo=WIB))
    events = [json.loads(p.value) for p in first.pending + second.pending]
    assert [(e["deadline"], e["due_at"]) for e in events] == [
        ("verification", "2026-11-06T00:00:00+07:00"),
        ("verification", "2026-11-09T01:00:00+07:00")]
    assert len({e["event_id"] for e in events}) == 2


def test_a_reply_made_before_the_auto_close_reopens_the_complaint(engine: sa.Engine) -> None:
    tid, other, confirmed = (intake_at(engine, ref, datetime(2026, 11, 2, 9, 0, tzinfo=WIB))
                             for ref in ("in-time", "too-late", "confirmed"))
    for t in (tid, other, confirmed):
        post(engine, t, Status.DISPOSITIONED, datetime(2026, 11, 2, 10, 0, tzinfo=WIB))
        post(engine, t, Status.RESPONDED, datetime(2026, 11, 2, 11, 0, tzinfo=WIB))
    post(engine, confirmed, Status.CLOSED, datetime(2026, 11, 5, 9, 0, tzinfo=WIB))
    # Ten working days after Monday's answer: closed at Tue 17 Nov 00:00 WIB.
    swept = sweep(engine, datetime(2026, 11, 17, 0, 1, tzinfo=WIB))
    assert [json.loads(p.value)["status"] for p in swept.pending] == ["closed", "closed"]
    arrives = datetime(2026, 11, 17, 0, 2, tzinfo=WIB)
    # The reporter replied a minute before the close; the event came in after it.
    assert post(engine, tid, Status.REPORTER_REPLIED, datetime(2026, 11, 16, 23, 59, tzinfo=WIB),
                arrives=arrives) == []
    assert post(engine, other, Status.REPORTER_REPLIED, datetime(2026, 11, 17, 0, 0, tzinfo=WIB),
                arrives=arrives) == ["illegal_transition"]
    assert post(engine, confirmed, Status.REPORTER_REPLIED,
                datetime(2026, 11, 4, 9, 0, tzinfo=WIB), arrives=arrives) == [
        "illegal_transition"]  # closed on the reporter's own confirmation, after it
    with engine.connect() as conn:
        rows: dict[str, str] = dict(conn.execute(sa.text(
            "SELECT tracking_id, status || ' ' || coalesce(closed_at, '-') FROM complaint")).all())
    assert rows[tid] == "reporter_replied -"
    assert rows[other].startswith("closed 2026-11-16 17:00")


def test_a_reopened_complaint_closes_again_as_an_event_of_its_own(engine: sa.Engine) -> None:
    # Its second auto-close had the first's id: the reporter's notification of the final
    # close was dropped by idempotent readers, and its history row was passed over.
    tid = intake_at(engine, "twice", datetime(2026, 11, 2, 9, 0, tzinfo=WIB))
    post(engine, tid, Status.DISPOSITIONED, datetime(2026, 11, 2, 10, 0, tzinfo=WIB))
    post(engine, tid, Status.RESPONDED, datetime(2026, 11, 2, 11, 0, tzinfo=WIB))
    first = sweep(engine, datetime(2026, 11, 17, 0, 1, tzinfo=WIB))
    # A reply a minute before the close, processed after it, and with a calendar that has
    # changed meanwhile (a leave day added within the ten days): still in time, reopened.
    config = RULES.config
    with_leave = Rules.of(RULES.directory, config.model_copy(update={
        "collective_leave": config.collective_leave | {date(2026, 11, 10)}}))
    event = FollowUpEvent(event_id="reply-1", tracking_id=tid, agency_code="kota-bekasi-dinkes",
                          status=Status.REPORTER_REPLIED,
                          at=datetime(2026, 11, 16, 23, 59, tzinfo=WIB))
    arrives = datetime(2026, 11, 17, 0, 2, tzinfo=WIB)
    with store.transaction(engine) as conn:
        applied = store_follow_ups(conn, [Record(topics.FOLLOW_UP, 0, 99, None,
                                                 event.model_dump_json().encode(), {}, arrives)],
                                   with_leave, arrives)
    assert applied.dead_letters == []
    post(engine, tid, Status.RESPONDED, datetime(2026, 11, 17, 9, 0, tzinfo=WIB))
    second = sweep(engine, datetime(2026, 12, 31, 0, 0, tzinfo=WIB))
    closes = [json.loads(p.value) for p in first.pending + second.pending]
    assert [n["status"] for n in closes] == ["closed", "closed"]
    assert len({n["event_id"] for n in closes}) == 2
    with engine.connect() as conn:
        statuses = conn.execute(sa.text(
            "SELECT status FROM status_history ORDER BY id")).scalars().all()
    assert statuses[-2:] == ["responded", "closed"]


def test_migration_0011_keeps_escalated_breaches_escalated(database_url: str) -> None:
    migrate.upgrade(database_url, "0010")
    engine = store.make_engine(database_url)
    intake_at(engine, "escalated", datetime(2026, 11, 2, 9, 0, tzinfo=WIB))
    with store.transaction(engine) as conn:
        conn.execute(sa.text("UPDATE complaint SET escalated_kind = 'verification'"))
    migrate.upgrade(database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT due_kind, escalated_kind FROM complaint")).one() == (
            "verification", "verification")
    assert escalated(engine, datetime(2026, 11, 6, 8, 0, tzinfo=WIB)) == []  # escalated before
    engine.dispose()


def test_verifying_and_forwarding_in_one_act_is_timed_as_verification(
    engine: sa.Engine,
) -> None:
    # The admin passing a report on straight from received met the verification deadline;
    # only an explicit `verified` fed "time to verify", so the usual path went unmeasured.
    timed: dict[str, list[str]] = {}
    for ref, steps in (("one-act", [Status.DISPOSITIONED]),
                       ("two-acts", [Status.VERIFIED, Status.DISPOSITIONED])):
        tid = intake(engine, ref)
        timed[ref] = []
        for n, status in enumerate(steps, 1):
            event = FollowUpEvent(event_id=f"{tid}-{n}", tracking_id=tid,
                                  agency_code="kota-bekasi-dinkes", status=status,
                                  at=MONDAY + timedelta(hours=n))
            with store.transaction(engine) as conn:
                applied = store_follow_ups(conn, [Record(
                    topics.FOLLOW_UP, 0, n, None, event.model_dump_json().encode(), {},
                    event.at)], RULES, event.at)
            timed[ref] += [stage for _, e in applied.effects for _, stage, _ in e.latencies]
    assert timed == {"one-act": ["verification"], "two-acts": ["verification"]}


def test_migration_0012_keeps_agency_events_known_by_their_agency(database_url: str) -> None:
    migrate.upgrade(database_url, "0011")
    engine = store.make_engine(database_url)
    tid = intake_at(engine, "before-0012", datetime(2026, 11, 2, 9, 0, tzinfo=WIB))
    at = datetime(2026, 11, 2, 10, 0, tzinfo=WIB)
    with store.transaction(engine) as conn:  # as the hub before 0012 kept an agency's event
        conn.execute(sa.text(
            "INSERT INTO status_history (event_id, tracking_id, status, agency_code, at) "
            "VALUES ('e-1', :t, 'verified', 'kota-bekasi-dinkes', :at)"), {"t": tid, "at": at})
        conn.execute(sa.text("UPDATE complaint SET status = 'verified'"))
    migrate.upgrade(database_url)
    ids = "SELECT event_id FROM status_history ORDER BY id"
    with engine.connect() as conn:
        assert conn.execute(sa.text(ids)).scalars().all() == [
            f"received-{tid}", "kota-bekasi-dinkes:e-1"]
    # The same event delivered again after the upgrade is a re-send still.
    event = FollowUpEvent(event_id="e-1", tracking_id=tid, agency_code="kota-bekasi-dinkes",
                          status=Status.VERIFIED, at=at)
    with store.transaction(engine) as conn:
        applied = store_follow_ups(conn, [Record(topics.FOLLOW_UP, 0, 0, None,
                                                 event.model_dump_json().encode(), {}, at)],
                                   RULES, at)
    assert (applied.effects, applied.dead_letters) == ([], [])
    # Another agency's "e-1" on the same complaint: the old schema cannot hold it bare.
    handed = FollowUpEvent(event_id="e-2", tracking_id=tid, agency_code="kota-bekasi-dinkes",
                           status=Status.DISPOSITIONED, target_agency="kota-bekasi-rsud", at=at)
    taken_up = FollowUpEvent(event_id="e-1", tracking_id=tid, agency_code="kota-bekasi-rsud",
                             status=Status.IN_PROGRESS, at=at)
    with store.transaction(engine) as conn:
        for n, event in enumerate((handed, taken_up)):
            assert not store_follow_ups(conn, [Record(
                topics.FOLLOW_UP, 0, n + 1, None, event.model_dump_json().encode(), {}, at)],
                RULES, at).dead_letters
    with engine.connect() as conn:
        command.downgrade(migrate.config(conn), "0011")
        conn.commit()
    with engine.connect() as conn:
        assert conn.execute(sa.text(ids)).scalars().all() == [
            f"received-{tid}", "e-1", "e-2", "kota-bekasi-rsud:e-1"]
    engine.dispose()


def test_a_change_that_brings_deadlines_earlier_is_set_at_start(engine: sa.Engine) -> None:
    # Reckoned only when it came due, a deadline a shorter limit (or a leave day taken out)
    # brings earlier was escalated on its stored, later day.
    tid = intake(engine, "shorter")
    config = RULES.config
    shorter = Rules.of(RULES.directory, config.model_copy(update={
        "deadlines": config.deadlines.model_copy(update={"verification": 1})}))
    with store.transaction(engine) as conn:
        assert watcher.reckon_page(conn, shorter, MONDAY, "") is None  # one page: all
    with store.transaction(engine) as conn:
        late = watcher.sweep(conn, shorter, datetime(2026, 11, 24, 17, 1, tzinfo=UTC))
    (event,) = [json.loads(p.value) for p in late.pending]
    # One working day from Monday: due as Wednesday begins in Bekasi, not Friday.
    assert (event["tracking_id"], event["due_at"]) == (tid, "2026-11-25T00:00:00+07:00")


def test_an_agency_taken_out_of_the_registry_leaves_its_open_complaints_to_national(
    engine: sa.Engine,
) -> None:
    # They were counted nowhere: open 0 everywhere, no oldest age, while the watch escalated
    # them to the national admin, whose to pass on they are.
    tids = [intake(engine, f"gone-{n}") for n in range(2)]
    follow(engine, tids[0], Status.IN_PROGRESS, MONDAY + timedelta(hours=1))
    old = RULES.directory
    national = old.national.code
    without = replace(RULES, directory=Directory(
        national, [a for a in old.agencies.values() if a.code != "kota-bekasi-dinkes"],
        [r for r in old.rules if r.agency != "kota-bekasi-dinkes"]))
    now = MONDAY + timedelta(days=2)
    with store.transaction(engine) as conn:
        watcher.refresh_gauges(conn, without, now)
    assert metrics.open_complaints.labels(national)._value.get() == 2
    assert metrics.oldest_open.labels(national)._value.get() == (now - MONDAY).total_seconds()
    assigned = {s: metrics.assigned.labels(national, s)._value.get()
                for s in ("not_followed_up", "followed_up", "resolved")}
    assert assigned == {"not_followed_up": 1, "followed_up": 1, "resolved": 0}



def answered(engine: sa.Engine, tid: str, n: int, agency: str, status: Status,
             at: datetime) -> Applied:
    """Apply the agency's event number `n` on `tid`, stamped and handled at `at`."""
    event = FollowUpEvent(event_id=f"{tid}-{n}", tracking_id=tid, agency_code=agency,
                          status=status, at=at)
    with store.transaction(engine) as conn:
        applied = store_follow_ups(conn, [Record(
            topics.FOLLOW_UP, 0, n, None, event.model_dump_json().encode(), {}, at)], RULES, at)
    assert not applied.dead_letters, applied.dead_letters
    return applied

def test_the_first_answer_is_timed_as_settle_from_the_routing(engine: sa.Engine) -> None:
    # Nothing measured routing -> answer, though the settle deadline (5, 14 or 60 working
    # days) is the one a citizen waits on; a second answer after a reply is not a new one.
    tid = intake(engine, "settled")
    timed: list[tuple[str, float]] = []
    steps = [Status.DISPOSITIONED, Status.RESPONDED, Status.REPORTER_REPLIED,
             Status.IN_PROGRESS, Status.RESPONDED]
    for n, status in enumerate(steps, 1):
        at = MONDAY + timedelta(days=n)  # Tue .. Sat 09:00 WIB: the answer on Wednesday
        applied = answered(engine, tid, n, "kota-bekasi-dinkes", status, at)
        timed += [(stage, s) for _, e in applied.effects for _, stage, s in e.latencies
                  if stage == "settle"]
    # The routing day does not count (hub.calendar): Tuesday, and Wednesday to 09:00.
    assert timed == [("settle", 1.375 * 86_400)]


def test_an_answered_complaint_handed_on_times_the_new_holders_first_answer(
    engine: sa.Engine,
) -> None:
    # The answer a holder gave before declining (after the reporter's reply) kept
    # responded_at set, so the agency it went to never had its own first answer timed.
    tid = intake(engine, "answered-then-declined")
    steps = [("kota-bekasi-dinkes", Status.DISPOSITIONED), ("kota-bekasi-dinkes", Status.RESPONDED),
             ("kota-bekasi-dinkes", Status.REPORTER_REPLIED),
             ("kota-bekasi-dinkes", Status.NOT_AUTHORITY), ("kota-bekasi", Status.RESPONDED)]
    timed: list[tuple[str, str]] = []
    for n, (agency, status) in enumerate(steps, 1):
        at = MONDAY + timedelta(days=n)
        applied = answered(engine, tid, n, agency, status, at)
        timed += [(holder, stage) for _, e in applied.effects for holder, stage, _ in e.latencies
                  if stage == "settle"]
    assert timed == [("kota-bekasi-dinkes", "settle"), ("kota-bekasi", "settle")]


def test_every_agency_has_its_latency_series_before_its_first_observation() -> None:
    # Born at its first observation, a series starts at 1 and rate() sees no step: one late
    # answer after a start counted nowhere in the SLO rules.
    metrics.agencies_known(["an-agency-not-yet-seen"])
    text = generate_latest(metrics.REGISTRY).decode()
    for stage in metrics.STAGES:
        assert ('lapor_follow_up_latency_seconds_count{agency="an-agency-not-yet-seen",'
                f'stage="{stage}"}} 0.0') in text
