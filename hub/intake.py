"""Intake: a batch of raw records → complaints stored, routed, and events in the outbox.

`plan_intake` is pure (normalize, route, build events); `store_intake` writes the
plan in one transaction and returns what to publish. Idempotent: a record seen
before (same source system and source message id) adds nothing.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from hub import lifecycle, metrics, topics
from hub.adapters import SOURCES, Fragment, Outcome, RawMessage, Rejection
from hub.calendar import DeadlineKind
from hub.deadlines import Rules
from hub.duplicates import BLOCK_LIMIT, Candidate, Fingerprint, Pool, fingerprint, keyed_digest
from hub.model import (
    Complaint,
    DeadLetter,
    DuplicateEvent,
    Reporter,
    RoutingEvent,
    Stage,
    Status,
    fits_one_record,
)
from hub.routing import Decision
from hub.sealing import Sealer
from hub.store import (
    CONTENT_TYPE_MAX,
    MESSAGE_ID_MAX,
    ComplaintRow,
    DeadLetterRow,
    FragmentRow,
    HistoryRow,
    Pending,
    add_outbox,
    ended_at,
    insert_ignoring_duplicates,
    outbox_row,
    table_of,
)

RAW_PREFIX = topics.raw("")


@dataclass(frozen=True, slots=True)
class Record:
    """A consumed Kafka record, free of any client library's types."""

    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    timestamp: datetime

    @property
    def where(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


@dataclass(slots=True)
class IntakePlan:
    complaints: list[tuple[Complaint, Decision]] = field(default_factory=list)
    dead_letters: list[tuple[DeadLetter, str]] = field(default_factory=list)
    """Each with its dedupe key."""
    fragments: list[tuple[Fragment, Record]] = field(default_factory=list)


RECEIVED_AT = "hub-received-at"
"""The header with the time the hub took a record in (the ingress sets it; a replay too)."""
MESSAGE_ID = "hub-message-id"
"""The header with the sender's own id of a raw record whose payload carries none."""


def to_raw(record: Record, now: datetime | None = None) -> RawMessage | Rejection:
    source = record.topic.removeprefix(RAW_PREFIX) if record.topic.startswith(RAW_PREFIX) else ""
    if source not in SOURCES:
        return Rejection("unknown_source", f"no adapter for topic {record.topic!r}")
    received = record.headers.get(RECEIVED_AT)
    try:
        received_at = datetime.fromisoformat(received) if received else record.timestamp
        if received_at.tzinfo is None:
            received_at = received_at.replace(tzinfo=UTC)
        # Near year 1 or 9999 a time may have no UTC equivalent: storing it would fail.
        received_at.astimezone(UTC)
    except (ValueError, OverflowError):
        received_at = record.timestamp
    now = now or datetime.now(UTC)
    if received_at > now:
        # Nothing is received after the hub reads it: a time ahead is a producer's clock or
        # a header set by hand (one in 9999 made the complaint's every measure fail).
        received_at = min(record.timestamp, now)
    content_type = record.headers.get("content-type", SOURCES[source].content_types[0])
    message_id = record.headers.get(MESSAGE_ID)
    # Kept with a waiting SMS part in columns of these widths: past them, PostgreSQL refused
    # the part on every retry, and its SMS never became a complaint.
    for name, value, limit in (("content-type", content_type, CONTENT_TYPE_MAX),
                               (MESSAGE_ID, message_id, MESSAGE_ID_MAX)):
        if value is not None and (len(value) > limit or "\x00" in value):
            return Rejection("invalid_header", f"header {name} is longer than {limit} "
                             "characters or holds a NUL")
    return RawMessage(
        source=source,
        body=record.value,
        content_type=content_type,
        received_at=received_at,
        message_id=message_id,
        headers=record.headers,
    )


def normalize_record(record: Record, now: datetime | None = None) -> list[Outcome]:
    """Never raises: an adapter bug becomes a dead letter, not a stuck partition."""
    raw = to_raw(record, now)
    if isinstance(raw, Rejection):
        return [raw]
    try:
        return SOURCES[raw.source].normalize(raw)
    except Exception as exc:
        return [Rejection("adapter_error", f"{type(exc).__name__}: {exc}"[:500])]


def _key_fields(key: bytes | None) -> dict[str, str | None]:
    """A dead letter's key as text, and as base64 too when it is not text (a binary key)."""
    if key is None:
        return {"key": None, "key_base64": None}
    try:
        return {"key": key.decode(), "key_base64": None}
    except UnicodeDecodeError:
        return {"key": key.decode(errors="replace"), "key_base64": base64.b64encode(key).decode()}


def letter_key(record: Record, what: str) -> str:
    """A dead letter's dedupe key: the record's place and what of it was refused, and a
    digest of the record itself. The place alone recurs: offsets start again when topics
    are made anew (a broker restarted empty), and a retried record's place is the retry
    topic's – a new record's letter there was taken for a re-delivered one's, and dropped."""
    digest = hashlib.blake2b(digest_size=10)
    digest.update(record.key or b"")
    digest.update(b"\0" + record.value + b"\0")
    digest.update(record.timestamp.isoformat().encode())
    return f"{record.where}:{what}:{digest.hexdigest()}"


def dead_letter(
    record: Record, reason: str, detail: str, stage: Stage, now: datetime
) -> DeadLetter:
    return DeadLetter(
        reason=reason,
        # Quoted input: a column holds it. Escaped before it is cut, or each NUL's four
        # characters took it past its 2,000 and the letter itself failed.
        detail=detail.replace("\x00", "\\x00")[:2000],
        stage=stage,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        **_key_fields(record.key),
        headers=record.headers,
        original=base64.b64encode(record.value).decode(),
        at=now,
    )


def plan_intake(records: Sequence[Record], rules: Rules, now: datetime) -> IntakePlan:
    plan = IntakePlan()
    for record in records:
        _plan_record(plan, record, rules, now)
    return plan


PART_SIZE = 5_000
"""Complaints after which `plan_parts` starts a new part: a batch of one-complaint records
(at most HUB_BATCH_SIZE of them) stays one part, one transaction."""


def plan_parts(records: Sequence[Record], rules: Rules, now: datetime) -> Iterator[IntakePlan]:
    """`plan_intake` in parts, each cut after the record that brings it to PART_SIZE
    complaints: one fetch can hand over a megabyte of provincial exports per partition,
    about 10,000 complaints each, and a batch of them held whole took 308 MB for three
    and 455 MB for six (`bench/intake_memory.py`). A record's complaints stay in one
    part. Always at least one part, maybe empty."""
    plan = IntakePlan()
    for at, record in enumerate(records, 1):
        _plan_record(plan, record, rules, now)
        if len(plan.complaints) >= PART_SIZE and at < len(records):
            yield plan
            plan = IntakePlan()
    yield plan


def _plan_record(plan: IntakePlan, record: Record, rules: Rules, now: datetime) -> None:
    refused: list[tuple[int, Rejection]] = []
    for i, outcome in enumerate(normalize_record(record, now)):
        if isinstance(outcome, Complaint):
            plan.complaints.append((outcome, rules.directory.route(outcome)))
        elif isinstance(outcome, Rejection):
            refused.append((i, outcome))
        else:
            plan.fragments.append((outcome, record))
    if refused:
        plan.dead_letters.append(refused_letter(record, refused, now))


SHOWN_REFUSALS = 5


def refused_letter(
    record: Record, refused: Sequence[tuple[int, Rejection]], now: datetime
) -> tuple[DeadLetter, str]:
    """One dead letter per record, however many of its entries were refused, with its key.

    A dead letter carries the whole original record: one per entry made a 10,000-row
    export with every row refused hold 10,000 copies of itself (out of memory, and again
    on redelivery). Replaying the one letter sends the record again; its stored entries
    are skipped as seen.
    """
    (first_i, first), *more = refused
    # Named by its entry's id (a ticket number, a message id) where it has one: in a
    # 4,000-row export the sender must find the row to fix.
    detail = _named(first)
    if more:
        counts = Counter(rejection.reason for _, rejection in refused)
        shown = "; ".join(_named(r) for _, r in refused[:SHOWN_REFUSALS])
        detail = (f"{len(refused)} entries refused ("
                  + ", ".join(f"{reason} ×{n}" for reason, n in counts.most_common())
                  + f"): {shown}" + ("; …" if len(refused) > SHOWN_REFUSALS else ""))
    # Named by what needs a look: an entry refused for its content, not a routine one
    # (a receipt, a reaction) beside it, which alerts and `dlq --reason` pass over.
    telling = next((r for _, r in refused if r.reason != "not_a_complaint"), first)
    letter = dead_letter(record, telling.reason, detail, "intake", now)
    return letter, letter_key(record, str(first_i))


def _named(rejection: Rejection) -> str:
    """The refusal's detail, after its entry's id unless the detail names it already."""
    if rejection.source_message_id and not rejection.detail.startswith(
            rejection.source_message_id):
        return f"{rejection.source_message_id}: {rejection.detail}"
    return rejection.detail


def routing_event(
    complaint: Complaint, decision: Decision, seq: int, now: datetime, rules: Rules,
    previous: str | None = None,
) -> RoutingEvent:
    """What the agency receives; an anonymous complaint travels without its reporter."""
    return RoutingEvent(
        deadlines=rules.announced(
            now, complaint.report_type, complaint.needs_inspection, decision.agency
        ),
        event_id=f"route-{complaint.tracking_id}-{seq}",
        tracking_id=complaint.tracking_id,
        agency_code=decision.agency.code,
        previous_agency_code=previous,
        reason=decision.reason,
        routed_at=now,
        confidential=complaint.confidential,
        complaint=as_shown(complaint),
    )


def as_shown(complaint: Complaint) -> Complaint:
    """The complaint as it may leave the hub: an anonymous one without its reporter."""
    if not complaint.anonymous:
        return complaint
    return complaint.model_copy(update={"reporter": Reporter()})


def routing_outbox(event: RoutingEvent, topic: str, now: datetime) -> dict[str, Any]:
    return outbox_row(topic, event.tracking_id, event, now,
                      **{"event-id": event.event_id, "event-type": "routing"})


def store_dead_letters(
    conn: Connection, letters: Sequence[tuple[DeadLetter, str]], sealer: Sealer
) -> list[DeadLetter]:
    """Store dead letters once each (by dedupe key); returns the ones new here."""
    rows = [
        {
            "dedupe_key": key,
            "reason": dl.reason,
            "detail": dl.detail,
            "stage": dl.stage,
            "topic": dl.topic,
            "partition": dl.partition,
            "offset": dl.offset,
            "key": dl.key_bytes,
            "headers": json.dumps(dl.headers),
            "original": sealer.seal(base64.b64decode(dl.original)),
            "at": dl.at,
        }
        for dl, key in letters
    ]
    new = insert_ignoring_duplicates(conn, DeadLetterRow, rows, "dedupe_key")
    return [dl for dl, key in letters if key in new]


def dead_letter_outbox(letter: DeadLetter, now: datetime) -> dict[str, Any]:
    """The dead-letter event; what of the original record would not fit stays in the row.

    Base64 makes an original near the broker's limit too large to send again: the broker
    would refuse the event for ever and hold up the consumer.
    """
    omissions: list[dict[str, Any]] = [
        {}, {"original": ""}, {"original": "", "key": None, "key_base64": None, "headers": {}},
    ]
    for omit in omissions:
        slim = letter.model_copy(update={**omit, "original_omitted": bool(omit)})
        row = outbox_row(topics.DEAD_LETTER, slim.key_bytes, slim, now, reason=slim.reason)
        if fits_one_record(row["value"], row["key"], row["headers"]):
            break
    return row


@dataclass(frozen=True, slots=True)
class Stored:
    """What a transaction wrote: the events to send, and what to count once committed."""

    pending: list[Pending]
    """Outbox rows (dead letters)."""
    routing: list[Pending]
    """Routing events, sent straight after commit: each can be derived again from its
    complaint row, so a re-delivered raw record re-sends it instead of an outbox row."""
    routed: list[tuple[Complaint, Decision]]
    dead_letters: list[DeadLetter]
    duplicates: list[tuple[Complaint, str]] = field(default_factory=list)
    """Each duplicate with the key kind that matched."""

    def count(self, routing_acked_at: datetime) -> None:
        """Count what was written; `routing_acked_at`: when the broker took the routing events."""
        # A duplicate was received too: the people who tried a second door count per channel.
        for complaint in [c for c, _ in self.routed] + [c for c, _ in self.duplicates]:
            metrics.received.labels(complaint.channel.value, complaint.source.system).inc()
        for complaint, decision in self.routed:
            metrics.routed.labels(decision.agency.code, decision.reason).inc()
            # max: a received-at stamped by another host's ingress may run a little ahead.
            metrics.routing_delay.labels(complaint.channel.value).observe(
                max((routing_acked_at - complaint.received_at).total_seconds(), 0.0)
            )
        for _, kind in self.duplicates:
            metrics.duplicates.labels(kind).inc()
        for letter in self.dead_letters:
            metrics.dead_letters.labels(letter.stage, letter.reason).inc()


def join_fragments(
    conn: Connection, fragments: Sequence[tuple[Fragment, Record]], rules: Rules, now: datetime
) -> IntakePlan:
    """Keep multi-part SMS parts; a group whose parts are all in becomes a complaint."""
    joined = IntakePlan()
    if not fragments:
        return joined
    # Stored, the group names the sender ("+62812…:17"): kept as a keyed hash, as the
    # reporter key is; the parts' bodies are sealed.
    fragments = [(replace(f, group_key=keyed_digest(rules.secret, f.group_key)), r)
                 for f, r in fragments]
    _lock_groups(conn, {f.group_key for f, _ in fragments})
    table: sa.Table = table_of(FragmentRow)
    held = {
        (row.group_key, row.idx): (rules.sealer.open(row.body), row.joined_at is not None)
        for row in conn.execute(
            sa.select(table.c.group_key, table.c.idx, table.c.body, table.c.joined_at)
            .where(table.c.group_key.in_({f.group_key for f, _ in fragments}))
        )
    }
    fresh: list[dict[str, Any]] = []
    for f, record in fragments:
        before = held.get((f.group_key, f.index))
        if before is not None and _same_part(before[0], f.raw.body):
            continue  # the same part again: a gateway's or Kafka's re-send
        if before is not None and not before[1]:
            # Another text as a part still waiting: the sender's phone reused the SMS's
            # reference too soon. Kept as it came, to replay once the first is joined.
            joined.dead_letters.append((dead_letter(
                record, "fragment_conflict", f"part {f.index}/{f.total} of a multi-part SMS "
                "came already with other text; replay once that SMS is joined", "intake", now,
            ), letter_key(record, "fragment")))
            continue
        if before is not None:
            # The reference reused after its SMS was joined: this is a new SMS.
            conn.execute(sa.delete(table).where(table.c.group_key == f.group_key,
                                                table.c.joined_at.is_not(None)))
            held = {k: v for k, v in held.items() if k[0] != f.group_key or not v[1]}
        held[(f.group_key, f.index)] = (f.raw.body, False)
        fresh.append({
            "group_key": f.group_key, "idx": f.index, "total": f.total, "source": f.raw.source,
            "body": rules.sealer.seal(f.raw.body), "content_type": f.raw.content_type,
            "message_id": f.raw.message_id, "received_at": f.raw.received_at,
        })
    insert_ignoring_duplicates(conn, FragmentRow, fresh, "group_key")
    for group_key in dict.fromkeys(f.group_key for f, _ in fragments):
        _join_stored(conn, group_key, rules, now, joined, partial=False)
    return joined


def _same_part(stored: bytes, came: bytes) -> bool:
    """The same bytes, or the same JSON written with other spacing or key order (a gateway
    re-sending a part re-serializes it): not another text in the part's place."""
    if stored == came:
        return True
    try:
        return bool(json.loads(stored) == json.loads(came))
    except ValueError:  # also a body not in UTF-8
        return False


def join_expired_fragments(
    conn: Connection, rules: Rules, now: datetime, waited_since: datetime, limit: int = 500
) -> IntakePlan:
    """Groups still missing a part since before `waited_since`: joined with what came.

    A part lost by the operator must not hold the citizen's message back for ever; the
    joiner marks each missing part in the text, so the agency sees the gap.
    """
    table: sa.Table = table_of(FragmentRow)
    # Joined parts are kept only while a gateway may still re-send one.
    conn.execute(sa.delete(table).where(table.c.joined_at < now - rules.duplicate_window))
    joined = IntakePlan()
    rekeyed = _rekey_plain_groups(conn, rules)
    _lock_groups(conn, rekeyed)
    for group_key in rekeyed:
        _join_stored(conn, group_key, rules, now, joined, partial=False)
    expired = conn.execute(
        sa.select(table.c.group_key).where(table.c.joined_at.is_(None))
        .group_by(table.c.group_key)
        .having(sa.func.min(table.c.received_at) < waited_since).limit(limit)
    ).scalars().all()
    _lock_groups(conn, expired)
    for group_key in expired:
        _join_stored(conn, group_key, rules, now, joined, partial=True)
    return joined


DUPLICATE_LOCKS_MAX = 256
"""Duplicate keys locked per transaction at most (about 85 complaints); a larger batch is
stored unlocked. PostgreSQL's lock table holds 64 per connection by default: a lock per
key ran out of it on a 30,000-row export, and one lock for all intake took two instances
from 1.22–1.25 times one instance's throughput to 0.88–0.92 (`lapor-hub bench --processes`)."""


def _lock_duplicate_keys(conn: Connection, prints: Iterable[Fingerprint]) -> None:
    """Two instances storing one complaint come through two doors at once each found no
    earlier one, neither committed, and both were routed: locked by its keys (PostgreSQL),
    the second waits and finds the first. For the few complaints of a batch taken as they
    come in, where this happens; a backlog's or an export's large batch is not locked."""
    names = {f"duplicate:{col}:{key}" for fp in prints for col in KEY_COLUMNS
             if (key := getattr(fp, col))}
    if len(names) <= DUPLICATE_LOCKS_MAX:
        _lock(conn, names)


def _lock_groups(conn: Connection, group_keys: Collection[str]) -> None:
    """One transaction at a time per SMS (PostgreSQL; SQLite has one writer anyway): the
    parts of one, taken by two instances at once, each saw only its own (not yet committed)
    and neither joined them – an hour late, at the wait's end."""
    _lock(conn, group_keys)


def _lock(conn: Connection, names: Collection[str]) -> None:
    """Transaction locks on these names (PostgreSQL), taken in the order of their ids in one
    statement, so that two transactions never wait on each other."""
    if conn.dialect.name != "postgresql" or not names:
        return
    ids = sorted({int.from_bytes(hashlib.blake2b(name.encode(), digest_size=7).digest())
                  for name in names})  # 56 bits: a bigint lock id
    ordered = sa.select(sa.func.unnest(sa.bindparam("ids", ids, type_=ARRAY(sa.BigInteger)))
                        .label("id")).order_by("id").subquery()
    conn.execute(sa.select(sa.func.count(sa.func.pg_advisory_xact_lock(ordered.c.id))))


def _rekey_plain_groups(conn: Connection, rules: Rules) -> list[str]:
    """Parts stored before groups were kept as a keyed hash ("+62812…:17" in plain text): the
    hash now, so that the parts coming after them join them (they became two partial SMS), and
    no sender's number stands in the table. Returns the groups so keyed."""
    table: sa.Table = table_of(FragmentRow)
    plain = conn.execute(  # a keyed hash is hex: no colon
        sa.select(table.c.group_key, table.c.idx).where(table.c.group_key.like("%:%"))
    ).all()
    keyed: set[str] = set()
    for old, idx in plain:
        new = keyed_digest(rules.secret, old)
        at = (table.c.group_key == old, table.c.idx == idx)
        taken = conn.execute(sa.select(table.c.idx).where(
            table.c.group_key == new, table.c.idx == idx)).first()
        # The same part came again after the upgrade: the later copy stands.
        conn.execute(sa.delete(table).where(*at) if taken
                     else sa.update(table).where(*at).values(group_key=new))
        keyed.add(new)
    return sorted(keyed)


def _join_stored(
    conn: Connection, group_key: str, rules: Rules, now: datetime, into: IntakePlan, *,
    partial: bool,
) -> None:
    """Join one stored group into `into` and mark its parts joined; complete groups only
    unless `partial`. A group refused cites each part with its own bytes, replayable."""
    table: sa.Table = table_of(FragmentRow)
    waiting = (table.c.group_key == group_key, table.c.joined_at.is_(None))
    rows = conn.execute(sa.select(table).where(*waiting)).all()
    if not rows or (len(rows) < rows[0].total and not partial):
        return
    source = SOURCES[rows[0].source]
    bodies = [rules.sealer.open(r.body) for r in rows]
    parts = [
        Fragment(group_key, r.idx, r.total, RawMessage(
            source=r.source, body=body, content_type=r.content_type,
            received_at=r.received_at, message_id=r.message_id,
        ))
        for r, body in zip(rows, bodies, strict=True)
    ]
    outcomes: list[Outcome] = (
        source.join(parts, partial) if source.join
        else [Rejection("adapter_error", f"source {source.name} cannot join parts")]
    )
    if any(isinstance(o, Fragment) for o in outcomes):
        return  # still missing a part after all (e.g. indexes out of range)
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, Complaint):
            into.complaints.append((outcome, rules.directory.route(outcome)))
        elif isinstance(outcome, Rejection):
            # Each part its own dead letter with its own bytes: replayed, it is a part again
            # (the parts joined into one body were no payload the adapter could read).
            for row, body in zip(rows, bodies, strict=True):
                # Per part and delivery: a reused reference, or a replay, is a letter again.
                digest = hashlib.sha256(body).hexdigest()[:16]
                cited = Record(
                    topic=topics.raw(source.name), partition=None, offset=None, key=None,
                    value=body, timestamp=now, headers={
                        "content-type": row.content_type,
                        **({MESSAGE_ID: row.message_id} if row.message_id else {}),
                    },
                )
                letter = dead_letter(cited, outcome.reason, outcome.detail, "intake", now)
                into.dead_letters.append(
                    (letter, f"fragments:{group_key}:{i}:{row.idx}:{digest}:"
                             f"{row.received_at.isoformat()}"))
    if any(isinstance(o, Complaint) for o in outcomes):
        conn.execute(sa.update(table).where(*waiting).values(joined_at=now))
    else:  # refused: forgotten, so that its parts, replayed after a fix, are parts again
        conn.execute(sa.delete(table).where(*waiting))


