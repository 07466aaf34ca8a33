"""A GeoReport request is looked up as its citizen hears of it: a request the hub linked to
an earlier one as its duplicate with the original's agency, expected time and last note, and
no note between agencies."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import sqlalchemy as sa

from hub import georeport, topics
from hub.intake import Record
from hub.model import FollowUpEvent, Status
from hub.service import Hub
from tests.support import FakePublisher

TEXT = "Saluran air tersumbat di Jl. Cempaka 12 dan banjir setiap kali hujan turun deras"


def open311_record(offset: int, first_name: str) -> Record:
    form = {"service_code": "drainage", "address_string": "Jl. Cempaka 12, Kota Bekasi",
            "first_name": first_name, "description": TEXT}
    return Record(topics.raw("open311"), 0, offset, None, urlencode(form).encode(),
                  {"content-type": "application/x-www-form-urlencoded"}, datetime.now(UTC))


def looked_up(service: Hub, ids: list[str]) -> list[dict[str, object]]:
    with service.engine.connect() as conn:
        return georeport.service_requests(conn, ids, service.rules.directory)


async def test_a_second_request_shows_the_answer_its_citizen_hears(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, _ = driven
    await service.intake([open311_record(0, "Ani")])
    await service.intake([open311_record(1, "Budi")])
    with service.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT tracking_id, duplicate_of, agency_code FROM complaint"
                                    " ORDER BY duplicate_of")).all()
    ((original, _, agency), (second, linked, _)) = sorted(rows, key=lambda r: r[1] is not None)
    assert linked == original
    now = datetime.now(UTC)
    steps = ((Status.NOT_AUTHORITY, "Bukan wewenang kami."), (Status.IN_PROGRESS, "Petugas berangkat."),
             (Status.RESPONDED, "Saluran sudah dibersihkan."))
    for n, (status, message) in enumerate(steps):
        event = FollowUpEvent(event_id=f"g-{n}", tracking_id=original, agency_code=agency,
                              status=status, at=now, message=message)
        await service.follow_up([Record(topics.FOLLOW_UP, 0, n, None,
                                        event.model_dump_json().encode(), {}, now)])
        with service.engine.connect() as conn:  # re-routed: the next holder answers
            agency = conn.execute(sa.text("SELECT agency_code FROM complaint WHERE tracking_id"
                                          " = :t"), {"t": original}).scalar_one()
    first, repeat = looked_up(service, [original, second])
    assert first["agency_responsible"] == "Pemerintah Kota Bekasi (Diskominfostandi)"  # re-routed
    assert first["status_notes"] == "responded – Saluran sudah dibersihkan."
    assert first["expected_datetime"] is not None
    for field in ("status", "status_notes", "agency_responsible", "expected_datetime"):
        assert repeat[field] == first[field], field


async def test_a_note_between_agencies_is_not_shown_to_the_citizen(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, _ = driven
    await service.intake([open311_record(0, "Ani")])
    with service.engine.connect() as conn:
        tracking_id, agency = conn.execute(
            sa.text("SELECT tracking_id, agency_code FROM complaint")).one()
    now = datetime.now(UTC)
    steps = ((Status.VERIFIED, None, "Laporan diterima dan diverifikasi."),
             (Status.DISPOSITIONED, "kota-bekasi-dishub",
              "Mohon Dishub cek, pelapor ini sering iseng."))
    for n, (status, target, message) in enumerate(steps):
        event = FollowUpEvent(event_id=f"n-{n}", tracking_id=tracking_id, agency_code=agency,
                              status=status, at=now, message=message, target_agency=target)
        await service.follow_up([Record(topics.FOLLOW_UP, 0, n, None,
                                        event.model_dump_json().encode(), {}, now)])
    (shown,) = looked_up(service, [tracking_id])
    assert shown["agency_responsible"] == "Dinas Perhubungan Kota Bekasi"
    assert shown["status_notes"] == "dispositioned – Laporan diterima dan diverifikasi."
