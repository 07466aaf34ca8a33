"""The hub's service layer: what the Kafka entrypoints and background loops call.

Consumers hand over a batch and commit only after these methods return. They
never raise for a bad message (that is a dead letter) and never give up on an
outage (the database or broker away): they retry with backoff, report not-ready
meanwhile, and return once the batch is stored and its events acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy.engine import Connection, Engine

from hub import metrics, store, topics, watcher
from hub.deadlines import Rules
from hub.followup import Applied, store_follow_ups
from hub.intake import (
    IntakePlan,
    Record,
    Stored,
    dead_letter,
    dead_letter_outbox,
    join_expired_fragments,
    letter_key,
    mark_routing_sent,
    plan_parts,
    resend_routing,
    store_dead_letters,
    store_intake,
)
from hub.model import DeadLetter, Stage, fits_one_record
from hub.outages import is_conflict, is_outage
from hub.producers.publisher import Publisher

log = logging.getLogger("hub.service")
T = TypeVar("T")

ATTEMPT = "hub-attempt"
NOT_BEFORE = "hub-not-before"
ORIGINAL_TOPIC = "hub-original-topic"
ORIGINAL_PLACE = "hub-original-place"
"""partition:offset:timestamp of the record as it first came: a retried record is that record
(its dead letter names it, and two copies of it – a rebalance while one waited – make one)."""
RETRY_REASON = "hub-retry-reason"
RETRY_HEADERS = (ATTEMPT, NOT_BEFORE, ORIGINAL_TOPIC, ORIGINAL_PLACE, RETRY_REASON)
"""What the hub adds to a record it retries; read only from the retry topic, and taken off a
dead letter's record when it is replayed (a record anew, with its retries before it)."""
RETRY_DELAYS = (5.0, 30.0, 120.0, 240.0)
"""Seconds before each retry; kept under the consumer's 5-minute poll interval."""


def as_first_came(record: Record) -> Record:
    """A record from the retry topic with the topic, place and time it first came with, as
    its headers say (the hub's, from `retry_later`); unreadable ones leave the record's own."""
    first = replace(record, topic=record.headers.get(ORIGINAL_TOPIC, record.topic))
    try:
        partition, offset, stamped = record.headers.get(ORIGINAL_PLACE, "").split(":", 2)
        at = datetime.fromisoformat(stamped)
        if at.tzinfo is None:
            return first
        return replace(first, partition=None if partition == "None" else int(partition),
                       offset=None if offset == "None" else int(offset), timestamp=at)
    except (ValueError, OverflowError):
        return first


def attempts_so_far(headers: Mapping[str, str]) -> int:
    """`hub-attempt` as the hub writes it; anything else counts as no attempt yet.

    The header travels with the record's own headers, so a producer may have set it:
    a value that is not a number must not make the failing record fail again here.
    """
    value = headers.get(ATTEMPT, "")
    return int(value) if value.isascii() and value.isdigit() else 0


def retry_wait(headers: Mapping[str, str], now: datetime) -> float:
    """Seconds until a retry record is due: none for a missing or unreadable
    `hub-not-before`, never longer than the longest delay (which the hub never exceeds)."""
    try:
        due = datetime.fromisoformat(headers.get(NOT_BEFORE, ""))
        wait = (due - now).total_seconds()
    except (ValueError, TypeError):  # not a time, or one without its zone
        return 0.0
    return min(max(wait, 0.0), max(RETRY_DELAYS))


def describe(exc: BaseException) -> str:
    """An error for a dead letter: its kind and first line, never the offending values."""
    if isinstance(exc, ValidationError):
        where = sorted({".".join(map(str, e["loc"])) for e in exc.errors(include_url=False)})
        return f"ValidationError at {', '.join(where)[:300]}"
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"[:500]

@dataclass(slots=True)
class Health:
    """Readiness as the last attempts saw it; /readyz reports it."""

    database: bool = True
    broker: bool = True
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.database and self.broker


def given(plan: IntakePlan) -> Callable[[Connection], IntakePlan]:
    """A plan made before the transaction, as `_store_intake` takes one."""
    return lambda _: plan


def utcnow() -> datetime:
    return datetime.now(UTC)


