"""A batch of provincial exports is planned and stored in parts, not held whole
(`bench/intake_memory.py` measures what that saves)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from hub import intake, topics
from hub.calendar import load_calendar_config
from hub.deadlines import Rules
from hub.intake import Record, plan_parts
from hub.routing import Directory
from hub.service import Hub
from tests.support import FakePublisher

RULES = Rules.of(Directory.load(), load_calendar_config())
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def export(number: int, rows: int, *, repeat: tuple[int, int] | None = None) -> Record:
    """`rows` complaints with tickets E<number>-<row>; `repeat` = (export, row) adds that
    report once more under another ticket."""
    lines = ["no_tiket,uraian,kategori,kab_kota,alamat,hp_pelapor\n"]
    shown = [(number, i, f"E{number}-{i}") for i in range(rows)]
    if repeat is not None:
        shown.append((*repeat, f"E{number}-again"))
    lines += [f"{ticket},jalan desa {n} nomor {i} rusak parah sekali,jalan,3374,Dusun {n}-{i},"
              f"0812{n:03d}{i:04d}\n" for n, i, ticket in shown]
    return Record(topics.raw("prov-jateng"), number % 3, number, None,
                  "".join(lines).encode(), {"content-type": "text/csv"}, NOW)


def tickets(plan: intake.IntakePlan) -> list[str]:
    return [c.source.message_id for c, _ in plan.complaints]


def test_parts_are_cut_after_the_record_that_fills_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake, "PART_SIZE", 100)
    records = [export(n, 60) for n in range(5)]
    parts = list(plan_parts(records, RULES, NOW))
    assert [len(p.complaints) for p in parts] == [120, 120, 60]
    # in order, each record whole in one part
    assert [t for p in parts for t in tickets(p)] == [
        t for r in records for t in tickets(intake.plan_intake([r], RULES, NOW))
    ]
    assert {t.split("-")[0] for t in tickets(parts[1])} == {"E2", "E3"}


def test_a_batch_under_one_part_is_one_plan_and_an_empty_one_still_a_plan() -> None:
    (part,) = plan_parts([export(n, 10) for n in range(3)], RULES, NOW)
    assert len(part.complaints) == 30
    (empty,) = plan_parts([], RULES, NOW)
    assert not empty.complaints and not empty.dead_letters and not empty.fragments


def test_a_refused_record_is_a_dead_letter_in_the_part_it_falls_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(intake, "PART_SIZE", 10)
    broken = Record(topics.raw("prov-jateng"), 0, 99, None, b"no_tiket\n\n",
                    {"content-type": "text/csv"}, NOW)
    parts = list(plan_parts([export(0, 10), broken, export(1, 10)], RULES, NOW))
    assert [len(p.complaints) for p in parts] == [10, 10]
    assert [len(p.dead_letters) for p in parts] == [0, 1]


async def test_every_part_is_stored_and_a_repeat_in_a_later_part_is_linked(
    driven: tuple[Hub, FakePublisher], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(intake, "PART_SIZE", 50)
    service, publisher = driven
    await service.intake([export(0, 60), export(1, 60), export(2, 60, repeat=(0, 7))])
    events = [json.loads(p.value) for p in publisher.sent]
    assert [e["type"] for e in events].count("routing") == 180
    (duplicate,) = [e for e in events if e["type"] == "duplicate"]
    assert duplicate["duplicate"]["source"]["message_id"] == "E2-again"
    with service.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM complaint")).scalar_one() == 181
