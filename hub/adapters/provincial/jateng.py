"""Central Java: the provincial complaint system's batch export, CSV with a header row.

One message is one export file, UTF-8 (a leading BOM, as spreadsheet tools write it,
is ignored), comma-separated – or semicolon-separated, as spreadsheets in an Indonesian
locale save CSV –, one complaint per row. Columns::

    no_tiket, tgl_lapor, judul, uraian, kategori, jenis, status, kab_kota, alamat,
    nama_pelapor, hp_pelapor, email_pelapor, lampiran, rahasia[, anonim]

`tgl_lapor` is "dd/mm/yyyy HH:MM" in WIB (seconds, or the day alone, are read too);
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



@rejecting
def normalize(raw: RawMessage) -> list[Outcome]:
    """Each row is one complaint; a bad row is a rejection beside the good ones."""
    lines = _lines(raw.body)
    reader = csv.reader(lines, delimiter=_delimiter(lines[0] if lines else ""))
    outcomes: list[Outcome] = []
    try:
        header = _header(next(reader, []))
        after = reader.line_num
        for cells in reader:
            if any(cell.strip() for cell in cells):  # spreadsheets leave blank lines
                # A row over several lines with an odd count of quotes: one never closed
                # (a stray quote inside an unquoted cell is text, and stays on its line).
                quotes = sum(line.count('"') for line in lines[after:reader.line_num])
                unclosed = reader.line_num > after + 1 and quotes % 2 == 1
                outcomes.append(_row_outcome(raw, header, cells, (after + 1, reader.line_num),
                                             unclosed=unclosed))
            after = reader.line_num
    except csv.Error as exc:
        outcomes.append(Rejection("invalid_csv", f"line {reader.line_num}, rest unread: {exc}"))
    if not outcomes:
        raise RejectedError("empty_batch", "export has no rows")
    return outcomes


def _lines(body: bytes) -> list[str]:
    """The export's lines, as the csv reader counts them (at \n, \r or \r\n). UTF-16 as a
    spreadsheet's "Unicode text" saves it; else each line UTF-8 (the mark dropped) or, where
    it is not, Windows-1252, the "CSV" of a spreadsheet on Windows: one such row ("Andé")
    refused the whole export, and a row appended so to a UTF-8 export must not garble the
    others."""
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return io.StringIO(body.decode("utf-16"), newline="").readlines()
        except UnicodeDecodeError as exc:
            raise RejectedError("invalid_encoding", f"export is not UTF-16: {exc.reason}") from exc
    return [_line_text(line) for line in body.removeprefix(codecs.BOM_UTF8).splitlines(True)]


def _line_text(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return line.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise RejectedError(
            "invalid_encoding", f"export is neither UTF-8 nor Windows-1252: {exc.reason}"
        ) from exc


def _delimiter(header_line: str) -> str:
    """Comma, semicolon as a spreadsheet in an Indonesian locale writes "CSV" (the comma is
    its decimal mark), or tab ("Unicode text"): whichever the header line holds most of."""
    return max((",", ";", "\t"), key=header_line.count)


def _header(cells: list[str]) -> list[str]:
    header = [cell.strip().lower() for cell in cells]
    missing = [name for name in _REQUIRED if name not in header]
    if missing:
        raise RejectedError("invalid_payload", f"export lacks columns {', '.join(missing)}")
    named = [name for name in header if name]  # a sheet's used range wider than its data
    if len(set(named)) != len(named):
        raise RejectedError("invalid_payload", "export repeats a column")
    return header


def _row_outcome(
    raw: RawMessage, header: list[str], cells: list[str], lines: tuple[int, int], *,
    unclosed: bool,
) -> Outcome:
    row = dict(zip(header, cells, strict=False))
    record_id = message_id_of(row.get("no_tiket"))
    first, last = lines
    if unclosed:
        # A quote opened and never closed (its lines hold an odd count of quotes): the csv
        # reader took the rest of the export into this row, whole rows into one cell.
        return Rejection("invalid_row", f"line {first} opens a quote it never closes: lines "
                         f"{first}-{last} read as one row, rest unread", record_id)
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
    raise RejectedError("invalid_field", "tgl_lapor is not a date as dd/mm/yyyy hh:mm")
