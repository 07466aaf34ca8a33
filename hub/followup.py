"""Follow-up (tindak lanjut): agencies' status events applied to the complaints they hold.

`apply_follow_up` is the decision for one event on one complaint, with no I/O: it
mutates the in-memory row and returns the effects (history, events to publish,
latencies to observe) or a refusal that becomes a dead letter. `store_follow_ups`
runs a batch of them in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Connection
from sqlmodel import Session, select

from hub import lifecycle, metrics, topics
from hub.calendar import DeadlineKind, Interval
from hub.deadlines import (
    Rules,
    note_reply_wait,
    pauses_of,
    set_deadline,
    stored_intervals,
)
from hub.intake import (
    Record,
    complaint_of,
    dead_letter,
    dead_letter_outbox,
    letter_key,
    routing_event,
    routing_outbox,
    store_dead_letters,
)
from hub.model import (
    DeadLetter,
    FollowUpEvent,
    Notification,
    Status,
    TakenEvent,
    derived_event_id,
    first_error,
)
from hub.routing import Agency, Decision
from hub.store import ComplaintRow, HistoryRow, Pending, add_outbox, outbox_row, table_of

# What the citizen hears about; internal steps (dispositioned, in_progress) are not sent.
NOTIFY = frozenset({
    Status.VERIFIED, Status.NEEDS_INFO, Status.RESPONDED, Status.CLOSED, Status.ARCHIVED,
    Status.DEFERRED,
})

AHEAD_LIMIT = timedelta(days=366)
"""How far ahead of the hub's clock an event may be stamped. The demo's agencies stamp
simulated days ahead; a stamp years ahead is a broken clock, and counting working days up
to it would hold the consumer (to year 9999: 5 s of CPU, then an overflow)."""


@dataclass(slots=True)
class Effects:
    history: dict[str, Any]
    outbox: list[dict[str, Any]] = field(default_factory=list)
    latencies: list[tuple[str, str, float]] = field(default_factory=list)
    """(agency, stage, working seconds)."""
    routed: list[tuple[str, str]] = field(default_factory=list)
    """(agency, reason) of each routing event: a reroute or a disposition to another agency."""


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    detail: str


def route_to(
    row: ComplaintRow, decision: Decision, rules: Rules, now: datetime
) -> dict[str, Any]:
    """Hand the complaint to another agency and build its routing event's outbox row."""
    previous = row.agency_code
    row.agency_code = decision.agency.code
    row.route_seq += 1
    row.route_reason = decision.reason
    row.routed_at = now
    # The new holder is judged on its own follow-up, from its own routing; the previous
    # holder's would count it followed up before it has seen the complaint.
    row.first_follow_up_at = None
    # Nor is an earlier holder's answer its own: its first answer is timed as settle.
    row.responded_at = row.answered_at = None
    row.escalated_kind = row.escalated_due_at = None  # its breaches are its own
    event = routing_event(complaint_of(row, rules), decision, row.route_seq, now, rules, previous)
    return routing_outbox(event, decision.agency.topic_name, now)


def _from_whom(
    row: ComplaintRow, event: FollowUpEvent, rules: Rules, now: datetime
) -> Refusal | None:
    """The refusals that do not depend on the complaint's status: when, who and which."""
    if row.duplicate_of:
        # A second report follows its original (echo_to_duplicates): its own events would
        # be overwritten by the original's next one.
        return Refusal("duplicate_complaint", f"{row.tracking_id} is a report of "
                       f"{row.duplicate_of}: follow up on that one")
    if event.at - now > AHEAD_LIMIT:
        return Refusal("invalid_follow_up", f"at: {event.at.isoformat()} lies more than "
                       f"{AHEAD_LIMIT.days} days ahead of the hub's clock")
    if event.agency_code == row.agency_code:
        return None
    if rules.directory.get(event.agency_code) is None:
        return Refusal("unknown_agency", f"agency {event.agency_code} is not in the registry")
    holder = rules.directory.get(row.agency_code)
    # A holder taken out of the registry since has the national admin above it.
    above = ({rules.directory.national.code} if holder is None
             else rules.directory.supervisors(holder))
    if event.agency_code in above and (
        event.status is Status.ARCHIVED
        or (event.status is Status.DISPOSITIONED and event.target_agency)
    ):
        # A coordinator (or the national admin) hears of a late complaint: it may take it
        # from the holder, to another agency, or archive it – not answer for the holder.
        return None
    return Refusal(
        "not_holder",
        f"{event.agency_code} does not hold {event.tracking_id} ({row.agency_code} does); "
        "an agency above it may disposition it (with target_agency) or archive it",
    )


