"""SQLite's write-ahead log is copied in the background and starts over when it grows."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from hub import store


def log_pages(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()[1])


def test_a_log_past_the_limit_starts_over_even_while_someone_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "WAL_RESTART_PAGES", 20)
    path = tmp_path / "hub.db"
    engine = store.make_engine(f"sqlite:///{path}")

    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x BLOB)")
    # A reader holding an old snapshot keeps a plain pass from copying the whole log,
    # as the watcher or a report do while the intake writes.
    reader = sqlite3.connect(path, check_same_thread=False)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO t WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
            " WHERE i < 100) SELECT randomblob(3000) FROM n"
        )
    threading.Timer(0.3, reader.rollback).start()  # the reader finishes meanwhile

    store.checkpoint(engine)

    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (randomblob(10))")
    # Restarted: the log holds only the last write, not the 100 rows before it.
    assert log_pages(engine) < 20
    reader.close()
    engine.dispose()
