"""The lifecycle table, pair by pair, and what each status means for deadlines and rates."""

from __future__ import annotations

from collections import deque
from itertools import product

import pytest

from hub.calendar import DeadlineKind
from hub.lifecycle import (
    IllegalTransition,
    counts_as_followed_up,
    counts_as_resolved,
    deadline_after,
    is_open,
    is_terminal,
    stops_clock,
    transition,
)
from hub.model import Status

S = Status

# The specification, written out independently of the module: current -> {event: next}.
LEGAL: dict[Status, dict[Status, Status]] = {
    S.RECEIVED: {
        S.VERIFIED: S.VERIFIED,
        S.DISPOSITIONED: S.DISPOSITIONED,
        # An agency a rule routed to directly: its own verification and disposition are the act.
        S.IN_PROGRESS: S.IN_PROGRESS,
        S.RESPONDED: S.RESPONDED,
        S.NEEDS_INFO: S.NEEDS_INFO,
        S.DEFERRED: S.DEFERRED,
        S.NOT_AUTHORITY: S.RECEIVED,
        S.ARCHIVED: S.ARCHIVED,
    },
    S.NEEDS_INFO: {
        S.NEEDS_INFO: S.NEEDS_INFO,
        S.RECEIVED: S.RECEIVED,
        S.REPORTER_REPLIED: S.REPORTER_REPLIED,
        S.ARCHIVED: S.ARCHIVED,
    },
    S.VERIFIED: {
        S.DISPOSITIONED: S.DISPOSITIONED,
        S.IN_PROGRESS: S.IN_PROGRESS,
        S.RESPONDED: S.RESPONDED,
        S.NEEDS_INFO: S.NEEDS_INFO,
        S.DEFERRED: S.DEFERRED,
        S.NOT_AUTHORITY: S.RECEIVED,
        S.ARCHIVED: S.ARCHIVED,
    },
    S.DEFERRED: {
        S.RECEIVED: S.RECEIVED,
        S.VERIFIED: S.VERIFIED,
        S.DISPOSITIONED: S.DISPOSITIONED,
        S.ARCHIVED: S.ARCHIVED,
    },
    S.DISPOSITIONED: {
        S.DISPOSITIONED: S.DISPOSITIONED,
        S.IN_PROGRESS: S.IN_PROGRESS,
        S.RESPONDED: S.RESPONDED,
        S.NEEDS_INFO: S.NEEDS_INFO,
        S.NOT_AUTHORITY: S.RECEIVED,
        S.ARCHIVED: S.ARCHIVED,
    },
    S.IN_PROGRESS: {
        S.IN_PROGRESS: S.IN_PROGRESS,
        S.DISPOSITIONED: S.DISPOSITIONED,
        S.RESPONDED: S.RESPONDED,
        S.NEEDS_INFO: S.NEEDS_INFO,
        S.NOT_AUTHORITY: S.RECEIVED,
        S.ARCHIVED: S.ARCHIVED,
    },
    S.RESPONDED: {
        S.RESPONDED: S.RESPONDED,
        S.REPORTER_REPLIED: S.REPORTER_REPLIED,
        S.CLOSED: S.CLOSED,
        S.ARCHIVED: S.ARCHIVED,
    },
    S.REPORTER_REPLIED: {
        S.REPORTER_REPLIED: S.REPORTER_REPLIED,
        S.DISPOSITIONED: S.DISPOSITIONED,
        S.IN_PROGRESS: S.IN_PROGRESS,
        S.RESPONDED: S.RESPONDED,
        S.NEEDS_INFO: S.NEEDS_INFO,
        S.NOT_AUTHORITY: S.RECEIVED,
        S.ARCHIVED: S.ARCHIVED,
    },
}


@pytest.mark.parametrize(
    ("current", "event"), list(product(Status, Status)), ids=lambda status: status.value
)
def test_every_pair(current: Status, event: Status) -> None:
    expected = LEGAL.get(current, {}).get(event)
    if expected is None:
        with pytest.raises(IllegalTransition) as raised:
            transition(current, event)
        assert (raised.value.current, raised.value.event) == (current, event)
    else:
        assert transition(current, event) is expected


