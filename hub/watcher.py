"""The deadline watcher: escalate breaches once, auto-close answered complaints, refresh gauges.

It reads complaints by their indexed `due_at`, a page at a time, never the whole open
set. Every change is a compare-and-set on the row, so several hub instances can run
the watcher at once and a breach is still escalated exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub import lifecycle, metrics
from hub.calendar import DeadlineKind
from hub.deadlines import Rules, due_of, intervals, pauses_of
from hub.followup import AUTO_CLOSE_REASON, echo_to_duplicates, notification_outbox
from hub.model import EscalationEvent, FollowUpEvent, ReportType, Status
from hub.routing import Agency
from hub.store import (
    ComplaintRow,
    HistoryRow,
    Pending,
    add_outbox,
    insert_ignoring_duplicates,
    outbox_row,
    table_of,
)

TABLE: sa.Table = table_of(ComplaintRow)
# The deadline running is not the one last escalated (hub.deadlines.set_deadline).
NOT_ESCALATED = sa.or_(
    TABLE.c.escalated_kind.is_(None), TABLE.c.escalated_due_at.is_(None),
    TABLE.c.escalated_kind != TABLE.c.due_kind, TABLE.c.escalated_due_at != TABLE.c.due_at,
)
# An archived complaint owes no follow-up (hub.report): in no state's count.
HELD = sa.and_(TABLE.c.duplicate_of.is_(None), TABLE.c.status != Status.ARCHIVED.value)
OWED = sa.and_(HELD, TABLE.c.first_follow_up_at.is_(None), TABLE.c.status != Status.CLOSED.value)
RECENT = timedelta(days=7)
"""How far back a first follow-up counts beside the overdue ones (followed_up_7d)."""


@dataclass(slots=True)
class Sweep:
    pending: list[Pending] = field(default_factory=list)
    breaches: list[tuple[str, str]] = field(default_factory=list)
    closed: list[tuple[str, float]] = field(default_factory=list)

    def add(self, other: Sweep) -> None:
        self.pending += other.pending
        self.breaches += other.breaches
        self.closed += other.closed

    def count(self) -> None:
        for agency, kind in self.breaches:
            metrics.breaches.labels(agency, kind).inc()
        for agency, seconds in self.closed:
            metrics.latency.labels(agency, "close").observe(seconds)
            metrics.closes.labels(agency, AUTO_CLOSE_REASON).inc()


def coordinator_for(agency: Agency, rules: Rules) -> Agency:
    """Who hears about a late agency: its parent, else its region's coordinator, else national."""
    directory = rules.directory
    return (
        directory.get(agency.parent or "")
        or directory.coordinator_of(agency.region)
        or directory.national
    )


def due(now: datetime) -> sa.Select[Any]:
    """Complaints whose deadline passed and that were not handled yet, earliest first."""
    return sa.select(TABLE).where(TABLE.c.due_at <= now, NOT_ESCALATED).order_by(TABLE.c.due_at)


def due_ids(conn: Connection, now: datetime, limit: int = 500,
            after: tuple[datetime, str] | None = None) -> list[tuple[datetime, str]]:
    """The due time and tracking id of up to `limit` complaints `due`, in that order, past
    `after`: the fallback pages on past the complaints it could not handle (left due, they
    filled every page the same, and the watch never reached one it could)."""
    query = due(now).order_by(TABLE.c.tracking_id)
    if after is not None:
        at, tracking_id = after
        query = query.where(sa.or_(TABLE.c.due_at > at, sa.and_(
            TABLE.c.due_at == at, TABLE.c.tracking_id > tracking_id)))
    return [(r.due_at, str(r.tracking_id)) for r in conn.execute(query.limit(limit))]


def sweep(conn: Connection, rules: Rules, now: datetime, limit: int = 500,
          only: str | None = None) -> Sweep:
    """Handle up to `limit` complaints whose deadline passed and that were not handled yet
    (`only`: that one complaint, if it is such)."""
    chosen = due(now) if only is None else due(now).where(TABLE.c.tracking_id == only)
    rows = conn.execute(chosen.limit(limit)).all()
    result = Sweep()
    outbox: list[dict[str, Any]] = []
    # Claimed in key order, the order the follow-up batches lock rows in (by due date they
    # deadlocked each other under load, on PostgreSQL).
    for mapping in sorted(rows, key=lambda r: str(r.tracking_id)):
        stored = ComplaintRow.model_validate(dict(mapping._mapping))
        agency = rules.directory.holding(stored.agency_code)
        row = _reckoned(conn, stored, agency, rules, now)
        if row is None:
            continue
        if row.due_kind == DeadlineKind.AUTO_CLOSE and row.status == Status.RESPONDED:
            outbox.extend(_auto_close(conn, row, agency, rules, now, result))
        else:
            outbox.extend(_escalate(conn, row, agency, rules, now, result))
    result.pending = add_outbox(conn, outbox, rules.sealer)
    return result


