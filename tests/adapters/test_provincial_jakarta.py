"""Jakarta JAKI push -> Complaint."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hub.adapters.base import WIB, Outcome, RawMessage, Rejection
from hub.adapters.provincial.jakarta import STATUS_WORDS, normalize
from hub.model import Attachment, Channel, Complaint, ReportType, SourceRef, Status, tracking_id_for

FIXTURES = Path(__file__).parents[1] / "fixtures" / "prov-jakarta"
RECEIVED = datetime(2024, 5, 2, 1, 20, tzinfo=UTC)


def load(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return value


def run(record: dict[str, Any]) -> list[Outcome]:
    body = json.dumps(record).encode()
    return normalize(RawMessage("prov-jakarta", body, "application/json", RECEIVED))


def complaint(outcomes: list[Outcome]) -> Complaint:
    (found,) = outcomes
    assert isinstance(found, Complaint), found
    return found


def test_status_words_map_onto_the_normalized_statuses() -> None:
    assert STATUS_WORDS == {
        "Menunggu": Status.RECEIVED,
        "Koordinasi": Status.VERIFIED,
        "Disposisi": Status.DISPOSITIONED,
        "Proses": Status.IN_PROGRESS,
        "Selesai": Status.CLOSED,
    }


def test_jaki_record_becomes_a_complaint() -> None:
    found = complaint(run(load("menunggu.json")))
    source = SourceRef(system="prov-jakarta", message_id="JAKI-240502-0001")
    assert found.source == source
    assert found.tracking_id == tracking_id_for(source)
    assert found.channel is Channel.PROVINCIAL
    assert found.report_type is ReportType.COMPLAINT
    assert found.title == "Trotoar rusak di Jl. Tebet Raya"
    assert found.category == "infrastructure"  # "Jalan Rusak"
    # Kemendagri 31.74 is Jakarta Selatan (BPS numbers it 3171).
    assert found.location.region_code == "31.74"
    assert found.location.address == "Jl. Tebet Raya No. 84, Tebet Barat, Tebet"
    assert (found.location.latitude, found.location.longitude) == (-6.2265, 106.8559)
    assert found.reporter.phone == "+6281234567890"
    assert found.reporter.name == "Dimas Pratama"
    assert found.attachments == (
        Attachment(url="https://jaki.jakarta.go.id/media/laporan/240502-0001-1.jpg"),
    )
    assert found.submitted_at == datetime(2024, 5, 2, 8, 15, tzinfo=WIB)


def test_a_later_push_of_the_same_record_keeps_its_tracking_id() -> None:
    first = complaint(run(load("menunggu.json")))
    later = complaint(run(load("menunggu.json") | {"status": "Proses"}))
    assert later.tracking_id == first.tracking_id


def test_information_request_flags_and_unresolved_region() -> None:
    found = complaint(run(load("selesai.json")))
    assert found.report_type is ReportType.INFORMATION_REQUEST
    assert (found.anonymous, found.confidential) == (True, True)
    # No such kota: the province's own system puts it in the province, by its own name.
    assert (found.location.region_code, found.location.region_name) == ("31", "Jakarta Tengah")
    assert found.reporter.phone is None  # "12345" is no phone number
    assert found.reporter.name == "Warga"


@pytest.mark.parametrize("word", ["Koordinasi", "  disposisi ", "SELESAI"])
def test_status_words_are_read_without_regard_to_case(word: str) -> None:
    complaint(run(load("menunggu.json") | {"status": word}))


def test_an_unknown_status_word_is_refused_with_the_record_id() -> None:
    (refused,) = run(load("menunggu.json") | {"status": "Ditolak"})
    assert refused == Rejection("invalid_field", "unknown status 'Ditolak'", "JAKI-240502-0001")


def test_a_record_without_its_id_is_refused() -> None:
    record = {k: v for k, v in load("menunggu.json").items() if k != "id_laporan"}
    assert run(record) == [Rejection("missing_field", "id_laporan is required")]


@pytest.mark.parametrize("photos", [
    "https://jaki.example/1.jpg, https://jaki.example/2.jpg",
    [{"url": "https://jaki.example/1.jpg"}, {"url": "https://jaki.example/2.jpg"}],
])
def test_photos_written_another_way_are_kept_with_the_complaint(photos: object) -> None:
    # "foto must be a list" or "foto[] must be text" refused the whole complaint.
    found = complaint(run(load("menunggu.json") | {"foto": photos}))
    assert [a.url for a in found.attachments] == [
        "https://jaki.example/1.jpg", "https://jaki.example/2.jpg"]


def test_a_city_field_typed_at_length_is_kept_as_the_address_not_refused() -> None:
    # A city field over a region name's 200 characters refused the whole complaint
    # ("region_name: String should have at most 200 characters").
    record = load("menunggu.json")
    typed = "Jakarta Selatan, " + "dekat halte busway dan pasar, masuk gang kedua, " * 5
    found = complaint(run(record | {"wilayah": {**record["wilayah"], "kota": typed}}))
    assert found.location.region_code == "31"  # the province's own system: Jakarta's
    assert found.location.address is not None
    assert found.location.address.startswith(typed.strip())
    assert found.location.address.endswith("Jl. Tebet Raya No. 84, Tebet Barat, Tebet")
