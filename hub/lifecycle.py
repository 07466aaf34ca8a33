"""The complaint lifecycle: which status may follow which, and what each status means.

Main line: received -> verified -> dispositioned -> in_progress -> responded -> closed, with
reporter_replied -> in_progress after a response, needs_info for questions to the reporter, and
the side exits archived, not_authority and deferred. The table `_NEXT` is the whole rule set.

Judgement calls, where DOMAIN.md leaves room:

- Steps may be skipped where one actor's single action covers them: the admin verifies and
  dispositions in one go (received -> dispositioned), an agency answers without posting
  in_progress first (dispositioned -> responded), and an agency a rule routed a complaint to
  directly takes it up or answers it at once (received or verified -> in_progress or
  responded: its own verification and disposition are the act). Coarse regional
  vocabularies rely on this.
- The machine keeps no history, so a reporter's answer to needs_info cannot return to "where it
  was". The caller, which knows whether the complaint has been dispositioned, reports either
  `received` (the question came from the admin: back to the admin's queue, DOMAIN's
  needs_info <-> received) or `reporter_replied` (the question came from the agency, which then
  continues as after any reply).
- not_authority is an event, never a resting status: the hub re-routes and the complaint is
  `received` again at the new holder. It is also allowed after reporter_replied, since the
  reporter's answer is often what shows the complaint belongs elsewhere.
- Only the admin defers (from received or verified); resuming returns to received or verified,
  or dispositions at once. Deferral does not stop the clock: only waiting for the reporter does,
  or deferring would be a way around the verification deadline.
- closed only follows responded (confirmed by the reporter, or automatically), so a closed
  complaint always had an answer. archived may end any open complaint. The one way back: a
  reporter's reply made before the auto-close but processed after it reopens the complaint
  (hub.followup; the table cannot see times).
- A disposition within the holder after it has followed up leaves the settle deadline
  running: its first follow-up is met.
- A status may repeat when it carries a new message from the same party: dispositioned (down to
  a sub-unit or sideways), in_progress (progress notes), responded (a supplementary answer),
  needs_info (a further question), reporter_replied (a further message).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from hub.calendar import DeadlineKind
from hub.model import Status

# current status -> the status updates it may receive.
_NEXT: Final[Mapping[Status, frozenset[Status]]] = MappingProxyType(
    {
        Status.RECEIVED: frozenset(
            {
                Status.VERIFIED,
                Status.DISPOSITIONED,
                Status.IN_PROGRESS,
                Status.RESPONDED,
                Status.NEEDS_INFO,
                Status.DEFERRED,
                Status.NOT_AUTHORITY,
                Status.ARCHIVED,
            }
        ),
        Status.NEEDS_INFO: frozenset(
            {Status.NEEDS_INFO, Status.RECEIVED, Status.REPORTER_REPLIED, Status.ARCHIVED}
        ),
        Status.VERIFIED: frozenset(
            {
                Status.DISPOSITIONED,
                Status.IN_PROGRESS,
                Status.RESPONDED,
                Status.NEEDS_INFO,
                Status.DEFERRED,
                Status.NOT_AUTHORITY,
                Status.ARCHIVED,
            }
        ),
        Status.DEFERRED: frozenset(
            {Status.RECEIVED, Status.VERIFIED, Status.DISPOSITIONED, Status.ARCHIVED}
        ),
        Status.DISPOSITIONED: frozenset(
            {
                Status.DISPOSITIONED,
                Status.IN_PROGRESS,
                Status.RESPONDED,
                Status.NEEDS_INFO,
                Status.NOT_AUTHORITY,
                Status.ARCHIVED,
            }
        ),
        Status.IN_PROGRESS: frozenset(
            {
                Status.IN_PROGRESS,
                Status.DISPOSITIONED,
                Status.RESPONDED,
                Status.NEEDS_INFO,
                Status.NOT_AUTHORITY,
                Status.ARCHIVED,
            }
        ),
        Status.RESPONDED: frozenset(
            {Status.RESPONDED, Status.REPORTER_REPLIED, Status.CLOSED, Status.ARCHIVED}
        ),
        Status.REPORTER_REPLIED: frozenset(
            {
                Status.REPORTER_REPLIED,
                Status.DISPOSITIONED,
                Status.IN_PROGRESS,
                Status.RESPONDED,
                Status.NEEDS_INFO,
                Status.NOT_AUTHORITY,
                Status.ARCHIVED,
            }
        ),
        Status.NOT_AUTHORITY: frozenset(),
        Status.CLOSED: frozenset(),
        Status.ARCHIVED: frozenset(),
    }
)

# Events that do not land on themselves.
_LANDS_ON: Final[Mapping[Status, Status]] = MappingProxyType(
    {Status.NOT_AUTHORITY: Status.RECEIVED}
)

_TERMINAL: Final = frozenset({Status.CLOSED, Status.ARCHIVED})
TERMINAL_VALUES: Final = tuple(sorted(s.value for s in _TERMINAL))
"""The terminal statuses as stored, for queries."""

# Agency actions that meet the first-follow-up deadline: working on it, answering, or asking
# the reporter. Passing it on (dispositioned), declining (not_authority) and archiving do not.
_FOLLOW_UPS: Final = frozenset({Status.IN_PROGRESS, Status.RESPONDED, Status.NEEDS_INFO})
_UNVERIFIED: Final = frozenset({Status.RECEIVED, Status.DEFERRED})
_TAKEN_UP: Final = frozenset(
    {Status.VERIFIED, Status.DISPOSITIONED, Status.IN_PROGRESS, Status.RESPONDED}
)

# The deadline running while a complaint rests in a status. Verification covers forwarding
# too, so it runs until dispositioned; settling runs again after the reporter replies, against
# the same limit counted from the routing, less the reporter's time to reply to an answer given
# in time (hub.deadlines.note_reply_wait). needs_info has none: the clock is stopped.
_DEADLINE: Final[Mapping[Status, DeadlineKind]] = MappingProxyType(
    {
        Status.RECEIVED: DeadlineKind.VERIFICATION,
        Status.VERIFIED: DeadlineKind.VERIFICATION,
        Status.DEFERRED: DeadlineKind.VERIFICATION,
        Status.DISPOSITIONED: DeadlineKind.FIRST_FOLLOW_UP,
        Status.IN_PROGRESS: DeadlineKind.SETTLE,
        Status.REPORTER_REPLIED: DeadlineKind.SETTLE,
        Status.RESPONDED: DeadlineKind.AUTO_CLOSE,
    }
)


class IllegalTransition(ValueError):
    """A status update that cannot follow the complaint's current status."""

    def __init__(self, current: Status, event: Status) -> None:
        super().__init__(current, event)
        self.current = current
        self.event = event

    def __str__(self) -> str:
        allowed = ", ".join(sorted(_NEXT[self.current])) or "nothing"
        return (
            f"a complaint that is {self.current} cannot become {self.event}; "
            f"allowed after {self.current}: {allowed}"
        )