KEY_COLUMNS = ("reporter_key", "place_key", "text_key")


def _candidate_query() -> sa.Select[Any]:
    """One lookup per key column, each on its own index, built once; per key only the
    latest BLOCK_LIMIT originals, all the duplicate check compares with.

    With OR in one query the planner is free to pick a worse index (it once scanned
    every original); built once, SQLAlchemy compiles it once, not per batch.
    """
    table: sa.Table = table_of(ComplaintRow)
    columns = (table.c.tracking_id, table.c.reporter_key, table.c.place_key,
               table.c.text_key, table.c.fingerprint, table.c.region_code, table.c.anonymous,
               table.c.received_at)
    lookups = []
    for col in KEY_COLUMNS:
        latest = sa.func.row_number().over(
            partition_by=table.c[col],
            order_by=(table.c.received_at.desc(), table.c.tracking_id.desc()),
        ).label("latest")
        block = sa.select(*columns, latest).where(
            table.c[col].in_(sa.bindparam(col, expanding=True)),
            table.c.received_at >= sa.bindparam("since"), table.c.duplicate_of.is_(None),
            # An original closed or archived before a report came takes it no more: the
            # report is a complaint of its own (the problem is back, or was never solved) –
            # linked, it was closed at once, unheard. One made before the close (an export
            # replayed late) is still its repeat; a batch is compared by its earliest report.
            sa.or_(table.c.status.not_in(lifecycle.TERMINAL_VALUES),
                   ended_at(table) > sa.bindparam("first_received")),
        ).subquery()
        lookups.append(sa.select(*(block.c[c.name] for c in columns))
                       .where(block.c.latest <= BLOCK_LIMIT))
    union = sa.union(*lookups).subquery()
    return sa.select(union).order_by(union.c.received_at, union.c.tracking_id)


