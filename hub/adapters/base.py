"""What every channel adapter shares: the raw message it reads and what it returns.

An adapter is a pure function `RawMessage -> list[Outcome]`, each outcome a Complaint,
a Rejection, or a Fragment of a message whose parts arrive apart: no clock, no I/O,
no randomness, so the same bytes always give the same complaints and the same
tracking ids. One raw message may carry several complaints (a Meta webhook with
several entries); each gets its own source message id.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import phonenumbers
from pydantic import ValidationError

from hub import regions
from hub.categories import category_code
from hub.model import REGION_NAME_MAX, Complaint, Location, ReportType, Status, first_error


@dataclass(frozen=True, slots=True)
class RawMessage:
    """The bytes a source sent, as they travel on its raw topic."""

    source: str
    body: bytes
    content_type: str
    received_at: datetime
    message_id: str | None = None
    """Envelope id from the ingress or producer, used when the payload has none."""
    headers: dict[str, str] = field(default_factory=dict)

    def fallback_message_id(self) -> str:
        """The envelope id, else a digest of the body: re-sent bytes stay one complaint."""
        return self.message_id or "sha256:" + hashlib.sha256(self.body).hexdigest()


@dataclass(frozen=True, slots=True)
class Rejection:
    """A typed refusal: why these bytes (or one entry of them) are not a complaint."""

    reason: str
    detail: str
    source_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Fragment:
    """One part of a message that arrived in several raw messages (a concatenated SMS).

    Intake keeps fragments until all `total` parts of `group_key` are there, then hands
    them to the source's joiner; the adapter alone cannot wait.
    """

    group_key: str
    index: int
    """1-based position of this part."""
    total: int
    raw: RawMessage


Outcome = Complaint | Rejection | Fragment
Adapter = Callable[[RawMessage], list[Outcome]]


class RejectedError(Exception):
    """Raised inside an adapter to refuse input; `rejecting` turns it into a Rejection."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def rejecting(adapter: Adapter) -> Adapter:
    """Wrap an adapter so that refusals and schema violations become Rejections.

    Adapters may then raise `RejectedError`, and pydantic's `ValidationError` on the
    canonical model, without each writing its own try/except.
    """

    def wrapped(raw: RawMessage) -> list[Outcome]:
        try:
            return adapter(raw)
        except RejectedError as exc:
            return [Rejection(exc.reason, exc.detail)]
        except ValidationError as exc:
            return [Rejection("invalid_complaint", first_error(exc))]

    wrapped.__name__ = getattr(adapter, "__name__", "adapter")
    wrapped.__doc__ = adapter.__doc__
    return wrapped


def _not_json(name: str) -> Any:
    """NaN and Infinity are no JSON (RFC 8259), though Python reads them: `"isi": NaN` was
    taken as the complaint "nan"."""
    raise ValueError(f"{name} is not a JSON value")


class WrittenFloat(float):
    """A JSON number with a fraction, which reads as text the way it was written: a region
    code sent as the number 32.10 (Majalengka) is "32.10", not "32.1" (no such code)."""

    written: str

    def __new__(cls, literal: str | float) -> WrittenFloat:
        number = super().__new__(cls, literal)
        # A copy (copy, pickle) is made from the number: its own digits then.
        number.written = literal if isinstance(literal, str) else float.__repr__(number)
        return number

    def __str__(self) -> str:
        return self.written


def parse_json_object(raw: RawMessage) -> dict[str, Any]:
    """Decode a JSON object body or refuse it with a one-line reason."""
    try:
        value = json.loads(raw.body, parse_constant=_not_json, parse_float=WrittenFloat)
    except UnicodeDecodeError as exc:
        raise RejectedError("invalid_encoding", f"body is not UTF-8: {exc.reason}") from exc
    except (ValueError, RecursionError) as exc:  # ValueError too: over-long integer literals
        raise RejectedError("invalid_json", f"body is not JSON: {exc}") from exc
    # The quick look is for UTF-8 bytes; JSON in UTF-16 or UTF-32 (json.loads reads those
    # too) is checked whole.
    if (_MAY_HOLD_SURROGATE.search(raw.body) or json.detect_encoding(raw.body) != "utf-8") \
            and _holds_lone_surrogate(value):
        # Python reads a surrogate (UTF-8 bytes ED A0 80, or "\ud800" alone) into the text;
        # no database, JSON writer or hash takes it later, so the record failed downstream.
        raise RejectedError("invalid_encoding", "body holds a lone surrogate, which is no "
                            "character")
    if not isinstance(value, dict):
        kind = type(value).__name__
        raise RejectedError("invalid_payload", f"expected a JSON object, got {kind}")
    return value


