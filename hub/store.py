"""Persistence: tables, and the units of work the consumers run in one transaction each.

SQLite by default, PostgreSQL in production; the same SQL serves both. Every
side effect a consumer causes is written here together with the state change,
into the outbox, in the same transaction: the broker has no transactions, so the
outbox is what makes "stored and published" survive a crash (at-least-once, with
event ids that make duplicates recognisable).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, SQLModel

from hub.operator_files import OperatorFileError
from hub.sealing import Sealer, SealError

log = logging.getLogger("hub.store")


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite too."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UtcDateTime(), nullable=nullable, index=index))


class ComplaintRow(SQLModel, table=True):
    __tablename__ = "complaint"
    __table_args__ = (
        sa.UniqueConstraint("source_system", "source_message_id"),
        # Partial indexes: most complaints are originals and have been sent, so these
        # stay small, and the planner cannot mistake them for a way to find originals.
        sa.Index("ix_complaint_duplicate_of", "duplicate_of",
                 sqlite_where=sa.text("duplicate_of IS NOT NULL"),
                 postgresql_where=sa.text("duplicate_of IS NOT NULL")),
        # What the watcher's gauges and the report read, per agency, without the rows
        # themselves (their documents make a table scan read everything).
        sa.Index("ix_complaint_holding", "agency_code", "status", "first_follow_up_at",
                 "received_at",
                 sqlite_where=sa.text("duplicate_of IS NULL"),
                 postgresql_where=sa.text("duplicate_of IS NULL")),
        sa.Index("ix_complaint_routing_unsent", "routed_at",
                 sqlite_where=sa.text("routing_sent = 0"),
                 postgresql_where=sa.text("routing_sent = false")),
    )

    tracking_id: str = Field(primary_key=True, max_length=18)
    source_system: str = Field(max_length=64)
    source_message_id: str = Field(max_length=256)
    channel: str = Field(max_length=20)
    report_type: str = Field(max_length=30)
    needs_inspection: bool = False
    category: str | None = Field(default=None, max_length=100)
    region_code: str | None = Field(default=None, max_length=13, index=True)
    agency_code: str = Field(max_length=63)
    status: str = Field(max_length=20)
    anonymous: bool = False
    confidential: bool = False
    document: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    """The canonical complaint as JSON without its reporter, who is in `reporter_sealed`."""
    reporter_sealed: bytes | None = Field(default=None, sa_column=sa.Column(sa.LargeBinary))
    """The reporter as JSON, encrypted (hub.sealing); None when the complaint names nobody."""
    route_seq: int = 1
    route_reason: str = Field(default="rule", max_length=20)
    """Why the current holder holds it (RoutingEvent.reason), to re-derive its routing event."""
    routing_sent: bool = False
    """The first routing event was acknowledged by the broker (else it is sent again)."""
    declined: str = Field(
        default="[]", sa_column=sa.Column(sa.Text, nullable=False, default="[]")
    )
    """JSON list of agencies that answered not_authority: re-routing skips them."""
    pauses: str = Field(default="[]", sa_column=sa.Column(sa.Text, nullable=False, default="[]"))
    """JSON list of [start, end] ISO pairs while waiting for the reporter (clock stopped)."""
    reply_waits: str = Field(
        default="[]", sa_column=sa.Column(sa.Text, nullable=False, server_default="[]")
    )
    """JSON list of [answer, reply] ISO pairs: the reporter's time to reply to an answer
    given within the settle deadline, which that deadline does not count."""
    duplicate_of: str | None = Field(default=None, max_length=18)
    reporter_key: str | None = Field(default=None, max_length=32, index=True)
    place_key: str | None = Field(default=None, max_length=32, index=True)
    text_key: str | None = Field(default=None, max_length=32, index=True)
    fingerprint: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, default=""))
    """Normalized description for cross-channel duplicate checks (hub.duplicates)."""
    received_at: datetime = _ts(index=True)
    routed_at: datetime = _ts()
    updated_at: datetime = _ts()
    first_follow_up_at: datetime | None = _ts(nullable=True)
    responded_at: datetime | None = _ts(nullable=True)
    """When the reporter was told of the answer (the hub applied it): auto-close counts from it."""
    answered_at: datetime | None = _ts(nullable=True)
    """The last answer's own time (as its agency stamped it, never before the routing): the
    reporter's wait for a reply counts from it when the answer was within the settle deadline."""
    closed_at: datetime | None = _ts(nullable=True)
    paused_since: datetime | None = _ts(nullable=True)
    due_kind: str | None = Field(default=None, max_length=20)
    due_at: datetime | None = _ts(nullable=True, index=True)
    escalated_kind: str | None = Field(default=None, max_length=20)
    escalated_due_at: datetime | None = _ts(nullable=True)
    """The deadline last escalated: while (due_kind, due_at) is this one, it was."""