CANDIDATES = _candidate_query()


def _candidates(
    conn: Connection, prints: Sequence[Fingerprint], since: datetime, first_received: datetime
) -> list[Candidate]:
    """Earlier complaints sharing a blocking key with any in the batch, oldest first."""
    keys = {col: sorted({getattr(p, col) for p in prints} - {None}) for col in KEY_COLUMNS}
    if not any(keys.values()):
        return []
    rows = conn.execute(
        CANDIDATES, {**keys, "since": since, "first_received": first_received}
    ).all()
    submitted = _submitted(conn, [r[0] for r in rows])
    # An anonymous report stored before its reporter key was left out keeps none here.
    return [Candidate(r[0], Fingerprint(None if r[6] else r[1], r[2], r[3], r[4], r[5],
                                        submitted.get(r[0])))
            for r in rows]


_SUBMITTED = re.compile(r'"submitted_at":"([^"]+)"')


def _submitted(conn: Connection, tracking_ids: Sequence[str]) -> dict[str, datetime]:
    """When the citizen made each of these reports, from its stored document (the JSON the
    model writes). Read here, not by the database: PostgreSQL refuses to read as JSON a
    document holding an escaped NUL, which a description may, and every batch with a key
    of that complaint failed."""
    if not tracking_ids:
        return {}
    table: sa.Table = table_of(ComplaintRow)
    found: dict[str, datetime] = {}
    for part in passes(list(tracking_ids)):
        for tracking_id, document in conn.execute(
            sa.select(table.c.tracking_id, table.c.document)
            .where(table.c.tracking_id.in_(part))
        ):
            match = _SUBMITTED.search(document)
            if match:
                with contextlib.suppress(ValueError):
                    found[tracking_id] = datetime.fromisoformat(match[1])
    return found


