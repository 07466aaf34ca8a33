"""Central Java CSV batch export -> one Complaint per row."""

from __future__ import annotations

import codecs
import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.adapters.base import WIB, Outcome, RawMessage, Rejection
from hub.adapters.provincial.jateng import STATUS_WORDS, normalize
from hub.model import Attachment, Channel, Complaint, ReportType, SourceRef, Status, tracking_id_for

EXPORT = Path(__file__).parents[1] / "fixtures" / "prov-jateng" / "export.csv"
RECEIVED = datetime(2024, 5, 2, 1, 20, tzinfo=UTC)
HEADER = (
    "no_tiket,tgl_lapor,judul,uraian,kategori,jenis,status,kab_kota,alamat,"
    "nama_pelapor,hp_pelapor,email_pelapor,lampiran,rahasia\n"
)


def run(body: bytes) -> list[Outcome]:
    return normalize(RawMessage("prov-jateng", body, "text/csv", RECEIVED))


def by_id(outcomes: list[Outcome]) -> dict[str, Outcome]:
    found: dict[str, Outcome] = {}
    for o in outcomes:
        key = o.source_message_id if isinstance(o, Rejection) else None
        if isinstance(o, Complaint):
            key = o.source.message_id
        assert key is not None, o
        found[key] = o
    return found


def test_every_row_is_one_outcome_and_bad_rows_do_not_cost_good_ones() -> None:
    outcomes = by_id(run(EXPORT.read_bytes()))
    kinds = {k: o.reason if isinstance(o, Rejection) else "complaint" for k, o in outcomes.items()}
    assert kinds == {
        "LG-2405-000101": "complaint",
        "LG-2405-000102": "complaint",
        "LG-2405-000103": "complaint",
        "LG-2405-000104": "missing_field",  # no uraian
        "LG-2405-000105": "invalid_field",  # unknown status word
        "LG-2405-000106": "invalid_row",  # too few cells
        "LG-2405-000107": "complaint",
    }


def test_row_fields_and_bps_region_code() -> None:
    found = by_id(run(EXPORT.read_bytes()))["LG-2405-000101"]
    assert isinstance(found, Complaint)
    source = SourceRef(system="prov-jateng", message_id="LG-2405-000101")
    assert found.tracking_id == tracking_id_for(source)
    assert found.channel is Channel.PROVINCIAL
    assert found.title == "Banjir rob"
    assert found.category == "environment"  # "Banjir"
    assert (found.location.region_code, found.location.region_name) == ("33.74", "Kota Semarang")
    assert found.location.address == "Jl. Ronggowarsito, Tanjung Mas"
    assert (found.reporter.name, found.reporter.phone) == ("Sri Lestari", "+6281234567890")
    assert found.attachments == (
        Attachment(url="https://laporgub.jatengprov.go.id/f/101a.jpg"),
        Attachment(url="https://laporgub.jatengprov.go.id/f/101b.jpg"),
    )
    assert found.submitted_at == datetime(2024, 5, 2, 8, 15, tzinfo=WIB)
    assert found.confidential is False


def test_region_name_multiline_text_and_report_types() -> None:
    outcomes = by_id(run(EXPORT.read_bytes()))
    info, aspiration = outcomes["LG-2405-000102"], outcomes["LG-2405-000107"]
    assert isinstance(info, Complaint)
    assert info.location.region_code == "33.74"  # "Kota Semarang"
    assert info.description == (
        "Mohon informasi syarat beasiswa\nuntuk mahasiswa dari keluarga tidak mampu."
    )
    assert info.report_type is ReportType.INFORMATION_REQUEST
    assert info.reporter.phone == "+6285712345678"
    assert info.confidential is True
    assert isinstance(aspiration, Complaint)
    assert aspiration.report_type is ReportType.ASPIRATION


def test_an_ambiguous_region_name_is_kept_unresolved_within_the_province() -> None:
    found = by_id(run(EXPORT.read_bytes()))["LG-2405-000103"]
    assert isinstance(found, Complaint)
    # Kota and Kabupaten Semarang both exist; the export is Central Java's, so the province
    # is sure (it went to the national admin, the name was no region).
    assert (found.location.region_code, found.location.region_name) == ("33", "Semarang")
    assert found.reporter.phone is None  # "0811" is too short to be a number


def test_the_same_export_gives_the_same_tracking_ids() -> None:
    assert run(EXPORT.read_bytes()) == run(EXPORT.read_bytes())