class HistoryRow(SQLModel, table=True):
    """Every status a complaint went through, in order; event_id makes replays harmless.

    An agency's event is kept as `<agency code>:<its event id>` (event ids are unique per
    agency), the hub's own rows under ids of their own (`received-…`, `auto-close-…`)."""

    __tablename__ = "status_history"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=200, unique=True)
    tracking_id: str = Field(max_length=18, index=True)
    status: str = Field(max_length=20)
    agency_code: str = Field(max_length=63)
    target_agency: str | None = Field(default=None, max_length=63)
    message: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    reason: str | None = Field(default=None, max_length=1000)
    at: datetime = _ts()


CONTENT_TYPE_MAX = 100
MESSAGE_ID_MAX = 256
"""Widths of a waiting SMS part's content type and message id (its record's headers)."""


class FragmentRow(SQLModel, table=True):
    """One part of a multi-part SMS, kept until all its parts are in, then, joined, as long
    as a gateway may send it again (so a re-sent part is not a new SMS)."""

    __tablename__ = "fragment"

    group_key: str = Field(primary_key=True, max_length=255)
    idx: int = Field(primary_key=True)
    total: int
    source: str = Field(max_length=64)
    body: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    """Sealed (hub.sealing): an SMS part carries the sender's number."""
    content_type: str = Field(max_length=CONTENT_TYPE_MAX)
    message_id: str | None = Field(default=None, max_length=MESSAGE_ID_MAX)
    received_at: datetime = _ts(index=True)
    joined_at: datetime | None = _ts(nullable=True, index=True)


class OutboxRow(SQLModel, table=True):
    """An event stored with the change that caused it, published after commit."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=255)
    key: bytes | None = Field(default=None, sa_column=sa.Column(sa.LargeBinary))
    """The record key as bytes: a record sent on (a retry, a replay) keeps its own, of any
    length or encoding, and with it its partition."""
    value: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    """Sealed (hub.sealing): a notification's address, a duplicate report's reporter and a
    dead letter's original name the citizen."""
    sealed: bool = Field(default=False, sa_column=sa.Column(
        sa.Boolean, nullable=False, default=False, server_default=sa.false()))
    """False for the rows written before values were sealed (sent as they are)."""
    headers: str = Field(
        default="{}", sa_column=sa.Column(sa.Text, nullable=False, default="{}")
    )
    created_at: datetime = _ts()
    sent_at: datetime | None = _ts(nullable=True, index=True)


class DeadLetterRow(SQLModel, table=True):
    """What could never succeed as sent: the reason and the original bytes."""

    __tablename__ = "dead_letter"

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=400, unique=True)
    """topic:partition:offset:entry:digest (hub.intake.letter_key) – a re-delivered record is
    dead-lettered once."""
    reason: str = Field(max_length=64, index=True)
    detail: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    stage: str = Field(max_length=20)
    topic: str = Field(max_length=255)
    partition: int | None = None
    offset: int | None = Field(default=None, sa_type=sa.BigInteger)
    """Kafka offsets are 64-bit."""
    key: bytes | None = Field(default=None, sa_column=sa.Column(sa.LargeBinary))
    """The original key as it came (a replay goes to the partition the record went to)."""
    headers: str = Field(
        default="{}", sa_column=sa.Column(sa.Text, nullable=False, default="{}")
    )
    original: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    """Sealed (hub.sealing): the original bytes may name the citizen."""
    at: datetime = _ts()
    replayed_at: datetime | None = _ts(nullable=True)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for another database or one in memory."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def make_sqlite_folder(url: str) -> None:
    """SQLite files live under ./var by default: make the folder on first use (`run`, `dev`,
    `db upgrade`), or SQLite says only "unable to open database file"."""
    file = sqlite_file(url)
    if file is None:
        return
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OperatorFileError(
            f"cannot make the folder of the SQLite database {file.parent}: {exc.strerror}"
        ) from exc


def missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file `url` names when it is not there: connecting would create it empty,
    so commands that only read (report, dlq) say so instead."""
    file = sqlite_file(url)
    return file if file is not None and not file.is_file() else None


def make_engine(url: str) -> Engine:
    """An engine for SQLite (WAL, so readers never block the writer) or PostgreSQL."""
    if url.startswith("sqlite"):
        # hide_parameters: statement errors must not carry citizens' data into logs.
        # cached_statements: each batch size renders its own INSERT; the driver's default
        # cache of 128 per connection held tens of MB in the benchmark.
        engine = sa.create_engine(
            url, connect_args={"timeout": 30, "cached_statements": 16}, hide_parameters=True
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # Switching a file to WAL takes a lock; only do it once, not on every connect,
            # or processes racing to open a new file fail with "database is locked".
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            # The hub checkpoints in the background (`checkpoint`); left to SQLite, every
            # 1,000th page a commit copies the log into the file and waits for the disk.
            # This is the fallback if the background pass is not running or falls behind.
            cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    given = sa.engine.make_url(url).query
    engine = sa.create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True,
        connect_args={k: v for k, v in POSTGRES_LINK.items() if k not in given},
    )
    if "idle_in_transaction_session_timeout" not in str(given.get("options", "")):

        @sa.event.listens_for(engine, "connect")
        def _end_abandoned(dbapi_conn: Any, _record: Any) -> None:
            # A SET, not libpq's `options`, which a pooler (PgBouncer) refuses at connect.
            with dbapi_conn.cursor() as cur:
                cur.execute(f"SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}")
            dbapi_conn.commit()

    return engine


POSTGRES_LINK = {
    "connect_timeout": 10, "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
    "keepalives_count": 3, "tcp_user_timeout": 60_000,
}
"""libpq's settings for a link that goes silent (a server gone with its host, a firewall
dropping the connection): without them a query waits on it for ever – the intake stalled,
and /readyz, which opens a new connection, said ready. With them the query fails within
about a minute and is retried as an outage. A URL's own values win (`?keepalives_idle=…`)."""

IDLE_IN_TRANSACTION_MS = 60_000
"""How long the server keeps a hub's transaction open while the hub sends nothing: its host
lost or its process frozen in the middle of a batch, the transaction held its row and
advisory locks, and every other instance taking over its partitions waited on them (for good
when frozen, two hours by the server's keepalives when the host was gone) while saying ready.
The hub's transactions never wait between statements on anything but its own CPU. A URL
whose `?options=` sets it keeps its own."""


WAL_AUTOCHECKPOINT_PAGES = 100_000
"""About 400 MB of log before a commit must checkpoint itself: only if the hub's own
background pass (`checkpoint`) is not running."""
WAL_RESTART_PAGES = 64_000
"""Log size (about 256 MB) at which the background pass makes the log start over."""


def checkpoint(engine: Engine) -> None:
    """Copy SQLite's write-ahead log into the database without holding up writers.

    A commit that reaches the autocheckpoint copies the log itself and waits for the
    disk (50 ms at 1,000 complaints/s: the benchmark's p99), so the hub does it in the
    background. The log only starts over when a writer begins after a pass copied all
    of it; under steady writes that race is mostly lost and the log grows, so past
    WAL_RESTART_PAGES the pass waits for the writer and restarts it (30-50 ms, about
    every 6 s at 1,000 complaints/s).
    """
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        _busy, log_pages, _copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        if log_pages > WAL_RESTART_PAGES:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(RESTART)").one()


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as conn:
        yield conn


def ended_at(table: sa.Table) -> sa.ColumnElement[datetime]:
    """When a complaint closed or was archived (`closed_at`); for one archived before that
    was kept, the last change the hub made to it."""
    return sa.func.coalesce(table.c.closed_at, table.c.updated_at, type_=UtcDateTime())


def table_of(model: type[SQLModel]) -> sa.Table:
    """A table model's Core table, for statements over many rows (SQLModel leaves
    `__table__` untyped)."""
    return model.__table__  # type: ignore[attr-defined,no-any-return]


def insert_ignoring_duplicates(
    conn: Connection, table: type[SQLModel], rows: Sequence[dict[str, Any]], returning: str
) -> set[Any]:
    """Bulk insert; rows whose unique key exists are skipped. Returns the inserted keys.

    One statement for the batch (ON CONFLICT DO NOTHING ... RETURNING), so two
    instances racing over a re-delivered record cannot both win.
    """
    if not rows:
        return set()
    tbl: sa.Table = table_of(table)
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(tbl).on_conflict_do_nothing().returning(tbl.c[returning])
    result = conn.execute(stmt, list(rows))
    return {row[0] for row in result}


@dataclass(frozen=True, slots=True)
class Pending:
    """An event ready to send: an outbox row, or one sent without a row (id 0)."""

    id: int
    topic: str
    key: str | bytes | None
    """Text for the hub's own events (a tracking id), the bytes a record came with for
    one sent on."""
    value: bytes
    headers: Mapping[str, str]