PASS_SIZE = 5_000
"""Most complaints one pass of `store_intake` writes: its lookups bind up to three keys per
complaint, and PostgreSQL takes at most 65,535 parameters in a statement (a provincial
export of short rows can hold 30,000 complaints in one record)."""


T = TypeVar("T")


def passes(items: list[T]) -> list[list[T]]:
    """`items` in parts of at most PASS_SIZE, in order: few enough for one statement's
    parameters on PostgreSQL."""
    return [items[at:at + PASS_SIZE] for at in range(0, len(items), PASS_SIZE)]


def store_intake(conn: Connection, plan: IntakePlan, rules: Rules, now: datetime) -> Stored:
    """Write new complaints, their history and events; skip what was seen before.

    A complaint that repeats an earlier one (hub.duplicates) is stored, linked to the
    first and not routed again – also within the plan, across its passes, as each pass
    sees what the one before wrote in the same transaction.
    """
    first, *rest = passes(plan.complaints) or [[]]
    stored = _store_pass(conn, replace(plan, complaints=first), rules, now)
    for part in rest:
        more = _store_pass(conn, IntakePlan(complaints=part), rules, now)
        stored = Stored(
            stored.pending + more.pending, stored.routing + more.routing,
            stored.routed + more.routed, stored.dead_letters + more.dead_letters,
            stored.duplicates + more.duplicates,
        )
    return stored


