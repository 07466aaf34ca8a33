"""`lapor-hub bench --processes 1,2,3`: intake throughput of several hub processes.

Each count runs that many `lapor-hub run` processes in one consumer group over one
SQLite file (or `HUB_BENCH_DATABASE_URL`, e.g. PostgreSQL), with the embedded broker:
the processes start and join, the raw messages are published, and the time runs from
the first message sent until the database holds them all. Start-up is not timed; the
rebalances while the group settles are (they are part of scaling out).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from hub.bench import Generator, preload, run_until_terminated, scale_factor
from hub.embedded_broker import EmbeddedBroker, free_port

MESSAGES = 30_000
WITHIN_S = 600.0
HUB_TABLES = ("status_history", "outbox", "dead_letter", "fragment", "complaint")
"""Emptied between runs on a shared database: each run sends the same texts (with fresh
ids), which the next run would otherwise take for duplicates of the last."""
SETTLE_S = 8.0
"""After the last hub's /readyz: the groups the earlier hubs are in still rebalance to take
it in, which the embedded broker holds back seconds per group."""


@contextlib.contextmanager
def hub_processes(
    count: int, bootstrap: str, database_url: str, prefix: str, logs: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(count):
            port = free_port()
            env = {
                **os.environ, "HUB_KAFKA_BOOTSTRAP": bootstrap, "HUB_DATABASE_URL": database_url,
                "HUB_TOPIC_PREFIX": prefix, "HUB_KAFKA_GROUP": f"{prefix}-hub",
                "HUB_HTTP_PORT": str(port),
            }
            with (logs / f"{prefix}-{i}.log").open("wb") as log:
                procs.append(subprocess.Popen([sys.executable, "-m", "hub", "run"], env=env,
                                              stdout=log, stderr=log))
            _wait_ready(port, procs[-1])
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_ready(port: int, proc: subprocess.Popen[bytes], within: float = 120) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"hub exited with {proc.returncode} before it was ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError("hub not ready")


async def measure(counts: Sequence[int], messages: int, database_url: str | None,
                  work: Path, bootstrap: str) -> list[dict[str, float]]:
    rows = []
    for count in counts:
        prefix = f"p{count}x{uuid.uuid4().hex[:6]}"
        url = database_url or f"sqlite:///{work}/{prefix}.db"
        msgs = Generator(prefix).take(messages)
        with hub_processes(count, bootstrap, url, prefix, work):
            await asyncio.sleep(SETTLE_S)
            engine = sa.create_engine(url)
            try:
                started = time.perf_counter()
                await preload(bootstrap, prefix, msgs)
                while True:  # polled: the hubs are other processes
                    stored = await asyncio.to_thread(_stored, engine)
                    if stored >= messages:
                        break
                    if time.perf_counter() - started > WITHIN_S:
                        raise RuntimeError(f"{count} hubs stored {stored} of {messages}")
                    await asyncio.sleep(0.2)
                span = time.perf_counter() - started
            finally:
                engine.dispose()
        _empty(url)  # once its hubs have stopped
        rows.append({"processes": count, "complaints": messages, "seconds": round(span, 2),
                     "per_s": round(messages / span)})
    return rows


def _stored(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM complaint")).scalar_one())


def _empty(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            for table in HUB_TABLES:
                conn.execute(sa.text(f"DELETE FROM {table}"))
    finally:
        engine.dispose()


def _refuse_used(database_url: str) -> None:
    """A given database must be empty: the bench deletes what the hubs write into it."""
    engine = sa.create_engine(database_url)
    try:
        if sa.inspect(engine).has_table("complaint") and _stored(engine):
            raise SystemExit("lapor-hub: HUB_BENCH_DATABASE_URL must name an empty database")
    finally:
        engine.dispose()


def run_processes(counts: Sequence[int]) -> None:
    messages = max(int(MESSAGES * scale_factor()), 50)
    database_url = os.environ.get("HUB_BENCH_DATABASE_URL")
    if database_url:
        _refuse_used(database_url)
    err = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="lapor-bench-") as tmp, EmbeddedBroker() as broker:
        err.print(f"{messages:,} complaints per run, database "
                  f"{(database_url or 'sqlite').split(':')[0]}, broker {broker.bootstrap}")
        rows = run_until_terminated(
            measure(counts, messages, database_url, Path(tmp), broker.bootstrap)
        )
    table = Table(title=f"hub processes ({os.cpu_count()} CPUs)")
    for name in ("processes", "complaints", "seconds", "complaints/s", "× one"):
        table.add_column(name, justify="right")
    one = rows[0]["per_s"] if rows and rows[0]["processes"] == 1 else None
    for row in rows:
        table.add_row(str(row["processes"]), f"{row['complaints']:,}", f"{row['seconds']:.1f}",
                      f"{row['per_s']:,.0f}", f"{row['per_s'] / one:.2f}" if one else "")
    Console().print(table)
