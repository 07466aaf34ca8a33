"""DKI Jakarta: JAKI pushes one complaint record per message, as JSON.

    {"id_laporan": "JAKI-240502-0001", "judul": "...", "isi": "...",
     "kategori": "Jalan Rusak", "jenis_laporan": "Pengaduan", "status": "Menunggu",
     "wilayah": {"kota": "Jakarta Selatan", "kecamatan": "Tebet", "kelurahan": "Manggarai"},
     "alamat": "Jl. ...", "lat": -6.21, "lng": 106.85,
     "pelapor": {"nama": "...", "no_hp": "0812...", "email": "..."},
     "anonim": false, "rahasia": false, "foto": ["https://..."],
     "waktu_lapor": "2024-05-02 08:15:00"}

Field names are our reading of the push (confirm with the province; this module is
the one place to change). Times without a zone are WIB; `wilayah.kota` is one of
Jakarta's five administrative cities or Kepulauan Seribu, by name.
"""

from __future__ import annotations

from typing import Any

from hub.adapters.base import (
    Outcome,
    RawMessage,
    as_coordinate,
    as_flag,
    as_list,
    as_object,
    as_text,
    category_from,
    e164_phone,
    entry_outcome,
    iso_datetime,
    locate,
    message_id_of,
    parse_json_object,
    rejecting,
    report_type_from,
    status_from,
    urls,
)
from hub.model import Attachment, Channel, Complaint, Reporter, SourceRef, Status, tracking_id_for

STATUS_WORDS: dict[str, Status] = {
    "Menunggu": Status.RECEIVED,
    "Koordinasi": Status.VERIFIED,
    "Disposisi": Status.DISPOSITIONED,
    "Proses": Status.IN_PROGRESS,
    "Selesai": Status.CLOSED,
}

_PROVINCE = "31"


@rejecting
def normalize(raw: RawMessage) -> list[Outcome]:
    """One JAKI record is one complaint."""
    record = parse_json_object(raw)
    message_id = message_id_of(record.get("id_laporan"))
    return [entry_outcome(message_id, lambda: _complaint(raw, record))]


def _complaint(raw: RawMessage, record: dict[str, Any]) -> Complaint:
    # The record id is required: JAKI pushes a record again when it changes, and only
    # its own id keeps that one complaint with one tracking id.
    record_id = as_text(record.get("id_laporan"), "id_laporan", required=True) or ""
    # Complaint has no status; an unknown word is still refused so the mapping gets updated.
    status_from(STATUS_WORDS, record.get("status"), "status")
    area = as_object(record.get("wilayah"), "wilayah")
    person = as_object(record.get("pelapor"), "pelapor")
    address_parts = [
        as_text(record.get("alamat"), "alamat"),
        as_text(area.get("kelurahan"), "wilayah.kelurahan"),
        as_text(area.get("kecamatan"), "wilayah.kecamatan"),
    ]
    source = SourceRef(system=raw.source, message_id=record_id)
    return Complaint(
        tracking_id=tracking_id_for(source),
        source=source,
        channel=Channel.PROVINCIAL,
        report_type=report_type_from(record.get("jenis_laporan")),
        title=as_text(record.get("judul"), "judul"),
        description=as_text(record.get("isi"), "isi", required=True) or "",
        category=category_from(as_text(record.get("kategori"), "kategori")),
        location=locate(
            as_text(area.get("kota"), "wilayah.kota"),
            province_code=_PROVINCE,
            latitude=as_coordinate(record.get("lat"), "lat"),
            longitude=as_coordinate(record.get("lng"), "lng"),
            address=", ".join(p for p in address_parts if p) or None,
        ),
        reporter=Reporter(
            name=as_text(person.get("nama"), "pelapor.nama"),
            # An unparseable number is dropped; the complaint still counts.
            phone=e164_phone(as_text(person.get("no_hp"), "pelapor.no_hp")),
            email=as_text(person.get("email"), "pelapor.email"),
        ),
        anonymous=as_flag(record.get("anonim"), "anonim"),
        confidential=as_flag(record.get("rahasia"), "rahasia"),
        attachments=_photos(record.get("foto")),
        submitted_at=iso_datetime(record.get("waktu_lapor"), "waktu_lapor") or raw.received_at,
        received_at=raw.received_at,
    )


def _photos(value: Any) -> tuple[Attachment, ...]:
    """`foto`: a list of URLs; also one URL (or several) as text, or objects with a `url`:
    a photo written another way must not cost the complaint its text."""
    if isinstance(value, str):
        return tuple(Attachment(url=url) for url in urls(value))
    return tuple(
        Attachment(url=as_text(item.get("url") if isinstance(item, dict) else item,
                               "foto[]", required=True) or "")
        for item in as_list(value, "foto")
    )