def test_a_spreadsheet_saving_csv_with_semicolons_gives_the_same_complaints() -> None:
    """A spreadsheet in an Indonesian locale writes ';' between cells (its decimal mark is
    the comma): the whole export was one "lacks columns" rejection."""
    rows = list(csv.reader(io.StringIO(EXPORT.read_text("utf-8-sig"), newline="")))
    semicolons = io.StringIO()
    csv.writer(semicolons, delimiter=";").writerows(rows)
    assert ";" in semicolons.getvalue().splitlines()[0]
    assert run(("\ufeff" + semicolons.getvalue()).encode()) == run(EXPORT.read_bytes())


def test_export_level_problems_are_one_rejection() -> None:
    for body, reason in [
        (b"", "invalid_payload"),
        (HEADER.encode(), "empty_batch"),
        (b"tiket,isi\nA,B\n", "invalid_payload"),
        (b"\x81" + HEADER.encode(), "invalid_payload"),  # 0x81, in no encoding: U+FFFD
        (b"no_tiket,uraian,uraian\nA,B,C\n", "invalid_payload"),
    ]:
        (refused,) = run(body)
        assert isinstance(refused, Rejection)
        assert refused.reason == reason


def test_dates_must_be_in_the_export_format() -> None:
    body = (HEADER + "T-1,kemarin sore,,Isi,,,,,,,,,,\n").encode()
    (refused,) = run(body)
    assert refused == Rejection("invalid_field", "tgl_lapor is not a date as dd/mm/yyyy hh:mm",
                                "T-1")


def test_dates_as_a_spreadsheet_saves_them_again_are_read() -> None:
    """Re-saved, the export's "02/05/2024 08:15" comes back with seconds, or a day alone."""
    for typed, day in [("02/05/2024 08:15:00", datetime(2024, 5, 2, 8, 15, tzinfo=WIB)),
                       ("2/5/2024", datetime(2024, 5, 2, tzinfo=WIB)),
                       ("02/05/2024 08.15", datetime(2024, 5, 2, 8, 15, tzinfo=WIB)),  # id locale
                       ("2024-05-02 08:15:00", datetime(2024, 5, 2, 8, 15, tzinfo=WIB))]:
        (found,) = run((HEADER + f"T-1,{typed},,Isi,,,,,,,,,,\n").encode())
        assert isinstance(found, Complaint), found
        assert found.submitted_at == day


def test_status_words_cover_the_lifecycle() -> None:
    assert STATUS_WORDS["Belum Diverifikasi"] is Status.RECEIVED
    assert STATUS_WORDS["Selesai"] is Status.CLOSED
    assert set(STATUS_WORDS.values()) == set(Status) - {Status.REPORTER_REPLIED}


def test_an_export_as_windows_or_unicode_text_saves_it_is_read() -> None:
    # Saved as "CSV" on Windows (1252) one "Andé" refused the whole export; "Unicode text"
    # is UTF-16 with tabs.
    text = HEADER + "T-1,02/05/2024 08:15,,Air PDAM keruh – sudah 3 hari,,,,,,Ria Andé,,,,\n"
    for body in (text.encode("cp1252"),
                 text.replace(",", "\t").encode("utf-16")):
        (found,) = run(body)
        assert isinstance(found, Complaint), found
        assert found.description == "Air PDAM keruh – sudah 3 hari"
        assert found.reporter.name == "Ria Andé"


def test_columns_without_a_name_are_passed_over_if_empty() -> None:
    # A sheet whose used range is wider than its data: "export repeats a column" before.
    wide = HEADER.rstrip("\n") + ",,\n"
    body = (wide + "T-1,02/05/2024 08:15,,Isi,,,,,,,,,,,,\n"
            + "T-2,02/05/2024 08:15,,Isi,,,,,,,,,,,,catatan\n").encode()
    found, refused = run(body)
    assert isinstance(found, Complaint)
    assert refused == Rejection("invalid_row", "line 3 has text under a column without a name",
                                "T-2")


UNCLOSED = "opens a quote it never closes: the lines after it are read on their own"


def test_a_quote_never_closed_is_refused_and_the_rows_after_it_read() -> None:
    body = (HEADER + "T-1,02/05/2024 08:15,,Isi,,,,,,,,,,\n"
            + 'T-2,02/05/2024 08:15,,"Lampu mati di ""gang 5,,,,,,,,,,\n'
            + "T-3,02/05/2024 08:15,,Isi,,,,,,,,,,\n"
            + "T-4,02/05/2024 08:15,,Isi,,,,,,,,,,\n").encode()
    found, refused, *after = run(body)
    assert isinstance(found, Complaint)
    assert refused == Rejection("invalid_row", f"line 3 {UNCLOSED}", "T-2")
    assert [c.source.message_id for c in after if isinstance(c, Complaint)] == ["T-3", "T-4"]


