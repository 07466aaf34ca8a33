"""`lapor-hub agency CODE`: the reference agency client.

Subscribes to the agency's topic, shows each complaint as it arrives, and posts
follow-ups typed at the prompt. An agency's own system starts from this: read
RoutingEvent / EscalationEvent / DuplicateEvent / TakenEvent JSON from `lapor.agency.<code>`,
write FollowUpEvent JSON to `lapor.followup` keyed by the tracking id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import threading
import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from rich.markup import escape

from hub import terminal, topics
from hub.kafka import client_options, start_together
from hub.model import (
    TRACKING_ID_PATTERN,
    DuplicateEvent,
    EscalationEvent,
    FollowUpEvent,
    RoutingEvent,
    Status,
    TakenEvent,
    first_error,
)
from hub.routing import Agency
from hub.settings import Settings
from hub.terminal import shown

console = terminal.console()
FOLLOW_UP_STATUSES = tuple(s.value for s in Status)
"""All of them: received too, which takes a complaint back from needs_info or deferred."""
STATUSES = ", ".join(FOLLOW_UP_STATUSES)
HELP = f"type: <tracking-id> <status> [--to AGENCY] [message]   statuses: {STATUSES}   ·   quit"


def parse_command(
    line: str, agency: str, agencies: Collection[str] = (), *, national: bool = False
) -> FollowUpEvent | str:
    """A follow-up from one typed line, or the reason it is not one. `agencies`: the
    registry's codes, which a --to must name (a typo would reach only the dead letters)."""
    words = line.split()
    if len(words) < 2:
        return HELP
    tracking_id, status, rest = words[0], words[1], words[2:]
    if not re.match(TRACKING_ID_PATTERN, tracking_id, re.ASCII):
        return f"not sent: {tracking_id!r} is no tracking id (18 digits); {HELP}"
    if status not in FOLLOW_UP_STATUSES:
        return f"not sent: no status {status!r}; statuses: {STATUSES}"
    target = None
    if "--to" in rest:  # after the status or later in the line, as people type it
        at = rest.index("--to")
        if len(rest) < at + 2:
            return "not sent: --to needs an agency code"
        target, rest = rest[at + 1], rest[:at] + rest[at + 2:]
        if status != "dispositioned":
            # The hub would keep it and hand nothing on: the agency would believe it had.
            return "not sent: --to goes with dispositioned only"
        if agencies and target not in agencies:
            return f"not sent: no agency {target!r} in the registry"
    if status == "not_authority" and national:
        # The hub refuses it (no level above to return it to): a dead letter nobody sees here.
        return ("not sent: the national admin cannot decline a complaint; disposition it "
                "(--to) or archive it with a reason")
    if status == "archived" and not rest:
        return "not sent: archived needs a reason, typed after it"
    try:
        return FollowUpEvent(
            event_id=str(uuid.uuid4()),
            tracking_id=tracking_id,
            agency_code=agency,
            status=Status(status),
            at=datetime.now(UTC),
            message=" ".join(rest) or None,
            target_agency=target,
            reason=" ".join(rest) or None if status in ("archived", "deferred") else None,
        )
    except ValidationError as exc:
        # Which field and why: pydantic's first line ("1 validation error for
        # FollowUpEvent") left the officer guessing at a note too long.
        return f"not sent: {first_error(exc)}"


LAST_MOMENT = timedelta(microseconds=1)

SEEN_IDS = 100_000
"""Event ids the client remembers having shown (the latest ones): a re-sent event comes
within minutes of the first."""


