"""Working-day calendar: deadlines and elapsed working time in an agency's local day.

One clock serves both the deadline and the latency histograms, so that "within N working days"
means the same thing everywhere:

- A complaint received at any time on local day D starts its clock at local midnight ending D:
  the receipt day never counts, and day 1 is the first working day after D (a complaint received
  on Saturday and one received on Friday both start on Monday).
- Each working day (Monday-Friday, not a national holiday, not collective leave) adds its whole
  local calendar day, 86,400 s; other days add nothing. Time while the complaint waits for the
  reporter (needs_info) is cut out.
- A complaint is within N working days while `working_seconds_between(...) <= N * 86_400`, and
  `due_at(...)` is the last instant for which that holds: local 00:00 of the first working day
  after the Nth. A deadline whose Nth working day is a Friday is therefore due Monday 00:00, as
  an answer over the weekend costs no working time.

Same-day actions measure 0 working seconds; wall-clock latency is simply `end - start`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, assert_never
from zoneinfo import ZoneInfo

import holidays
from pydantic import (
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    PositiveInt,
    PrivateAttr,
    field_validator,
    model_validator,
)

from hub.model import ReportType
from hub.operator_files import load_yaml

WORKING_DAY_SECONDS = 86_400
_ONE_DAY = timedelta(days=1)
_MONDAY_TO_FRIDAY = frozenset(range(5))

Interval = tuple[datetime, datetime]


class Zone(StrEnum):
    """The three Indonesian time zones an agency can sit in; the value is the IANA key."""

    WIB = "Asia/Jakarta"
    WITA = "Asia/Makassar"
    WIT = "Asia/Jayapura"

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.value)


class DeadlineKind(StrEnum):
    """The time limits of the lifecycle; the values are `model.Deadline.kind`."""

    VERIFICATION = "verification"
    FIRST_FOLLOW_UP = "first_follow_up"
    SETTLE = "settle"
    AUTO_CLOSE = "auto_close"


@cache
def _national_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("ID", years=year))


@cache
def decreed_leave(year: int) -> frozenset[date]:
    """The collective leave the `holidays` package knows for `year` (its "government"
    category: the joint decree's days, added in its releases once the decree is out)."""
    return frozenset(holidays.country_holidays("ID", years=year, categories=("government",)))


class WorkingCalendar:
    """Which local days are working days, and working time measured over them."""

    def __init__(
        self,
        collective_leave: Iterable[date] = (),
        extra_holidays: Iterable[date] = (),
        observed_weekdays: Iterable[int] = _MONDAY_TO_FRIDAY,
        not_holidays: Iterable[date] = (),
        *,
        package_leave: bool = False,
        leave_years: Iterable[int] = (),
    ) -> None:
        """Build a calendar.

        Args:
            collective_leave: cuti bersama days, from the yearly joint decree.
            extra_holidays: days off the `holidays` package does not know yet, e.g. a national
                holiday decreed at short notice.
            observed_weekdays: the working weekdays, Monday = 0.
            not_holidays: days the `holidays` package has as a holiday that are none: its
                estimate of a lunar holiday that the government's decree set on another day.
            package_leave: in a year neither `collective_leave` nor `leave_years` lists,
                the collective leave the `holidays` package knows (`decreed_leave`).
            leave_years: the years `collective_leave` is complete for, even with no day.
        """
        self._days_off = frozenset(collective_leave) | frozenset(extra_holidays)
        self._not_holidays = frozenset(not_holidays)
        self._package_leave = package_leave
        self._leave_years = frozenset(leave_years) | {day.year for day in collective_leave}
        self._weekdays = frozenset(observed_weekdays)
        if not self._weekdays <= frozenset(range(7)) or not self._weekdays:
            # An empty week would make due_at search forever.
            raise ValueError(
                f"observed_weekdays must be a non-empty subset of 0..6: {observed_weekdays}"
            )

    def is_working_day(self, day: date) -> bool:
        return (
            day.weekday() in self._weekdays
            and day not in self._days_off
            and (day in self._not_holidays or not (
                day in _national_holidays(day.year)
                or (self._package_leave and day.year not in self._leave_years
                    and day in decreed_leave(day.year))
            ))
        )

    def working_seconds_between(
        self, start: datetime, end: datetime, zone: Zone, paused: Sequence[Interval] = ()
    ) -> float:
        """Working time on the clock of a complaint received at `start`, up to `end`.

        An `end` before the clock starts measures 0.
        """
        _require_aware(start, end)
        elapsed = timedelta()
        for span_start, span_end in self._clock(start, zone, paused):
            if span_start >= end:
                break
            elapsed += min(span_end, end) - span_start
        return elapsed.total_seconds()

    def due_at(
        self, start: datetime, days: int, zone: Zone, paused: Sequence[Interval] = ()
    ) -> datetime:
        """The last instant, in the agency's local time, still within `days` working days.

        For every `end`: `end <= due_at(start, n, zone, paused)` exactly when
        `working_seconds_between(start, end, zone, paused) <= n * 86_400`. Paused working time
        moves the deadline out by as much.
        """
        _require_aware(start)
        if days < 0:
            raise ValueError(f"days must not be negative: {days}")
        budget = timedelta(days=days)
        for span_start, span_end in self._clock(start, zone, paused):
            # Strictly greater: a budget used up at a span's end stretches to the next span.
            if span_end - span_start > budget:
                return (span_start + budget).astimezone(zone.tzinfo)
            budget -= span_end - span_start
        raise OverflowError("no working time left before the last day a date holds")

    def _clock(self, start: datetime, zone: Zone, paused: Sequence[Interval]) -> Iterator[Interval]:
        """The running intervals of the clock, in order and in UTC, up to the last day a date
        holds (a complaint stamped then, received in 9999 by its producer's clock, failed
        every measure of it with OverflowError: the deadline watch at each pass)."""
        _require_aware(*(t for interval in paused for t in interval))
        pauses = _merged(paused)
        day = start.astimezone(zone.tzinfo).date()
        while day < date.max - _ONE_DAY:
            day += _ONE_DAY
            if self.is_working_day(day):
                yield from _minus(
                    _local_midnight(day, zone), _local_midnight(day + _ONE_DAY, zone), pauses
                )


def _require_aware(*moments: datetime) -> None:
    for moment in moments:
        if moment.utcoffset() is None:
            raise ValueError(f"naive datetime, a time zone is required: {moment.isoformat()}")


def _local_midnight(day: date, zone: Zone) -> datetime:
    return datetime.combine(day, time(), zone.tzinfo).astimezone(UTC)


def _merged(intervals: Sequence[Interval]) -> list[Interval]:
    """Sorted, disjoint UTC intervals, so overlapping pauses are not cut out twice."""
    merged: list[Interval] = []
    for start, end in sorted((s.astimezone(UTC), e.astimezone(UTC)) for s, e in intervals):
        if end < start:
            raise ValueError(
                f"pause ends before it starts: {start.isoformat()} > {end.isoformat()}"
            )
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _minus(start: datetime, end: datetime, pauses: list[Interval]) -> Iterator[Interval]:
    """The parts of [start, end) outside the sorted, disjoint pauses."""
    for pause_start, pause_end in pauses:
        if pause_end <= start or pause_start >= end:
            continue
        if pause_start > start:
            yield start, pause_start
        start = max(start, pause_end)
    if start < end:
        yield start, end


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SettleDays(_Frozen):
    information_request: PositiveInt
    aspiration: PositiveInt
    complaint: PositiveInt
    complaint_needing_inspection: PositiveInt


class Deadlines(_Frozen):
    verification: PositiveInt
    first_follow_up: PositiveInt
    settle: SettleDays
    auto_close: PositiveInt


class CalendarConfig(_Frozen):
    """Time limits in working days, the collective-leave days, the days off the `holidays`
    package does not know (a holiday decreed at short notice) and those it has wrong (an
    estimated date the decree moved), from `deadlines.yaml`."""

    deadlines: Deadlines
    collective_leave: frozenset[date]
    extra_holidays: frozenset[date] = frozenset()
    not_holidays: frozenset[date] = frozenset()
    _leave_years: frozenset[int] = PrivateAttr(default=frozenset())
    """The years the file lists collective leave under, with no day too."""

    @field_validator("collective_leave", "extra_holidays", "not_holidays", mode="before")
    @classmethod
    def _flatten_years(cls, by_year: Any) -> Any:
        # The file lists days under their year; a day filed under the wrong year is a typo.
        if not isinstance(by_year, dict):
            return by_year
        days: list[Any] = []
        for year, listed in by_year.items():
            number = _year(year)
            for day in listed or ():
                if not isinstance(day, date) or day.year != number:
                    raise ValueError(f"{day!r} is not a date in {year}")
                days.append(day)
        return days

    @model_validator(mode="wrap")
    @classmethod
    def _years_of_leave(
        cls, data: Any, handler: ModelWrapValidatorHandler[CalendarConfig]
    ) -> CalendarConfig:
        # A year whose decree sets no collective leave (2021's were all withdrawn) is listed
        # with none: known, where a year left out is not.
        config = handler(data)
        by_year = data.get("collective_leave") if isinstance(data, dict) else None
        if isinstance(by_year, dict):
            config._leave_years = frozenset(_year(year) for year in by_year)
        return config

    def calendar(self) -> WorkingCalendar:
        return WorkingCalendar(collective_leave=self.collective_leave,
                               extra_holidays=self.extra_holidays,
                               not_holidays=self.not_holidays,
                               package_leave=True, leave_years=self._leave_years)

    def years_without_leave(self, today: date) -> list[int]:
        """Years a deadline set today can run into for which no collective leave is known,
        neither listed in the file nor in the `holidays` package: there those days count as
        working days, and deadlines come early."""
        d = self.deadlines
        longest = max(d.verification, d.first_follow_up, d.auto_close,
                      *d.settle.model_dump().values())
        # Working days to calendar days: five in seven, and a month for holidays.
        reach = today + timedelta(days=longest * 7 // 5 + 31)
        listed = {day.year for day in self.collective_leave} | self._leave_years
        return [year for year in range(today.year, reach.year + 1)
                if year not in listed and not decreed_leave(year)]

    def deadline_days(
        self, kind: DeadlineKind, report_type: ReportType, needs_inspection: bool
    ) -> int:
        """The limit for `kind`; report type and inspection matter only for settling.

        Inspection (berkadar pengawasan) applies to complaints only, so it is ignored for the
        other report types.
        """
        match kind:
            case DeadlineKind.VERIFICATION:
                return self.deadlines.verification
            case DeadlineKind.FIRST_FOLLOW_UP:
                return self.deadlines.first_follow_up
            case DeadlineKind.AUTO_CLOSE:
                return self.deadlines.auto_close
            case DeadlineKind.SETTLE:
                return self._settle_days(report_type, needs_inspection)
            case _:
                assert_never(kind)

    def _settle_days(self, report_type: ReportType, needs_inspection: bool) -> int:
        settle = self.deadlines.settle
        match report_type:
            case ReportType.INFORMATION_REQUEST:
                return settle.information_request
            case ReportType.ASPIRATION:
                return settle.aspiration
            case ReportType.COMPLAINT:
                return settle.complaint_needing_inspection if needs_inspection else settle.complaint
            case _:
                assert_never(report_type)


def _year(key: Any) -> int:
    """A year the file lists days under."""
    try:
        return int(key)
    except (TypeError, ValueError):
        raise ValueError(f"{key!r} is not a year") from None


def load_calendar_config(path: Path | None = None) -> CalendarConfig:
    """Read deadlines and collective leave; by default the packaged `hub/data/deadlines.yaml`."""
    return load_yaml(CalendarConfig, path, "deadlines.yaml", "deadlines file")