_MAY_HOLD_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]|\\u[dD][89a-fA-F]")


def _holds_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


def as_text(value: Any, field_name: str, *, required: bool = False) -> str | None:
    """A trimmed string field, or None; anything else is a refusal."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RejectedError("missing_field", f"{field_name} is required")
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise RejectedError("invalid_field", f"{field_name} must be text")
    return str(value).strip()


def as_flag(value: Any, field_name: str) -> bool:
    """Booleans as web forms send them: true/false, 1/0, "ya"/"iya"/"tidak"/"tdk"."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise RejectedError("invalid_field", f"{field_name} must be a yes/no flag")


_TRUE = frozenset({"true", "1", "ya", "iya", "yes", "y", "on"})
_FALSE = frozenset({"false", "0", "tidak", "tdk", "no", "n", "off", ""})


_REPORT_TYPES = {
    "pengaduan": ReportType.COMPLAINT,
    "complaint": ReportType.COMPLAINT,
    "aspirasi": ReportType.ASPIRATION,
    "aspiration": ReportType.ASPIRATION,
    "permintaan informasi": ReportType.INFORMATION_REQUEST,
    "permintaan_informasi": ReportType.INFORMATION_REQUEST,
    "information_request": ReportType.INFORMATION_REQUEST,
}


def report_type_from(value: Any) -> ReportType:
    """pengaduan / aspirasi / permintaan informasi (or the English codes); absent = complaint."""
    text = as_text(value, "report type")
    if text is None:
        return ReportType.COMPLAINT
    found = _REPORT_TYPES.get(" ".join(text.split()).casefold())
    if found is None:
        raise RejectedError("invalid_field", f"unknown report type {text[:50]!r}")
    return found


# Helpers shared by the channel adapters.

WIB = ZoneInfo("Asia/Jakarta")
"""The zone Indonesian sources mean when a timestamp carries none (lapor.go.id shows WIB)."""


def entry_outcome(message_id: str | None, build: Callable[[], Outcome]) -> Outcome:
    """Build one entry of a multi-entry payload; a refusal costs only that entry.

    Like `rejecting`, but the Rejection keeps the entry's own id so it can be traced.
    """
    try:
        return build()
    except RejectedError as exc:
        return Rejection(exc.reason, exc.detail, message_id)
    except ValidationError as exc:
        return Rejection("invalid_complaint", first_error(exc), message_id)


def message_id_of(value: Any) -> str | None:
    """A vendor id as text, or None when absent or not an id (never raises)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text or None


def as_object(value: Any, field_name: str) -> dict[str, Any]:
    """A JSON object field; absent is empty, anything else is a refusal."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RejectedError("invalid_field", f"{field_name} must be an object")
    return value


