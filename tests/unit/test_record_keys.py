"""A record's key travels on as it came: of any length, in any encoding.

Keys were kept as text of at most 255 characters: on PostgreSQL a longer key failed the
insert of its record's dead letter or retry, and with it the rest of its batch; a key not
in UTF-8 was sent on with replacement characters, so its retry and its replay went to
another partition than the records it was keyed with.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from hub import dlq, migrate, store, topics
from hub.calendar import load_calendar_config
from hub.deadlines import Rules
from hub.intake import Record
from hub.model import DeadLetter
from hub.routing import Directory
from hub.service import Hub
from tests.support import FakePublisher

LONG = b"provinsi-jawa-tengah/" + b"k" * 300
BINARY = b"\x00\x00\x01\x8c\xff\xfe"  # a Java LongSerializer's key, say


def hub_on(url: str) -> tuple[Hub, FakePublisher]:
    migrate.upgrade(url)
    publisher = FakePublisher()
    rules = Rules.of(Directory.load(), load_calendar_config())
    return Hub(store.make_engine(url), publisher, rules), publisher  # type: ignore[arg-type]


def bad(offset: int, key: bytes) -> Record:
    return Record(topics.raw("web"), 0, offset, key, b"{not json", {}, datetime.now(UTC))


async def test_dead_letters_keep_long_and_binary_keys(database_url: str) -> None:
    hub, publisher = hub_on(database_url)
    await hub.intake([bad(1, LONG), bad(2, BINARY)])

    sent = {p.key: DeadLetter.model_validate_json(p.value) for p in publisher.sent}
    assert set(sent) == {LONG, BINARY}
    assert all(p.topic == topics.DEAD_LETTER for p in publisher.sent)
    assert sent[LONG].key == LONG.decode() and sent[LONG].key_base64 is None
    assert sent[BINARY].key_base64 == base64.b64encode(BINARY).decode()
    assert sent[BINARY].key_bytes == BINARY
    replayed = dlq.replayable(hub.engine, hub.rules.sealer, [], None).pending
    assert {(p.key, p.value) for p in replayed} == {(LONG, b"{not json"), (BINARY, b"{not json")}


async def test_a_retry_keeps_its_record_key(database_url: str) -> None:
    hub, publisher = hub_on(database_url)
    record = bad(3, LONG + BINARY)
    await hub.retry_later(record, "intake", "RuntimeError: failed")
    (retry,) = publisher.sent
    assert (retry.topic, retry.key) == (topics.RETRY, LONG + BINARY)
    with hub.engine.connect() as conn:
        stored = conn.execute(sa.select(store.table_of(store.OutboxRow).c.key)).scalar_one()
    assert stored == LONG + BINARY


def test_migration_0010_keeps_the_keys_stored_as_text(database_url: str) -> None:
    migrate.upgrade(database_url, "0009")
    engine = store.make_engine(database_url)
    now = datetime.now(UTC)
    with store.transaction(engine) as conn:
        conn.execute(sa.text(
            "INSERT INTO outbox (topic, key, value, headers, created_at) "
            "VALUES ('lapor.retry', 'kunci-1', :v, '{}', :at)"), {"v": b"x", "at": now})
        conn.execute(sa.text(
            'INSERT INTO dead_letter (dedupe_key, reason, detail, stage, topic, key, headers, '
            "original, at) VALUES ('d', 'invalid_json', '', 'intake', 'lapor.raw.web', "
            "'kunci-2', '{}', :v, :at)"), {"v": b"x", "at": now})
    migrate.upgrade(database_url)
    with engine.connect() as conn:
        keys = {conn.execute(sa.select(store.table_of(table).c.key)).scalar_one()
                for table in (store.OutboxRow, store.DeadLetterRow)}
        assert keys == {b"kunci-1", b"kunci-2"}
        command.downgrade(migrate.config(conn), "0009")
        conn.commit()
    with engine.connect() as conn:
        assert set(conn.execute(sa.text(
            "SELECT key FROM outbox UNION SELECT key FROM dead_letter")).scalars()) == {
            "kunci-1", "kunci-2"}
    engine.dispose()
