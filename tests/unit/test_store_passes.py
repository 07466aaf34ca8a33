"""One record can hold tens of thousands of complaints (a provincial export of short rows):
the store writes them in passes, as PostgreSQL binds at most 65,535 parameters a statement."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from hub import intake, topics
from hub.intake import Record
from hub.service import Hub
from tests.support import FakePublisher


def export(rows: int, *, repeat_first_as_last: bool = False) -> Record:
    """Rows with all three duplicate keys: a phone, a place, six opening words."""
    lines = ["no_tiket,uraian,kategori,kab_kota,alamat,hp_pelapor\n"]
    lines += [f"J{i},jalan desa nomor {i} rusak parah sekali,jalan,3374,Dusun {i},"
              f"0812{i:07d}\n" for i in range(rows)]
    if repeat_first_as_last:  # the same report again under another ticket number
        lines.append("JX,jalan desa nomor 0 rusak parah sekali,jalan,3374,Dusun 0,08120000000\n")
    return Record(topics.raw("prov-jateng"), 0, 1, None, "".join(lines).encode(),
                  {"content-type": "text/csv"}, datetime.now(UTC))


async def test_a_record_with_more_complaints_than_one_statement_binds_is_stored_whole(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, publisher = driven
    await service.intake([export(22_000)])  # 66,000 keys to look up
    assert len(publisher.sent) == 22_000
    with service.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM complaint")).scalar_one() == 22_000


async def test_passes_see_each_other_so_a_duplicate_in_a_later_pass_is_linked(
    driven: tuple[Hub, FakePublisher], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(intake, "PASS_SIZE", 100)
    service, publisher = driven
    await service.intake([export(250, repeat_first_as_last=True)])
    events = [json.loads(p.value) for p in publisher.sent]
    assert len(events) == 251
    assert [e["type"] for e in events].count("routing") == 250
    (duplicate,) = [e for e in events if e["type"] == "duplicate"]
    assert duplicate["duplicate"]["source"]["message_id"] == "JX"
