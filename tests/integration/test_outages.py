"""Outages against the real hub process: the database and the broker go away and come back.

What must hold (README, Guarantees): while a dependency is away the hub says so on /readyz,
accepts nothing it cannot publish, commits no offset past what it has stored, and once the
dependency is back it carries on by itself: nothing lost, nothing stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from hub.embedded_broker import EmbeddedBroker, free_port
from tests.support import HubProcess, consume_all, find_routed, produce, wait_for

pytestmark = pytest.mark.broker
T = TypeVar("T")

COMPLAINTS = 2000
BEFORE_CUT = 600
CUT_SECONDS = 10.0


class TcpProxy:
    """A loopback TCP forwarder that can be cut (all connections closed, new ones refused)
    and restored on the same port.

    It runs its own event loop on its own thread: the test's blocking calls (starting the
    hub, SQL counts) must not freeze the hub's database traffic.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self) -> None:
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _listen(self) -> None:
        # reuse_address: the port may still have connections in TIME_WAIT from before the cut.
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def _cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()  # new connections are refused from here on
        for writer in list(self._writers):
            writer.transport.abort()  # established ones die at once, as in a network cut
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if self._server is None:  # cut while we were connecting upstream
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self.connections += 1
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()


def web_form(i: int, run: str) -> tuple[None, bytes, dict[str, str]]:
    # Distinct reporter phone and opening words: alike ones would be linked as duplicates
    # and not routed, which would look like loss.
    body = {
        "id": f"{run}-{i}",
        "judul": "Jalan rusak",
        "isi": f"{uuid.uuid4().hex} jalan berlubang di Kota Bekasi, laporan nomor {i}",
        "kategori": "jalan",
        "lokasi": {"kode_wilayah": "32.75", "nama": "Kota Bekasi"},
        "pelapor": {"nama": "Warga", "telepon": f"+62813{i:08d}"},
    }
    return None, json.dumps(body).encode(), {"content-type": "application/json"}


def scalar(engine: sa.Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar_one())


async def readyz(client: httpx.AsyncClient, base_url: str) -> tuple[int, dict[str, Any]]:
    try:
        answer = await client.get(f"{base_url}/readyz", timeout=10)
    except httpx.HTTPError as exc:
        return 0, {"error": repr(exc)}
    return answer.status_code, answer.json()


@pytest.fixture
def outage_database(postgres_admin: sa.Engine) -> Iterator[str]:
    """A PostgreSQL database of our own, dropped afterwards (FORCE: the hub may hold some)."""
    name = f"hub_outage_{uuid.uuid4().hex[:10]}"
    with postgres_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with postgres_admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class IntakeProbe:
    """What the test reads beside the hub: rows stored (directly, not through the proxy),
    the intake group's committed offsets and the hub's own received-messages counter."""

    hub: HubProcess
    db: sa.Engine
    offsets: AIOKafkaConsumer
    client: httpx.AsyncClient
    tps: list[TopicPartition] = field(default_factory=list)

    async def start(self) -> None:
        await self.offsets.start()
        topic = self.hub.topic("raw.web")
        self.tps = [
            TopicPartition(topic, p) for p in self.offsets.partitions_for_topic(topic) or ()
        ]
        assert self.tps, "the hub did not create its raw topic"

    async def stored(self) -> int:
        return await asyncio.to_thread(scalar, self.db, "SELECT count(*) FROM complaint")

    async def unsent(self) -> int:
        sql = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
        return await asyncio.to_thread(scalar, self.db, sql)

    async def committed(self) -> int:
        return sum([await self.offsets.committed(tp) or 0 for tp in self.tps])

    async def received(self) -> int:
        """Raw records the hub's consumer has taken from the broker (FastStream's counter)."""
        text = (await self.client.get(f"{self.hub.base_url}/metrics", timeout=10)).text
        return int(
            sum(
                s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
                if s.name == "faststream_received_messages_total"
            )
        )

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        return await readyz(self.client, self.hub.base_url)


async def produce_paced(bootstrap: str, topic: str, forms: list[Any], per_second: int) -> None:
    """A stream, not a burst: 100 records at a time."""
    for start in range(0, len(forms), 100):
        await produce(bootstrap, topic, forms[start : start + 100])
        await asyncio.sleep(100 / per_second)