AUTO_CLOSE_REASON = DeadlineKind.AUTO_CLOSE.value
"""The reason of a close by the watcher in the history (hub.watcher)."""


def _reply_before_auto_close(row: ComplaintRow, event: FollowUpEvent, auto_closed: bool) -> bool:
    """Whether this is the reporter's reply to an answer, made before the auto-close that
    closed the complaint for want of one (the watcher got there first: consumer lag, or a
    sweep straight after an outage). The reply was in time, so the complaint reopens.

    `auto_closed`: the complaint's close is the watcher's (its history says so; reckoning the
    auto-close again would miss it once the calendar changed)."""
    return (auto_closed and Status(row.status) is Status.CLOSED
            and event.status is Status.REPORTER_REPLIED
            and row.closed_at is not None and event.at < row.closed_at)


def _what_it_asks(event: FollowUpEvent, rules: Rules, holder: Agency) -> Agency | Refusal | None:
    """The agency a disposition hands the complaint to, or why the event cannot be applied."""
    if event.status is Status.ARCHIVED and not (event.reason or "").strip():
        # An archived complaint leaves every count of follow-up: the evaluators ask why.
        return Refusal("invalid_follow_up", "archived needs a reason")
    if event.status is Status.NOT_AUTHORITY and holder.code == rules.directory.national.code:
        # There is no level above to return it to: declined, it came straight back here.
        return Refusal("illegal_transition", "the national admin cannot decline a complaint: "
                       "disposition it to an agency, or archive it with a reason")
    if event.status is Status.DISPOSITIONED and event.target_agency:
        target = rules.directory.get(event.target_agency)
        if target is None:
            return Refusal("unknown_agency", f"cannot disposition to {event.target_agency!r}")
        actor = rules.directory.get(event.agency_code) or holder
        if target.code != holder.code and not rules.directory.may_hand_to(actor, target):
            return Refusal("illegal_transition", f"{actor.code} cannot disposition to "
                           f"{target.code}: a disposition goes down to an agency below it or "
                           "sideways to one beside it; not_authority returns it to the level above")
        return target
    return None


def history_id(event: FollowUpEvent) -> str:
    """The event's id in the history: event ids are unique per agency, so two agencies (or an
    agency and the hub's own rows) may use one id on the same complaint."""
    return f"{event.agency_code}:{event.event_id}"


AppliedAs = tuple[str, str, str | None, str | None]
"""An event as its history row keeps it: complaint, status, message and reason."""


def applied_as(event: FollowUpEvent) -> AppliedAs:
    return (event.tracking_id, event.status.value, event.message, event.reason)


def _id_used(event: FollowUpEvent, before: AppliedAs) -> Refusal:
    """Why an event under an id its agency used for another event is refused."""
    tracking_id, status = before[:2]
    if tracking_id != event.tracking_id:
        return Refusal("duplicate_event_id", f"event_id {event.event_id!r} was applied to "
                       f"{tracking_id}; an agency's event ids must be unique")
    return Refusal("duplicate_event_id", f"event_id {event.event_id!r} was applied to "
                   f"{tracking_id} as another event ({status}, its own message and reason); "
                   "a re-send repeats its event whole: an agency's event ids must be unique")


