"""Open311 GeoReport v2 POST service request -> Complaint."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest

from hub.adapters import SOURCES
from hub.adapters.base import Outcome, RawMessage, Rejection
from hub.adapters.open311 import SERVICE_CATEGORIES, normalize
from hub.categories import categories
from hub.model import Attachment, Channel, Complaint, SourceRef, tracking_id_for

FIXTURES = Path(__file__).parents[1] / "fixtures" / "open311"
RECEIVED = datetime(2024, 5, 2, 1, 20, tzinfo=UTC)

Form = list[tuple[str, str]]


def form(name: str) -> Form:
    return parse_qsl((FIXTURES / name).read_text(), keep_blank_values=True)


def run(fields: Form, message_id: str | None = None) -> list[Outcome]:
    body = urlencode(fields).encode()
    return normalize(
        RawMessage("open311", body, "application/x-www-form-urlencoded", RECEIVED, message_id)
    )


def without(fields: Form, *keys: str) -> Form:
    return [(k, v) for k, v in fields if k not in keys]


def complaint(outcomes: list[Outcome]) -> Complaint:
    (found,) = outcomes
    assert isinstance(found, Complaint), found
    return found


def test_service_request_becomes_a_complaint() -> None:
    found = complaint(run(form("pothole.urlencoded"), message_id="req-1"))
    source = SourceRef(system="open311", message_id="req-1")
    assert found.tracking_id == tracking_id_for(source)
    assert found.channel is Channel.OPEN311
    assert found.category == "infrastructure"
    assert found.title == "Pothole"  # the service is the subject, and GET requests.json names it
    assert found.description == (
        "Lubang besar di lajur kiri, sudah dua motor jatuh minggu ini.\n\n"
        "DEPTH: 30 cm\nLANE: kiri, tengah"
    )
    assert (found.location.latitude, found.location.longitude) == (-6.2383, 106.9896)
    assert found.location.address == "Jl. Ahmad Yani No. 1, Kota Bekasi"
    assert found.reporter.name == "Rina Kusuma"
    assert found.reporter.email == "rina@example.org"
    assert found.reporter.phone == "+6281234567890"
    assert found.attachments == (
        Attachment(url="https://storage.example.org/open311/IMG_2041.jpg"),
    )
    assert found.submitted_at == found.received_at == RECEIVED


def test_without_an_envelope_id_the_body_digest_keeps_resends_one_complaint() -> None:
    first = complaint(run(form("pothole.urlencoded")))
    assert first.source.message_id.startswith("sha256:")
    assert complaint(run(form("pothole.urlencoded"))).tracking_id == first.tracking_id


def test_unknown_service_is_other_and_a_bad_phone_is_dropped() -> None:
    found = complaint(run(form("address_only.urlencoded")))
    assert found.category == "other"
    assert found.location.address == "Jl. Niaga, Singkawang Barat"
    assert found.location.latitude is None
    assert found.reporter.phone is None


def test_every_mapped_category_exists() -> None:
    assert set(SERVICE_CATEGORIES.values()) <= set(categories())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda f: without(f, "service_code"), "missing_field"),
        (lambda f: without(f, "lat", "address_string"), "missing_field"),
        (lambda f: [*without(f, "lat"), ("lat", "utara")], "invalid_field"),
        (lambda f: [*without(f, "lat"), ("lat", "-96.5")], "invalid_complaint"),
    ],
)
def test_incomplete_requests_are_refused(change: Callable[[Form], Form], reason: str) -> None:
    (refused,) = run(change(form("pothole.urlencoded")), message_id="req-2")
    assert isinstance(refused, Rejection)
    assert (refused.reason, refused.source_message_id) == (reason, "req-2")


def test_a_request_without_description_is_its_service_and_answers() -> None:
    # GeoReport v2 makes the description optional: a service, a place and a photo suffice.
    found = complaint(run(without(form("pothole.urlencoded"), "description")))
    assert found.description == "Pothole\n\nDEPTH: 30 cm\nLANE: kiri, tengah"
    assert found.attachments


@pytest.mark.parametrize(("address", "code"), [
    ("Jl. Ahmad Yani No. 1, Kota Bekasi", "32.75"),
    ("Jl. Sudirman 5, Kota Bandung, Jawa Barat", "32.73"),
    ("Kab. Bekasi", "32.16"),
    ("Jl. Raya Mandala 12, Kabupaten Merauke, Papua", "93.01"),  # Papua Selatan since 2022
    ("Jl. Merdeka 3, Bekasi", None),  # a kota and a kabupaten of that name: not guessed
    ("Jl. Merdeka 3", None),
    # As Google Maps gives them, which GeoReport clients fill in: these went to the
    # national admin.
    ("Jl. Borobudur No.1, RT.001/RW.006, Pengasinan, Kec. Rawalumbu, Kota Bks, Jawa Barat "
     "17115, Indonesia", "32.75"),
    ("Jl. H. Syahrin, Kby. Baru, Kota Jkt Sel., Daerah Khusus Ibukota Jakarta 12140", "31.74"),
    ("Jl. Raya ITS, Keputih, Kec. Sukolilo, Kota SBY, Jawa Timur 60111", "35.78"),
    ("Pulo Gebang, Kec. Cakung, Kota Jkt Tim., Daerah Khusus Ibukota Jakarta 13950", "31.75"),
])
def test_the_region_an_address_names_routes_the_request(address: str, code: str | None) -> None:
    # Without it every GeoReport request went to the national admin, wherever it was.
    fields = [(k, address if k == "address_string" else v) for k, v in form("pothole.urlencoded")]
    found = complaint(run(fields))
    assert found.location.region_code == code
    assert found.location.address == address


def test_an_address_without_commas_routes_by_the_regency_it_names() -> None:
    # The address is read as the texts are: a regency with its kind word (in the
    # adapter registry, as the hub runs it).
    fields = [(k, "Jl. Ahmad Yani 1 Kota Bekasi" if k == "address_string" else v)
              for k, v in without(form("pothole.urlencoded"), "description")]
    body = urlencode(fields).encode()
    (found,) = SOURCES["open311"].normalize(
        RawMessage("open311", body, "application/x-www-form-urlencoded", RECEIVED))
    assert isinstance(found, Complaint)
    assert found.location.region_code == "32.75"
