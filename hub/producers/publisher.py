"""Publishing: one batched producer for everything the hub emits, and topic creation.

FastStream's `broker.publish` awaits each message; a batch of routing events to
many agency topics is sent here with one await for the lot, which is what keeps
the intake near the broker's ceiling (see README, benchmark).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from aiokafka.protocol.metadata import MetadataRequest

from hub.kafka import client_options
from hub.settings import Settings
from hub.store import Pending, key_bytes

log = logging.getLogger("hub.publisher")

FULL_CHECK_EVERY = 30
"""Watch intervals between full comparisons of our topics with the cluster's. In
between, one topic stands for all: a broker that lost its topics lost that one too."""


class TopicsRefusedError(KafkaError):  # type: ignore[misc]  # aiokafka is untyped
    """The broker refused to create topics the hub needs (replication above its live
    brokers, no Create right for the name, a policy): retried as an outage, its reason in
    the log and on /readyz, as an operator has to act."""

    def __init__(self, refused: dict[str, str]) -> None:
        super().__init__("the broker refused to create " + "; ".join(
            f"{name}: {why}" for name, why in sorted(refused.items())))
        self.topics = frozenset(refused)


def refusals(topic_errors: Iterable[tuple[Any, ...]]) -> dict[str, str]:
    """Topic -> why, for each topic a CreateTopics answer did not create. aiokafka returns
    these per-topic errors rather than raising them. A topic that exists already (another
    instance was first) is no refusal, nor a retriable error (a time-out, the controller
    moving): the creation may complete, and a topic still missing is found by the watch."""
    refused = {}
    for name, code, *message in topic_errors:
        if code not in (0, TopicAlreadyExistsError.errno) and not for_code(code).retriable:
            why = (message[0] if message and message[0] else None) or for_code(code).__name__
            refused[name] = f"{why} (error {code})"
    return refused


class Publisher:
    def __init__(self, settings: Settings, watch_interval: float = 1.0) -> None:
        self._settings = settings
        self._known_topics: set[str] = set()
        self._watch_interval = watch_interval
        self._watcher: asyncio.Task[None] | None = None
        # Set when the broker failed us: it may come back empty, so check before sending.
        self._unsure = False
        self._acked: dict[tuple[str, int], int] = {}
        """The highest offset the broker acknowledged per partition (`went_back`)."""

    async def start(self) -> None:
        # aiokafka clients bind to the running loop, so they are made here, not in __init__.
        options = client_options(self._settings)
        self._producer = AIOKafkaProducer(
            **options,
            acks="all",
            enable_idempotence=self._settings.kafka_idempotent_producer,
            # No linger: `send` queues a whole batch before the sender task first runs, so
            # it goes out in one request anyway; lingering only delayed it (p50 46 → 35 ms
            # at 1,000 complaints/s).
            linger_ms=0,
            max_batch_size=256 * 1024,
        )
        self._admin = AIOKafkaAdminClient(**options)
        try:
            await self._producer.start()
            await self._admin.start()
        except BaseException:  # the broker out of reach: leave nothing half open
            await self._producer.stop()
            await self._admin.close()
            raise
        self._watcher = asyncio.create_task(self._keep_topics(), name="publisher-topics")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self._producer.stop()
        await self._admin.close()

    async def ensure_topics(self, names: Iterable[str]) -> None:
        """Create missing topics with the configured partitions (not the broker's default)."""
        missing = sorted(set(names) - self._known_topics)
        if not missing:
            return
        await self._create(missing, set(await self._admin.list_topics()))
        self._known_topics.update(missing)
        # Tell the producer about all of them at once: left alone, aiokafka refreshes the
        # metadata of every known topic at each new topic's first send – quadratic in
        # agencies (a 30 s stall at 1,000 in the benchmark).
        await self._producer.client.set_topics(self._known_topics)

    async def missing_topics(self) -> set[str]:
        """Topics this publisher created or sent to that the cluster no longer has."""
        if not self._known_topics:
            return set()
        return self._known_topics - set(await self._admin.list_topics())

    async def _create(self, names: Iterable[str], existing: set[str]) -> None:
        new = [
            NewTopic(n, self._settings.topic_partitions, self._settings.topic_replication)
            for n in sorted(names)
            if n not in existing
        ]
        if not new:
            return
        answer = await self._admin.create_topics(new)
        # Logged as created before, and sends then waited for ever as on a broker away.
        if refused := refusals(answer.topic_errors):
            raise TopicsRefusedError(refused)
        log.info("created topics %s", ", ".join(t.name for t in new))

    async def _keep_topics(self) -> None:
        """Re-create our topics when the cluster has lost them.

        The embedded broker keeps topics in memory, so a restart empties it; worse, it then
        acknowledges records sent to a topic it does not have and drops them. The hub's
        consumers also wait (and keep retrying their commits) until their topics are back.
        """
        checks = 0
        while True:
            await asyncio.sleep(self._watch_interval)
            checks += 1
            try:
                # Bounded: with the broker away a metadata request waits out its full timeout.
                if self._unsure or checks % FULL_CHECK_EVERY == 0 or not await asyncio.wait_for(
                    self._has_sentinel(), 10
                ):
                    await asyncio.wait_for(self._restore_topics(), 10)
            except Exception as exc:  # the broker is away; /readyz says so
                self._unsure = True
                log.debug("topic check failed: %s", exc)

    async def _has_sentinel(self) -> bool:
        """Whether the cluster still has the first of our topics, asked for alone.

        Listing every topic each second cost 30 ms of CPU at 1,000 agency topics (all
        their partitions decoded in Python): 4.3 % of a core for an idle hub, 0.4 % now.
        """
        if not self._known_topics:
            return True
        client = self._producer.client
        # No auto-creation: a broker that would create it on the spot would hide the loss.
        answer = await client.send(
            client.get_random_node(), MetadataRequest([min(self._known_topics)], False)
        )
        return all(error_code == 0 for error_code, *_ in answer.topics)

    async def _restore_topics(self) -> None:
        missing = await self.missing_topics()
        if missing:
            log.warning("%d topics gone from the cluster, re-creating them", len(missing))
            try:
                await self._create(missing, set())
            except TopicsRefusedError as exc:
                # The others were made: only the sends to a refused one wait, as ensure_topics
                # asks for it again (and says why) each time.
                log.error("%s", exc)  # noqa: TRY400 - the reason is all there is to say
                self._known_topics -= exc.topics
        self._unsure = False

    async def send(self, pending: Sequence[Pending]) -> list[int]:
        """Send outbox rows and wait until the broker has acknowledged every one."""
        if self._unsure:
            await asyncio.wait_for(self._restore_topics(), 10)
        await self.ensure_topics(p.topic for p in pending)
        try:
            futures = []
            back: list[Any] = []
            for p in pending:
                future = await self._producer.send(
                    p.topic,
                    p.value,
                    key=key_bytes(p.key),
                    headers=[(k, v.encode()) for k, v in p.headers.items()],
                )
                # Noted as each is acknowledged, in the order the broker's answers resolve
                # them (its append order), whoever else is sending meanwhile: registered
                # before the next await, so before it can be resolved.
                future.add_done_callback(partial(self._note_ack, back))
                futures.append(future)
            await asyncio.gather(*futures)
        except BaseException:  # also a caller's timeout cancelling us
            self._unsure = True
            raise
        if back:
            self._unsure = True
            raise BrokerWentBackError(
                f"the broker acknowledged a record of {back[0].topic} at an offset it had "
                "given before: restarted, or its record lost")
        return [p.id for p in pending]

    def _note_ack(self, back: list[Any], future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        ack = future.result()
        if went_back(self._acked, ack.topic, ack.partition, ack.offset):
            back.append(ack)


class BrokerWentBackError(KafkaError):  # type: ignore[misc]
    """An acknowledgement the broker did not keep: a Kafka error, so callers treat it as the
    broker failing (the ingress answers 503, events are sent again)."""


def went_back(acked: dict[tuple[str, int], int], topic: str, partition: int, offset: int) -> bool:
    """Note an acknowledged offset; whether it was not above the last one of its partition.

    A partition's offsets only grow, and one connection returns acknowledgements in the
    order the broker appended the records. The embedded broker restarted empty acknowledges
    records for topics it no longer has, and just after a restart it acknowledged two
    records at one offset and kept one (complaints answered 202 were lost): both show as an
    offset that went back. (On Apache Kafka only an unclean leader election, losing records
    too.) Then the partition's count starts again from this offset.
    """
    last = acked.get((topic, partition))
    acked[(topic, partition)] = offset
    return last is not None and offset <= last