async def cut_database(proxy: TcpProxy, probe: IntakeProbe, rest: list[Any]) -> dict[str, Any]:
    """Cut the database for CUT_SECONDS while the rest of the stream arrives; what was seen."""
    proxy.cut()
    cut_at = time.monotonic()
    feeder = asyncio.create_task(
        produce_paced(probe.hub.bootstrap, probe.hub.topic("raw.web"), rest, per_second=500)
    )
    try:

        async def db_problem() -> bool:
            status, body = await probe.readyz()
            return status == 503 and "database" in body.get("problems", {})

        to_not_ready = await wait_for(db_problem, 8, "/readyz 503 with a database problem")
        # The group's committed offsets must never pass what is stored: a hub that commits
        # before storing (FastStream's default ACK_FIRST) has committed the batch it holds.
        samples = 0
        while time.monotonic() - cut_at < CUT_SECONDS:
            committed, stored = await probe.committed(), await probe.stored()
            assert committed <= stored == BEFORE_CUT, f"committed {committed}, stored {stored}"
            samples += 1
            await asyncio.sleep(0.5)
        await feeder
    finally:
        if not feeder.done():
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
    status, body = await probe.readyz()
    assert status == 503, body
    assert "database" in body["problems"], body
    # Not vacuous: the consumer did take records it could not store.
    held = await probe.received() - BEFORE_CUT
    assert held > 0, "the hub received nothing during the cut"
    return {"to_not_ready": to_not_ready, "samples": samples, "held": held}


async def check_stored_once_and_routed(probe: IntakeProbe, run: str) -> int:
    """Every complaint one row, not linked as a duplicate, routed; returns routing records."""
    with probe.db.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT tracking_id, source_message_id, duplicate_of FROM complaint")
        ).all()
    assert len(rows) == COMPLAINTS
    assert {r.source_message_id for r in rows} == {f"{run}-{i}" for i in range(COMPLAINTS)}
    assert all(r.duplicate_of is None for r in rows)
    assert scalar(probe.db, "SELECT count(*) FROM dead_letter") == 0
    # Redelivery may repeat a routing event, but only as the same event.
    ids = {r.tracking_id for r in rows}
    routed = await find_routed(probe.hub.bootstrap, probe.hub.prefix, ids)
    assert {r.key.decode() for r in routed} == ids
    assert {json.loads(r.value)["event_id"] for r in routed} == {f"route-{t}-1" for t in ids}
    return len(routed)


@pytest.mark.postgres
async def test_database_outage_mid_stream_loses_nothing_and_commits_nothing_early(
    kafka_bootstrap: str, postgres_admin: sa.Engine, outage_database: str, tmp_path: Path
) -> None:
    server = postgres_admin.url
    proxy = TcpProxy(server.host or "127.0.0.1", server.port or 5432).start()
    via_proxy = server.set(host="127.0.0.1", port=proxy.port, database=outage_database)
    hub = HubProcess(
        kafka_bootstrap,
        via_proxy.render_as_string(hide_password=False),
        log_path=tmp_path / "hub.log",
    )
    probe = IntakeProbe(
        hub,
        sa.create_engine(server.set(database=outage_database), poolclass=sa.NullPool),
        # The hub's intake group: we only read its committed offsets, we never join it.
        AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap,
            group_id=f"{hub.prefix}-hub-intake",
            enable_auto_commit=False,
        ),
        httpx.AsyncClient(),
    )
    run = uuid.uuid4().hex[:6]
    forms = [web_form(i, run) for i in range(COMPLAINTS)]
    try:
        await asyncio.to_thread(hub.start, 60)
        await probe.start()
        # The first part of the stream is stored, published and committed before the cut ...
        await produce_paced(kafka_bootstrap, hub.topic("raw.web"), forms[:BEFORE_CUT], 1000)

        async def settled() -> bool:
            state = (await probe.stored(), await probe.unsent(), await probe.committed())
            return state == (BEFORE_CUT, 0, BEFORE_CUT)

        await wait_for(settled, 30, "the first part stored, published and committed")
        # ... the rest arrives while the database is away.
        seen = await cut_database(proxy, probe, forms[BEFORE_CUT:])
        proxy.restore()
        restored_at = time.monotonic()

        async def ready() -> bool:
            return (await probe.readyz())[0] == 200

        to_ready = await wait_for(ready, 40, "/readyz 200 after the database is back")

        async def all_stored() -> bool:
            return await probe.stored() >= COMPLAINTS

        await wait_for(all_stored, 45, "every complaint stored")
        to_drained = time.monotonic() - restored_at
        routed = await check_stored_once_and_routed(probe, run)

        async def all_committed() -> bool:
            return await probe.committed() == COMPLAINTS and await probe.unsent() == 0

        await wait_for(all_committed, 15, "every offset committed and the outbox sent")
        print(
            f"\n[db outage] {BEFORE_CUT} stored+committed before the cut; /readyz 503 after "
            f"{seen['to_not_ready']:.1f}s; {seen['held']} records received but not storable, "
            f"committed offsets stayed at {BEFORE_CUT} over {seen['samples']} samples in "
            f"{CUT_SECONDS:.0f}s; /readyz 200 {to_ready:.1f}s after restore; all {COMPLAINTS} "
            f"stored {to_drained:.1f}s after restore; {routed} routing records"
        )
    finally:
        hub.stop()
        with contextlib.suppress(Exception):
            await probe.offsets.stop()
        await probe.client.aclose()
        proxy.stop()
        probe.db.dispose()