def as_list(value: Any, field_name: str) -> list[Any]:
    """A JSON array field; absent is empty, anything else is a refusal."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RejectedError("invalid_field", f"{field_name} must be a list")
    return value


def as_coordinate(value: Any, field_name: str) -> float | None:
    """A latitude or longitude as a number or numeric text; the range is the model's check.
    A decimal comma, as an Indonesian locale writes one ("-6,2373"), is read too."""
    text = as_text(value, field_name)
    if text is None:
        return None
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    try:
        number = float(text)
    except ValueError as exc:
        raise RejectedError("invalid_field", f"{field_name} must be a number") from exc
    if not math.isfinite(number):
        raise RejectedError("invalid_field", f"{field_name} must be finite")
    return number


def iso_datetime(value: Any, field_name: str) -> datetime | None:
    """An ISO 8601 date or datetime; without a zone it is WIB."""
    text = as_text(value, field_name)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise RejectedError("invalid_field", f"{field_name} is not an ISO date") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=WIB)


def epoch_datetime(value: Any, field_name: str, *, millis: bool = False) -> datetime | None:
    """A Unix timestamp in seconds (or milliseconds), as a number or digits."""
    text = as_text(value, field_name)
    if text is None:
        return None
    try:
        seconds = float(text) / (1000 if millis else 1)
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise RejectedError("invalid_field", f"{field_name} is not a Unix time") from exc


_COUNTRY_CODE_FIRST = re.compile(r"\s*62[\d\s().-]*$")
_INTERNATIONAL_PREFIX = re.compile(r"\s*00(?=\s*62)")
"""00 before Indonesia's country code, as a number is written to be dialled from abroad
("0062 812…"): the library knows only Indonesia's own dialling prefixes (007, 008, 009, …),
and read as one of those a 00 before another digit would make another country's number."""


def e164_phone(text: str | None) -> str | None:
    """A phone number in E.164 (+62812…) from 0812…, 62812…, +62 812-…; None if not valid.

    Callers drop an invalid number rather than the complaint: the text still matters,
    and a sender id such as a short code or an operator name is not a reporter's phone.
    """
    if not text:
        return None
    if prefix := _INTERNATIONAL_PREFIX.match(text):
        found = _e164(f"+{text[prefix.end():].strip()}")
        if found:
            return found
    if _COUNTRY_CODE_FIRST.match(text):
        # Indonesians write a national number with its trunk 0, so a leading 62 is first
        # read as the country code (gateways send MSISDNs so; the library alone read
        # 62 21 … as the 0622 area), and only if that is no number as the library reads it.
        found = _e164(f"+{text.strip()}")
        if found:
            return found
    return _e164(text)


_PLAIN_MOBILE = re.compile(r"(?:\+62|0)(8[0-9]{8,11})")
"""A mobile number as gateways and forms mostly write it (+62812…, 0812…, with or without
separators): checked against the library's own patterns for Indonesia instead of parsed –
parsing took 30 µs, a quarter of normalizing a complaint."""
_SEPARATORS = str.maketrans("", "", " -.()")


def _mobile_descs() -> list[tuple[frozenset[int], re.Pattern[str]]]:
    """Lengths and pattern of Indonesia's numbers and of its mobile numbers, as the
    library's metadata gives them."""
    region = phonenumbers.PhoneMetadata.metadata_for_region("ID")
    descs = [region.general_desc, region.mobile] if region else []
    return [(frozenset(d.possible_length), re.compile(d.national_number_pattern))
            for d in descs if d is not None and d.national_number_pattern]


_MOBILE_DESCS = _mobile_descs()


def _e164(text: str) -> str | None:
    plain = _PLAIN_MOBILE.fullmatch(text.translate(_SEPARATORS))
    if plain and _mobile(plain[1]):
        return f"+62{plain[1]}"
    return _e164_parsed(text)


def _mobile(national: str) -> bool:
    """What `phonenumbers.is_valid_number` answers for an Indonesian mobile number: the
    number fits the region's general pattern and the mobile one (lengths and digits)."""
    return len(_MOBILE_DESCS) == 2 and all(
        len(national) in lengths and pattern.fullmatch(national) is not None
        for lengths, pattern in _MOBILE_DESCS
    )


def _e164_parsed(text: str) -> str | None:
    try:
        number = phonenumbers.parse(text, "ID")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_form(raw: RawMessage) -> dict[str, list[str]]:
    """Decode an application/x-www-form-urlencoded body (UTF-8) or refuse it.

    As browsers and form libraries read one: empty fields (`a=1&&b=2`, a trailing `&`) are
    skipped and a name without `=` has an empty value – such bodies were refused whole. A
    body without a single `name=value` is no form.
    """
    try:
        fields = [f for f in raw.body.decode("utf-8").split("&") if f]
        pairs = parse_qsl(
            "&".join(f if "=" in f else f + "=" for f in fields),
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",  # also for what the %-escapes spell
            max_num_fields=1000,
        )
    except UnicodeDecodeError as exc:
        raise RejectedError("invalid_encoding", f"form is not UTF-8: {exc.reason}") from exc
    except ValueError as exc:
        # Not the parser's message: it quotes the body, which may hold a phone number.
        raise RejectedError("invalid_form", "body is not a form") from exc
    if fields and not any("=" in f for f in fields):
        raise RejectedError("invalid_form", "body is not a form")
    form: dict[str, list[str]] = {}
    for key, value in pairs:
        form.setdefault(key, []).append(value)
    return form