def reckon_page(conn: Connection, rules: Rules, now: datetime, after: str,
                limit: int = 500) -> str | None:
    """Set the running deadlines of open complaints after `after` (by tracking id) by the
    calendar and limits of now; the page's last tracking id, None after the last page.

    Run at start: a deadline that comes due is reckoned again anyway (`_reckoned`), but one
    that a change brings earlier (a leave day taken out, `not_holidays`, a shorter limit)
    would act only when its stored, later moment came. A breach escalated stands."""
    rows = conn.execute(
        sa.select(TABLE)
        .where(TABLE.c.due_at.is_not(None), TABLE.c.tracking_id > after, NOT_ESCALATED)
        .order_by(TABLE.c.tracking_id)
        .limit(limit)
    ).all()
    for mapping in rows:
        row = ComplaintRow.model_validate(dict(mapping._mapping))
        _reckoned(conn, row, rules.directory.holding(row.agency_code), rules, now)
    return str(rows[-1].tracking_id) if len(rows) == limit else None


def _reckoned(
    conn: Connection, row: ComplaintRow, agency: Agency, rules: Rules, now: datetime
) -> ComplaintRow | None:
    """The row with its deadline as the calendar reckons it now; None if that is still to come.

    A deadline is stored when its clock starts, and the operator adds a year's collective
    leave once its decree is out: complaints open by then were escalated and auto-closed
    by the days they were stored with, working days early (and a reporter's timely reply
    then refused). A deadline the calendar moved is moved in the row first (compare-and-set).
    """
    assert row.due_kind is not None
    due = due_of(row, DeadlineKind(row.due_kind), rules, agency)
    if due == row.due_at:
        return row
    moved = conn.execute(
        sa.update(TABLE)
        .where(TABLE.c.tracking_id == row.tracking_id, TABLE.c.due_kind == row.due_kind,
               TABLE.c.due_at == row.due_at, TABLE.c.status == row.status,
               NOT_ESCALATED)  # another instance escalated it meanwhile: its breach stands
        .values(due_at=due)
    ).rowcount == 1
    return row.model_copy(update={"due_at": due}) if moved and due <= now else None


def _stamp(moment: datetime) -> str:
    """A deadline's moment in an event id: a second breach or close is an event of its own."""
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M%S}"


def _claim(conn: Connection, row: ComplaintRow, **values: Any) -> bool:
    """Compare-and-set on the deadline the row was read with; False if another instance won."""
    changed = conn.execute(
        sa.update(TABLE)
        .where(
            TABLE.c.tracking_id == row.tracking_id,
            TABLE.c.due_kind == row.due_kind,
            TABLE.c.due_at == row.due_at,
            TABLE.c.status == row.status,
            NOT_ESCALATED,
        )
        .values(**values)
    )
    return changed.rowcount == 1


def _escalate(
    conn: Connection, row: ComplaintRow, agency: Agency, rules: Rules, now: datetime, out: Sweep
) -> list[dict[str, Any]]:
    assert row.due_kind is not None
    assert row.due_at is not None
    if not _claim(conn, row, escalated_kind=row.due_kind, escalated_due_at=row.due_at):
        return []
    coordinator = coordinator_for(agency, rules)
    # The same deadline kind may be breached again in one routing (a question to the reporter
    # moved it): each breach its own id, or idempotent readers drop the second as a re-send.
    due = row.due_at.astimezone(agency.zone.tzinfo)  # in the late agency's time, as routed
    event = EscalationEvent(
        event_id=f"escalation-{row.tracking_id}-{row.route_seq}-{row.due_kind}-"
                 f"{_stamp(row.due_at)}",
        tracking_id=row.tracking_id,
        agency_code=agency.code,
        coordinator_code=coordinator.code,
        deadline=row.due_kind,
        status=Status(row.status),
        due_at=due,
        at=now,
    )
    out.breaches.append((agency.code, row.due_kind))
    return [outbox_row(coordinator.topic_name, row.tracking_id, event, now,
                       **{"event-id": event.event_id, "event-type": "escalation"})]


def _auto_close(
    conn: Connection, row: ComplaintRow, agency: Agency, rules: Rules, now: datetime, out: Sweep
) -> list[dict[str, Any]]:
    """No reply within the auto-close limit after the response: the complaint closes."""
    assert row.due_at is not None
    closed_at = row.due_at
    if not _claim(
        conn, row, status=Status.CLOSED.value, closed_at=closed_at, updated_at=now,
        due_kind=None, due_at=None,
    ):
        return []
    event = FollowUpEvent(
        # A reply before the close reopens it (hub.followup): it may close again, its own event.
        event_id=f"auto-close-{row.tracking_id}-{row.route_seq}-{_stamp(closed_at)}",
        tracking_id=row.tracking_id,
        agency_code=agency.code,
        status=Status.CLOSED,
        at=closed_at,
        message="Ditutup otomatis: tidak ada tanggapan pelapor dalam batas waktu.",
    )
    insert_ignoring_duplicates(conn, HistoryRow, [{
        "event_id": event.event_id, "tracking_id": row.tracking_id, "status": event.status.value,
        "agency_code": agency.code, "message": event.message, "reason": AUTO_CLOSE_REASON,
        "at": closed_at,
    }], "event_id")
    seconds = rules.calendar.working_seconds_between(
        row.received_at, closed_at, agency.zone, pauses_of(row)
    )
    out.closed.append((agency.code, seconds))
    closed = row.model_copy(update={"status": Status.CLOSED.value, "closed_at": closed_at})
    return [notification_outbox(row, event, agency, rules, now),
            *echo_to_duplicates(conn, [(closed, [event])], rules, now)]


