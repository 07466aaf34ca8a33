"""Test helpers that drive the real thing: hub processes, raw producers, independent consumers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from hub import topics
from hub.embedded_broker import free_port
from hub.intake import Record
from hub.store import ComplaintRow, table_of

HUB = [sys.executable, "-m", "hub"]
LAPOR_HUB = str(Path(sys.executable).parent / "lapor-hub")
"""The console script as installed: what users run."""


CLOCK_COLUMNS = ("received_at", "routed_at", "updated_at", "first_follow_up_at", "responded_at",
                 "closed_at", "paused_since", "due_at", "escalated_due_at")


def overdue(conn: sa.Connection, tracking_ids: Iterable[str], days: int = 90) -> int:
    """Move complaints' clocks `days` back, as if routed that long ago: the deadline running
    has passed. (The watcher reckons a deadline again from these times when it comes due,
    so a `due_at` moved alone is set right, not escalated.) Returns how many were moved."""
    table = table_of(ComplaintRow)
    shift = timedelta(days=days)
    rows = conn.execute(sa.select(table).where(table.c.tracking_id.in_(list(tracking_ids))))
    moved = 0
    for row in rows.all():
        times = {c: getattr(row, c) - shift for c in CLOCK_COLUMNS if getattr(row, c)}
        pauses = [[(datetime.fromisoformat(a) - shift).isoformat(),
                   (datetime.fromisoformat(b) - shift).isoformat()]
                  for a, b in json.loads(row.pauses)]
        conn.execute(sa.update(table).where(table.c.tracking_id == row.tracking_id)
                     .values(**times, pauses=json.dumps(pauses)))
        moved += 1
    return moved


@dataclass
class HubProcess:
    """`lapor-hub run` as a child process, with its own topic prefix and database."""

    bootstrap: str
    database_url: str
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}")
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HUB_KAFKA_BOOTSTRAP": self.bootstrap,
            "HUB_DATABASE_URL": self.database_url,
            "HUB_HTTP_PORT": str(self.port),
            "HUB_TOPIC_PREFIX": self.prefix,
            "HUB_KAFKA_GROUP": f"{self.prefix}-hub",
            "HUB_BATCH_TIMEOUT_MS": "20",
            "HUB_INGRESS_OPEN": "true",  # tests of ingress authentication turn it off
            **self.extra_env,
        }

    def start(self, ready_within: float = 60.0) -> HubProcess:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen([*HUB, "run"], env=self.env(), stdout=out, stderr=out)
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("hub did not become ready")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def topic(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"

    def __enter__(self) -> HubProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def broker_running_on(port: int) -> bool:
    """Whether an embedded broker process serves `port`, by its command line.

    Not by connecting: once a broker is gone, another test's server (tests run in
    parallel) may be given the freed port within the same second.
    """
    listener = f"--listener-url\x00tcp://127.0.0.1:{port}\x00".encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if listener in cmdline.read_bytes():
                return True
        except OSError:  # the process ended while we looked
            continue
    return False


def broker_outlives(port: int, within: float = 10.0) -> bool:
    """Whether the broker on `port` is still there `within` seconds from now.

    Its guard stops it within about 5 s once its starter is gone, even if the starter
    never got to stop it (seen once in many runs under a full parallel suite).
    """
    deadline = time.monotonic() + within
    while broker_running_on(port):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.1)
    return False


async def produce(
    bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes, dict[str, str]]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()]
            )
            for key, value, headers in messages
        ]
        for f in futures:
            await f
    finally:
        await producer.stop()


async def consume_all(
    bootstrap: str, topic: str, *, expect: int, timeout: float = 30.0, settle: float = 1.0
) -> list[Any]:
    """Read a topic from the start with no consumer group (independent of the hub).

    Waits until at least `expect` records arrived, then `settle` seconds more so that
    unwanted extras (duplicates) would show too.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        partitions: set[int] = set()
        while not partitions and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic) or set()
            if not partitions:
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        settled_at: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
            if len(records) >= expect:
                settled_at = settled_at or time.monotonic()
                if time.monotonic() - settled_at >= settle:
                    break
        return records
    finally:
        await consumer.stop()


def events(records: Iterable[Any]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records]


async def find_routed(
    bootstrap: str, prefix: str, tracking_ids: set[str], *, within: float = 40.0,
    settle: float = 2.0,
) -> list[Any]:
    """Every routing record for these tracking ids across all agency topics of a hub."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        names = [t for t in await consumer.topics() if t.startswith(f"{prefix}.agency.")]
        tps = [
            TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or ()
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        found: list[Any] = []
        deadline = time.monotonic() + within
        settled_at: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            found.extend(
                r for recs in batch.values() for r in recs
                if r.key is not None and r.key.decode() in tracking_ids
            )
            if {r.key.decode() for r in found} >= tracking_ids:
                settled_at = settled_at or time.monotonic()
                if time.monotonic() - settled_at >= settle:
                    break
        return found
    finally:
        await consumer.stop()


def unlike_text(i: int) -> str:
    """Twelve words no other `unlike_text` shares: texts the duplicate check tells apart."""
    return " ".join(f"kata{(i * 7919 + j * 104729) % 100_003}" for j in range(12))


def reworded(text: str) -> str:
    """The same words in another order: near-identical text under another opening (text
    key), so only a shared reporter or place can link it to the first."""
    words = text.split()
    return " ".join(words[6:] + words[:6])


def web_record(
    form_id: str, text: str, *, region: str = "32.75", received_at: datetime | None = None,
    **extra: object,
) -> Record:
    """A web form as the ingress writes it to its raw topic, ready for `Hub.intake`."""
    form = {"id": form_id, "isi": text, "kategori": "infrastruktur",
            "lokasi": {"kode_wilayah": region}, **extra}
    headers = {"content-type": "application/json"}
    if received_at is not None:
        headers["hub-received-at"] = received_at.isoformat()
    return Record(topics.raw("web"), 0, 0, None, json.dumps(form).encode(), headers,
                  datetime.now(UTC))


class FakePublisher:
    """Stands in for the broker where a test drives `Hub` directly: keeps what it sent."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send(self, pending: Sequence[Any]) -> list[int]:
        self.sent.extend(pending)
        return [p.id for p in pending]


async def wait_for(
    check: Callable[[], Awaitable[bool]], within: float, what: str, every: float = 0.2
) -> float:
    """Poll `check` until true; returns the seconds it took, fails the test after `within`."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            pytest.fail(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(every)
    return time.monotonic() - started
