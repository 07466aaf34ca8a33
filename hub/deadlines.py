"""Which deadlines run for a complaint, computed in its holder's working-day calendar."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from hub import lifecycle
from hub.calendar import CalendarConfig, DeadlineKind, Interval, WorkingCalendar, Zone
from hub.model import Deadline, ReportType, Status
from hub.routing import Agency, Directory
from hub.sealing import Sealer
from hub.store import ComplaintRow

ANNOUNCED = (DeadlineKind.VERIFICATION, DeadlineKind.FIRST_FOLLOW_UP, DeadlineKind.SETTLE)


@dataclass(frozen=True, slots=True)
class Rules:
    """Everything a decision needs besides the complaint: registry and calendar."""

    directory: Directory
    config: CalendarConfig
    calendar: WorkingCalendar
    secret: bytes = b"dev-only-secret-change-me"
    """Keys reporter hashes (hub.duplicates) and, through `sealer`, identity at rest."""
    sealer: Sealer = field(default_factory=lambda: Sealer(b"dev-only-secret-change-me"))
    duplicate_window: timedelta = timedelta(hours=72)
    _announced: dict[tuple[datetime, ReportType, bool, Zone], tuple[Deadline, ...]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )
    """A batch routes its complaints at one `now`: most share their deadlines."""

    @classmethod
    def of(
        cls, directory: Directory, config: CalendarConfig, *, secret: bytes | None = None,
        sealer: Sealer | None = None, duplicate_window: timedelta | None = None,
    ) -> Rules:
        rules = cls(directory, config, config.calendar())
        if secret is not None:
            rules = replace(rules, secret=secret)
        if sealer is not None:
            rules = replace(rules, sealer=sealer)
        if duplicate_window is not None:
            rules = replace(rules, duplicate_window=duplicate_window)
        return rules

    def due(
        self, start: datetime, kind: DeadlineKind, report_type: ReportType,
        needs_inspection: bool, zone: Zone, pauses: Sequence[Interval] = (),
    ) -> datetime:
        days = self.config.deadline_days(kind, report_type, needs_inspection)
        if pauses:
            return self.calendar.due_at(start, days, zone, pauses)
        return _due_unpaused(self.calendar, start, days, zone)

    def announced(
        self, start: datetime, report_type: ReportType, needs_inspection: bool, agency: Agency
    ) -> tuple[Deadline, ...]:
        """The deadlines a routing event tells the agency about."""
        key = (start, report_type, needs_inspection, agency.zone)
        found = self._announced.get(key)
        if found is None:
            if len(self._announced) > 1000:
                self._announced.clear()
            found = self._announced[key] = tuple(
                Deadline(
                    kind=kind.value,
                    due_at=self.due(start, kind, report_type, needs_inspection, agency.zone),
                )
                for kind in ANNOUNCED
            )
        return found


def _due_unpaused(calendar: WorkingCalendar, start: datetime, days: int, zone: Zone) -> datetime:
    # The clock starts on the next local day, so only the local date of `start` matters:
    # cached by date, a day's complaints share a handful of deadlines.
    return _due_from_day(calendar, start.astimezone(zone.tzinfo).date(), days, zone)


@lru_cache(maxsize=4096)
def _due_from_day(calendar: WorkingCalendar, day: date, days: int, zone: Zone) -> datetime:
    return calendar.due_at(datetime.combine(day, time(12), zone.tzinfo), days, zone)


def pauses_of(row: ComplaintRow) -> list[Interval]:
    return intervals(row.pauses)


def intervals(stored: str) -> list[Interval]:
    """[start, end] ISO pairs as stored (complaint.pauses, complaint.reply_waits)."""
    return [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in json.loads(stored)]


def stored_intervals(pairs: Sequence[Interval]) -> str:
    return json.dumps([[a.isoformat(), b.isoformat()] for a, b in pairs])


def set_deadline(row: ComplaintRow, rules: Rules, agency: Agency) -> None:
    """Set the deadline running in the row's status.

    The row remembers the deadline last escalated (`escalated_kind`, `escalated_due_at`):
    back at it after a detour (an answer, then the reporter's reply; a question, then the
    answer after the deadline) it is the same breach, already escalated.
    """
    kind = lifecycle.deadline_after(
        Status(row.status), followed_up=row.first_follow_up_at is not None
    )
    if kind is None:
        row.due_kind, row.due_at = None, None
        return
    row.due_kind, row.due_at = kind.value, due_of(row, kind, rules, agency)


def due_of(row: ComplaintRow, kind: DeadlineKind, rules: Rules, agency: Agency) -> datetime:
    """When the row's deadline of this kind falls, in its holder's calendar."""
    start = row.responded_at if kind is DeadlineKind.AUTO_CLOSE else row.routed_at
    assert start is not None
    pauses = pauses_of(row)
    if kind is DeadlineKind.SETTLE:
        pauses += intervals(row.reply_waits)
    return rules.due(start, kind, ReportType(row.report_type), row.needs_inspection,
                     agency.zone, pauses)


def note_reply_wait(row: ComplaintRow, rules: Rules, agency: Agency, replied: datetime) -> None:
    """The reporter replied to the answer: if that answer came within the settle deadline,
    the time it waited for the reply is not the agency's (the clock stops while a complaint
    waits for the reporter) – the agency has what it had left when it answered. A late
    answer's deadline stays where it was: already escalated, it is no new breach."""
    # By the answer's own time: one stamped within the deadline but applied after it (lag, a
    # restart) was in time. Rows from before answered_at was kept have when it was applied.
    answered = row.answered_at or row.responded_at
    if answered is None or replied <= answered:
        return
    if answered > due_of(row, DeadlineKind.SETTLE, rules, agency):
        return
    row.reply_waits = stored_intervals([*intervals(row.reply_waits), (answered, replied)])