def outbox_row(
    topic: str, key: str | bytes | None, event: BaseModel, now: datetime, **headers: str
) -> dict[str, Any]:
    """An outbox row for a JSON event; headers name it for consumers that do not parse it.

    Headers stay a dict until `add_outbox` writes them: a routing event is sent without
    an outbox row, and serializing its headers only to parse them again cost every
    complaint a JSON round trip.
    """
    return {
        "topic": topic,
        "key": key,
        "value": event.model_dump_json().encode(),
        "headers": {**headers, "content-type": "application/json"},
        "created_at": now,
    }


def key_bytes(key: str | bytes | None) -> bytes | None:
    return key.encode() if isinstance(key, str) else key


def add_outbox(conn: Connection, rows: Sequence[dict[str, Any]], sealer: Sealer) -> list[Pending]:
    """Write outbox rows (headers as a dict), their values sealed; returns them ready to
    send, in order."""
    if not rows:
        return []
    tbl: sa.Table = table_of(OutboxRow)
    ids = conn.execute(
        # Publish order is outbox order: RETURNING must keep the order rows were given in.
        sa.insert(tbl).returning(tbl.c.id, sort_by_parameter_order=True),
        [{**row, "key": key_bytes(row["key"]), "headers": json.dumps(row["headers"]),
          "value": sealer.seal(row["value"]), "sealed": True}
         for row in rows],
    ).scalars().all()
    return [
        Pending(id_, row["topic"], row["key"], row["value"], row["headers"])
        for id_, row in zip(ids, rows, strict=True)
    ]


def unsent(conn: Connection, older_than: datetime, limit: int, sealer: Sealer) -> list[Pending]:
    """Up to `limit` rows not yet acknowledged, their values opened; rows sealed under a key
    no longer configured are passed over (read on past them: taken into the `limit`, such
    rows first by id filled every pass, and no row after them was sent again)."""
    tbl: sa.Table = table_of(OutboxRow)
    found: list[Pending] = []
    unopened: list[int] = []
    after = 0
    while len(found) < limit:
        page = conn.execute(
            sa.select(tbl.c.id, tbl.c.topic, tbl.c.key, tbl.c.value, tbl.c.sealed, tbl.c.headers)
            .where(tbl.c.sent_at.is_(None), tbl.c.created_at < older_than, tbl.c.id > after)
            .order_by(tbl.c.id)
            .limit(limit)
        ).all()
        if not page:
            break
        for id_, topic, key, value, sealed, headers in page:
            if len(found) == limit:
                break
            try:
                opened = sealer.open(value) if sealed else value
            except SealError:
                unopened.append(id_)
                continue
            found.append(Pending(id_, topic, key, opened, json.loads(headers)))
        after = page[-1][0]
    if unopened:
        # Once a pass, not once a row: thousands of them logged thousands of lines a pass.
        log.warning("%d outbox rows (from id %d) sealed under a secret key not configured "
                    "(HUB_SECRET_KEY, HUB_PREVIOUS_SECRET_KEYS): not sent",
                    len(unopened), unopened[0])
    return found


def mark_sent(conn: Connection, ids: Sequence[int], at: datetime) -> None:
    if not ids:
        return
    tbl: sa.Table = table_of(OutboxRow)
    conn.execute(sa.update(tbl).where(tbl.c.id.in_(ids)).values(sent_at=at))


def prune_outbox(conn: Connection, sent_before: datetime) -> int:
    """Forget events the broker acknowledged long ago; returns how many rows went."""
    tbl: sa.Table = table_of(OutboxRow)
    result = conn.execute(
        sa.delete(tbl).where(tbl.c.sent_at.is_not(None), tbl.c.sent_at < sent_before)
    )
    return int(result.rowcount or 0)


def newest_reporter_opens(conn: Connection, sealer: Sealer) -> bool:
    """Whether the keys configured open the newest reporter stored (or none is stored)."""
    tbl: sa.Table = table_of(ComplaintRow)
    sealed = conn.execute(
        sa.select(tbl.c.reporter_sealed).where(tbl.c.reporter_sealed.is_not(None))
        .order_by(tbl.c.received_at.desc()).limit(1)
    ).scalar()
    try:
        if sealed is not None:
            sealer.open(sealed)
    except SealError:
        return False
    return True


def unsent_count(conn: Connection) -> int:
    tbl: sa.Table = table_of(OutboxRow)
    return int(conn.execute(sa.select(sa.func.count()).where(tbl.c.sent_at.is_(None))).scalar_one())