def test_a_row_is_never_taken_into_the_one_above_it() -> None:
    # T-2 opens a quote it never closes and T-3 holds a stray inch mark: an even count of
    # quotes, so T-3 went into T-2's description and gave it its region and reporter.
    body = (HEADER + 'T-1,02/05/2024 08:15,,Isi,,,,3374,,Sri,,,,\n'
            + 'T-2,02/05/2024 08:15,,"Kapan jalan diperbaiki,,,,3374,,Budi,,,,\n'
            + 'T-3,02/05/2024 08:15,,Pipa 4" bocor di pasar,,,,3322,,Ani,,,,\n'
            + 'T-4,02/05/2024 08:15,,Sampah,,,,3372,,Tono,,,,\n').encode()
    outcomes = run(body)
    assert [o.source.message_id if isinstance(o, Complaint) else
            o.reason if isinstance(o, Rejection) else o for o in outcomes] == [
        "T-1", "invalid_row", "T-3", "T-4"]
    third = outcomes[2]
    assert isinstance(third, Complaint)
    assert (third.description, third.reporter.name) == ('Pipa 4" bocor di pasar', "Ani")


def test_a_stray_quote_beside_a_cell_over_two_lines_is_read() -> None:
    # The odd count of quotes (4" and a quoted cell) refused a row the reader had read right.
    header = "no_tiket,tgl_lapor,judul,uraian,kategori\n"
    body = (header + 'F1,25/11/2026 14:05,Pipa 4" bocor,"Pipa air bocor\ndi depan rumah",Air\n'
            + "F2,25/11/2026 14:05,t,isi dua,Air\n").encode()
    first, second = run(body)
    assert isinstance(first, Complaint) and isinstance(second, Complaint)
    assert first.description == "Pipa air bocor\ndi depan rumah"


def test_a_line_the_csv_reader_cannot_take_is_refused_alone() -> None:
    huge = "x" * (csv.field_size_limit() + 1)
    body = (HEADER + f"T-1,02/05/2024 08:15,,{huge},,,,,,,,,,\n"
            + "T-2,02/05/2024 08:15,,Isi,,,,,,,,,,\n").encode()
    refused, found = run(body)
    assert isinstance(refused, Rejection) and refused.reason == "invalid_csv"
    assert refused.detail.startswith("line 2: field larger than field limit")
    assert isinstance(found, Complaint)


def test_attachments_listed_with_commas() -> None:
    body = (HEADER + "T-1,02/05/2024 08:15,,Isi,,,,,,,,,"
            '"https://f/1.jpg, https://f/2.jpg;https://f/3.jpg",\n').encode()
    (found,) = run(body)
    assert isinstance(found, Complaint)
    assert [a.url for a in found.attachments] == [
        "https://f/1.jpg", "https://f/2.jpg", "https://f/3.jpg"]


def test_a_row_saved_in_windows_1252_garbles_no_other_row() -> None:
    # Decoded whole as 1252 for one such row, every UTF-8 row read "Ungaranâ€“Bawen".
    utf8 = (HEADER + "T-1,02/05/2024 08:15,,Ruas Ungaran–Bawen berlubang,,,,,,,,,,\n").encode()
    appended = "T-2,02/05/2024 09:00,,Sampah menumpuk,,,,,,André,,,,\n".encode("cp1252")
    for body in (utf8 + appended, codecs.BOM_UTF8 + utf8 + appended):
        first, second = run(body)
        assert isinstance(first, Complaint) and isinstance(second, Complaint), (first, second)
        assert first.description == "Ruas Ungaran–Bawen berlubang"
        assert second.reporter.name == "André"


def test_a_line_of_utf_8_with_a_windows_1252_cell_keeps_both() -> None:
    # Read whole as 1252, the line's UTF-8 was garbled ("â€“", "cafÃ©"); with an emoji (a
    # byte 1252 lacks) beside the 1252 name, the whole export was refused.
    for text in ("Jalan rusak – sudah 2 minggu, café tutup", "Mohon bantuannya 🙏 jalan rusak"):
        line = (f"T-1;02/05/2024 08:15;;{text};;;;3374;;".encode()
                + "André".encode("cp1252") + b";;;;\r\n")
        first, second = run(HEADER.replace(",", ";").encode() + line
                            + b"T-2;02/05/2024 08:15;;Isi;;;;;;;;;;\r\n")
        assert isinstance(first, Complaint) and isinstance(second, Complaint), (first, second)
        assert (first.description, first.reporter.name) == (text, "André")


