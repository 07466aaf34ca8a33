"""Central Java: the provincial complaint system's batch export, CSV with a header row.

One message is one export file, UTF-8 (a leading BOM, as spreadsheet tools write it,
is ignored), comma-separated – or semicolon-separated, as spreadsheets in an Indonesian
locale save CSV –, one complaint per row. Columns::

    no_tiket, tgl_lapor, judul, uraian, kategori, jenis, status, kab_kota, alamat,
    nama_pelapor, hp_pelapor, email_pelapor, lampiran, rahasia[, anonim]

`tgl_lapor` is "dd/mm/yyyy HH:MM" in WIB (seconds, or the day alone, are read too, and
ISO 8601); a header is read whatever its case and spacing ("No Tiket"), after Excel's
"sep=;" line where there is one;
`kab_kota` is a BPS code ("3374") or a name ("Kota Semarang"); `lampiran` holds URLs
separated by spaces; `rahasia` is Ya/Tidak, and so is `anonim` where the export has it (an
anonymous citizen's name went to the agency when it was not read). Column and status names
are our reading of the export (confirm with the province; this module is the one place to
change).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import re
from datetime import datetime
from functools import partial

from hub import regions
from hub.adapters.base import (
    WIB,
    Outcome,
    RawMessage,
    RejectedError,
    Rejection,
    as_flag,
    category_from,
    e164_phone,
    entry_outcome,
    location_of,
    message_id_of,
    rejecting,
    report_type_from,
    status_from,
    urls,
)
from hub.model import (
    Attachment,
    Channel,
    Complaint,
    Location,
    Reporter,
    SourceRef,
    Status,
    tracking_id_for,
)

STATUS_WORDS: dict[str, Status] = {
    "Belum Diverifikasi": Status.RECEIVED,
    "Perlu Dilengkapi": Status.NEEDS_INFO,
    "Terverifikasi": Status.VERIFIED,
    "Didisposisikan": Status.DISPOSITIONED,
    "Ditindaklanjuti": Status.IN_PROGRESS,
    "Dijawab": Status.RESPONDED,
    "Bukan Kewenangan": Status.NOT_AUTHORITY,
    "Ditunda": Status.DEFERRED,
    "Diarsipkan": Status.ARCHIVED,
    "Selesai": Status.CLOSED,
}

_PROVINCE = "33"
_REQUIRED = ("no_tiket", "uraian")
_DATE_FORMATS = (
    "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y", "%d/%m/%Y %H.%M", "%d/%m/%Y %H.%M.%S",
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d",
)
"""The export's own, then as a spreadsheet saves it again: with seconds, or the day only,
with the dotted time of the Indonesian locale (08.15), or as ISO dates."""

Row = dict[str, str]
_SEPARATOR_LINE = re.compile(r"sep=([,;\t|])")



@rejecting
def normalize(raw: RawMessage) -> list[Outcome]:
    """Each row is one complaint; a bad row is a rejection beside the good ones."""
    lines = _lines(raw.body)
    cursor = _Cursor(lines)
    if lines and (said := _SEPARATOR_LINE.fullmatch(lines[0].rstrip("\r\n"))):
        delimiter = said.group(1)  # Excel's "sep=;" line names the delimiter
        cursor.at = 1
    else:
        delimiter = _delimiter(lines[0] if lines else "")
    reader = csv.reader(cursor, delimiter=delimiter)
    try:
        header = _header(next(reader, []))
    except csv.Error as exc:
        raise RejectedError("invalid_csv", f"line 1 (the header): {exc}") from exc
    outcomes: list[Outcome] = []
    while True:
        start = cursor.at  # the reader takes lines as a row needs them, none ahead
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a NUL, a cell past the size limit: that line alone
            refused = Rejection("invalid_csv", f"line {start + 1}: {exc}")
        else:
            if not any(cell.strip() for cell in cells):  # spreadsheets leave blank lines
                continue
            if not _unclosed(lines, start, cursor.at, len(header), delimiter):
                outcomes.append(_row_outcome(raw, header, cells, cursor.at))
                continue
            refused = Rejection(
                "invalid_row", f"line {start + 1} opens a quote it never closes: the lines "
                "after it are read on their own",
                message_id_of(dict(zip(header, cells, strict=False)).get("no_tiket")))
        # That line refused, reading starts again on the next.
        outcomes.append(refused)
        cursor.at = start + 1
        reader = csv.reader(cursor, delimiter=delimiter)
    if not outcomes:
        raise RejectedError("empty_batch", "export has no rows")
    return outcomes


class _Cursor:
    """The export's lines for a csv reader, from a position that can be set back: a row
    misread (a quote never closed) is refused, and reading starts again after its line."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.at = 0

    def __iter__(self) -> _Cursor:
        return self

    def __next__(self) -> str:
        if self.at >= len(self.lines):
            raise StopIteration
        self.at += 1
        return self.lines[self.at - 1]


def _unclosed(lines: list[str], start: int, end: int, columns: int, delimiter: str) -> bool:
    """Whether the row read from lines[start:end] opened a quote it never closed and took
    in the rows after it: a line within it is a whole row of its own, or it ran to the end
    of the export with an odd count of quotes. (A cell over two lines, and a stray quote
    inside an unquoted cell, as in 4" pipes, are neither.)"""
    if end - start < 2:
        return False
    inner = lines[start + 1:end]
    if any(len(next(csv.reader([line], delimiter=delimiter), [])) == columns for line in inner):
        return True
    return end == len(lines) and sum(line.count('"') for line in lines[start:end]) % 2 == 1


