"""Which failures are outages: "not now" (wait, retry, report not ready) rather than "never"
(a bad record, to isolate). The hub's retries and the command line's one-line errors ask it."""

from __future__ import annotations

import sqlalchemy as sa
from aiokafka.errors import KafkaError

# Failures that say "not now" rather than "never": the database or broker is away.
TRANSIENT: tuple[type[BaseException], ...] = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.DisconnectionError,
    sa.exc.TimeoutError,
    KafkaError,
    ConnectionError,
    TimeoutError,
)

# PostgreSQL states that blame the database, not the record: its connection (08), its
# resources (53: disk full), an operator (57), read-only after a failover (25006), tables or
# columns the code does not find (42P01, 42703: a migration not run, a database recreated
# empty), rights taken away (42501) and a session the server ended for standing still inside
# its transaction (25P03: the process was frozen; hub.store.IDLE_IN_TRANSACTION_MS). Taken
# for errors of the record, they moved records on to the retry topic through that same
# database, failed there too, and were passed over.
_OUTAGE_STATES = ("08", "53", "57", "25006", "25P03", "42P01", "42703", "42501")


def is_outage(exc: BaseException) -> bool:
    """Whether the failure says "not now" (retry, report not ready) rather than "never"."""
    if isinstance(exc, TRANSIENT):
        return True
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(exc, sa.exc.DBAPIError) and isinstance(state, str) \
        and state.startswith(_OUTAGE_STATES)


# Two transactions waiting on each other (40P01) or a serialization failure (40001): the
# database is there, and the retry goes through; no outage to report.
_CONFLICT_STATES = ("40P01", "40001")


def is_conflict(exc: BaseException) -> bool:
    """Whether the failure is a deadlock or a serialization failure between transactions."""
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(exc, sa.exc.DBAPIError) and state in _CONFLICT_STATES
