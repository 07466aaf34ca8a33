"""Bootstrap: wire settings, database, broker, consumers, HTTP routes and loops together."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from faststream.asgi import AsgiFastStream
from faststream.asgi.types import Receive, Scope, Send
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from hub import http, metrics, migrate, store, topics
from hub.adapters import SOURCES
from hub.calendar import CalendarConfig, load_calendar_config
from hub.consumers import followup, intake, retry
from hub.deadlines import Rules
from hub.kafka import client_options
from hub.producers.publisher import Publisher, TopicsRefusedError
from hub.routing import Directory
from hub.sealing import Sealer
from hub.service import Hub
from hub.settings import CannotServe, Settings
from hub.specs import document_publishers

log = logging.getLogger("hub.app")


def security(settings: Settings) -> BaseSecurity | None:
    """FastStream's security object for the same settings `client_options` reads."""
    options = client_options(settings)
    ssl_context = options.get("ssl_context")
    if not settings.kafka_security_protocol.startswith("SASL"):
        return BaseSecurity(ssl_context=ssl_context) if ssl_context else None
    kind = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}[
        options["sasl_mechanism"]
    ]
    return kind(
        username=options["sasl_plain_username"],
        password=options["sasl_plain_password"],
        ssl_context=ssl_context,
    )


class HubBroker(KafkaBroker):
    """FastStream's Kafka broker, its subscribers started side by side.

    Each start waits for its consumer group's first join, which a broker holds back for
    new members to arrive (the embedded one 5 s, Apache Kafka's
    `group.initial.rebalance.delay.ms` 3 s): one after the other, the hub's three
    groups kept it unready three times as long. The rest is FastStream 0.7.8's own start
    (pinned): check it again when FastStream is upgraded.
    """

    async def start(self) -> None:
        await self.connect()
        starts = [asyncio.create_task(s.start()) for s in self.subscribers]
        try:
            await asyncio.gather(*starts)
        except BaseException:
            # The first failure as it is (what one start after the other raised); the
            # other starts are cancelled, and FastStream's shutdown stops what did start.
            for start in starts:
                start.cancel()
            await asyncio.gather(*starts, return_exceptions=True)
            raise
        for publisher in self.publishers:
            await publisher.start()
        self.running = True


class HubApp(AsgiFastStream):
    """FastStream's ASGI app, with a 404 that says which paths the hub serves."""

    async def not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await http.not_found(scope["path"], send, [path for path, _ in self.routes])
        else:
            await super().not_found(scope, receive, send)


def check_http_port(settings: Settings) -> None:
    """HUB_HTTP_HOST:HUB_HTTP_PORT free to listen on, before anything starts: found busy by
    uvicorn, `run` exited 3 after starting the broker side, and `dev` hung on its way out."""
    where = (settings.http_host, settings.http_port)
    family = socket.AF_INET6 if ":" in settings.http_host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(where)
        except OSError as exc:
            raise CannotServe(
                f"HTTP: cannot listen on {where[0]}:{where[1]}: {exc.strerror} (another "
                "lapor-hub there? HUB_HTTP_PORT chooses the port)"
            ) from exc


async def reach_dependencies(hub: Hub, settings: Settings) -> None:
    """Before `run` serves the hub `build` made: its database reachable and migrated, its
    broker reachable and the topics it needs there (a creation the broker refuses is named).

    Failing here, an operator's mistake is one line from the CLI; failing in the lifespan,
    uvicorn prints a traceback and exits 3. The lifespan checks both again (a no-op
    migration, the publisher's start), so a dependency lost in between still stops it.
    """
    options = client_options(settings)  # a TLS file or credential missing: before anything
    await asyncio.to_thread(migrate.upgrade_engine, hub.engine)
    if not await asyncio.to_thread(_opens_newest_reporter, hub):
        # Else it would serve, and every follow-up on a named complaint would fail, be
        # retried for minutes and end a dead letter.
        raise CannotServe(
            "HUB_SECRET_KEY: the reporters stored were sealed under another key; set the key "
            "they were sealed with, or keep it in HUB_PREVIOUS_SECRET_KEYS beside the new one"
        )
    if settings.kafka_idempotent_producer:
        # Before the publisher, whose producer is idempotent then: its start failed with the
        # broker's bare "UnknownError" and a traceback in place of this line.
        producer = AIOKafkaProducer(**options, enable_idempotence=True)
        try:
            await producer.start()
        except KafkaConnectionError:
            raise  # out of reach, said as such
        except KafkaError as exc:
            raise CannotServe(
                "HUB_KAFKA_IDEMPOTENT_PRODUCER=true: the broker gives no idempotent producer "
                f"({type(exc).__name__}; the embedded broker cannot, Apache Kafka can)"
            ) from exc
        finally:
            await producer.stop()
    publisher = Publisher(settings)
    await publisher.start()
    try:
        await publisher.ensure_topics(topics_needed(hub.rules.directory))
    except TopicsRefusedError as exc:
        raise CannotServe(str(exc)) from exc
    finally:
        await publisher.stop()


