"""The publisher keeps its topics on the real broker: one topic stands for all each watch
interval, the full list is compared only every FULL_CHECK_EVERY intervals."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.protocol.admin import CreateTopicsResponse_v1

from hub.app import build, reach_dependencies
from hub.producers import publisher as publisher_module
from hub.producers.publisher import Publisher, TopicsRefusedError, refusals
from hub.settings import CannotServe, Settings
from hub.store import Pending
from tests.support import wait_for

pytestmark = pytest.mark.broker


async def test_one_topic_stands_for_all_between_full_checks(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher_module, "FULL_CHECK_EVERY", 10)
    run = uuid.uuid4().hex[:8]
    names = [f"pt{run}.agency.{code}" for code in ("a", "b", "c")]
    publisher = Publisher(Settings(kafka_bootstrap=kafka_bootstrap), watch_interval=0.1)
    await publisher.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await publisher.ensure_topics(names)
        listed = asked = 0
        list_topics, has_sentinel = publisher._admin.list_topics, publisher._has_sentinel

        async def counted_list() -> list[str]:
            nonlocal listed
            listed += 1
            topics: list[str] = await list_topics()
            return topics

        async def counted_ask() -> bool:
            nonlocal asked
            asked += 1
            return await has_sentinel()

        monkeypatch.setattr(publisher._admin, "list_topics", counted_list)
        monkeypatch.setattr(publisher, "_has_sentinel", counted_ask)

        async def intervals() -> bool:
            return listed + asked >= 20  # each interval either asks or lists

        await wait_for(intervals, 20, "20 watch intervals", every=0.05)
        assert 1 <= listed <= 3, (listed, asked)  # every 10th interval, not every one

        async def back(name: str) -> bool:
            return name in await admin.list_topics()

        # The stand-in (the first name) gone: noticed at the next interval (0.1 s).
        await admin.delete_topics([names[0]])
        assert await wait_for(lambda: back(names[0]), 5, "the stand-in back", every=0.05) < 5
        # Another one gone: noticed at the next full comparison (every 10 intervals, 1 s).
        await admin.delete_topics([names[2]])
        assert await wait_for(lambda: back(names[2]), 10, "another topic back", every=0.05) < 10
    finally:
        await admin.close()
        await publisher.stop()


async def test_a_topic_another_instance_created_first_is_no_refusal(kafka_bootstrap: str) -> None:
    # The broker's answer for it is an error code (36, already exists), not an exception.
    name = f"pt{uuid.uuid4().hex[:8]}.agency.first"
    publisher = Publisher(Settings(kafka_bootstrap=kafka_bootstrap))
    await publisher.start()
    try:
        await publisher.ensure_topics([name])
        answer = await publisher._admin.create_topics([NewTopic(name, 3, 1)])
        assert [code for _, code, *_ in answer.topic_errors] == [36]
        assert refusals(answer.topic_errors) == {}
        await publisher._create([name], set())  # as when another instance was first
    finally:
        await publisher.stop()


async def test_a_topic_the_broker_refuses_is_named_and_stops_the_start(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """Apache Kafka answers a creation it refuses with an error per topic, which aiokafka
    returns: the hub logged "created topics" and its sends waited for ever as if the broker
    were away. The embedded broker refuses nothing, so its answer is given that error here,
    as Kafka words it for a replication above its live brokers."""
    async def refusing(_admin: AIOKafkaAdminClient, new: list[NewTopic]) -> Any:
        why = "Replication factor: 3 larger than available brokers: 1."
        return CreateTopicsResponse_v1(topic_errors=[(t.name, 38, why) for t in new])

    monkeypatch.setattr(AIOKafkaAdminClient, "create_topics", refusing)
    settings = Settings(kafka_bootstrap=kafka_bootstrap,
                        database_url=f"sqlite:///{tmp_path}/hub.db",
                        topic_prefix=f"pt{uuid.uuid4().hex[:8]}")
    publisher = Publisher(settings)
    await publisher.start()
    try:
        name = f"{settings.topic_prefix}.agency.refused"
        with pytest.raises(TopicsRefusedError, match=rf"{name}: Replication factor: 3 larger"):
            await publisher.ensure_topics([name])
        with pytest.raises(TopicsRefusedError):  # not taken for made: asked again
            await publisher.ensure_topics([name])
    finally:
        await publisher.stop()
    _, hub = build(settings)
    with pytest.raises(CannotServe, match=r"the broker refused to create .*error 38"):
        await reach_dependencies(hub, settings)


async def test_a_broker_without_idempotent_producers_is_named_at_start(
    kafka_bootstrap: str, tmp_path: Path,
) -> None:
    # The publisher started first, its producer idempotent: the start ended in the embedded
    # broker's bare UnknownError and a traceback, not the setting to change.
    settings = Settings(kafka_bootstrap=kafka_bootstrap, kafka_idempotent_producer=True,
                        database_url=f"sqlite:///{tmp_path}/hub.db",
                        topic_prefix=f"pt{uuid.uuid4().hex[:8]}")
    _, hub = build(settings)
    with pytest.raises(CannotServe, match="HUB_KAFKA_IDEMPOTENT_PRODUCER=true: the broker "
                       "gives no idempotent producer"):
        await reach_dependencies(hub, settings)


def test_a_retriable_error_is_no_refusal() -> None:
    # A time-out or a controller moving: the creation may complete, and the watch finds a
    # topic still missing. Taken for refusals, they stopped `lapor-hub run` at start.
    assert refusals([("a", 7, None), ("b", 41, "moved"), ("c", 38, "Replication factor"),
                     ("d", 29, None)]) == {
        "c": "Replication factor (error 38)", "d": "TopicAuthorizationFailedError (error 29)"}


async def test_topics_restored_but_one_refused_leave_the_others_to_send(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Lost topics re-created, one of them refused (replication above the brokers left): the
    # publisher stayed unsure, and every send failed with it – the whole intake for one topic.
    run = uuid.uuid4().hex[:8]
    fine, refused = f"pt{run}.agency.fine", f"pt{run}.agency.refused"
    real = AIOKafkaAdminClient.create_topics

    async def refusing_one(admin: AIOKafkaAdminClient, new: list[NewTopic]) -> Any:
        await real(admin, [t for t in new if t.name != refused])
        return CreateTopicsResponse_v1(topic_errors=[
            (t.name, 38, "Replication factor: 3 larger than available brokers: 1.")
            if t.name == refused else (t.name, 0, None) for t in new])

    publisher = Publisher(Settings(kafka_bootstrap=kafka_bootstrap), watch_interval=3600)
    await publisher.start()
    try:
        publisher._known_topics |= {fine, refused}  # as before the broker lost them
        publisher._unsure = True
        monkeypatch.setattr(AIOKafkaAdminClient, "create_topics", refusing_one)
        sent = await publisher.send([Pending(1, fine, "k", b"{}", {})])
        assert sent == [1]
        assert fine in await publisher._admin.list_topics()
        with pytest.raises(TopicsRefusedError, match=refused):  # asked again, and named
            await publisher.send([Pending(2, refused, "k", b"{}", {})])
    finally:
        await publisher.stop()
