"""The working-day calendar: real 2025/2026 long weekends, time zones, pauses, one clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import get_args

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.calendar import (
    WORKING_DAY_SECONDS,
    DeadlineKind,
    WorkingCalendar,
    Zone,
    load_calendar_config,
)
from hub.deadlines import Rules
from hub.model import Deadline, ReportType
from hub.operator_files import OperatorFileError
from hub.routing import Directory

CONFIG = load_calendar_config()
CALENDAR = CONFIG.calendar()
DIRECTORY = Directory.load()
WIB, WITA, WIT = Zone.WIB, Zone.WITA, Zone.WIT
HOUR = 3600


def at(zone: Zone, local_time: str) -> datetime:
    """A local time in `zone`: at(WIB, "2025-08-15 14:00")."""
    return datetime.fromisoformat(local_time).replace(tzinfo=zone.tzinfo)


def test_zones_are_the_three_indonesian_offsets() -> None:
    offsets = {zone: at(zone, "2026-01-01").utcoffset() for zone in Zone}
    assert offsets == {WIB: timedelta(hours=7), WITA: timedelta(hours=8), WIT: timedelta(hours=9)}


@pytest.mark.parametrize("zone", [WIB, WIT])
def test_friday_before_idul_fitri_2026_waits_out_the_collective_leave(zone: Zone) -> None:
    # Wed 18 Mar cuti, Thu 19 Nyepi, Fri 20 cuti, Sat-Sun 21-22 Idul Fitri, Mon-Tue 23-24 cuti:
    # Mon 16 and Tue 17 are days 1 and 2, Wed 25 day 3, Fri 27 day 5.
    received = at(zone, "2026-03-13 16:00")
    assert CALENDAR.due_at(received, 3, zone) == at(zone, "2026-03-26")
    assert CALENDAR.due_at(received, 5, zone) == at(zone, "2026-03-30")
    # Without collective leave day 3 is Wed 18, and Thu 19 (Nyepi) is the only day off.
    assert WorkingCalendar().due_at(received, 3, zone) == at(zone, "2026-03-20")


def test_the_same_local_deadline_falls_two_hours_earlier_in_wit() -> None:
    due_wib = CALENDAR.due_at(at(WIB, "2026-03-13 16:00"), 3, WIB)
    due_wit = CALENDAR.due_at(at(WIT, "2026-03-13 16:00"), 3, WIT)
    assert due_wib - due_wit == timedelta(hours=2)


def test_friday_before_the_independence_day_2025_long_weekend() -> None:
    # Sat 16, Sun 17 (Independence Day), Mon 18 (cuti bersama, added by SKB in Aug 2025).
    received = at(WIB, "2025-08-15 14:00")
    assert CALENDAR.due_at(received, 1, WIB) == at(WIB, "2025-08-20")
    assert CALENDAR.due_at(received, 5, WIB) == at(WIB, "2025-08-26")
    assert CALENDAR.working_seconds_between(received, at(WIB, "2025-08-19"), WIB) == 0


def test_2330_wib_friday_is_already_saturday_in_wit() -> None:
    received = at(WIB, "2025-09-12 23:30")
    assert received.astimezone(WIT.tzinfo) == at(WIT, "2025-09-13 01:30")
    # A Friday and a Saturday receipt both count from Monday.
    assert CALENDAR.due_at(received, 1, WIB) == at(WIB, "2025-09-16")
    assert CALENDAR.due_at(received, 1, WIT) == at(WIT, "2025-09-16")
    # Monday 12:00 WIB is 14:00 WIT, and each agency counts its own Monday.
    answered = at(WIB, "2025-09-15 12:00")
    assert CALENDAR.working_seconds_between(received, answered, WIB) == 12 * HOUR
    assert CALENDAR.working_seconds_between(received, answered, WIT) == 14 * HOUR


def test_2330_wib_thursday_is_friday_in_wit_and_due_a_working_day_later() -> None:
    received = at(WIB, "2025-09-11 23:30")
    # WIB: received Thursday, day 1 is Friday. WIT: received Friday, day 1 is Monday.
    assert CALENDAR.due_at(received, 1, WIB) == at(WIB, "2025-09-15")
    assert CALENDAR.due_at(received, 1, WIT) == at(WIT, "2025-09-16")


def test_the_receipt_day_never_counts() -> None:
    received = at(WITA, "2025-09-08 09:00")
    assert CALENDAR.working_seconds_between(received, at(WITA, "2025-09-08 17:00"), WITA) == 0
    assert (
        CALENDAR.working_seconds_between(received, at(WITA, "2025-09-09 09:00"), WITA) == 9 * HOUR
    )


def test_weekends_count_nothing() -> None:
    saturday = at(WIB, "2025-09-13 10:00")
    assert CALENDAR.working_seconds_between(saturday, at(WIB, "2025-09-14 23:00"), WIB) == 0
    assert CALENDAR.working_seconds_between(saturday, at(WIB, "2025-09-15 06:00"), WIB) == 6 * HOUR
    assert CALENDAR.due_at(saturday, 1, WIB) == at(WIB, "2025-09-16")
    # Day 5 is a Friday, and a weekend answer costs no working time: due Monday 00:00.
    assert CALENDAR.due_at(saturday, 5, WIB) == at(WIB, "2025-09-22")
    assert CALENDAR.working_seconds_between(saturday, at(WIB, "2025-09-21 23:00"), WIB) == (
        5 * WORKING_DAY_SECONDS
    )


def test_waiting_for_the_reporter_extends_the_deadline() -> None:
    received = at(WIB, "2025-09-08 10:00")
    assert CALENDAR.due_at(received, 5, WIB) == at(WIB, "2025-09-16")
    # Wed 12:00 to Fri 12:00 is two working days; the pause may come in another zone.
    needs_info = (at(WIT, "2025-09-10 14:00"), at(WIB, "2025-09-12 12:00"))
    assert CALENDAR.due_at(received, 5, WIB, [needs_info]) == at(WIB, "2025-09-18")
    assert CALENDAR.working_seconds_between(received, at(WIB, "2025-09-18"), WIB, [needs_info]) == (
        5 * WORKING_DAY_SECONDS
    )
    # Overlapping pauses are cut out once.
    overlapping = [needs_info, (at(WIB, "2025-09-11"), at(WIB, "2025-09-11 06:00"))]
    assert CALENDAR.due_at(received, 5, WIB, overlapping) == at(WIB, "2025-09-18")


def test_a_pause_over_a_weekend_changes_nothing() -> None:
    received = at(WIB, "2025-09-08 10:00")
    weekend = (at(WIB, "2025-09-13"), at(WIB, "2025-09-15"))
    assert CALENDAR.due_at(received, 5, WIB, [weekend]) == at(WIB, "2025-09-16")


def test_bad_input_is_rejected() -> None:
    received = at(WIB, "2025-09-08 10:00")
    with pytest.raises(ValueError, match="naive"):
        CALENDAR.due_at(datetime(2025, 9, 8, 10), 5, WIB)
    with pytest.raises(ValueError, match="negative"):
        CALENDAR.due_at(received, -1, WIB)
    with pytest.raises(ValueError, match="ends before it starts"):
        CALENDAR.working_seconds_between(
            received, received, WIB, [(received, received - timedelta(hours=1))]
        )
    with pytest.raises(ValueError, match="non-empty"):
        WorkingCalendar(observed_weekdays=())


_moments = st.datetimes(
    min_value=datetime(2025, 1, 1),  # hypothesis wants naive bounds
    max_value=datetime(2026, 12, 31),
    timezones=st.sampled_from([UTC, *(zone.tzinfo for zone in Zone)]),
)
_pauses = st.lists(
    st.tuples(_moments, st.timedeltas(timedelta(0), timedelta(days=10))).map(
        lambda pause: (pause[0], pause[0] + pause[1])
    ),
    max_size=3,
)


@settings(deadline=None, max_examples=300)
@given(
    start=_moments,
    days=st.integers(0, 60),
    zone=st.sampled_from(Zone),
    paused=_pauses,
    later=st.timedeltas(timedelta(0), timedelta(days=120)),
    near=st.timedeltas(timedelta(days=-3), timedelta(days=3)),
)
def test_within_n_working_days_means_the_same_on_both_clocks(
    *,
    start: datetime,
    days: int,
    zone: Zone,
    paused: list[tuple[datetime, datetime]],
    later: timedelta,
    near: timedelta,
) -> None:
    budget = days * WORKING_DAY_SECONDS
    due = CALENDAR.due_at(start, days, zone, paused)
    for end in (start + later, due + near):
        within = CALENDAR.working_seconds_between(start, end, zone, paused) <= budget
        assert within == (end <= due)
    # The deadline is the last instant within: exactly the budget, and a microsecond more is late.
    assert CALENDAR.working_seconds_between(start, due, zone, paused) == budget
    tick = timedelta(microseconds=1)
    assert CALENDAR.working_seconds_between(start, due + tick, zone, paused) > budget


@settings(deadline=None)
@given(start=_moments, days=st.integers(0, 60), zone=st.sampled_from(Zone))
def test_unpaused_deadline_is_midnight_opening_the_working_day_after_the_nth(
    start: datetime, days: int, zone: Zone
) -> None:
    due = CALENDAR.due_at(start, days, zone)
    assert due.tzinfo == zone.tzinfo
    assert due.time() == time(0)
    assert CALENDAR.is_working_day(due.date())
    received_on = start.astimezone(zone.tzinfo).date()
    between = (received_on + timedelta(days=n) for n in range(1, (due.date() - received_on).days))
    assert sum(CALENDAR.is_working_day(day) for day in between) == days


@settings(deadline=None)
@given(start=_moments, report_type=st.sampled_from(ReportType), inspection=st.booleans(),
       zone=st.sampled_from(Zone))
def test_rules_cache_unpaused_deadlines_by_local_day_without_changing_them(
    start: datetime, report_type: ReportType, inspection: bool, zone: Zone
) -> None:
    rules = Rules.of(DIRECTORY, CONFIG)
    for kind in DeadlineKind:
        days = CONFIG.deadline_days(kind, report_type, inspection)
        assert rules.due(start, kind, report_type, inspection, zone) == (
            CALENDAR.due_at(start, days, zone)
        )


def test_packaged_deadlines() -> None:
    kinds = DeadlineKind
    assert CONFIG.deadline_days(kinds.VERIFICATION, ReportType.COMPLAINT, False) == 3
    assert CONFIG.deadline_days(kinds.FIRST_FOLLOW_UP, ReportType.ASPIRATION, True) == 5
    assert CONFIG.deadline_days(kinds.AUTO_CLOSE, ReportType.COMPLAINT, False) == 10


@pytest.mark.parametrize(
    ("report_type", "needs_inspection", "days"),
    [
        (ReportType.INFORMATION_REQUEST, False, 5),
        (ReportType.INFORMATION_REQUEST, True, 5),
        (ReportType.ASPIRATION, False, 5),
        (ReportType.ASPIRATION, True, 5),
        (ReportType.COMPLAINT, False, 14),
        (ReportType.COMPLAINT, True, 60),
    ],
)
def test_settle_deadline_by_report_type(
    report_type: ReportType, needs_inspection: bool, days: int
) -> None:
    assert CONFIG.deadline_days(DeadlineKind.SETTLE, report_type, needs_inspection) == days


def test_packaged_collective_leave() -> None:
    assert sorted(CONFIG.collective_leave) == [
        *(date(2025, 1, 28), date(2025, 3, 28), date(2025, 4, 2), date(2025, 4, 3)),
        *(date(2025, 4, 4), date(2025, 4, 7), date(2025, 5, 13), date(2025, 5, 30)),
        *(date(2025, 6, 9), date(2025, 8, 18), date(2025, 12, 26)),
        *(date(2026, 2, 16), date(2026, 3, 18), date(2026, 3, 20), date(2026, 3, 23)),
        *(date(2026, 3, 24), date(2026, 5, 15), date(2026, 5, 28), date(2026, 12, 24)),
    ]


@pytest.mark.parametrize("year", [2025, 2026])
def test_collective_leave_agrees_with_the_holidays_package(year: int) -> None:
    # A second source: the package's "government" category tracks the same joint decrees.
    joint = holidays.country_holidays("ID", years=year, categories=("government",))
    assert {day for day in CONFIG.collective_leave if day.year == year} == set(joint)


def test_a_config_file_can_replace_the_packaged_one(tmp_path: Path) -> None:
    path = tmp_path / "deadlines.yaml"
    path.write_text(
        "deadlines: {verification: 2, first_follow_up: 4, auto_close: 7, settle:\n"
        "  {information_request: 3, aspiration: 3, complaint: 10,"
        " complaint_needing_inspection: 30}}\n"
        "collective_leave: {2027: [2027-02-05]}\n"
    )
    config = load_calendar_config(path)
    assert config.deadline_days(DeadlineKind.VERIFICATION, ReportType.COMPLAINT, False) == 2
    assert config.collective_leave == {date(2027, 2, 5)}
    assert not config.calendar().is_working_day(date(2027, 2, 5))


def test_a_holiday_the_package_does_not_know_can_be_listed(tmp_path: Path) -> None:
    # A national holiday decreed at short notice (as the 2024 election day was): the file
    # takes it without waiting for a new release of the holidays package.
    packaged = (Path(__file__).parents[2] / "hub" / "data" / "deadlines.yaml").read_text()
    path = tmp_path / "deadlines.yaml"
    path.write_text(packaged + "extra_holidays:\n  2026:\n    - 2026-12-31\n")
    assert CONFIG.calendar().is_working_day(date(2026, 12, 31))
    config = load_calendar_config(path)
    assert not config.calendar().is_working_day(date(2026, 12, 31))
    path.write_text(packaged + "extra_holidays: {2026: [2027-01-04]}\n")
    with pytest.raises(OperatorFileError, match=r"extra_holidays: .* is not a date in 2026"):
        load_calendar_config(path)


def test_a_holiday_the_package_estimated_on_another_day_can_be_moved(tmp_path: Path) -> None:
    # The package estimates lunar holidays years ahead (Eid al-Adha 2027 "estimated" on
    # 17 May); the decree may set it a day later. The file could add a day, not remove one.
    packaged = (Path(__file__).parents[2] / "hub" / "data" / "deadlines.yaml").read_text()
    path = tmp_path / "deadlines.yaml"
    path.write_text(packaged + "extra_holidays: {2027: [2027-05-18]}\n"
                               "not_holidays: {2027: [2027-05-17]}\n")
    assert not CONFIG.calendar().is_working_day(date(2027, 5, 17))
    calendar = load_calendar_config(path).calendar()
    assert calendar.is_working_day(date(2027, 5, 17))
    assert not calendar.is_working_day(date(2027, 5, 18))
    assert not calendar.is_working_day(date(2027, 5, 16))  # a Sunday stays one


@pytest.mark.parametrize(
    "collective_leave",
    ["{2027: [2026-12-24]}", "{2027: [not-a-date]}"],
)
def test_a_leave_day_outside_its_year_is_rejected(tmp_path: Path, collective_leave: str) -> None:
    path = tmp_path / "deadlines.yaml"
    path.write_text(
        "deadlines: {verification: 2, first_follow_up: 4, auto_close: 7, settle:\n"
        "  {information_request: 3, aspiration: 3, complaint: 10,"
        " complaint_needing_inspection: 30}}\n"
        f"collective_leave: {collective_leave}\n"
    )
    with pytest.raises(OperatorFileError, match=r"collective_leave: .* is not a date in 2027"):
        load_calendar_config(path)


def test_deadline_kinds_are_the_model_kinds() -> None:
    assert {kind.value for kind in DeadlineKind} == set(
        get_args(Deadline.model_fields["kind"].annotation)
    )
    deadline = Deadline(kind=DeadlineKind.SETTLE, due_at=at(WIB, "2026-03-30"))
    assert deadline.kind == "settle"


def test_years_deadlines_reach_without_collective_leave_are_named() -> None:
    """The packaged file lists 2025 and 2026, the `holidays` package knows 2027's decree
    (and the years before); a year neither knows is named as soon as a 60-working-day
    deadline can reach it."""
    assert CONFIG.years_without_leave(date(2026, 6, 1)) == []
    assert CONFIG.years_without_leave(date(2026, 11, 24)) == []
    assert CONFIG.years_without_leave(date(2024, 12, 1)) == []
    assert CONFIG.years_without_leave(date(2039, 6, 1)) == [2039]
    assert CONFIG.years_without_leave(date(2039, 11, 24)) == [2039, 2040]


def test_a_year_the_file_leaves_out_has_the_collective_leave_the_package_knows() -> None:
    # 2027's joint decree came out after the packaged file was written: its days (Friday
    # 5 February, Chinese New Year) counted as working days, and deadlines fell early.
    calendar = CONFIG.calendar()
    assert not calendar.is_working_day(date(2027, 2, 5))
    assert calendar.is_working_day(date(2027, 2, 4))
    # Received Wed 3 Feb 2027: Thu 4, Mon 8, Tue 9 – due Wednesday 10 February 00:00 WIB.
    assert calendar.due_at(at(WIB, "2027-02-03T10:00"), 3, WIB) == at(WIB, "2027-02-10")
    # A year the file lists is the file's alone: the operator can take a day out.
    listed = WorkingCalendar(collective_leave=[date(2027, 3, 9)], package_leave=True)
    assert listed.is_working_day(date(2027, 2, 5))
    assert not listed.is_working_day(date(2027, 3, 9))
    assert WorkingCalendar(package_leave=True, leave_years=[2027]).is_working_day(
        date(2027, 2, 5))


def test_a_year_listed_without_collective_leave_is_no_year_unlisted(tmp_path: Path) -> None:
    # A decree may leave a year none (2021's were all withdrawn): listed empty, it is known,
    # and the warning and LaporCollectiveLeaveUnlisted stop.
    packaged = (Path(__file__).parents[2] / "hub" / "data" / "deadlines.yaml").read_text()
    path = tmp_path / "deadlines.yaml"
    path.write_text(packaged.replace("collective_leave:\n", "collective_leave:\n  2027: []\n", 1))
    config = load_calendar_config(path)
    assert config.collective_leave == CONFIG.collective_leave
    assert config.years_without_leave(date(2026, 11, 24)) == []
    assert config.model_copy().years_without_leave(date(2026, 11, 24)) == []
    path.write_text(packaged.replace("collective_leave:\n", "collective_leave:\n  next: []\n", 1))
    with pytest.raises(OperatorFileError, match=r"collective_leave: .*'next' is not a year"):
        load_calendar_config(path)


def test_the_hub_warns_once_per_unlisted_year_and_keeps_the_gauge(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from hub import metrics
    from hub.app import check_collective_leave

    warned: set[int] = set()
    with caplog.at_level("WARNING", logger="hub.app"):
        for _ in range(3):
            check_collective_leave(CONFIG, date(2039, 11, 24), warned)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("neither the deadlines file nor the holidays package knows the "
                           "collective leave (cuti bersama) of 2039, 2040: "), line
    assert metrics.totals("lapor_collective_leave_unlisted", "year") == {
        "2039": 1.0, "2040": 1.0}
    check_collective_leave(CONFIG, date(2026, 11, 24), warned)
    assert metrics.totals("lapor_collective_leave_unlisted", "year") == {}