def transition(current: Status, event: Status) -> Status:
    """The status after `event` is reported on a complaint that is `current`.

    Raises:
        IllegalTransition: when the table does not allow `event` after `current`.
    """
    if event not in _NEXT[current]:
        raise IllegalTransition(current, event)
    return _LANDS_ON.get(event, event)


def is_terminal(status: Status) -> bool:
    return status in _TERMINAL


def is_open(status: Status) -> bool:
    return status not in _TERMINAL


def stops_clock(status: Status) -> bool:
    """Whether working time stops counting: only while waiting for the reporter."""
    return status is Status.NEEDS_INFO


def counts_as_followed_up(event: Status) -> bool:
    """Whether this update, posted by the agency holding the complaint, is a follow-up.

    The first such update after routing meets the first-follow-up deadline and counts the
    complaint as followed up (tindak lanjut) in the follow-up rate.
    """
    return event in _FOLLOW_UPS


def verifies(current: Status, event: Status) -> bool:
    """Whether this update ends the verification of a report not yet taken up (received or
    deferred): verified, or straight away passed on, worked on or answered – the one act that
    meets the verification deadline, and the end of the "time to verify" evaluators read."""
    return current in _UNVERIFIED and event in _TAKEN_UP


def counts_as_resolved(status: Status) -> bool:
    """Whether the complaint is resolved (selesai): closed, which always follows an answer.

    archived is not resolved, even after an answer: it is an administrative exit, and the
    resolution rate must stay stricter than the follow-up rate.
    """
    return status is Status.CLOSED


def deadline_after(status: Status, *, followed_up: bool = False) -> DeadlineKind | None:
    """The deadline that runs while a complaint rests in `status`, None when no clock runs.

    A holder that has followed up already and passes the complaint on within itself (down to
    a sub-unit, sideways) met its first follow-up: the answer is what is due then.
    """
    kind = _DEADLINE.get(status)
    if kind is DeadlineKind.FIRST_FOLLOW_UP and followed_up:
        return DeadlineKind.SETTLE
    return kind