def apply_follow_up(
    row: ComplaintRow | None, event: FollowUpEvent, rules: Rules, now: datetime, *,
    auto_closed: bool = False,
) -> Effects | Refusal:
    """Apply one agency event; the row is changed in place only when it is accepted.
    `auto_closed`: the row is closed by the watcher's auto-close (hub.watcher)."""
    if row is None:
        return Refusal("unknown_complaint", f"no complaint {event.tracking_id}")
    if refused := _from_whom(row, event, rules, now):
        return refused
    holder = rules.directory.get(row.agency_code)
    if holder is None and event.agency_code == rules.directory.national.code:
        holder = rules.directory.national  # takes it from an agency no longer in the registry
    if holder is None:
        return Refusal("unknown_agency", f"agency {row.agency_code} left the registry: the "
                       "national admin may disposition it (with target_agency) or archive it")
    current = Status(row.status)
    reopened = _reply_before_auto_close(row, event, auto_closed)
    if reopened:
        current = Status.RESPONDED  # where the reporter replied
    try:
        landed = lifecycle.transition(current, event.status)
    except lifecycle.IllegalTransition as exc:
        return Refusal("illegal_transition", str(exc))
    target = _what_it_asks(event, rules, holder)
    if isinstance(target, Refusal):
        return target

    effects = Effects(history={
        "event_id": history_id(event),
        "tracking_id": row.tracking_id,
        "status": event.status.value,
        "agency_code": event.agency_code,
        # Only a disposition names its target (a hand-on names where it went, _hand_on):
        # a target on any other event is handed nothing and named nowhere.
        "target_agency": target.code if target is not None else None,
        "message": event.message,
        "reason": event.reason,
        "at": event.at,
    })
    # An agency's clock running behind (or two agency systems' clocks disagreeing) must not
    # make a time go negative: nothing happens before the routing or the pause it ends.
    at = max(event.at, row.routed_at, row.paused_since or row.routed_at)
    pauses = _clock_at(row, current, landed, at, rules, holder)

    def working(since: datetime) -> float:
        return rules.calendar.working_seconds_between(since, at, holder.zone, pauses)

    if lifecycle.verifies(current, event.status):
        effects.latencies.append((holder.code, "verification", working(row.routed_at)))
    if lifecycle.counts_as_followed_up(event.status) and row.first_follow_up_at is None:
        row.first_follow_up_at = at
        effects.latencies.append((holder.code, "first_follow_up", working(row.routed_at)))
    if event.status is Status.RESPONDED and row.responded_at is None:
        # Time to settle: to the first answer, on the settle deadline's clock (from routing).
        effects.latencies.append((holder.code, "settle", working(row.routed_at)))
    if event.status is Status.RESPONDED:
        # The reporter's 10 days to reply run from the answer reaching them, which is now: an
        # answer stamped days ago (an agency system syncing late) was auto-closed at once.
        row.responded_at = max(at, now)
        row.answered_at = at
    # An archive too: when it left the open complaints (the report judges it by this).
    row.closed_at = (at if lifecycle.is_terminal(landed)
                     else None if reopened else row.closed_at)
    if landed is Status.CLOSED:
        effects.latencies.append((holder.code, "close", working(row.received_at)))

    row.status = landed.value
    row.updated_at = now
    if taken := _taken(row, event, target, rules, now):
        effects.outbox.append(taken)
    if event.status is Status.NOT_AUTHORITY:
        declined = [*json.loads(row.declined), holder.code]
        row.declined = json.dumps(declined)
        _hand_on(row, Decision(rules.directory.route(
            complaint_of(row, rules), exclude=declined).agency, "reroute"), rules, now, effects)
    elif target is not None and target.code != row.agency_code:
        # By the code stored: the national admin taking to itself a complaint of an agency
        # that left the registry (its `holder` here) hands it on, or it stayed with that code.
        _hand_on(row, Decision(target, "disposition"), rules, now, effects)
    set_deadline(row, rules, rules.directory.get(row.agency_code) or holder)
    if event.status in NOTIFY:
        effects.outbox.append(notification_outbox(row, event, holder, rules, now))
    return effects


def _clock_at(row: ComplaintRow, current: Status, landed: Status, at: datetime, rules: Rules,
              holder: Agency) -> list[Interval]:
    """Stop or restart the clock for the reporter at `at`; the pauses so far."""
    pauses = pauses_of(row)
    if lifecycle.stops_clock(current) and not lifecycle.stops_clock(landed) and row.paused_since:
        pauses.append((row.paused_since, at))
        row.pauses = stored_intervals(pauses)
        row.paused_since = None
    elif lifecycle.stops_clock(landed) and not lifecycle.stops_clock(current):
        row.paused_since = at
    if current is Status.RESPONDED and landed is Status.REPORTER_REPLIED:
        note_reply_wait(row, rules, holder, at)
    return pauses