def _lines(body: bytes) -> list[str]:
    """The export's lines, as the csv reader counts them (at \n, \r or \r\n). UTF-16 as a
    spreadsheet's "Unicode text" saves it; else UTF-8 (the mark dropped), where a byte is not
    UTF-8 read as Windows-1252, the "CSV" of a spreadsheet on Windows: one such row ("Andé")
    refused the whole export, and a cell so appended to a line of UTF-8 must garble neither
    that line's other cells nor the other rows."""
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return io.StringIO(body.decode("utf-16"), newline="").readlines()
        except UnicodeDecodeError as exc:
            raise RejectedError("invalid_encoding", f"export is not UTF-16: {exc.reason}") from exc
    text = body.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors=_WINDOWS_1252)
    return io.StringIO(text, newline="").readlines()


def _windows_1252(error: UnicodeError) -> tuple[str, int]:
    """Bytes that are no UTF-8, read as Windows-1252 (its five unassigned bytes as U+FFFD)."""
    assert isinstance(error, UnicodeDecodeError)
    return error.object[error.start:error.end].decode("cp1252", errors="replace"), error.end


_WINDOWS_1252 = "hub-provincial-windows-1252"
codecs.register_error(_WINDOWS_1252, _windows_1252)


def _delimiter(header_line: str) -> str:
    """Comma, semicolon as a spreadsheet in an Indonesian locale writes "CSV" (the comma is
    its decimal mark), or tab ("Unicode text"): whichever the header line holds most of."""
    return max((",", ";", "\t"), key=header_line.count)


def _header(cells: list[str]) -> list[str]:
    # "No Tiket", "NO_TIKET": a header retyped in a spreadsheet names the same columns.
    header = ["_".join(cell.lower().split()) for cell in cells]
    missing = [name for name in _REQUIRED if name not in header]
    if missing:
        raise RejectedError("invalid_payload", f"export lacks columns {', '.join(missing)}")
    named = [name for name in header if name]  # a sheet's used range wider than its data
    if len(set(named)) != len(named):
        raise RejectedError("invalid_payload", "export repeats a column")
    return header


def _row_outcome(raw: RawMessage, header: list[str], cells: list[str], last: int) -> Outcome:
    row = dict(zip(header, cells, strict=False))
    record_id = message_id_of(row.get("no_tiket"))
    if len(cells) != len(header):
        detail = f"line {last} has {len(cells)} cells for {len(header)} columns"
        return Rejection("invalid_row", detail, record_id)
    if any(cell.strip() for name, cell in zip(header, cells, strict=True) if not name):
        return Rejection("invalid_row", f"line {last} has text under a column without a name",
                         record_id)
    row.pop("", None)
    return entry_outcome(record_id, partial(_complaint, raw, row))


def _complaint(raw: RawMessage, row: Row) -> Complaint:
    # Rows come again in later exports with a new status; only the ticket number keeps
    # them one complaint with one tracking id.
    record_id = _cell(row, "no_tiket", required=True) or ""
    # Complaint has no status; an unknown word is still refused so the mapping gets updated.
    status_from(STATUS_WORDS, row.get("status"), "status")
    source = SourceRef(system=raw.source, message_id=record_id)
    return Complaint(
        tracking_id=tracking_id_for(source),
        source=source,
        channel=Channel.PROVINCIAL,
        report_type=report_type_from(row.get("jenis")),
        title=_cell(row, "judul"),
        description=_cell(row, "uraian", required=True) or "",
        category=category_from(_cell(row, "kategori")),
        location=_location(_cell(row, "kab_kota"), _cell(row, "alamat")),
        reporter=Reporter(
            name=_cell(row, "nama_pelapor"),
            # An unparseable number is dropped; the complaint still counts.
            phone=e164_phone(_cell(row, "hp_pelapor")),
            email=_cell(row, "email_pelapor"),
        ),
        anonymous=as_flag(row.get("anonim"), "anonim"),
        confidential=as_flag(row.get("rahasia"), "rahasia"),
        attachments=tuple(Attachment(url=url) for url in urls(_cell(row, "lampiran"))),
        submitted_at=_date(_cell(row, "tgl_lapor")) or raw.received_at,
        received_at=raw.received_at,
    )


def _cell(row: Row, column: str, *, required: bool = False) -> str | None:
    value = row.get(column, "").strip()
    if not value and required:
        raise RejectedError("missing_field", f"{column} is required")
    return value or None


def _location(region_text: str | None, address: str | None) -> Location:
    # A 4-digit code is BPS's, which numbers regencies apart from Kemendagri (BPS 3171 is
    # Kemendagri 31.74), so it is looked up as BPS; a name only within Central Java.
    if region_text is None:
        region = None
    elif region_text.isdecimal():
        region = regions.by_bps_code(region_text)
        if region is not None and region.province_code != _PROVINCE:
            region = None  # a slip of the keyboard: the export is Central Java's, as names
    else:
        region = regions.resolve(region_text, _PROVINCE)
    # Unresolved, still in Central Java: the export is the province's own.
    return location_of(region, region_text, province_code=_PROVINCE, address=address)


def _date(text: str | None) -> datetime | None:
    if text is None:
        return None
    for date_format in _DATE_FORMATS:
        with contextlib.suppress(ValueError):
            return datetime.strptime(text, date_format).replace(tzinfo=WIB)
    with contextlib.suppress(ValueError):  # ISO 8601 as a system writes it: a T, an offset
        found = datetime.fromisoformat(text)
        return found if found.tzinfo else found.replace(tzinfo=WIB)
    raise RejectedError("invalid_field", "tgl_lapor is not a date as dd/mm/yyyy hh:mm")