def form_text(form: dict[str, list[str]], key: str, *, required: bool = False) -> str | None:
    """One form field's trimmed value; a field sent twice is ambiguous and refused."""
    values = form.get(key, [])
    if len(values) > 1:
        raise RejectedError("invalid_field", f"{key} is given more than once")
    return as_text(values[0] if values else None, key, required=required)


def placed_by_text(complaint: Complaint) -> Complaint:
    """A complaint that came without a region, with the one its text or address names ("Air
    PDAM di Perumnas 3 Kota Bekasi tidak mengalir"): routed there, not to the national admin."""
    if complaint.location.region_code is not None:
        return complaint
    where = complaint.location
    region = regions.mentioned(
        f"{complaint.title or ''} {complaint.description} {where.address or ''}")
    if region is None:
        return complaint
    place = where.model_copy(update={
        "region_code": region.code, "region_name": where.region_name or region.name,
    })
    return complaint.model_copy(update={"location": place})


def place_words(name: str | None, address: str | None) -> tuple[str | None, str | None]:
    """A region's name and an address, from a source's text for each.

    A place described at length where a region's name goes ("Jl. …, RT 003 RW 012, dekat
    …, Kota Bekasi") is an address: kept as one, before the source's address, not the whole
    complaint refused for a `region_name` over its limit, a field the citizen never saw."""
    if name is None or len(name) <= REGION_NAME_MAX:
        return name, address
    return None, name if address is None else f"{name}, {address}"


def locate(
    region_text: str | None,
    *,
    province_code: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    address: str | None = None,
) -> Location:
    """A location whose region is resolved from the source's text (within a province if given)."""
    region = regions.resolve(region_text, province_code) if region_text else None
    return location_of(region, region_text, province_code=province_code, latitude=latitude,
                       longitude=longitude, address=address)


def location_of(
    region: regions.Region | None,
    region_text: str | None,
    *,
    province_code: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    address: str | None = None,
) -> Location:
    """The location of a region the source's text resolved to.

    An unresolved region stays explicit: the source's text kept as the name, and no code –
    or the province's, when the source is that province's own system: the complaint is
    surely there, and its coordinator is nearer than the national admin.
    """
    name, address = place_words(region.name if region else region_text, address)
    if region is None and province_code:
        region = regions.by_code(province_code)
        name = name or (region.name if region else None)
    return Location(region_code=region.code if region else None, region_name=name,
                    latitude=latitude, longitude=longitude, address=address)


_URL_SEPARATORS = re.compile(r"[\s;]+|,(?=\s*https?://)")


def urls(text: str | None) -> list[str]:
    """URLs listed in one text field as people list them: by spaces, semicolons, or commas
    before the next URL (a comma inside one, as image services write sizes, stays)."""
    return [url for url in _URL_SEPARATORS.split(text or "") if url]


def category_from(text: str | None) -> str | None:
    """The category code for a source's category text; text we do not know files under "other"."""
    if text is None:
        return None
    return category_code(text) or "other"


def status_from(words: Mapping[str, Status], value: Any, field_name: str) -> Status | None:
    """A regional status word (case and spacing ignored) mapped onto the normalized status.

    An unknown word is refused: it means the source's vocabulary changed and the
    mapping must be updated, which a dead letter makes visible.
    """
    text = as_text(value, field_name)
    if text is None:
        return None
    wanted = " ".join(text.split()).casefold()
    for word, status in words.items():
        if word.casefold() == wanted:
            return status
    raise RejectedError("invalid_field", f"unknown {field_name} {text[:50]!r}")