def refresh_gauges(conn: Connection, rules: Rules, now: datetime) -> None:
    """Open complaints, oldest open age and follow-up states per agency, from the database."""
    open_rows = conn.execute(
        sa.select(TABLE.c.agency_code, sa.func.count(), sa.func.min(TABLE.c.received_at))
        .where(TABLE.c.status.not_in(lifecycle.TERMINAL_VALUES), TABLE.c.duplicate_of.is_(None))
        .group_by(TABLE.c.agency_code)
    ).all()
    state = sa.case(
        (TABLE.c.status == Status.CLOSED.value, "resolved"),
        (TABLE.c.first_follow_up_at.is_not(None), "followed_up"),
        else_="not_followed_up",
    )
    state_rows = conn.execute(
        sa.select(TABLE.c.agency_code, state, sa.func.count())
        .where(HELD)
        .group_by(TABLE.c.agency_code, state)
    ).all()
    # By holder: the complaints of an agency taken out of the registry are the national
    # admin's to pass on (Directory.holding), so they count there, not nowhere.
    holder = rules.directory.holding
    opened: dict[str, tuple[int, datetime | None]] = {}
    for code, n, oldest in open_rows:
        had, was = opened.get(holder(code).code, (0, None))
        opened[holder(code).code] = (had + n, min((t for t in (was, oldest) if t), default=None))
    states = _by_holder(rules, state_rows)
    first = _by_holder(rules, _first_follow_ups(conn, rules, now))
    for code in rules.directory.agencies:
        n, oldest = opened.get(code, (0, None))
        metrics.open_complaints.labels(code).set(n)
        metrics.oldest_open.labels(code).set((now - oldest).total_seconds() if oldest else 0)
        for s in ("not_followed_up", "followed_up", "resolved"):
            metrics.assigned.labels(code, s).set(states.get((code, s), 0))
        for s in metrics.FIRST_FOLLOW_UP_STATES:
            metrics.first_follow_up.labels(code, s).set(first.get((code, s), 0))


def _by_holder(rules: Rules, rows: Iterable[Any]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for code, s, n in rows:
        key = rules.directory.holding(code).code, s
        counts[key] = counts.get(key, 0) + n
    return counts


def _first_follow_ups(conn: Connection, rules: Rules, now: datetime) -> list[tuple[str, str, int]]:
    """(agency, state, count) of lapor_complaints_first_follow_up.

    The follow-up rate counts every complaint an agency ever held, those still within their
    deadline too: an agency answering each on day 4 sat under its target, and one with
    years of history that stopped answering barely moved it. What the alert needs is the
    complaints now past their deadline with no follow-up beside those just followed up.
    """
    ffu = DeadlineKind.FIRST_FOLLOW_UP
    recent = conn.execute(
        sa.select(TABLE.c.agency_code, sa.literal("followed_up_7d"), sa.func.count())
        .where(HELD, TABLE.c.first_follow_up_at > now - RECENT)
        .group_by(TABLE.c.agency_code)
    ).all()
    late = sa.and_(TABLE.c.due_kind == ffu.value, TABLE.c.due_at <= now)
    state = sa.case((late, "overdue"), else_="within_deadline")
    owed = conn.execute(
        sa.select(TABLE.c.agency_code, state, sa.func.count())
        .where(OWED)
        .group_by(TABLE.c.agency_code, state)
    ).all()
    # Before its verification the complaint runs that deadline, but the first follow-up's
    # runs from the same routing: one the agency never touched is overdue all the same. A
    # deadline of N working days falls N days after the routing at the earliest.
    untouched = conn.execute(
        sa.select(TABLE.c.agency_code, TABLE.c.routed_at, TABLE.c.pauses,
                  TABLE.c.report_type, TABLE.c.needs_inspection)
        .where(OWED, TABLE.c.due_kind.is_not(None), TABLE.c.due_kind != ffu.value,
               TABLE.c.routed_at <= now - timedelta(days=rules.config.deadlines.first_follow_up))
    ).all()
    moved: list[tuple[str, str, int]] = []
    for code, routed_at, pauses, report_type, needs_inspection in untouched:
        zone = rules.directory.holding(code).zone
        due = rules.due(routed_at, ffu, ReportType(report_type), needs_inspection, zone,
                        intervals(pauses))
        if due <= now:
            moved += [(code, "overdue", 1), (code, "within_deadline", -1)]
    return [*recent, *owed, *moved]