def _taken(row: ComplaintRow, event: FollowUpEvent, target: Agency | None, rules: Rules,
           now: datetime) -> dict[str, Any] | None:
    """The event telling the holder that an agency above took the complaint from it, before
    it is handed on: else its system kept it open, and each answer it gave was a dead letter
    it never saw. None when the holder acts itself, keeps it, or has left the registry."""
    holder = rules.directory.get(row.agency_code)
    if (holder is None or event.agency_code == holder.code
            or (target is not None and target.code == holder.code)):
        return None
    taken = TakenEvent(
        # A routing is taken from its holder once: the next is another agency's.
        event_id=f"taken-{row.tracking_id}-{row.route_seq}",
        tracking_id=row.tracking_id,
        agency_code=holder.code,
        by_agency=event.agency_code,
        status=event.status,
        to_agency=target.code if target is not None else None,
        message=event.message,
        reason=event.reason,
        at=now,
    )
    return outbox_row(holder.topic_name, row.tracking_id, taken, now,
                      **{"event-id": taken.event_id, "event-type": "taken"})


def _hand_on(row: ComplaintRow, decision: Decision, rules: Rules, now: datetime,
             effects: Effects) -> None:
    """Route the complaint to `decision`'s agency; its history row names the new holder."""
    effects.history["target_agency"] = decision.agency.code
    effects.outbox.append(route_to(row, decision, rules, now))
    effects.routed.append((decision.agency.code, decision.reason))


def notification_id(event: FollowUpEvent, duplicate: str | None = None) -> str:
    """The id of what a citizen hears of `event` (on the `duplicate` report linked to its
    complaint, if given): by the event's agency and id, which only together are unique –
    ("kota-bekasi", "dinkes-7") and ("kota-bekasi-dinkes", "7") joined by "-" were one."""
    return derived_event_id("notify", history_id(event), *([duplicate] if duplicate else []))


def notification_outbox(
    row: ComplaintRow, event: FollowUpEvent, agency: Agency, rules: Rules, now: datetime,
    *, original: ComplaintRow | None = None,
) -> dict[str, Any]:
    """What the citizen of `row` hears of `event`: on its own complaint, or on the `original`
    its report was linked to as a duplicate."""
    complaint = complaint_of(row, rules)
    confidential = complaint.confidential or bool(original and original.confidential)
    note = Notification(
        event_id=notification_id(event, row.tracking_id if original else None),
        tracking_id=row.tracking_id,
        channel=complaint.channel,
        source=complaint.source,
        # Where to reach the citizen: a NIK reaches no one, so it stays with the agency.
        address=complaint.reporter.model_copy(update={"nik": None}),
        status=event.status,
        message=None if confidential else event.message,
        agency_name=agency.name,
        at=event.at,
    )
    return outbox_row(topics.NOTIFICATION, row.tracking_id, note, now,
                      **{"event-id": note.event_id})


COMPLAINTS: sa.Table = table_of(ComplaintRow)
HISTORY: sa.Table = table_of(HistoryRow)


def echo_to_duplicates(
    conn: Connection, originals: Sequence[tuple[ComplaintRow, Sequence[FollowUpEvent]]],
    rules: Rules, now: datetime,
) -> list[dict[str, Any]]:
    """The reports linked to these complaints as duplicates take their status, and their
    citizens hear what the original's citizen hears of `events`: each waits for the same
    answer, as theirs is not routed on its own (it stayed `received`, its citizen unheard)."""
    by_id = {row.tracking_id: (row, events) for row, events in originals}
    found = conn.execute(
        sa.select(COMPLAINTS).where(COMPLAINTS.c.duplicate_of.in_(by_id))
    ).all() if by_id else []
    out: list[dict[str, Any]] = []
    for mapping in found:
        duplicate = ComplaintRow.model_validate(dict(mapping._mapping))
        original, events = by_id[duplicate.duplicate_of or ""]
        agency = rules.directory.holding(original.agency_code)
        out.extend(notification_outbox(duplicate, event, agency, rules, now, original=original)
                   for event in events if event.status in NOTIFY)
    for tracking_id in {mapping.duplicate_of for mapping in found}:
        original, _ = by_id[tracking_id]
        conn.execute(sa.update(COMPLAINTS).where(COMPLAINTS.c.duplicate_of == tracking_id)
                     .values(status=original.status, closed_at=original.closed_at,
                             updated_at=now))
    return out


@dataclass(frozen=True, slots=True)
class Applied:
    pending: list[Pending]
    effects: list[tuple[FollowUpEvent, Effects]]
    dead_letters: list[DeadLetter]

    def count(self) -> None:
        for event, effects in self.effects:
            metrics.follow_ups.labels(event.agency_code, event.status.value).inc()
            if event.status is Status.CLOSED:
                by = AUTO_CLOSE_REASON if event.reason == AUTO_CLOSE_REASON else "reporter"
                metrics.closes.labels(event.agency_code, by).inc()
            for agency, stage, seconds in effects.latencies:
                metrics.latency.labels(agency, stage).observe(seconds)
            for agency, reason in effects.routed:
                metrics.routed.labels(agency, reason).inc()
        for letter in self.dead_letters:
            metrics.dead_letters.labels(letter.stage, letter.reason).inc()