def test_a_quote_never_closed_in_the_last_column_swallows_no_row_unsaid() -> None:
    # A full row's worth of cells: the rows after it became part of its complaint.
    header = "no_tiket,kategori,uraian\n"
    body = (header + 'A1,Jalan,"Jalan rusak\nA2,Jalan,Lampu mati\nA3,Banjir,Banjir\n').encode()
    refused, *after = run(body)
    assert refused == Rejection("invalid_row", f"line 2 {UNCLOSED}", "A1")
    assert [c.source.message_id for c in after if isinstance(c, Complaint)] == ["A2", "A3"]


def test_a_closed_quote_over_two_lines_is_no_unclosed_one() -> None:
    header = "no_tiket,kategori,uraian,lampiran\n"
    body = (header + 'A1,Jalan,"baris satu\nbaris dua"\nA2,Jalan,Lampu mati,\n').encode()
    short, found = run(body)
    assert short == Rejection("invalid_row", "line 3 has 3 cells for 4 columns", "A1")
    assert isinstance(found, Complaint)


def test_a_comma_inside_an_attachment_url_stays() -> None:
    url = "https://res.cloudinary.com/x/image/upload/w_300,h_200/foto.jpg"
    body = (HEADER + f'T-1,02/05/2024 08:15,,Isi,,,,,,,,,"{url}, https://f/2.jpg",\n').encode()
    (found,) = run(body)
    assert isinstance(found, Complaint)
    assert [a.url for a in found.attachments] == [url, "https://f/2.jpg"]


def test_an_anonim_column_hides_the_citizen() -> None:
    # Not read, an anonymous citizen's name and number went to the agency.
    body = (HEADER.replace("rahasia\n", "rahasia,anonim\n")
            + "JTG-A1,04/11/2026 09:00,Jalan rusak,Jalan desa berlubang,jalan,Pengaduan,"
              "Belum Diverifikasi,3374,Desa A,Budi,081234567890,,,Tidak,Ya\n"
            + "JTG-A2,04/11/2026 09:00,Jalan rusak,Jalan kota berlubang,jalan,Pengaduan,"
              "Belum Diverifikasi,3374,Desa B,Sari,081234567891,,,Tidak,Tidak\n").encode()
    found = by_id(run(body))
    hidden, named = found["JTG-A1"], found["JTG-A2"]
    assert isinstance(hidden, Complaint) and isinstance(named, Complaint)
    assert (hidden.anonymous, named.anonymous) == (True, False)


def test_an_export_as_spreadsheets_and_systems_write_it_too() -> None:
    # Excel's "sep=;" line, a header retyped with spaces, ISO times with a T or an offset:
    # each refused the whole export or its rows.
    body = (b"sep=;\r\nNo Tiket;TGL LAPOR;Uraian\r\n"
            b"T-1;2026-11-25T14:05:00;Jalan rusak\r\n"
            b"T-2;2026-11-25 14:05:00+08:00;Lampu mati\r\n")
    first, second = run(body)
    assert isinstance(first, Complaint) and isinstance(second, Complaint), (first, second)
    assert first.submitted_at == datetime(2026, 11, 25, 7, 5, tzinfo=UTC)
    assert second.submitted_at == datetime(2026, 11, 25, 6, 5, tzinfo=UTC)


@pytest.mark.parametrize("code", ["3275", "3171", "3171010"])
def test_a_code_of_another_province_keeps_the_complaint_in_central_java(code: str) -> None:
    # BPS 3275 is Kota Bekasi: a Central Java report went to West Java's agencies, while a
    # name from elsewhere ("Kota Bekasi") stayed in the province.
    row = (f"LG-2405-009001,02/05/2024 08:15,Jalan,Jalan rusak di Ungaran,Jalan,Pengaduan,"
           f"Belum Diverifikasi,{code},Jl. Diponegoro,,,,,Tidak\n")
    (found,) = run((HEADER + row).encode())
    assert isinstance(found, Complaint), found
    assert found.location.region_code == "33"


def test_a_regency_field_typed_at_length_is_kept_as_the_address_not_refused() -> None:
    typed = "Desa Sukamaju RT 02 RW 05 " * 10
    row = f"J-LONG-1,2024-05-01 08:00,Jalan,Jalan desa rusak,jalan,,,{typed},,,,,,\n"
    (found,) = run((HEADER + row).encode())
    assert isinstance(found, Complaint), found
    assert (found.location.region_code, found.location.region_name) == ("33", "Jawa Tengah")
    assert found.location.address == typed.strip()
