"""`lapor-hub dlq replay` on the real broker: what it cannot send is named, what it sent is
marked, and a retry sends nothing twice."""

from __future__ import annotations

import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub import dlq, migrate, store
from hub.intake import Record, dead_letter, store_dead_letters
from hub.model import MAX_EVENT_BYTES
from hub.sealing import Sealer
from hub.settings import Settings
from tests.support import LAPOR_HUB, consume_all

pytestmark = pytest.mark.broker


def replay_all(url: str, bootstrap: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LAPOR_HUB, "dlq", "replay", "--all"], capture_output=True, text=True, timeout=120,
        check=False,
        env={**os.environ, "HUB_DATABASE_URL": url, "HUB_KAFKA_BOOTSTRAP": bootstrap})


async def test_a_letter_at_the_record_limit_is_named_and_the_rest_sent_once(
    kafka_bootstrap: str, tmp_path: Path,
) -> None:
    # The replay's header took a record at the limit over it: a traceback, after letters
    # before it were sent and not marked, so each retry sent them again.
    url = f"sqlite:///{tmp_path}/hub.db"
    migrate.upgrade(url)
    topic = f"replay-{uuid.uuid4().hex[:8]}"
    taken = datetime.now(UTC) - timedelta(days=3)
    small = Record(topic, 0, 1, b"k", b"{not json", {}, taken)
    big = Record(topic, 0, 2, b"k", b"x" * (MAX_EVENT_BYTES - 10), {}, taken)
    engine = store.make_engine(url)
    with store.transaction(engine) as conn:
        store_dead_letters(conn, [
            (dead_letter(r, "invalid_json", "Expecting value", "intake", taken), str(r.offset))
            for r in (small, big)], Sealer.from_settings(Settings()))
    table = store.table_of(store.DeadLetterRow)
    with engine.connect() as conn:
        small_id, big_id = conn.execute(sa.select(table.c.id).order_by(table.c.offset)).scalars()

    for _ in range(2):
        out = replay_all(url, kafka_bootstrap)
        assert "Traceback" not in out.stderr, out.stderr
        assert out.returncode == 2
        assert out.stderr.startswith(f"lapor-hub: not replayed: {big_id}: at the broker's "
                                     "record limit"), out.stderr
    with engine.connect() as conn:
        marked = dict(conn.execute(sa.select(table.c.id, table.c.replayed_at)).all())
    assert marked[small_id] is not None and marked[big_id] is None
    (sent,) = await consume_all(kafka_bootstrap, topic, expect=1, settle=2.0)
    assert sent.value == b"{not json"
    headers = {k: v.decode() for k, v in sent.headers}
    assert headers["hub-replay-of"] == str(small_id)
    # Published straight to the topic, it carried its time only as the record's: the
    # complaint it makes once fixed is received when the hub first took it, not at the replay.
    assert datetime.fromisoformat(headers["hub-received-at"]) == taken


def test_more_letters_are_marked_than_one_statement_takes(database_url: str) -> None:
    # PostgreSQL takes at most 65,535 parameters: a replay of more sent them all, marked none.
    migrate.upgrade(database_url)
    engine = store.make_engine(database_url)
    dlq.mark_replayed(engine, list(range(1, 70_001)))
    engine.dispose()
