"""The hub's Kafka side on the real broker: its consumer groups join side by side, and
/readyz says what it waits for while they do."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from hub.app import HubBroker, _broker_problem, build
from hub.embedded_broker import EmbeddedBroker, free_port
from hub.settings import Settings
from tests.support import HubProcess

pytestmark = pytest.mark.broker


def kafka_side(app: object) -> HubBroker:
    broker = getattr(app, "broker", None)
    assert isinstance(broker, HubBroker)
    return broker


def settings(bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    for name, value in {
        "HUB_KAFKA_BOOTSTRAP": bootstrap,
        "HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.db",
        "HUB_TOPIC_PREFIX": prefix,
        "HUB_KAFKA_GROUP": f"{prefix}-hub",
    }.items():
        monkeypatch.setenv(name, value)
    return Settings()


async def test_the_consumer_groups_join_side_by_side(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = settings(kafka_bootstrap, tmp_path, monkeypatch)
    app, hub = build(chosen)
    broker = kafka_side(app)
    steps: list[tuple[str, str]] = []

    def noting(start: Callable[[], Awaitable[None]], group: str) -> Callable[[], Awaitable[None]]:
        async def noted() -> None:
            steps.append(("began", group))
            await start()
            steps.append(("joined", group))
        return noted

    for subscriber in broker.subscribers:
        group = str(getattr(subscriber, "group_id", None))
        monkeypatch.setattr(subscriber, "start", noting(subscriber.start, group))
    assert await _broker_problem(broker) == "consumers joining their groups"
    try:
        await broker.start()
        assert [what for what, _ in steps] == ["began"] * 3 + ["joined"] * 3, steps
        assert {group for _, group in steps} == {
            f"{chosen.kafka_group}-{part}" for part in ("intake", "followup", "retry")
        }
        assert broker.running
        assert await _broker_problem(broker) is None
    finally:
        await broker.stop()
        hub.engine.dispose()


async def test_readiness_tells_a_broker_gone_from_consumers_still_joining(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded = EmbeddedBroker(free_port())
    embedded.start()
    try:
        app, hub = build(settings(embedded.bootstrap, tmp_path, monkeypatch))
        broker = kafka_side(app)
        try:
            await broker.start()
            assert await _broker_problem(broker) is None
            embedded.stop()
            assert await _broker_problem(broker) == "no answer"
        finally:
            await broker.stop()
            hub.engine.dispose()
    finally:
        embedded.stop()


async def test_a_consumer_that_cannot_start_fails_the_start_as_itself(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The others' starts are cancelled, and stopping closes what they opened."""
    app, hub = build(settings(kafka_bootstrap, tmp_path, monkeypatch))
    broker = kafka_side(app)
    first, *others = broker.subscribers

    async def refuse() -> None:
        await asyncio.sleep(0.5)  # the others are joining by now
        raise RuntimeError("refused")

    monkeypatch.setattr(first, "start", refuse)
    try:
        with pytest.raises(RuntimeError, match="refused"):
            await broker.start()
        assert not broker.running
        assert await _broker_problem(broker) == "consumers joining their groups"
    finally:
        await broker.stop()
        hub.engine.dispose()
    consumers = [getattr(s, "consumer", None) for s in others]
    assert all(c is None or c._closed for c in consumers)


def test_the_log_of_a_start_and_stop_keeps_what_an_operator_reads(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    log = tmp_path / "hub.log"
    with HubProcess(kafka_bootstrap, f"sqlite:///{tmp_path}/hub.db", log_path=log) as hub:
        form = {"id": "log-1", "isi": "Lampu jalan mati di gang kami sudah seminggu",
                "lokasi": {"kode_wilayah": "32.75"}}
        answer = httpx.post(f"{hub.base_url}/intake/web", json=form, timeout=10)
        assert answer.status_code == 202, answer.text
        tracking_id = answer.json()["accepted"][0]
        deadline = time.monotonic() + 30
        while not stored(hub.database_url, tracking_id) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stored(hub.database_url, tracking_id)
    text = log.read_text(errors="replace")
    for said in ("Running upgrade  -> 0001", "FastStream app started successfully",
                 "assigned to partitions", "FastStream app shut down gracefully"):
        assert said in text, text[-3000:]
    # FastStream's "Received" and "Processed" for each batch: lines by the dozen each
    # second under load.
    for chatter in ("Context impl ", "Will assume ", "callback for ", " Received",
                    " Processed"):
        assert chatter not in text, text[-3000:]


def stored(database_url: str, tracking_id: str) -> bool:
    with sa.create_engine(database_url).connect() as conn:
        return conn.execute(sa.text("SELECT routing_sent FROM complaint WHERE tracking_id = :t"),
                            {"t": tracking_id}).scalar() is not None