class Hub:
    def __init__(self, engine: Engine, publisher: Publisher, rules: Rules) -> None:
        self.engine = engine
        self.publisher = publisher
        self.rules = rules
        self.health = Health()
        self._routing_acked: set[str] = set()
        """Complaints whose first routing event the broker acknowledged, not yet noted so:
        the next write transaction notes them (a crash before that only re-sends them)."""
        self._routing_sending: set[str] = set()
        self._outbox_sending: set[int] = set()
        """Routing events (by tracking id) and outbox rows (by id) being sent now, until
        noted sent: the relay leaves them alone, or an event whose send waits out a broker
        outage would go out twice once the broker is back."""

    async def retrying(self, what: str, step: Callable[[], Awaitable[T]]) -> T:
        """Run `step` until it succeeds, backing off to 30 s, while the failure is an outage.

        Anything else (a bug, a constraint the data breaks) is raised at once: retrying
        it would only stall the partition, so the caller isolates the bad record.
        """
        delay = 0.1
        while True:
            try:
                result = await step()
            except Exception as exc:
                if is_conflict(exc):
                    # Another instance's transaction held the rows: go again, no outage.
                    log.info("%s: %s, going again", what,
                             type(getattr(exc, "orig", exc)).__name__)
                    await asyncio.sleep(random.uniform(0.01, 0.2))
                    continue
                if not is_outage(exc):
                    raise
                self.health.problems[what] = f"{type(exc).__name__}: {exc}"[:300]
                self._set_health(what, ok=False)
                log.warning("%s failed, retrying in %.1fs: %s", what, delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            else:
                self.health.problems.pop(what, None)
                self._set_health(what, ok=True)
                return result

    def _set_health(self, what: str, *, ok: bool) -> None:
        if what == "database":
            self.health.database = ok
        elif what == "broker":
            self.health.broker = ok
        # Only lowered here: an idle hub meets no outage of its own, so it is the full check
        # (hub.http.readiness, every few seconds) that raises the gauge again.
        if not self.health.ready:
            metrics.ready.set(0)

    async def intake(self, records: Sequence[Record]) -> None:
        """Normalize, route, store and publish one batch of raw records."""
        await self._in_isolation(records, "intake", self._intake)

    async def _intake(self, records: Sequence[Record]) -> None:
        now = utcnow()
        started = time.perf_counter()
        for plan in plan_parts(records, self.rules, now):
            metrics.intake_step.labels("normalize").observe(time.perf_counter() - started)
            # Each part its own transaction: a failure after the first leaves it stored,
            # and the redelivery finds those complaints seen (idempotent receiver).
            await self._store_intake(given(plan), now)
            started = time.perf_counter()

    async def expire_fragments(self, wait: timedelta) -> int:
        """Join multi-part SMS still missing a part after `wait`; returns how many."""
        now = utcnow()
        stored = await self._store_intake(
            lambda conn: join_expired_fragments(conn, self.rules, now, now - wait), now
        )
        return len(stored.routed) + len(stored.duplicates) + len(stored.dead_letters)

    async def _store_intake(
        self, plan_in: Callable[[Connection], IntakePlan], now: datetime
    ) -> Stored:
        """Store a plan (made inside the transaction), then send and count what it wrote."""
        acked = frozenset(self._routing_acked)

        def write() -> Stored:
            with store.transaction(self.engine) as conn:
                mark_routing_sent(conn, acked)
                return store_intake(conn, plan_in(conn), self.rules, now)

        with metrics.intake_step.labels("store").time():
            stored = await self.retrying("database", lambda: asyncio.to_thread(write))
        self._routing_acked -= acked
        with metrics.intake_step.labels("send").time():
            await self.send_routing(stored.routing)
        stored.count(utcnow())
        await self.publish(stored.pending)
        return stored

    async def send_routing(self, events: Sequence[store.Pending]) -> None:
        """Send first routing events; the next transaction notes them sent.

        Not a transaction of its own per batch: that cost as much as a tenth of the
        intake. Until noted, a restart or the relay may send them again, byte for byte.
        """
        if not events:
            return
        keys = {p.key for p in events if isinstance(p.key, str)}  # tracking ids
        self._routing_sending |= keys
        try:
            await self.retrying("broker", lambda: self.publisher.send(events))
        finally:
            self._routing_sending -= keys
        self._routing_acked |= keys

    async def note_routing_sent(self) -> None:
        """Note acknowledged routing events now (the relay's pass and shutdown)."""
        acked = frozenset(self._routing_acked)
        if not acked:
            return

        def mark() -> None:
            with store.transaction(self.engine) as conn:
                mark_routing_sent(conn, acked)

        await self.retrying("database", lambda: asyncio.to_thread(mark))
        self._routing_acked -= acked

    async def follow_up(self, records: Sequence[Record]) -> None:
        """Apply a batch of agency follow-up events in order, then publish their effects."""
        await self._in_isolation(records, "follow_up", self._follow_up)

    async def _follow_up(self, records: Sequence[Record]) -> None:
        now = utcnow()

        def write() -> Applied:
            with store.transaction(self.engine) as conn:
                return store_follow_ups(conn, records, self.rules, now)

        applied = await self.retrying("database", lambda: asyncio.to_thread(write))
        applied.count()
        await self.publish(applied.pending)

    async def reckon_deadlines(self) -> None:
        """Set every open complaint's running deadline by the calendar and limits of now,
        a page per transaction (hub.watcher.reckon_page)."""
        after: str | None = ""
        while after is not None:
            def page(start: str = after) -> str | None:
                with store.transaction(self.engine) as conn:
                    return watcher.reckon_page(conn, self.rules, utcnow(), start)

            after = await self.retrying("database", lambda: asyncio.to_thread(page))

    async def watch_deadlines(self) -> int:
        """One pass of the deadline watcher; returns how many complaints it handled."""
        def write() -> watcher.Sweep:
            # The clock read in each attempt: a pass retried after a wait stamped its
            # escalations up to 40 s in the past.
            with store.transaction(self.engine) as conn:
                return watcher.sweep(conn, self.rules, utcnow())

        def read() -> None:
            # Outside the write transaction: the gauges scan every complaint, and on
            # SQLite the intake would wait for that scan (a reader does not block it).
            with self.engine.connect() as conn:
                watcher.refresh_gauges(conn, self.rules, utcnow())

        try:
            swept = await self.retrying("database", lambda: asyncio.to_thread(write))
        except Exception as exc:  # not an outage: those are waited out inside
            # One complaint the pass cannot handle (a reporter sealed under a key no longer
            # configured) stopped every escalation and auto-close of every agency.
            log.error("deadline watch failed (%s); complaint by complaint",  # noqa: TRY400
                      type(exc).__name__)
            swept = await self._sweep_alone()
        await self.retrying("database", lambda: asyncio.to_thread(read))
        swept.count()
        await self.publish(swept.pending)
        return len(swept.breaches) + len(swept.closed)

    async def _sweep_alone(self) -> watcher.Sweep:
        """The watch's pass one complaint a transaction; those that fail are named in the
        log and left for the next pass."""
        def ids(after: tuple[datetime, str] | None) -> list[tuple[datetime, str]]:
            with self.engine.connect() as conn:
                return watcher.due_ids(conn, utcnow(), after=after)

        def one(tracking_id: str) -> watcher.Sweep:
            with store.transaction(self.engine) as conn:
                return watcher.sweep(conn, self.rules, utcnow(), only=tracking_id)

        swept = watcher.Sweep()
        after: tuple[datetime, str] | None = None
        # Up to a pass's worth handled, paging on past the failing ones: still due, they
        # came first again in every page and every pass, and held up all the others.
        while len(swept.breaches) + len(swept.closed) < 500:
            page = await self.retrying("database", partial(asyncio.to_thread, ids, after))
            if not page:
                break
            for _, tracking_id in page:
                try:
                    swept.add(await self.retrying(
                        "database", partial(asyncio.to_thread, one, tracking_id)))
                except Exception as exc:
                    metrics.watch_failures.inc()
                    log.error("deadline watch: complaint %s failed (%s)",  # noqa: TRY400
                              tracking_id, type(exc).__name__)
            after = page[-1]
        return swept

    async def _in_isolation(
        self,
        records: Sequence[Record],
        stage: Stage,
        handle: Callable[[Sequence[Record]], Awaitable[None]],
    ) -> None:
        """Handle the batch; if it fails for good, handle each record alone.

        A record that still fails alone goes to the retry topic (and, after the last
        attempt, to the dead letters), so one poison record never holds up the
        partition nor takes good records with it.
        """
        # Errors are logged by type only: a traceback may quote a citizen's data.
        try:
            await handle(records)
        except Exception as exc:  # not an outage: those are retried inside `handle`
            log.error(  # noqa: TRY400
                "%s batch of %d failed (%s); record by record", stage, len(records),
                type(exc).__name__,
            )
        else:
            return
        for record in records:
            try:
                await handle([record])
            except Exception as exc:
                log.error(  # noqa: TRY400
                    "%s record %s failed: %s", stage, record.where, type(exc).__name__
                )
                await self.retry_later(record, stage, describe(exc))

    async def retry_later(self, record: Record, stage: Stage, detail: str) -> None:
        """Send a failed record to the retry topic with its next attempt, or dead-letter it."""
        attempt = attempts_so_far(record.headers) + 1
        now = utcnow()
        delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]
        headers = {
            **record.headers,
            ATTEMPT: str(attempt),
            NOT_BEFORE: (now + timedelta(seconds=delay)).isoformat(),
            # The record's own: a record from the retry topic has its first ones back
            # (`as_first_came`), and a record from anywhere else is a first one.
            ORIGINAL_TOPIC: record.topic,
            ORIGINAL_PLACE: f"{record.partition}:{record.offset}:{record.timestamp.isoformat()}",
            RETRY_REASON: detail[:200],
        }
        # A record at the broker's limit does not fit again with our headers added: the
        # retry topic would refuse it for ever, so it is a dead letter at once.
        fits = fits_one_record(record.value, record.key, headers)
        if attempt > len(RETRY_DELAYS) or not fits:
            why = f"after {attempt - 1} retries" if fits else "too large to retry"
            letter = dead_letter(record, "processing_error", f"{detail} ({why})", stage, now)
            rows: list[dict[str, object]] = []
        else:
            letter = None
            rows = [{"topic": topics.RETRY, "key": record.key, "value": record.value,
                     "headers": headers, "created_at": now}]

        def write() -> tuple[list[store.Pending], list[DeadLetter]]:
            with store.transaction(self.engine) as conn:
                out = list(rows)
                new = [] if letter is None else store_dead_letters(
                    conn, [(letter, letter_key(record, "error"))], self.rules.sealer
                )
                out += [dead_letter_outbox(dl, now) for dl in new]
                return store.add_outbox(conn, out, self.rules.sealer), new

        pending, new = await self.retrying("database", lambda: asyncio.to_thread(write))
        # Counted once stored, and only if new: a record delivered again after its letter was
        # written (a crash before the commit of its offset, two copies after a rebalance)
        # makes no second letter, and must not count as one.
        for dl in new:
            metrics.dead_letters.labels(dl.stage, dl.reason).inc()
        await self.publish(pending)

    async def retry(self, record: Record) -> None:
        """Process a record from the retry topic as the record it first was: its topic, its
        place there and its time."""
        original = as_first_came(record)
        if original.topic == topics.FOLLOW_UP:
            await self._in_isolation([original], "follow_up", self._follow_up)
        else:
            await self._in_isolation([original], "intake", self._intake)

    async def publish(self, pending: Sequence[store.Pending]) -> None:
        """Send outbox rows, then mark them sent; a crash between the two re-sends them."""
        if not pending:
            return
        ids = {p.id for p in pending if p.id}
        self._outbox_sending |= ids
        try:
            sent = await self.retrying("broker", lambda: self.publisher.send(pending))

            def mark() -> None:
                with store.transaction(self.engine) as conn:
                    store.mark_sent(conn, sent, utcnow())

            await self.retrying("database", lambda: asyncio.to_thread(mark))
        finally:
            self._outbox_sending -= ids

    async def relay_outbox(self, grace: timedelta = timedelta(seconds=10)) -> int:
        """Publish rows a crashed or failed run left unsent; returns how many."""

        await self.note_routing_sent()  # or they would look unsent to the query below

        def load() -> tuple[list[store.Pending], list[store.Pending]]:
            with store.transaction(self.engine) as conn:
                store.prune_outbox(conn, utcnow() - timedelta(days=1))
                metrics.outbox_pending.set(store.unsent_count(conn))
                routing = resend_routing(conn, None, self.rules, routed_before=utcnow() - grace)
                return (store.unsent(conn, utcnow() - grace, limit=5000, sealer=self.rules.sealer),
                        routing)

        pending, routing = await self.retrying("database", lambda: asyncio.to_thread(load))
        # Acknowledged since the pass noted them, or still being sent: not lost, only slow.
        routing = [p for p in routing
                   if p.key not in self._routing_sending and p.key not in self._routing_acked]
        pending = [p for p in pending if p.id not in self._outbox_sending]
        await self.send_routing(routing)
        await self.publish(pending)
        return len(pending) + len(routing)
