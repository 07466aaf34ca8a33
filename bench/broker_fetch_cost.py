"""The embedded broker's CPU while 1,000 records/s are written and read: what does a fetch
cost as a partition fills up?

    .venv/bin/python bench/broker_fetch_cost.py [seconds]

Prints the broker's CPU (% of one core) every 3 s for three runs of `seconds` each:
- `no reader`: one producer, each record its own batch (as the latency phase's load
  generator writes them: every record to its own partition's next batch);
- `1,000 batches/s`: the same, with a consumer group reading along (20 ms fetch wait,
  committing each batch);
- `100 batches/s`: the same records and reader, ten records per batch.

The embedded broker's memory storage keeps each produced batch as one object; a fetch
that finds new records in a partition lists every object stored for that partition
(tansu-storage, `DynoStore::fetch`), so its cost grows with the batches written so far.
"""

from __future__ import annotations

import asyncio
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hub.bench import sample_cpu
from hub.embedded_broker import EmbeddedBroker

PARTITIONS = 3


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


async def produce(producer: AIOKafkaProducer, seconds: float, per_batch: int) -> int:
    """1,000 records/s, ten every 10 ms on a fixed schedule; `per_batch` consecutive
    records go to one partition, so they leave in one batch."""
    began, sent, pending = time.monotonic(), 0, []
    while (tick := began + sent / 1000) < began + seconds:
        await asyncio.sleep(max(tick - time.monotonic(), 0))
        for i in range(10):
            if per_batch == 1 and i:
                await asyncio.sleep(0)  # the sender takes each record as its own batch
            partition = (sent // per_batch) % PARTITIONS
            pending.append(await producer.send("t", b"x" * 1500, partition=partition))
            sent += 1
    await asyncio.gather(*pending)
    return sent


async def run(with_reader: bool, per_batch: int, seconds: float) -> tuple[list[float], int]:
    with EmbeddedBroker() as broker:
        assert broker.pid is not None
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic("t", PARTITIONS, 1)])
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=0)
        await producer.start()
        stop = asyncio.Event()
        reader = asyncio.create_task(consume(broker.bootstrap, stop)) if with_reader else None
        shares: dict[str, list[float]] = {}
        sampling = asyncio.create_task(sample_cpu({"broker": broker.pid}, shares, every=3.0))
        sent = await produce(producer, seconds, per_batch)
        sampling.cancel()
        stop.set()
        if reader is not None:
            await reader
        await producer.stop()
        return shares.get("broker", []), sent


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    for name, with_reader, per_batch in (
        ("no reader", False, 1), ("1,000 batches/s", True, 1), ("100 batches/s", True, 10)
    ):
        shares, sent = asyncio.run(run(with_reader, per_batch, seconds))
        print(f"{name:16} {sent / seconds:5.0f} records/s, broker CPU % every 3 s: "
              f"{' '.join(f'{p:.0f}' for p in shares)}")


if __name__ == "__main__":
    main()