def _store_pass(conn: Connection, plan: IntakePlan, rules: Rules, now: datetime) -> Stored:
    joined = join_fragments(conn, plan.fragments, rules, now)
    complaints = plan.complaints + joined.complaints
    prints = {c.tracking_id: fingerprint(c, rules.secret) for c, _ in complaints}
    _lock_duplicate_keys(conn, prints.values())
    pool = Pool(_candidates(conn, list(prints.values()), now - rules.duplicate_window,
                            min((c.received_at for c, _ in complaints), default=now)),
                rules.duplicate_window)
    duplicate_of: dict[str, tuple[str, str]] = {}
    for complaint, _ in complaints:
        mine = prints[complaint.tracking_id]
        found = pool.first_duplicate(complaint.tracking_id, mine)
        if found:
            duplicate_of[complaint.tracking_id] = found
        else:
            pool.add(Candidate(complaint.tracking_id, mine))
    # A report of a complaint already in hand takes the status its original has reached.
    table = table_of(ComplaintRow)
    fresh: tuple[str, datetime | None] = (Status.RECEIVED.value, None)
    # FOR SHARE (PostgreSQL), to the commit: an agency's follow-up on the original, taking
    # it FOR UPDATE meanwhile, waits and then finds this report among its duplicates; read
    # unlocked, the report kept the status from before and its citizen never heard.
    reached = {tid: (status, closed_at) for tid, status, closed_at in conn.execute(
        sa.select(table.c.tracking_id, table.c.status, table.c.closed_at)
        .where(table.c.tracking_id.in_({o for o, _ in duplicate_of.values()}))
        .order_by(table.c.tracking_id).with_for_update(read=True)
    ).all()} if duplicate_of else {}
    rows = []
    for c, d in complaints:
        fp = prints[c.tracking_id]
        original = duplicate_of.get(c.tracking_id)
        status, closed_at = reached.get(original[0], fresh) if original else fresh
        rows.append({
            "tracking_id": c.tracking_id,
            "source_system": c.source.system,
            "source_message_id": c.source.message_id,
            "channel": c.channel.value,
            "report_type": c.report_type.value,
            "needs_inspection": c.needs_inspection,
            "category": c.category,
            "region_code": c.location.region_code,
            "agency_code": d.agency.code,
            "status": status,
            "closed_at": closed_at,
            "anonymous": c.anonymous,
            "confidential": c.confidential,
            "document": c.model_copy(update={"reporter": Reporter()}).model_dump_json(),
            "reporter_sealed": None if c.reporter.is_empty()
            else rules.sealer.seal(c.reporter.model_dump_json().encode()),
            "received_at": c.received_at,
            "routed_at": now,
            "route_reason": d.reason,
            "updated_at": now,
            "duplicate_of": original[0] if original else None,
            "reporter_key": fp.reporter_key,
            "place_key": fp.place_key,
            "text_key": fp.text_key,
            "fingerprint": fp.text,
            # A duplicate has no clock of its own: the original's deadlines apply.
            "due_kind": None if original else DeadlineKind.VERIFICATION.value,
            "due_at": None if original else rules.due(
                now, DeadlineKind.VERIFICATION, c.report_type, c.needs_inspection, d.agency.zone
            ),
        })
    new = insert_ignoring_duplicates(conn, ComplaintRow, rows, "tracking_id")
    routing = resend_routing(conn, {c.tracking_id for c, _ in complaints} - new, rules)
    history: list[dict[str, Any]] = []
    routed: list[tuple[Complaint, Decision]] = []
    duplicates: list[tuple[Complaint, str]] = []
    linked: list[tuple[Complaint, str, str]] = []
    """Each duplicate with its original and the key that matched."""
    for complaint, decision in complaints:
        if complaint.tracking_id not in new:
            continue
        new.discard(complaint.tracking_id)  # the same message twice in one batch
        original = duplicate_of.get(complaint.tracking_id)
        history.append({
            "event_id": f"received-{complaint.tracking_id}",
            "tracking_id": complaint.tracking_id,
            "status": Status.RECEIVED.value,
            "agency_code": decision.agency.code,
            "reason": f"duplicate of {original[0]} ({original[1]})" if original else None,
            "at": now,
        })
        if original:
            duplicates.append((complaint, original[1]))
            linked.append((complaint, *original))
            continue
        event = routing_event(complaint, decision, 1, now, rules)
        routing.append(as_pending(routing_outbox(event, decision.agency.topic_name, now)))
        routed.append((complaint, decision))
    insert_ignoring_duplicates(conn, HistoryRow, history, "event_id")
    letters = store_dead_letters(conn, plan.dead_letters + joined.dead_letters, rules.sealer)
    outbox = [dead_letter_outbox(dl, now) for dl in letters]
    outbox += duplicate_outbox(conn, linked, rules, now)
    return Stored(add_outbox(conn, outbox, rules.sealer), routing, routed, letters, duplicates)


