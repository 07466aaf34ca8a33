"""aiokafka's complaints while the broker is away: one line per kind each 30 s, with the count
of those it stands for and since when."""

from __future__ import annotations

import logging
import time

from hub.cli import _Repeats


def record(name: str, msg: str, at: float) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, ("node 1",), None)
    made.created = at
    return made


def test_a_repeated_complaint_is_shown_once_each_period_with_the_count_it_stood_for() -> None:
    repeats = _Repeats(every=30)
    flood = [record("aiokafka.conn", "Unable connect to %s", 1000 + i / 190) for i in range(190)]
    assert [repeats.filter(r) for r in flood].count(True) == 1
    other = record("aiokafka.cluster", "Unable to update metadata from %s", 1001)
    assert repeats.filter(other)  # another kind has its own line
    later = record("aiokafka.conn", "Unable connect to %s", 1031)
    assert repeats.filter(later)
    since = time.strftime("%H:%M:%S", time.localtime(flood[1].created))
    assert later.getMessage() == f"Unable connect to node 1 (and 189 more like it since {since})"
    ours = [record("hub.service", "intake failed: %s", 1031) for _ in range(3)]
    assert all(repeats.filter(r) for r in ours)  # the hub's own lines back off themselves
