"""`lapor-hub dlq`: inspect dead letters and replay them after a fix.

Replay publishes the original bytes (unsealed) to the topic they first came from,
with their original headers plus `hub-replay-of`, and marks the row replayed. The
hub then treats them as new deliveries: what now succeeds is processed, what still
fails is dead-lettered again (as a new row, with its new reason).

The list names what a letter is about where that names no citizen: a follow-up's complaint,
agency and event id (read from its sealed original, which names no reporter; else the record
key, the tracking id by the topic's contract) and a raw record's own message id (its
`hub-message-id` header). A raw record's key is the producer's choice and may be a phone
number: it is not shown.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub.intake import MESSAGE_ID, RECEIVED_AT, passes
from hub.model import Stage, fits_one_record
from hub.producers.publisher import Publisher
from hub.sealing import Sealer, SealError
from hub.service import RETRY_HEADERS
from hub.settings import Settings
from hub.store import DeadLetterRow, Pending, table_of, transaction
from hub.terminal import shortened

TABLE: sa.Table = table_of(DeadLetterRow)


@dataclass(frozen=True, slots=True)
class Letter:
    id: int
    at: datetime
    stage: str
    reason: str
    topic: str
    tracking_id: str | None
    """The complaint a follow-up is about."""
    agency: str | None
    """The agency a follow-up came from."""
    event_id: str | None
    """A follow-up's event id."""
    message_id: str | None
    """A raw record's own id, as its sender named it (`hub-message-id`)."""
    detail: str
    replayed_at: datetime | None

    def about(self) -> str:
        """What the letter is about, a line each: its complaint (the tracking id alone, to
        fit beside the detail), the agency it came from, the follow-up's event id or the raw
        record's message id."""
        return "\n".join(line for line in (
            self.tracking_id,
            self.agency and f"from {self.agency}",
            self.event_id and f"event {self.event_id}",
            self.message_id and f"message {self.message_id}",
        ) if line)


SHOWN_ID = 100
"""Characters of an id a letter is named by: the widest a follow-up's may be (its event id);
a refused one may be any length."""


def _chosen(query: sa.Select[Any], reason: str | None, include_replayed: bool) -> sa.Select[Any]:
    if reason:
        query = query.where(TABLE.c.reason == reason)
    if not include_replayed:
        query = query.where(TABLE.c.replayed_at.is_(None))
    return query