def test_the_main_line_from_received_to_closed() -> None:
    status = S.RECEIVED
    for event in (
        S.VERIFIED,
        S.DISPOSITIONED,
        S.IN_PROGRESS,
        S.RESPONDED,
        S.REPORTER_REPLIED,
        S.IN_PROGRESS,
        S.RESPONDED,
        S.CLOSED,
    ):
        status = transition(status, event)
    assert status is S.CLOSED


@pytest.mark.parametrize("holder", [S.RECEIVED, S.VERIFIED, S.DISPOSITIONED, S.IN_PROGRESS])
def test_not_authority_sends_the_complaint_back_to_received_for_rerouting(holder: Status) -> None:
    assert transition(holder, S.NOT_AUTHORITY) is S.RECEIVED


def test_not_authority_is_never_a_resting_status() -> None:
    assert all(transition(c, e) is not S.NOT_AUTHORITY for c, nexts in LEGAL.items() for e in nexts)


@pytest.mark.parametrize("status", list(Status), ids=lambda status: status.value)
def test_terminal_statuses_are_closed_and_archived(status: Status) -> None:
    terminal = status in {S.CLOSED, S.ARCHIVED}
    assert is_terminal(status) is terminal
    assert is_open(status) is not terminal


@pytest.mark.parametrize("terminal", [S.CLOSED, S.ARCHIVED])
def test_nothing_follows_a_terminal_status(terminal: Status) -> None:
    for event in Status:
        with pytest.raises(IllegalTransition, match=r"allowed after \w+: nothing$"):
            transition(terminal, event)


def test_every_open_status_is_reachable_and_can_still_end() -> None:
    reachable = _reachable_from(S.RECEIVED)
    assert reachable == set(Status) - {S.NOT_AUTHORITY}
    for status in reachable - {S.CLOSED, S.ARCHIVED}:
        assert {S.CLOSED, S.ARCHIVED} <= _reachable_from(status)


def _reachable_from(start: Status) -> set[Status]:
    seen, queue = {start}, deque([start])
    while queue:
        current = queue.popleft()
        for event in Status:
            try:
                reached = transition(current, event)
            except IllegalTransition:
                continue
            if reached not in seen:
                seen.add(reached)
                queue.append(reached)
    return seen


def test_illegal_transition_says_what_is_allowed() -> None:
    with pytest.raises(IllegalTransition) as raised:
        transition(S.RESPONDED, S.VERIFIED)
    assert str(raised.value) == (
        "a complaint that is responded cannot become verified; "
        "allowed after responded: archived, closed, reporter_replied, responded"
    )
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("status", list(Status), ids=lambda status: status.value)
def test_what_each_status_means(status: Status) -> None:
    assert stops_clock(status) is (status is S.NEEDS_INFO)
    assert counts_as_followed_up(status) is (status in {S.IN_PROGRESS, S.RESPONDED, S.NEEDS_INFO})
    assert counts_as_resolved(status) is (status is S.CLOSED)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (S.RECEIVED, DeadlineKind.VERIFICATION),
        (S.NEEDS_INFO, None),
        (S.VERIFIED, DeadlineKind.VERIFICATION),
        (S.DEFERRED, DeadlineKind.VERIFICATION),
        (S.DISPOSITIONED, DeadlineKind.FIRST_FOLLOW_UP),
        (S.IN_PROGRESS, DeadlineKind.SETTLE),
        (S.RESPONDED, DeadlineKind.AUTO_CLOSE),
        (S.REPORTER_REPLIED, DeadlineKind.SETTLE),
        (S.NOT_AUTHORITY, None),
        (S.ARCHIVED, None),
        (S.CLOSED, None),
    ],
    ids=str,
)
def test_the_deadline_running_in_each_status(status: Status, kind: DeadlineKind | None) -> None:
    assert deadline_after(status) is kind


def test_a_disposition_after_the_first_follow_up_leaves_the_answer_due() -> None:
    assert deadline_after(S.DISPOSITIONED, followed_up=True) is DeadlineKind.SETTLE
    assert deadline_after(S.RECEIVED, followed_up=True) is DeadlineKind.VERIFICATION
