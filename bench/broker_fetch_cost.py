"""The embedded broker's CPU while one producer writes 1,000 records/s, with and without a
consumer reading along: does a fetch cost more as the partitions fill up?

    .venv/bin/python bench/broker_fetch_cost.py [seconds]

Prints the broker's CPU (% of one core) every 3 s for `produce` and for `produce+consume`
(a consumer group reading the same topic with a 20 ms fetch wait, committing each batch).
"""

from __future__ import annotations

import asyncio
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hub.bench import sample_cpu
from hub.embedded_broker import EmbeddedBroker


async def consume(bootstrap: str, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        "t", bootstrap_servers=bootstrap, group_id="g", enable_auto_commit=False,
        fetch_max_wait_ms=20, auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        while not stop.is_set():
            if await consumer.getmany(timeout_ms=100):
                await consumer.commit()
    finally:
        await consumer.stop()


async def run(with_consumer: bool, seconds: float) -> list[float]:
    with EmbeddedBroker() as broker:
        assert broker.pid is not None
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic("t", 3, 1)])
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        await producer.start()
        stop = asyncio.Event()
        reader = asyncio.create_task(consume(broker.bootstrap, stop)) if with_consumer else None
        shares: dict[str, list[float]] = {}
        sampling = asyncio.create_task(sample_cpu({"broker": broker.pid}, shares, every=3.0))
        began, sent = time.monotonic(), 0
        while time.monotonic() - began < seconds:
            for _ in range(10):  # 10 records every 10 ms
                await producer.send("t", b"x" * 1500, key=str(sent).encode())
                sent += 1
            await asyncio.sleep(0.01)
        sampling.cancel()
        stop.set()
        if reader is not None:
            await reader
        await producer.stop()
        return shares.get("broker", [])


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    for with_consumer in (False, True):
        shares = asyncio.run(run(with_consumer, seconds))
        name = "produce+consume" if with_consumer else "produce"
        print(f"{name:16} broker CPU % every 3 s: {' '.join(f'{p:.0f}' for p in shares)}")


if __name__ == "__main__":
    main()
