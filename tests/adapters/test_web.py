"""The lapor.go.id web form and mobile app -> Complaint."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hub.adapters import SOURCES
from hub.adapters.base import Outcome, RawMessage, Rejection
from hub.adapters.web import normalize
from hub.model import Channel, Complaint, SourceRef, tracking_id_for

FIXTURES = Path(__file__).parents[1] / "fixtures" / "web"
RECEIVED = datetime(2024, 5, 2, 1, 20, tzinfo=UTC)


def load(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return value


def run(payload: dict[str, Any], source: str = "web") -> list[Outcome]:
    body = json.dumps(payload).encode()
    return normalize(RawMessage(source, body, "application/json", RECEIVED))


def complaint(payload: dict[str, Any], source: str = "web") -> Complaint:
    (found,) = run(payload, source)
    assert isinstance(found, Complaint), found
    return found


def refusal(payload: dict[str, Any]) -> Rejection:
    (found,) = run(payload)
    assert isinstance(found, Rejection), found
    return found


def test_a_full_form_becomes_a_complaint() -> None:
    found = complaint(load("form.json"))
    source = SourceRef(system="web", message_id="LPR-2024-0502-001842")
    assert found.source == source
    assert found.tracking_id == tracking_id_for(source)
    assert found.channel is Channel.WEB
    assert found.category == "infrastructure"
    assert found.location.region_code == "32.75"
    assert (found.location.latitude, found.location.longitude) == (-6.2373, 107.0031)
    assert found.reporter.phone == "+6281298765432"
    assert found.reporter.nik == "3275014506850002"
    assert found.attachments[0].name == "lubang.jpg"
    assert found.submitted_at == datetime(2024, 5, 2, 1, 15, tzinfo=UTC)
    assert found.received_at == RECEIVED


def test_the_app_posts_the_same_form() -> None:
    assert complaint(load("form.json"), "mobile").channel is Channel.MOBILE


def test_what_people_type_by_hand_is_read_as_they_write_it() -> None:
    found = complaint(load("typed_by_hand.json"))
    assert found.reporter.phone == "+6281234567890"
    assert found.reporter.nik == "3216011203900003"
    assert (found.location.latitude, found.location.longitude) == (-6.2615, 107.152)


@pytest.mark.parametrize("typed", [
    "081234567890", "0812-3456-7890", "0812 3456 7890", "+62 812-3456-7890", "6281234567890",
    "(0812) 3456 7890",
])
def test_a_phone_number_in_local_or_grouped_form_is_kept_in_e164(typed: str) -> None:
    form = {**load("form.json"), "pelapor": {"nama": "Budi", "telepon": typed}}
    assert complaint(form).reporter.phone == "+6281234567890"


@pytest.mark.parametrize("typed", ["12345", "nomor saya 0812", "+1"])
def test_a_phone_that_is_no_number_is_dropped_not_the_complaint(typed: str) -> None:
    form = {**load("form.json"), "pelapor": {"nama": "Budi", "telepon": typed}}
    found = complaint(form)
    assert found.reporter.phone is None
    assert found.reporter.name == "Budi"


@pytest.mark.parametrize("typed", ["3275 0145 0685 0002", "32.75.01.450685.0002", "3275-0145-0685-0002"])
def test_a_nik_in_groups_is_kept_as_its_16_digits(typed: str) -> None:
    form = {**load("form.json"), "pelapor": {"nik": typed}}
    assert complaint(form).reporter.nik == "3275014506850002"


@pytest.mark.parametrize("typed", ["3275 0145 0685", "3275O14506850002", "３２７５０１４５０６８５０００２"])
def test_a_nik_that_is_not_16_digits_is_refused_with_the_field_named(typed: str) -> None:
    found = refusal({**load("form.json"), "pelapor": {"nik": typed}})
    assert (found.reason, found.detail) == (
        "invalid_field", "pelapor.nik must be the 16 digits of a NIK"
    )


def test_coordinates_that_are_no_numbers_are_refused_with_the_field_named() -> None:
    form = load("form.json")
    found = refusal({**form, "lokasi": {**form["lokasi"], "lat": "sekitar -6.2"}})
    assert (found.reason, found.detail) == ("invalid_field", "lokasi.lat must be a number")


@pytest.mark.parametrize(("typed", "code"), [
    ("3275", "32.75"), ("327501", "32.75.01"), ("3275011001", "32.75.01.1001"), ("32", "32"),
    ("32.75", "32.75"),
])
def test_a_region_code_without_its_dots_is_read(typed: str, code: str) -> None:
    form = load("form.json")
    found = complaint({**form, "lokasi": {**form["lokasi"], "kode_wilayah": typed}})
    assert found.location.region_code == code


@pytest.mark.parametrize(("written", "code"), [
    ("32.10", "32.10"), ("32.75", "32.75"), ("3210", "32.10"),
])
def test_a_region_code_sent_as_a_number_is_read_as_written(written: str, code: str) -> None:
    # The number 32.10 (Kabupaten Majalengka) was read as "32.1" and the complaint refused.
    form = load("form.json")
    body = json.dumps({**form, "lokasi": {**form["lokasi"], "kode_wilayah": "@"}})
    (found,) = normalize(RawMessage("web", body.replace('"@"', written).encode(),
                                    "application/json", RECEIVED))
    assert isinstance(found, Complaint), found
    assert found.location.region_code == code


@pytest.mark.parametrize("typed", ["32-75", "327", "32.7", "kota bekasi"])
def test_a_region_code_that_is_none_is_refused_with_the_field_named(typed: str) -> None:
    form = load("form.json")
    found = refusal({**form, "lokasi": {**form["lokasi"], "kode_wilayah": typed}})
    assert (found.reason, found.detail) == (
        "invalid_field", "lokasi.kode_wilayah must be a Kemendagri code such as 32.75"
    )


def test_a_place_named_without_a_code_is_resolved_by_its_name() -> None:
    # Without kode_wilayah the complaint had no region and went to the national admin.
    found = complaint({"id": "w-name", "isi": "Jalan rusak parah",
                       "lokasi": {"nama": "Kota Bekasi"}})
    assert (found.location.region_code, found.location.region_name) == ("32.75", "Kota Bekasi")
    vague = complaint({"id": "w-vague", "isi": "Jalan rusak parah", "lokasi": {"nama": "Bekasi"}})
    assert (vague.location.region_code, vague.location.region_name) == (None, "Bekasi")
    given = complaint({"id": "w-code", "isi": "Jalan rusak parah",
                       "lokasi": {"nama": "dekat pasar", "kode_wilayah": "32.16"}})
    assert (given.location.region_code, given.location.region_name) == ("32.16", "dekat pasar")


def test_a_place_in_the_street_address_is_resolved() -> None:
    # "lokasi.alamat" was kept but never read for the region: the national admin had it.
    found = complaint({"id": "w-alamat", "isi": "Jalan rusak parah", "lokasi": {
        "nama": "dekat pasar", "alamat": "Jl. Ahmad Yani No. 1, Bekasi Selatan, Kota Bekasi 17141"}})
    assert (found.location.region_code, found.location.region_name) == ("32.75", "dekat pasar")
    named = complaint({"id": "w-nama", "isi": "Jalan rusak parah",
                       "lokasi": {"nama": "Jl. Ahmad Yani No. 1, Kota Bekasi"}})
    assert named.location.region_code == "32.75"


def test_a_code_of_no_region_today_is_not_routed_by() -> None:
    # Kota Sorong was 92.71 before Papua Barat Daya (96) was made: routed to Papua Barat.
    moved = complaint({"id": "w-sorong", "isi": "Jalan rusak parah",
                       "lokasi": {"kode_wilayah": "92.71", "nama": "Kota Sorong"}})
    assert moved.location.region_code == "96.71"
    typo = complaint({"id": "w-typo", "isi": "Jalan rusak parah",
                      "lokasi": {"kode_wilayah": "32.99"}})
    assert typo.location.region_code is None


@pytest.mark.parametrize(("chosen", "target"), [
    ("KOTA-BEKASI-DINKES", "kota-bekasi-dinkes"),
    (" kota-bekasi-dinkes ", "kota-bekasi-dinkes"),
    ("Dinas Kesehatan Kota Bekasi", None),  # a name, no code: routed by rule
])
def test_the_agency_chosen_is_read_as_a_code_or_left_out(chosen: str, target: str | None) -> None:
    # In capitals, or as a name, it refused the whole complaint (invalid_complaint).
    assert complaint(load("form.json") | {"instansi_tujuan": chosen}).target_agency == target


def test_coordinates_with_a_decimal_comma_are_read() -> None:
    form = load("form.json")
    found = complaint(form | {"lokasi": {**form["lokasi"], "lat": "-6,2373", "lng": "106,99"}})
    assert (found.location.latitude, found.location.longitude) == (-6.2373, 106.99)


LONG_PLACE = ("Jl. Raya Hankam Gg. Masjid Al-Ikhlas No. 17 RT 003 RW 012 dekat warung Bu Endang "
              "seberang SDN Jatiranggon 3 Kelurahan Jatiranggon Kecamatan Jatisampurna (masuk gang "
              "sebelah kanan setelah pos ronda, rumah cat hijau pagar hitam) Kota Bekasi")


@pytest.mark.parametrize("code", [None, "32.75"])
def test_a_place_typed_at_length_is_kept_as_the_address_not_refused(code: str | None) -> None:
    # A citizen describing the place in lokasi.nama (238 characters) had the whole complaint
    # refused: "region_name: String should have at most 200 characters", a field not in the form.
    place: dict[str, Any] = {"nama": LONG_PLACE, **({"kode_wilayah": code} if code else {})}
    body = json.dumps({"id": "w-long-place", "isi": "Jalan berlubang", "lokasi": place})
    # As the ingress and intake read it: the region also from the text it names.
    (found,) = SOURCES["web"].normalize(
        RawMessage("web", body.encode(), "application/json", RECEIVED))
    assert isinstance(found, Complaint), found
    assert found.location.region_code == "32.75"
    assert found.location.region_name in (None, "Kota Bekasi")
    assert found.location.address == LONG_PLACE


def test_a_place_typed_at_length_goes_before_the_address() -> None:
    place = {"nama": LONG_PLACE, "alamat": "Gang Mawar"}
    body = json.dumps({"id": "w-long-place-2", "isi": "Jalan berlubang", "lokasi": place})
    (found,) = SOURCES["web"].normalize(
        RawMessage("web", body.encode(), "application/json", RECEIVED))
    assert isinstance(found, Complaint), found
    assert found.location.region_code == "32.75"
    assert found.location.address == f"{LONG_PLACE}, Gang Mawar"
