"""The lapor.go.id web form and the mobile app (same fields), posted as JSON.

Field names are the form's own (Indonesian); see tests/fixtures/web/ for examples.
What people type by hand is read as they write it: phone numbers in local form
(0812-3456-7890), a NIK in groups, a region code without its dots (3275), coordinates
as numbers or numeric text.
"""

from __future__ import annotations

import re
from typing import Any

from hub import regions
from hub.adapters.base import (
    Outcome,
    RawMessage,
    RejectedError,
    as_coordinate,
    as_flag,
    as_text,
    e164_phone,
    iso_datetime,
    locate,
    parse_json_object,
    place_words,
    rejecting,
    report_type_from,
)
from hub.categories import category_code
from hub.model import (
    AGENCY_CODE_PATTERN,
    REGION_CODE_PATTERN,
    Attachment,
    Channel,
    Complaint,
    Location,
    Reporter,
    SourceRef,
    tracking_id_for,
)


@rejecting
def normalize(raw: RawMessage) -> list[Outcome]:
    """One form submission is one complaint."""
    form = parse_json_object(raw)
    channel = Channel.MOBILE if raw.source == "mobile" else Channel.WEB
    source = SourceRef(
        system=raw.source, message_id=as_text(form.get("id"), "id") or raw.fallback_message_id()
    )
    place = form.get("lokasi") or {}
    if not isinstance(place, dict):
        raise RejectedError("invalid_field", "lokasi must be an object")
    person = form.get("pelapor") or {}
    if not isinstance(person, dict):
        raise RejectedError("invalid_field", "pelapor must be an object")
    category_text = as_text(form.get("kategori"), "kategori")
    return [
        Complaint(
            tracking_id=tracking_id_for(source),
            source=source,
            channel=channel,
            report_type=report_type_from(form.get("jenis_laporan")),
            needs_inspection=as_flag(form.get("berkadar_pengawasan"), "berkadar_pengawasan"),
            title=as_text(form.get("judul"), "judul"),
            description=as_text(form.get("isi"), "isi", required=True) or "",
            category=category_code(category_text) or ("other" if category_text else None),
            target_agency=_target(form.get("instansi_tujuan")),
            location=_location(place),
            reporter=Reporter(
                name=as_text(person.get("nama"), "pelapor.nama"),
                nik=_nik(person.get("nik")),
                # Typed by hand: 0812-3456-7890 as often as +62…; a number that is not
                # one is dropped, as on every channel, not the complaint with it.
                phone=e164_phone(as_text(person.get("telepon"), "pelapor.telepon")),
                email=as_text(person.get("email"), "pelapor.email"),
            ),
            anonymous=as_flag(form.get("anonim"), "anonim"),
            confidential=as_flag(form.get("rahasia"), "rahasia"),
            attachments=tuple(_attachments(form.get("lampiran"))),
            occurred_at=iso_datetime(form.get("tanggal_kejadian"), "tanggal_kejadian"),
            submitted_at=iso_datetime(form.get("dikirim_pada"), "dikirim_pada") or raw.received_at,
            received_at=raw.received_at,
        )
    ]


REGION_CODE = re.compile(REGION_CODE_PATTERN)
AGENCY_CODE = re.compile(AGENCY_CODE_PATTERN)


def _target(value: Any) -> str | None:
    """The agency the citizen chose, as a code in any case ("KOTA-BEKASI-DINKES"); a choice
    that is no code (an agency's name) is left out – routed by rule, not refused whole."""
    text = as_text(value, "instansi_tujuan")
    code = text.lower() if text else None
    return code if code and AGENCY_CODE.fullmatch(code) else None


def _location(place: dict[str, Any]) -> Location:
    """The form's place; without a code, its region is read from the name ("Kota Bekasi"),
    as the other channels' are, rather than left to the national admin."""
    code = _region_code(place.get("kode_wilayah"))
    if code is not None and regions.by_code(code) is None:
        # Well formed but no region of today's table (Papua Barat's 92.71, now Papua Barat
        # Daya's 96.71; a typo): a false code routes wrong, the name may yet say where.
        code = None
    name = as_text(place.get("nama"), "lokasi.nama")
    latitude = as_coordinate(place.get("lat"), "lokasi.lat")
    longitude = as_coordinate(place.get("lng"), "lokasi.lng")
    # A place described at length is read as the address it is, for the region too.
    name, address = place_words(name, as_text(place.get("alamat"), "lokasi.alamat"))
    if code is None:
        found = locate(name, latitude=latitude, longitude=longitude, address=address)
        # The street address names the city too ("Jl. Ahmad Yani No. 1, Kota Bekasi").
        if found.region_code is None and address and (region := regions.resolve(address)):
            return found.model_copy(update={"region_code": region.code,
                                            "region_name": name or region.name})
        return found
    return Location(region_code=code, region_name=name, latitude=latitude, longitude=longitude,
                    address=address)


def _region_code(value: Any) -> str | None:
    """A Kemendagri code, PP.KK.CC.DDDD or its first parts; also written without dots."""
    text = as_text(value, "lokasi.kode_wilayah")
    if text is None:
        return None
    if text.isascii() and text.isdigit() and len(text) in (2, 4, 6, 10):
        text = ".".join(part for part in (text[:2], text[2:4], text[4:6], text[6:]) if part)
    if not REGION_CODE.fullmatch(text):
        raise RejectedError("invalid_field",
                            "lokasi.kode_wilayah must be a Kemendagri code such as 32.75")
    return text


NIK_SEPARATORS = str.maketrans("", "", " .-")


def _nik(value: Any) -> str | None:
    """The 16-digit NIK, as people write it too: in groups with spaces, dots or dashes."""
    text = as_text(value, "pelapor.nik")
    if text is None:
        return None
    digits = text.translate(NIK_SEPARATORS)
    if not (digits.isascii() and digits.isdigit() and len(digits) == 16):
        raise RejectedError("invalid_field", "pelapor.nik must be the 16 digits of a NIK")
    return digits


def _attachments(value: Any) -> list[Attachment]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RejectedError("invalid_field", "lampiran must be a list")
    found = []
    for item in value:
        if isinstance(item, str):
            found.append(Attachment(url=item))
        elif isinstance(item, dict):
            found.append(
                Attachment(
                    url=item.get("url", ""), media_type=item.get("tipe"), name=item.get("nama")
                )
            )
        else:
            raise RejectedError("invalid_field", "lampiran items must be URLs or objects")
    return found
