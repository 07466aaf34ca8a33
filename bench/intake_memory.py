"""Peak memory of the intake on one batch of provincial exports.

    .venv/bin/python bench/intake_memory.py [exports ...]

For each count (default 1 3 6), a fresh process runs `Hub.intake` on one batch of that
many Central Java CSV exports of 10,000 short rows each (0.83 MB, under the broker's
1 MB record limit; one fetch can bring one such record per raw partition) against a
new SQLite database in a temp dir, its events counted and dropped, and prints its peak
RSS (VmHWM) and the seconds the batch took.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hub import migrate, store, topics
from hub.bench import peak_rss_mb
from hub.calendar import load_calendar_config
from hub.deadlines import Rules
from hub.intake import Record
from hub.routing import Directory
from hub.service import Hub

ROWS = 10_000


def export(number: int) -> Record:
    lines = ["no_tiket,uraian,kategori,kab_kota,alamat,hp_pelapor\n"]
    lines += [f"J{number}-{i},jalan desa nomor {i} rusak parah sekali,jalan,3374,Dusun {i},"
              f"0812{i:07d}\n" for i in range(ROWS)]
    return Record(topics.raw("prov-jateng"), number % 3, number, None,
                  "".join(lines).encode(), {"content-type": "text/csv"}, datetime.now(UTC))


class Counting:
    """A publisher that only counts: what a test's publisher keeps would be measured too."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, pending: Sequence[Any]) -> list[int]:
        self.sent += len(pending)
        return [p.id for p in pending]


def one(exports: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/hub.db"
        migrate.upgrade(url)
        engine = store.make_engine(url)
        publisher = Counting()
        hub = Hub(engine, publisher, Rules.of(Directory.load(), load_calendar_config()))  # type: ignore[arg-type]
        batch = [export(n) for n in range(exports)]
        began = time.perf_counter()
        asyncio.run(hub.intake(batch))
        took = time.perf_counter() - began
        engine.dispose()
    print(f"{exports} exports, {publisher.sent:,} events: peak RSS {peak_rss_mb():.0f} MB, "
          f"{took:.1f} s", flush=True)


def main(argv: Sequence[str]) -> None:
    if argv[:1] == ["_one"]:
        one(int(argv[1]))
        return
    for exports in argv or ["1", "3", "6"]:
        subprocess.run([sys.executable, __file__, "_one", exports], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