def duplicate_outbox(
    conn: Connection, linked: Sequence[tuple[Complaint, str, str]], rules: Rules, now: datetime
) -> list[dict[str, Any]]:
    """Tell each original's holder about the new reports of it (keyed by the original)."""
    if not linked:
        return []
    table: sa.Table = table_of(ComplaintRow)
    holders = dict(conn.execute(
        sa.select(table.c.tracking_id, table.c.agency_code)
        .where(table.c.tracking_id.in_({original for _, original, _ in linked}))
    ).all())
    rows = []
    for complaint, original, kind in linked:
        agency = rules.directory.holding(holders.get(original, ""))
        event = DuplicateEvent(
            event_id=f"duplicate-{complaint.tracking_id}", tracking_id=original,
            agency_code=agency.code, matched_by=kind,
            confidential=complaint.confidential, at=now, duplicate=as_shown(complaint),
        )
        rows.append(outbox_row(agency.topic_name, original, event, now,
                               **{"event-id": event.event_id, "event-type": "duplicate"}))
    return rows


def mark_routing_sent(conn: Connection, tracking_ids: Collection[str]) -> None:
    """Note first routing events the broker acknowledged (updates by primary key)."""
    table: sa.Table = table_of(ComplaintRow)
    for part in passes(list(tracking_ids)):
        conn.execute(sa.update(table).where(table.c.tracking_id.in_(part))
                     .values(routing_sent=True))