def list_letters(
    engine: Engine, sealer: Sealer, *, reason: str | None = None,
    include_replayed: bool = False, limit: int = 50,
) -> list[Letter]:
    """The newest letters first; `sealer` opens follow-ups to name what they are about."""
    query = sa.select(
        TABLE.c.id, TABLE.c.at, TABLE.c.stage, TABLE.c.reason, TABLE.c.topic, TABLE.c.detail,
        TABLE.c.replayed_at, TABLE.c.key, TABLE.c.headers,
        # Only a follow-up's original is opened: a raw record's may be a megabyte export.
        sa.case((TABLE.c.stage == FOLLOW_UP, TABLE.c.original), else_=sa.null()),
    ).order_by(TABLE.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(_chosen(query, reason, include_replayed)).all()
    letters = []
    for id_, at, stage, why, topic, detail, replayed_at, key, headers, original in rows:
        event = _opened(original, sealer) if stage == FOLLOW_UP else {}
        letters.append(Letter(
            id=id_, at=at, stage=stage, reason=why, topic=topic,
            tracking_id=_named(event.get("tracking_id"))
            or (_named(_text(key)) if stage == FOLLOW_UP else None),
            agency=_named(event.get("agency_code")), event_id=_named(event.get("event_id")),
            message_id=None if stage == FOLLOW_UP else _named(
                json.loads(headers).get(MESSAGE_ID)),
            detail=detail, replayed_at=replayed_at,
        ))
    return letters


FOLLOW_UP: Stage = "follow_up"


def _opened(original: bytes, sealer: Sealer) -> dict[str, Any]:
    """A follow-up's event as JSON, or nothing where it cannot be read (a key not configured,
    bytes that are no JSON object: often the reason it is a dead letter)."""
    try:
        event = json.loads(sealer.open(original))
    except (SealError, ValueError, RecursionError):  # RecursionError: "[[[…" nested deep
        return {}
    return event if isinstance(event, dict) else {}


def _text(key: bytes | None) -> str | None:
    try:
        return None if key is None else key.decode()
    except UnicodeDecodeError:
        return None


def _named(value: object) -> str | None:
    """An id as a letter is named by it: text, not empty, cut to SHOWN_ID characters."""
    return shortened(value, SHOWN_ID) if isinstance(value, str) and value.strip() else None


def count_letters(
    engine: Engine, *, reason: str | None = None, include_replayed: bool = False
) -> int:
    """How many dead letters `list_letters` chooses from."""
    query = sa.select(sa.func.count()).select_from(TABLE)
    with engine.connect() as conn:
        return int(conn.execute(_chosen(query, reason, include_replayed)).scalar_one())


@dataclass(frozen=True, slots=True)
class Replayable:
    pending: list[Pending]
    sealed_elsewhere: list[int]
    """Dead letters sealed under a key not configured now: kept, to replay with that key."""
    too_large: list[int]
    """Records at the broker's limit that the replay's header would take over it."""


REPLAY_PART = 500
"""Letters sent, then marked replayed, at a time: a failure part way (the broker lost) leaves
those sent marked, and a retry does not send them again."""


def replayable(
    engine: Engine, sealer: Sealer, ids: Sequence[int], reason: str | None
) -> Replayable:
    """The dead letters chosen by id or reason, not yet replayed, as events to send."""
    query = sa.select(TABLE).where(TABLE.c.replayed_at.is_(None)).order_by(TABLE.c.id)
    if ids:
        query = query.where(TABLE.c.id.in_(ids))
    if reason:
        query = query.where(TABLE.c.reason == reason)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    found = Replayable([], [], [])
    for row in rows:
        # Sent anew: without the retries' headers it was dead-lettered with (its attempts
        # spent, it got no retry; its first place kept, its new letter was taken for the old).
        headers = {k: v for k, v in json.loads(row.headers).items() if k not in RETRY_HEADERS}
        headers["hub-replay-of"] = str(row.id)
        try:
            original = sealer.open(row.original)
        except SealError:  # one such row stopped a whole --all before
            found.sealed_elsewhere.append(row.id)
            continue
        if not fits_one_record(original, row.key, headers):
            # The broker refuses it: it failed the whole replay, after sending some letters
            # that were then not marked, so every retry sent those again.
            found.too_large.append(row.id)
            continue
        received = {RECEIVED_AT: row.at.isoformat()}
        if row.stage == "intake" and RECEIVED_AT not in headers and fits_one_record(
            original, row.key, headers | received
        ):
            # A record published straight to a raw topic carries its time only as the
            # record's: sent anew, the complaint would be received at the replay.
            headers |= received
        found.pending.append(Pending(row.id, row.topic, row.key, original, headers))
    return found


def reasons(engine: Engine) -> list[str]:
    """The reasons of the dead letters held, replayed or not."""
    with engine.connect() as conn:
        return list(conn.execute(sa.select(TABLE.c.reason).distinct().order_by(TABLE.c.reason))
                    .scalars())


def mark_replayed(engine: Engine, ids: Sequence[int]) -> None:
    with transaction(engine) as conn:
        for part in passes(list(ids)):  # PostgreSQL takes at most 65,535 parameters
            conn.execute(
                sa.update(TABLE).where(TABLE.c.id.in_(part)).values(replayed_at=datetime.now(UTC))
            )


async def replay(
    settings: Settings, engine: Engine, sealer: Sealer, ids: Sequence[int], reason: str | None
) -> tuple[list[int], Replayable]:
    """Publish the chosen dead letters back to their topics, marking them replayed a part
    at a time; returns their ids, and what was found (the ones left out among it)."""
    found = replayable(engine, sealer, ids, reason)
    sent: list[int] = []
    if not found.pending:
        return sent, found
    publisher = Publisher(settings)
    await publisher.start()
    try:
        for at in range(0, len(found.pending), REPLAY_PART):
            done = await publisher.send(found.pending[at:at + REPLAY_PART])
            mark_replayed(engine, done)
            sent += done
    finally:
        await publisher.stop()
    return sent, found