def topics_needed(directory: Directory) -> list[str]:
    """The topics the hub reads and writes: each source's raw topic, its own, the agencies'."""
    return ([topics.raw(s) for s in SOURCES] + list(topics.OWN)
            + [a.topic_name for a in directory.agencies.values()])


def _opens_newest_reporter(hub: Hub) -> bool:
    with hub.engine.connect() as conn:
        return store.newest_reporter_opens(conn, hub.rules.sealer)


def build(settings: Settings) -> tuple[AsgiFastStream, Hub]:
    directory = Directory.load(settings.agencies_file)
    rules = Rules.of(
        directory,
        load_calendar_config(settings.deadlines_file),
        secret=settings.secret_key.get_secret_value().encode(),
        sealer=Sealer.from_settings(settings),
        duplicate_window=timedelta(hours=settings.duplicate_window_hours),
    )
    store.make_sqlite_folder(settings.database_url)
    engine = store.make_engine(settings.database_url)
    hub = Hub(engine, Publisher(settings), rules)
    broker = HubBroker(
        settings.kafka_bootstrap,
        client_id=settings.kafka_client_id,
        security=security(settings),
        middlewares=[KafkaPrometheusMiddleware(registry=metrics.REGISTRY)],
        logger=logging.getLogger("hub.kafka"),
        # "Received" and "Processed" for every batch: dozens of lines a second under load,
        # nothing an operator acts on. Errors and partition assignments keep their levels.
        log_level=logging.DEBUG,
    )
    intake.register(broker, hub, settings)
    followup.register(broker, hub, settings)
    retry.register(broker, hub, settings)
    document_publishers(broker)
    background: list[asyncio.Task[None]] = []
    stopping = asyncio.Event()

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        await asyncio.to_thread(migrate.upgrade_engine, engine)
        metrics.agencies_known(directory.agencies)
        for agency in directory.agencies.values():
            metrics.agency_info.labels(
                agency.code, agency.region or "", agency.level.value, agency.parent or ""
            ).set(1)
        await hub.publisher.start()
        await hub.publisher.ensure_topics(topics_needed(directory))
        background.append(asyncio.create_task(_outbox_loop(hub)))
        if engine.dialect.name == "sqlite":
            background.append(asyncio.create_task(_checkpoint_loop(hub)))
        background.append(asyncio.create_task(_reckon_once(hub)))
        background.append(asyncio.create_task(_watch_loop(
            hub, settings.watcher_interval_s, timedelta(minutes=settings.fragment_wait_minutes)
        )))
        background.append(asyncio.create_task(_lag_loop(broker, settings.kafka_group)))
        background.append(asyncio.create_task(_ready_loop(hub, lambda: _broker_problem(broker))))
        background.append(asyncio.create_task(_watchdog(broker, stopping)))
        quiet_collector()
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            # Best effort: what is not noted now is sent once more after the restart.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(hub.note_routing_sent(), 5)
            await hub.publisher.stop()
            engine.dispose()

    app = HubApp(
        broker,
        asgi_routes=http.routes(hub, settings, lambda: _broker_problem(broker)),
        lifespan=lifespan,
        on_shutdown=[stopping.set],
        logger=log,
    )
    return app, hub