def parse(record: Record) -> FollowUpEvent | Refusal:
    try:
        return FollowUpEvent.model_validate_json(record.value)
    except ValidationError as exc:
        return Refusal("invalid_follow_up", first_error(exc))


def store_follow_ups(
    conn: Connection, records: Sequence[Record], rules: Rules, now: datetime
) -> Applied:
    """Apply a batch in offset order; events already in the history are skipped."""
    parsed = [(r, parse(r)) for r in records]
    events = [p for _, p in parsed if isinstance(p, FollowUpEvent)]
    with Session(bind=conn) as session:
        return _apply_batch(session, conn, parsed, events, rules, now)


def _apply_batch(
    session: Session,
    conn: Connection,
    parsed: list[tuple[Record, FollowUpEvent | Refusal]],
    events: list[FollowUpEvent],
    rules: Rules,
    now: datetime,
) -> Applied:
    rows = {
        row.tracking_id: row
        for row in session.exec(
            # FOR UPDATE: a watcher's auto-close committed meanwhile must not be overwritten
            # (PostgreSQL; SQLite serializes writers anyway).
            select(ComplaintRow)
            .where(sa.column("tracking_id").in_({e.tracking_id for e in events}))
            # In key order, as the watcher takes them: two orders deadlocked each other.
            .order_by(sa.column("tracking_id"))
            .with_for_update()
        )
    }
    # An agency's event id -> the event applied under it. The same again is a re-send,
    # passed over; another event (on another complaint, or another answer on this one) is an
    # id used twice, which must not pass unseen: the agency's answer would be lost unsaid.
    seen: dict[str, AppliedAs] = {
        event_id: (tracking_id, status, message, reason)
        for event_id, tracking_id, status, message, reason in conn.execute(
            sa.select(HISTORY.c.event_id, HISTORY.c.tracking_id, HISTORY.c.status,
                      HISTORY.c.message, HISTORY.c.reason)
            .where(HISTORY.c.event_id.in_({history_id(e) for e in events}))
        ).all()
    }
    # Closed complaints a reply may reopen: each with the moments the watcher auto-closed it.
    replied = {e.tracking_id for e in events if e.status is Status.REPORTER_REPLIED
               and (r := rows.get(e.tracking_id)) is not None and r.status == Status.CLOSED}
    auto_closes = set(session.exec(
        select(HistoryRow.tracking_id, HistoryRow.at).where(
            sa.column("tracking_id").in_(replied), sa.column("reason") == AUTO_CLOSE_REASON)
    ).all()) if replied else set()
    applied: list[tuple[FollowUpEvent, Effects]] = []
    letters: list[tuple[DeadLetter, str]] = []
    outbox: list[dict[str, Any]] = []
    for record, item in parsed:
        result: Effects | Refusal
        if isinstance(item, Refusal):
            result = item
        elif (before := seen.get(history_id(item))) == applied_as(item):
            continue
        elif before is not None:
            result = _id_used(item, before)
        else:
            row = rows.get(item.tracking_id)
            result = apply_follow_up(
                row, item, rules, now,
                auto_closed=row is not None and (row.tracking_id, row.closed_at) in auto_closes)
        if isinstance(result, Refusal):
            letter = dead_letter(record, result.reason, result.detail, "follow_up", now)
            letters.append((letter, letter_key(record, "0")))
            continue
        assert isinstance(item, FollowUpEvent)
        seen[history_id(item)] = applied_as(item)
        session.add(HistoryRow(**result.history))
        outbox.extend(result.outbox)
        applied.append((item, result))
    session.flush()
    changed: dict[str, list[FollowUpEvent]] = {}
    for event, _ in applied:
        changed.setdefault(event.tracking_id, []).append(event)
    outbox.extend(echo_to_duplicates(
        conn, [(rows[tid], events) for tid, events in changed.items()], rules, now))
    new_letters = store_dead_letters(conn, letters, rules.sealer)
    outbox.extend(dead_letter_outbox(dl, now) for dl in new_letters)
    return Applied(add_outbox(conn, outbox, rules.sealer), applied, new_letters)