async def started(hub: HubProcess) -> bool:
    assert hub.log_path is not None
    return "FastStream app started successfully" in hub.log_path.read_text(errors="replace")


def post_web(client: httpx.Client, base_url: str, ref: str) -> httpx.Response:
    _, body, _ = web_form(int(uuid.uuid4().int % 10**8), ref)
    return client.post(
        f"{base_url}/intake/web",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,  # the ingress gives the broker 10 s before it answers 503
    )


async def test_broker_outage_and_restart_with_no_topics(tmp_path: Path) -> None:
    port = free_port()
    broker = EmbeddedBroker(port)
    hub: HubProcess | None = None
    try:
        broker.start()
        hub = HubProcess(
            broker.bootstrap, f"sqlite:///{tmp_path}/hub.db", log_path=tmp_path / "hub.log"
        )
        await asyncio.to_thread(hub.start, 60)
        # The start-up must be over (its log line comes last): a broker that goes away while
        # FastStream starts its subscribers makes it shut the app down for good (the watchdog
        # then exits for a restart).
        await wait_for(lambda: started(hub), 60, "every subscriber of the hub started")
        agency_topic = hub.topic("agency.kota-bekasi-dbmsda")
        async with httpx.AsyncClient() as client:
            with httpx.Client() as sync:
                # Warm: the publisher and consumers know their topics before the broker goes.
                before = await asyncio.to_thread(post_web, sync, hub.base_url, "before")
                assert before.status_code == 202, before.text
                (tracking_id,) = before.json()["accepted"]
                records = await consume_all(broker.bootstrap, agency_topic, expect=1)
                assert tracking_id in {r.key.decode() for r in records}

                broker.stop()
                stopped_at = time.monotonic()

                async def gauge_not_ready() -> bool:
                    # Prometheus only scrapes: the gauge must fall with no /readyz asked.
                    text = (await client.get(f"{hub.base_url}/metrics", timeout=10)).text
                    return "\nlapor_ready 0.0" in text

                await wait_for(gauge_not_ready, 20, "lapor_ready 0 with no /readyz asked")

                async def broker_problem() -> bool:
                    status, body = await readyz(client, hub.base_url)
                    return status == 503 and "broker" in body.get("problems", {})

                to_not_ready = await wait_for(broker_problem, 10, "/readyz 503 with broker")
                posted_at = time.monotonic()
                refused = await asyncio.to_thread(post_web, sync, hub.base_url, "during")
                refused_s = time.monotonic() - posted_at
                assert refused.status_code == 503, refused.text

                # A new broker on the same port: memory storage, so every topic is gone.
                broker = EmbeddedBroker(port)
                broker.start()
                restarted_at = time.monotonic()

                async def ready() -> bool:
                    return (await readyz(client, hub.base_url))[0] == 200

                to_ready = await wait_for(ready, 30, "/readyz 200 after the broker restart")
                accepted: list[str] = []

                async def ingress_accepts() -> bool:
                    answer = await asyncio.to_thread(post_web, sync, hub.base_url, "after")
                    if answer.status_code == 202:
                        accepted.extend(answer.json()["accepted"])
                    return answer.status_code == 202

                to_accepting = await wait_for(ingress_accepts, 30, "ingress 202 again", every=1)
                # The agency topic is gone with the old broker: wait for it to come back.
                routed = await consume_all(
                    broker.bootstrap, agency_topic, expect=len(accepted), timeout=40
                )
                to_routed = time.monotonic() - restarted_at
                assert set(accepted) <= {r.key.decode() for r in routed}
        print(
            f"\n[broker outage] /readyz 503 {to_not_ready:.1f}s after stop; ingress 503 in "
            f"{refused_s:.1f}s; /readyz 200 {to_ready:.1f}s after restart; ingress 202 after "
            f"{to_accepting:.1f}s more; routed {to_routed:.1f}s after restart"
            f" (down {restarted_at - stopped_at:.1f}s)"
        )
    finally:
        if hub is not None:
            hub.stop()
        broker.stop()  # the current one; stopping a stopped broker does nothing
