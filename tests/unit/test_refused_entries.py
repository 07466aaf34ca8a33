"""A record with many refused entries is one dead letter holding its original once: one per
entry made a 10,000-row export with every row broken hold 10,000 copies of itself."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import sqlalchemy as sa

from hub import topics
from hub.intake import Record
from hub.service import Hub
from tests.support import FakePublisher

HEADER = ("no_tiket,tgl_lapor,judul,uraian,kategori,jenis,status,kab_kota,alamat,nama_pelapor,"
          "hp_pelapor,email_pelapor,lampiran,rahasia\n")


def export(good: int, broken: int) -> Record:
    rows = [f"JTG-G{i:05d},04/11/2026 09:00,Jalan rusak,Jalan desa nomor {i} berlubang dan "
            f"membahayakan pengendara,jalan,Pengaduan,Belum Diverifikasi,3374,Desa {i},,,,,Tidak\n"
            for i in range(good)]
    rows += [f"JTG-B{i:05d},too few,cells\n" for i in range(broken)]
    return Record(topics.raw("prov-jateng"), 0, 7, None, (HEADER + "".join(rows)).encode(),
                  {"content-type": "text/csv"}, datetime.now(UTC))


async def test_an_export_with_thousands_of_broken_rows_is_one_dead_letter(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, publisher = driven
    record = export(good=2, broken=3000)
    await service.intake([record])
    sent = [(p.topic, json.loads(p.value)) for p in publisher.sent]
    assert sorted(e["type"] for t, e in sent if t != topics.DEAD_LETTER) == ["routing", "routing"]
    (letter,) = [e for t, e in sent if t == topics.DEAD_LETTER]
    assert letter["reason"] == "invalid_row"
    assert letter["detail"].startswith("3000 entries refused (invalid_row ×3000): JTG-B00000: ")
    with service.engine.connect() as conn:
        (sealed,) = conn.execute(sa.text("SELECT original FROM dead_letter")).scalars().all()
    assert service.rules.sealer.open(sealed) == record.value


async def test_a_single_refused_entry_keeps_its_own_detail_after_its_id(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, publisher = driven
    await service.intake([export(good=1, broken=1)])
    (letter,) = [json.loads(p.value) for p in publisher.sent if p.topic == topics.DEAD_LETTER]
    assert letter["reason"] == "invalid_row"
    # Named by its ticket: in a 4,000-row export the sender could not tell which row.
    assert letter["detail"] == "JTG-B00000: line 3 has 3 cells for 14 columns"


async def test_a_letter_is_named_by_the_entry_refused_for_its_content(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # A page feed webhook: two routine entries (reactions) and one post with no text first.
    feed = {"object": "page", "entry": [{"id": "1", "time": 1714612500, "changes": [
        {"field": "feed", "value": {"item": "reaction", "verb": "add", "post_id": "1_2",
                                    "from": {"id": "9"}, "created_time": 1714612500}},
        {"field": "feed", "value": {"item": "reaction", "verb": "add", "post_id": "1_3",
                                    "from": {"id": "9"}, "created_time": 1714612500}},
        {"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": "1_4",
                                    "comment_id": "1_4_5", "from": {"id": "8", "name": "Sari"},
                                    "created_time": 1714612500}},
    ]}]}
    service, publisher = driven
    await service.intake([Record(topics.raw("meta"), 0, 1, None, json.dumps(feed).encode(),
                                 {"content-type": "application/json"}, datetime.now(UTC))])
    (letter,) = [json.loads(p.value) for p in publisher.sent if p.topic == topics.DEAD_LETTER]
    assert letter["reason"] == "missing_field", letter["detail"]
    assert "not_a_complaint ×2" in letter["detail"]


async def test_a_new_record_at_a_place_seen_before_gets_its_own_dead_letter(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # Offsets start again when a broker restarted empty makes the topics anew: a new bad
    # record at lapor.raw.web:0:7 was taken for the old one delivered again, and dropped.
    service, publisher = driven
    first = Record(topics.raw("web"), 0, 7, None, b"{broken", {}, datetime.now(UTC))
    await service.intake([first])
    await service.intake([first])  # delivered again: still one letter
    later = Record(topics.raw("web"), 0, 7, None, b"{also broken", {}, datetime.now(UTC))
    await service.intake([later])
    letters = [json.loads(p.value) for p in publisher.sent if p.topic == topics.DEAD_LETTER]
    assert [base64.b64decode(letter["original"]) for letter in letters] == [
        b"{broken", b"{also broken"]


async def test_a_ticket_twice_in_one_export_with_other_content_is_not_passed_over(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # The second row took the first's tracking id and was dropped as the same message again:
    # another text, in another regency, neither stored nor dead-lettered.
    service, publisher = driven
    rows = ("E1,25/11/2026 14:05,t,Lampu jalan mati total,,,,3374,,,,,,Tidak\n"
            "E1,25/11/2026 14:05,t,Lampu jalan mati total,,,,3374,,,,,,Tidak\n"  # the same
            "E1,25/11/2026 15:05,t,Pipa air bocor di depan pasar,,,,3322,,,,,,Tidak\n")
    await service.intake([Record(topics.raw("prov-jateng"), 0, 8, None,
                                 (HEADER + rows).encode(), {"content-type": "text/csv"},
                                 datetime.now(UTC))])
    sent = [(p.topic, json.loads(p.value)) for p in publisher.sent]
    assert [e["type"] for t, e in sent if t != topics.DEAD_LETTER] == ["routing"]
    (letter,) = [e for t, e in sent if t == topics.DEAD_LETTER]
    assert (letter["reason"], letter["detail"]) == (
        "conflicting_entry", "E1 comes twice in this message with other content; the first is kept")