def as_pending(row: dict[str, Any]) -> Pending:
    """An event sent without an outbox row (id 0: nothing to mark sent)."""
    return Pending(0, row["topic"], row["key"], row["value"], row["headers"])


def complaint_of(row: ComplaintRow, rules: Rules) -> Complaint:
    """The stored complaint with its reporter unsealed."""
    complaint = Complaint.model_validate_json(row.document)
    if row.reporter_sealed is None:
        return complaint
    reporter = Reporter.model_validate_json(rules.sealer.open(row.reporter_sealed))
    return complaint.model_copy(update={"reporter": reporter})


def resend_routing(
    conn: Connection, seen: set[str] | None, rules: Rules, routed_before: datetime | None = None
) -> list[Pending]:
    """First routing events stored but never acknowledged, byte for byte as first built.

    A raw record delivered again after a crash between commit and publish finds its
    complaint stored and its event unsent: it is sent now (same event id, same bytes).
    `seen` limits the search to those tracking ids; the relay passes None and a time.
    """
    table: sa.Table = table_of(ComplaintRow)
    query = sa.select(table).where(
        # `= false`, as the partial index ix_complaint_routing_unsent says, so it is used.
        table.c.routing_sent == sa.false(), table.c.route_seq == 1,
        table.c.duplicate_of.is_(None),
    )
    if seen is not None:
        if not seen:
            return []
        query = query.where(table.c.tracking_id.in_(seen))
    if routed_before is not None:
        query = query.where(table.c.routed_at < routed_before).limit(1000)
    rows = conn.execute(query).all()
    found = []
    for mapping in rows:
        row = ComplaintRow.model_validate(dict(mapping._mapping))
        agency = rules.directory.holding(row.agency_code)
        decision = Decision(agency, row.route_reason)  # type: ignore[arg-type]
        event = routing_event(complaint_of(row, rules), decision, 1, row.routed_at, rules)
        found.append(as_pending(routing_outbox(event, agency.topic_name, row.routed_at)))
    return found