def quiet_collector() -> None:
    """Keep Python's cycle collector from pausing the intake.

    Its full passes walked every object of start-up (registry, regions, SQLAlchemy,
    FastStream) about once a second under load and held a batch up 70-90 ms each time:
    the benchmark's p99. What start-up made lives as long as the process, so it is
    frozen out of the collector's sight; the hub's per-batch objects are freed by
    reference counting, so the youngest generation may grow larger before a pass.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


CHECKPOINT_EVERY_S = 0.5
"""Each pass copies little: at 1,000 complaints/s in batches of ~20, every batch dirties
index pages all over, about 11,000 pages of log a second. A pass with nothing to copy
costs next to nothing."""


async def _checkpoint_loop(hub: Hub) -> None:
    """SQLite's log into its file, off the intake's commits (started on SQLite only)."""
    while True:
        await asyncio.sleep(CHECKPOINT_EVERY_S)
        try:
            await asyncio.to_thread(store.checkpoint, hub.engine)
        except Exception as exc:  # the database is away: the intake reports that
            log.debug("checkpoint failed: %s", type(exc).__name__)


def check_collective_leave(config: CalendarConfig, today: date, warned: set[int]) -> None:
    """Say which years deadlines set today reach with no collective leave known: once per
    year in the log (adding `warned`), always in the gauge. The days come from each year's
    joint decree, so a hub running past New Year needs its deadlines file or its `holidays`
    package updated."""
    unlisted = config.years_without_leave(today)
    metrics.collective_leave_unlisted.clear()
    for year in unlisted:
        metrics.collective_leave_unlisted.labels(str(year)).set(1)
    if new := [year for year in unlisted if year not in warned]:
        warned.update(new)
        log.warning(
            "neither the deadlines file nor the holidays package knows the collective leave "
            "(cuti bersama) of %s: deadlines running into it count those days as working "
            "days; add them to HUB_DEADLINES_FILE once the joint decree (SKB) is out",
            ", ".join(map(str, new)),
        )


async def _reckon_once(hub: Hub) -> None:
    """Every open deadline set by the calendar and limits of this start, beside the watch
    (50,000 open complaints took 4-13 s on SQLite, the watch waiting meanwhile)."""
    try:
        await hub.reckon_deadlines()
    except Exception as exc:  # the watch itself reckons each deadline when it comes due
        log.error("reckoning open deadlines failed (%s)", type(exc).__name__)  # noqa: TRY400


async def _watch_loop(hub: Hub, interval: float, fragment_wait: timedelta) -> None:
    """Deadlines, gauges and overdue SMS parts; a full page means more is due, so go again."""
    warned: set[int] = set()
    while True:
        try:
            check_collective_leave(hub.rules.config, datetime.now(UTC).date(), warned)
            handled = await hub.watch_deadlines()
            joined = await hub.expire_fragments(fragment_wait)
        except Exception as exc:  # outages are waited out inside; this is anything else
            # Ending here would stop escalations and auto-closes, and freeze the gauges,
            # until a restart, with nothing said.
            log.error("deadline watch failed (%s); again in %.0f s",  # noqa: TRY400
                      type(exc).__name__, interval)
            handled = joined = 0
        if joined:
            log.info("joined %d multi-part SMS that waited too long for a part", joined)
        if handled < 500:
            await asyncio.sleep(interval)


async def _broker_problem(broker: KafkaBroker) -> str | None:
    """What keeps the Kafka side from being ready now, if anything."""
    if not broker.running:
        return "consumers joining their groups"
    if not await broker.ping(2.0):
        return "no answer"
    return None


READY_EVERY_S = 5.0


async def _ready_loop(hub: Hub, broker_problem: Callable[[], Awaitable[str | None]]) -> None:
    """Keep `lapor_ready` true to what /readyz would say: an idle hub whose broker went away
    meets no failure of its own, and a gauge set only by probes and failures said 1."""
    while True:
        await asyncio.sleep(READY_EVERY_S)
        try:
            await http.readiness(hub, broker_problem)
        except Exception as exc:  # the check itself must not end the loop
            log.debug("readiness check failed: %s", type(exc).__name__)


async def _watchdog(broker: KafkaBroker, stopping: asyncio.Event) -> None:
    """End the process if FastStream stopped the broker on its own (e.g. it went away
    during start-up): an HTTP side left serving with no consumers would never recover,
    while a restarted process does."""
    while not broker.running:  # noqa: ASYNC110 – FastStream offers no event for it
        await asyncio.sleep(1)
    while not stopping.is_set():
        await asyncio.sleep(2)
        if not broker.running and not stopping.is_set():
            log.error("the Kafka side stopped without a shutdown; exiting for a restart")
            os.kill(os.getpid(), signal.SIGTERM)
            return


async def _lag_loop(broker: KafkaBroker, group: str) -> None:
    """Consumer lag per partition: high watermark minus the committed offset.

    From `highwater`, not `end_offsets()`, which the embedded broker answers wrongly.
    """
    shown: set[tuple[str, str, str]] = set()
    while True:
        await asyncio.sleep(5)
        now_shown: set[tuple[str, str, str]] = set()
        for subscriber in broker.subscribers:
            consumer = getattr(subscriber, "consumer", None)
            if consumer is None:
                continue
            for tp in consumer.assignment():
                high = consumer.highwater(tp)
                if high is None:
                    continue
                try:
                    committed = await consumer.committed(tp) or 0
                except Exception:
                    continue
                labels = (getattr(subscriber, "group_id", None) or group, tp.topic,
                          str(tp.partition))
                metrics.consumer_lag.labels(*labels).set(max(high - committed, 0))
                now_shown.add(labels)
        # Partitions lost in a rebalance are another instance's to report now.
        for labels in shown - now_shown:
            metrics.consumer_lag.remove(*labels)
        shown = now_shown


async def _outbox_loop(hub: Hub) -> None:
    """Publish what a crash or outage left in the outbox."""
    while True:
        await asyncio.sleep(5)
        try:
            sent = await hub.relay_outbox()
        except Exception as exc:  # as the watch: the relay must outlive what it cannot send
            log.error("outbox relay failed (%s)", type(exc).__name__)  # noqa: TRY400
            continue
        if sent:
            log.info("relayed %d outbox events left unsent", sent)