class Seen:
    """The ids of the events shown already. The hub sends an event again, byte for byte
    under its id, after a crash or while another instance takes over its work: the officer
    saw that complaint once and must not be shown it as another."""

    def __init__(self, keep: int = SEEN_IDS) -> None:
        self._ids: dict[str, None] = {}
        self._keep = keep

    def first(self, event_id: str) -> bool:
        """Whether `event_id` is new here (and now remembered)."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._keep:
            del self._ids[next(iter(self._ids))]
        return True


def show(raw: bytes, seen: Seen | None = None) -> None:
    """Print one event, unless `seen` has its id already. What citizens and agencies wrote
    is escaped: rich would read "[rusak]" as a style and drop it, a "[/]" would stop the
    client, and a terminal obeys the controls in it."""
    event: EscalationEvent | DuplicateEvent | TakenEvent | RoutingEvent
    try:
        data = json.loads(raw)
        # Not an object (an array, a bare value): unreadable, and the reader goes on.
        kind = data.get("type") if isinstance(data, dict) else None
        event = (EscalationEvent.model_validate(data) if kind == "escalation"
                 else DuplicateEvent.model_validate(data) if kind == "duplicate"
                 else TakenEvent.model_validate(data) if kind == "taken"
                 else RoutingEvent.model_validate(data))
    except (ValueError, ValidationError):
        console.print(f"[yellow]unreadable event[/] {escape(repr(raw[:80]))}")
        return
    if seen is not None and not seen.first(event.event_id):
        return
    if isinstance(event, EscalationEvent):
        console.print(
            f"[bold red]escalation[/] {event.tracking_id}: {escape(event.agency_code)} missed "
            f"{event.deadline} (due by {event.due_at - LAST_MOMENT:%d %b})"
        )
        return
    if isinstance(event, DuplicateEvent):
        console.print(
            f"[bold cyan]another report[/] of {event.tracking_id} via "
            f"{event.duplicate.channel.value} ({event.duplicate.tracking_id}, same "
            f"{escape(str(event.matched_by))})"
        )
        return
    if isinstance(event, TakenEvent):
        where = f"to {escape(event.to_agency)}" if event.to_agency else "archived"
        note = event.reason or event.message  # an archive's reason, else the note it came with
        said = f" – {shown(terminal.shortened(note, 300))}" if note else ""
        console.print(f"[bold yellow]taken[/] {event.tracking_id} by {escape(event.by_agency)}, "
                      f"{where}: no longer yours to answer{said}")
        return
    r = event
    c = r.complaint
    # A deadline falls at the start of a day: the last day allowed is the one before it.
    due = ", ".join(f"{d.kind} by {d.due_at - LAST_MOMENT:%d %b}" for d in r.deadlines)
    secret = " [magenta]RAHASIA[/]" if r.confidential else ""
    who = "anonim" if c.anonymous else (c.reporter.name or c.reporter.handle or "-")
    console.print(
        f"[bold green]{r.tracking_id}[/] ({r.reason}) {c.report_type.value} via {c.channel.value}"
        f"{secret}\n  {shown(c.title or '')} {shown(terminal.shortened(c.description, 300))}\n"
        f"  region {c.location.region_code or '?'} · category {shown(c.category or '?')} · "
        f"from {shown(who)}"
        f" · due: {due}"
    )


def greet(code: str, topic: str) -> None:
    # HELP escaped: rich would take "[message]" for a tag and print nothing of it.
    console.print(f"[bold]{escape(code)}[/] listening on {escape(topic)}. {escape(HELP)}")


def client_group(agency: Agency) -> str:
    """The reference client's consumer group: one of those the agency's ACLs grant it."""
    return topics.agency_group(agency.topic_name, "client")


async def run_agency(
    settings: Settings, agency: Agency, agencies: Collection[str], *, interactive: bool,
    national: bool = False,
) -> None:
    """Show what is routed to `agency` (on its registry topic) and send what is typed."""
    code = agency.code
    options = client_options(settings)
    consumer = AIOKafkaConsumer(
        agency.topic_name, **options, group_id=client_group(agency),
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(**options, acks="all")
    await start_together(consumer, producer)
    greet(code, agency.topic_name)
    reader = asyncio.create_task(_read(consumer))
    lines = _typed_lines() if interactive else None
    try:
        while lines is not None:
            line = await lines.get()
            if not line or line.strip() in ("quit", "exit"):
                break
            result = parse_command(line, code, agencies, national=national)
            if isinstance(result, str):
                console.print(result, markup=False)  # may quote what was typed
                continue
            await producer.send_and_wait(
                topics.FOLLOW_UP, result.model_dump_json().encode(),
                key=result.tracking_id.encode(),
                headers=[("content-type", b"application/json")],
            )
            console.print(f"sent {result.status.value} for {result.tracking_id}")
        if not interactive:
            await reader
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await consumer.stop()
        await producer.stop()


def _typed_lines() -> asyncio.Queue[str]:
    """Lines typed at the prompt, read by a daemon thread ("" at the end of input).

    Not `asyncio.to_thread`: at exit Python waits for its worker, which waits for a line,
    so Ctrl-C left the client hanging until Enter was pressed.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:
        while True:
            line = sys.stdin.readline()
            try:
                loop.call_soon_threadsafe(queue.put_nowait, line)
            except RuntimeError:  # the client has stopped meanwhile
                return
            if not line:
                return

    threading.Thread(target=read, name="agency-prompt", daemon=True).start()
    return queue


async def _read(consumer: AIOKafkaConsumer) -> None:
    seen = Seen()
    while True:
        batch = await consumer.getmany(timeout_ms=1000)
        for records in batch.values():
            for record in records:
                show(record.value, seen)
        if batch:
            # Committed here, not by aiokafka's auto-commit: its last commit on stopping
            # waited for a broker gone a while for ever, and Ctrl-C did not end the client.
            # Not committed (the broker away): shown again at the next start.
            with contextlib.suppress(KafkaError):
                await consumer.commit()
