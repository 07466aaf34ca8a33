"""Three hub instances, one consumer group, one database: every effect happens once.

Kafka splits the partitions between the instances and moves them while they join
(rebalances); the database's unique keys and the watcher's compare-and-set are what keep
each complaint stored, routed and escalated once. Redelivery is allowed (at-least-once),
so a routing event may reach an agency twice, but only as the same bytes.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition

from hub.model import FollowUpEvent, Status
from tests.support import HubProcess, overdue, produce

pytestmark = pytest.mark.broker

COMPLAINTS = 3000
UNANSWERED = 300
"""Complaints that get no follow-up; their deadline is moved into the past."""
STEPS = (Status.VERIFIED, Status.DISPOSITIONED, Status.IN_PROGRESS, Status.RESPONDED)
PLACES = [("jalan", "32.75"), ("kesehatan", "32.75"), ("pdam", "32.75"), ("sekolah", "36"),
          ("kesehatan", "32.16"), ("jalan", "61.72")]


@pytest.fixture
def hubs(kafka_bootstrap: str, database_url: str, tmp_path: Path) -> Iterator[list[HubProcess]]:
    prefix = f"m{uuid.uuid4().hex[:8]}"
    processes = [
        HubProcess(kafka_bootstrap, database_url, prefix=prefix, log_path=tmp_path / f"hub{i}.log",
                   extra_env={"HUB_WATCHER_INTERVAL_S": "0.2"})
        for i in range(3)
    ]
    try:
        # Started together, so they also race for the migration and the topic creation.
        with ThreadPoolExecutor(len(processes)) as pool:
            list(pool.map(lambda p: p.start(90), processes))
        yield processes
    finally:
        for p in processes:
            p.stop()


def form(i: int, run: str) -> tuple[None, bytes, dict[str, str]]:
    category, region = PLACES[i % len(PLACES)]
    # Distinct reporter and wording: the duplicate check must not fold these together.
    body = {"id": f"{run}-{i}", "kategori": category, "lokasi": {"kode_wilayah": region},
            "isi": f"{uuid.uuid4().hex} {category} rusak di wilayah {region}, laporan {i}",
            "pelapor": {"telepon": f"+62812{i:08d}"}}
    return None, json.dumps(body).encode(), {"content-type": "application/json"}


def query(url: str, statement: Any, **params: Any) -> list[Any]:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(
                sa.text(statement) if isinstance(statement, str) else statement, params
            )
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


async def until(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def read_agency_topics(
    bootstrap: str, prefix: str, done: Callable[[list[Any]], bool], within: float = 60.0
) -> list[Any]:
    """Every record of every agency topic, from the start, until `done` and 2 s more."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        names = [t for t in await consumer.topics() if t.startswith(f"{prefix}.agency.")]
        tps = [TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        deadline, settled = time.monotonic() + within, None
        while time.monotonic() < deadline and (settled is None or time.monotonic() < settled):
            for batch in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                records.extend(batch)
            if settled is None and done(records):
                settled = time.monotonic() + 2.0
        return records
    finally:
        await consumer.stop()


async def test_three_instances_store_route_apply_and_escalate_once(
    hubs: list[HubProcess], database_url: str
) -> None:
    hub, run, started = hubs[0], uuid.uuid4().hex[:6], time.monotonic()
    await produce(hub.bootstrap, hub.topic("raw.web"), [form(i, run) for i in range(COMPLAINTS)])

    def stored() -> int:
        return int(query(database_url, "SELECT count(*) FROM complaint")[0][0])

    # One instance dies mid-intake without committing its offsets and is replaced: the
    # others take over its partitions and re-read what it had not acknowledged.
    await until(lambda: stored() >= COMPLAINTS // 3, 60, "the first batches")
    hubs[2].stop(signal.SIGKILL)
    hubs[2].start(90)
    await until(lambda: stored() >= COMPLAINTS, 90, "complaints stored")
    stored_s = time.monotonic() - started

    # Stored once: one row per raw message.
    rows = query(database_url, "SELECT tracking_id, agency_code, source_message_id FROM complaint")
    assert len(rows) == len({r.source_message_id for r in rows}) == COMPLAINTS

    # Follow-ups for all but UNANSWERED, one producer, so each complaint's events keep their
    # order in its partition; the instances holding those partitions must apply them in it.
    answered, unanswered = rows[UNANSWERED:], rows[:UNANSWERED]
    follow_ups: list[tuple[bytes | None, bytes, dict[str, str]]] = [
        (r.tracking_id.encode(), FollowUpEvent(
            event_id=f"{r.tracking_id}-{n}", tracking_id=r.tracking_id, agency_code=r.agency_code,
            status=status, at=datetime.now(UTC)).model_dump_json().encode(), {})
        for n, status in enumerate(STEPS) for r in answered
    ]
    await produce(hub.bootstrap, hub.topic("followup"), follow_ups)
    expected_history = COMPLAINTS + len(follow_ups)
    await until(lambda: query(database_url, "SELECT count(*) FROM status_history")[0][0]
                >= expected_history, 90, "follow-ups applied")
    applied_s = time.monotonic() - started

    history: dict[str, list[str]] = defaultdict(list)
    for tid, status in query(database_url, "SELECT tracking_id, status FROM status_history "
                                           "ORDER BY id"):
        history[tid].append(status)
    in_order = ["received", *(s.value for s in STEPS)]
    assert all(history[r.tracking_id] == in_order for r in answered)
    assert all(history[r.tracking_id] == ["received"] for r in unanswered)
    assert query(database_url, "SELECT count(*) FROM dead_letter")[0][0] == 0

    # Every instance runs the watcher five times a second; each breach escalates once.
    late = [r.tracking_id for r in unanswered]
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        overdue(conn, late)
    engine.dispose()
    await until(lambda: query(database_url, "SELECT count(*) FROM complaint WHERE "
                                            "escalated_kind IS NOT NULL")[0][0] >= UNANSWERED,
                30, "escalations")
    await asyncio.sleep(2)  # ten more sweeps by each instance: nothing more may happen

    def complete(records: list[Any]) -> bool:
        # Distinct complaints, not records: the killed instance's events re-sent by another
        # would otherwise reach the counts while some complaint's event is still unread.
        seen: dict[str, set[str]] = defaultdict(set)
        for r in records:
            event = json.loads(r.value)
            seen[event.get("type", "")].add(event.get("tracking_id", ""))
        return len(seen["routing"]) >= COMPLAINTS and len(seen["escalation"]) >= UNANSWERED

    records = await read_agency_topics(hub.bootstrap, hub.prefix, complete)
    by_id: dict[str, set[bytes]] = defaultdict(set)
    sent: Counter[str] = Counter()
    routing: Counter[str] = Counter()
    escalations: Counter[str] = Counter()
    for record in records:
        event = json.loads(record.value)
        by_id[event["event_id"]].add(record.value)
        sent[event["event_id"]] += 1
        if event["type"] == "routing":
            routing[event["tracking_id"]] += 1
        elif event["type"] == "escalation":
            escalations[event["tracking_id"]] += 1
    # Routed once: one routing event id per complaint; a redelivered one is the same bytes.
    routed_ids = {e for e in by_id if e.startswith("route-")}
    assert routed_ids == {f"route-{r.tracking_id}-1" for r in rows}
    assert all(len(values) == 1 for values in by_id.values())
    duplicates = sum(n - 1 for n in sent.values())
    assert escalations == dict.fromkeys(late, 1)
    print(  # the measurement, shown with -s
        f"\n[{database_url.partition(':')[0]}] {COMPLAINTS} complaints stored in {stored_s:.1f}s, "
        f"{len(follow_ups)} follow-ups applied by {applied_s:.1f}s, {UNANSWERED} escalated once, "
        f"{len(records)} agency records, {duplicates} redelivered duplicates, "
        f"total {time.monotonic() - started:.1f}s"
    )
