"""Canonical data model, schema version 1.

Every channel adapter produces a `Complaint`; every agency receives a `RoutingEvent`
and answers with `FollowUpEvent`s. These models are the contract with the outside
world: `schemas/` holds their JSON Schema, and a test fails when the two drift.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

SCHEMA_VERSION: Literal[1] = 1
MAX_EVENT_BYTES = 1_000_000
"""Largest record the hub sends, value, key and headers together: Kafka's default record
limit (message.max.bytes, and the producer's max_request_size, 1 MiB) less room for
framing."""
MAX_ATTACHMENTS = 40

REGION_CODE_PATTERN = r"^\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?$"
"""Kemendagri PP[.KK[.CC[.DDDD]]]: the model's check, and what adapters and hub.regions read."""
RegionCode = Annotated[
    str,
    StringConstraints(pattern=REGION_CODE_PATTERN),
    Field(description="Kemendagri region code PP[.KK[.CC[.DDDD]]], e.g. 32.75 (Kota Bekasi)."),
]
TRACKING_ID_PATTERN = r"^\d{18}$"
TrackingId = Annotated[
    str,
    StringConstraints(pattern=TRACKING_ID_PATTERN),
    Field(description="Public numeric tracking id, derived from the source message id."),
]
AGENCY_CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
AgencyCode = Annotated[str, StringConstraints(pattern=AGENCY_CODE_PATTERN)]


def first_error(exc: ValidationError) -> str:
    """What a model says first of its input, where and what ("reason: String should have at
    most 1000 characters"): the rest of pydantic's text, and its first line, say neither."""
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "payload"
    return f"{where}: {err['msg']}"


def _without_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("contains a NUL character, which no database text can hold")
    return text


Text = Annotated[str, AfterValidator(_without_nul)]
"""Text the hub keeps in a column of its own (ids, an agency's note), not inside a JSON
document: PostgreSQL refused the NUL, and the record went round the retries for nothing."""


def fits_one_record(value: bytes, key: str | bytes | None, headers: Mapping[str, str]) -> bool:
    """Whether a record of these parts stays within MAX_EVENT_BYTES: the broker refuses a
    larger one for ever, and a consumer waiting on its send would stand still."""
    key_bytes = key.encode() if isinstance(key, str) else key or b""
    size = len(value) + len(key_bytes) + sum(
        len(k.encode()) + len(v.encode()) for k, v in headers.items()
    )
    return size <= MAX_EVENT_BYTES


def _has_utc_time(moment: datetime) -> datetime:
    try:
        moment.astimezone(UTC)  # near year 1 or 9999 there may be none: the database needs one
    except OverflowError:
        raise ValueError("has no UTC equivalent") from None
    return moment


StoredMoment = Annotated[AwareDatetime, AfterValidator(_has_utc_time)]
"""A time the hub stores: it must have a UTC equivalent."""


class Channel(StrEnum):
    """The door a complaint came in through."""

    WEB = "web"
    MOBILE = "mobile"
    SMS = "sms"
    X = "x"
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"
    WHATSAPP = "whatsapp"
    PROVINCIAL = "provincial"
    OPEN311 = "open311"


class ReportType(StrEnum):
    """pengaduan, aspirasi, permintaan informasi."""

    COMPLAINT = "complaint"
    ASPIRATION = "aspiration"
    INFORMATION_REQUEST = "information_request"


class Status(StrEnum):
    """The normalized lifecycle status every regional vocabulary maps onto."""

    RECEIVED = "received"
    NEEDS_INFO = "needs_info"
    VERIFIED = "verified"
    DISPOSITIONED = "dispositioned"
    IN_PROGRESS = "in_progress"
    RESPONDED = "responded"
    REPORTER_REPLIED = "reporter_replied"
    NOT_AUTHORITY = "not_authority"
    DEFERRED = "deferred"
    ARCHIVED = "archived"
    CLOSED = "closed"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceRef(_Frozen):
    """Where a complaint came from; (system, message_id) is unique across the hub."""

    system: Annotated[Text, StringConstraints(min_length=1, max_length=64)]
    message_id: Annotated[Text, StringConstraints(min_length=1, max_length=256)]


DESCRIPTION_MAX = 25_000
REGION_NAME_MAX = 200
ADDRESS_MAX = 1000


class Location(_Frozen):
    region_code: RegionCode | None = None
    region_name: str | None = Field(default=None, max_length=REGION_NAME_MAX)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    address: str | None = Field(default=None, max_length=ADDRESS_MAX)


class Reporter(_Frozen):
    """Who complained. Never published for anonymous complaints, never logged."""

    name: str | None = Field(default=None, max_length=200)
    nik: Annotated[str, StringConstraints(pattern=r"^\d{16}$")] | None = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+[1-9]\d{6,14}$")] | None = None
    email: str | None = Field(default=None, max_length=320)
    handle: str | None = Field(default=None, max_length=200, description="Social media handle.")

    def is_empty(self) -> bool:
        return not any((self.name, self.nik, self.phone, self.email, self.handle))


class Attachment(_Frozen):
    """A reference to evidence held elsewhere; the hub never carries the bytes."""

    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    media_type: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=500)


class Complaint(_Frozen):
    """One citizen complaint in the canonical schema, whatever door it came through."""

    schema_version: Literal[1] = SCHEMA_VERSION
    tracking_id: TrackingId
    source: SourceRef
    channel: Channel
    report_type: ReportType = ReportType.COMPLAINT
    needs_inspection: bool = Field(default=False, description="berkadar pengawasan")
    title: str | None = Field(default=None, max_length=500)
    # X's longest post (25,000 characters for its subscribers) is the longest a door takes.
    description: Annotated[str, StringConstraints(min_length=1, max_length=DESCRIPTION_MAX)]
    category: str | None = Field(default=None, max_length=100)
    target_agency: AgencyCode | None = Field(
        default=None, description="Agency the citizen chose on the form, if any."
    )
    location: Location = Location()
    reporter: Reporter = Reporter()
    anonymous: bool = Field(default=False, description="anonim: identity hidden from the agency")
    confidential: bool = Field(default=False, description="rahasia: content must not be published")
    attachments: tuple[Attachment, ...] = Field(
        default=(), max_length=MAX_ATTACHMENTS,
        description=f"At most {MAX_ATTACHMENTS}: with every other field at its limit, an "
        "event carrying the complaint still fits in one Kafka record.",
    )
    occurred_at: AwareDatetime | None = None
    submitted_at: AwareDatetime
    received_at: AwareDatetime


class Deadline(_Frozen):
    kind: Literal["verification", "first_follow_up", "settle", "auto_close"]
    due_at: AwareDatetime


class RoutingEvent(_Frozen):
    """What an agency receives on its topic: one complaint it now holds."""

    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["routing"] = "routing"
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    tracking_id: TrackingId
    agency_code: AgencyCode
    previous_agency_code: AgencyCode | None = None
    reason: Literal["rule", "explicit_target", "coordinator", "national", "reroute", "disposition"]
    routed_at: AwareDatetime
    confidential: bool
    deadlines: tuple[Deadline, ...] = ()
    complaint: Complaint = Field(
        description="The complaint; for anonymous complaints the reporter is empty."
    )


class DuplicateEvent(_Frozen):
    """Sent to the agency holding a complaint when another report of it arrives.

    The second report is stored, linked to the first and not routed on its own; its
    reporter (empty when anonymous) is one more citizen waiting for the answer.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["duplicate"] = "duplicate"
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    tracking_id: TrackingId = Field(description="The complaint the agency holds.")
    agency_code: AgencyCode
    matched_by: Literal["reporter", "place", "text"]
    confidential: bool
    at: AwareDatetime
    duplicate: Complaint = Field(description="The second report, with its own tracking id.")


class TakenEvent(_Frozen):
    """Sent to the agency a complaint was taken from: an agency above it dispositioned it to
    another agency or archived it. The complaint is no longer its to answer: its follow-ups
    on it from now on are dead letters (not_holder, or illegal_transition once archived)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["taken"] = "taken"
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    tracking_id: TrackingId
    agency_code: AgencyCode = Field(description="The agency that held it, whose topic this is.")
    by_agency: AgencyCode = Field(description="The agency above it that took it.")
    status: Status = Field(description="dispositioned (to_agency holds it now) or archived.")
    to_agency: AgencyCode | None = Field(
        default=None, description="The new holder; none when archived.")
    message: str | None = Field(default=None, max_length=20_000)
    reason: str | None = Field(default=None, max_length=1000)
    at: AwareDatetime = Field(
        description="When the hub applied it: the holder's follow-ups after it are refused.")


class FollowUpEvent(_Frozen):
    """An agency's status update (tindak lanjut) on a complaint it holds."""

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: Annotated[Text, StringConstraints(min_length=1, max_length=100)] = Field(
        description="Unique across all of the agency's events (a UUID): the same event again "
        "from the same agency (complaint, status, message and reason alike) is a re-send and "
        "passed over; another event under its id, on another complaint or on the same one, is "
        "refused (duplicate_event_id). Another agency's ids are its own."
    )
    tracking_id: TrackingId
    agency_code: AgencyCode
    status: Status
    at: StoredMoment
    message: Text | None = Field(default=None, max_length=20_000)
    target_agency: AgencyCode | None = Field(
        default=None, description="For dispositioned: the sub-unit or sibling agency."
    )
    reason: Text | None = Field(default=None, max_length=1000, description="For archived/deferred.")


class EscalationEvent(_Frozen):
    """Sent to the coordinator's topic, once per breach, when an agency misses a deadline."""

    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["escalation"] = "escalation"
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    tracking_id: TrackingId
    agency_code: AgencyCode = Field(description="The agency that missed the deadline.")
    coordinator_code: AgencyCode
    deadline: Literal["verification", "first_follow_up", "settle", "auto_close"]
    status: Status
    due_at: AwareDatetime
    at: AwareDatetime


class Notification(_Frozen):
    """A status change the citizen should hear about, addressed by the original channel."""

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    tracking_id: TrackingId
    channel: Channel
    source: SourceRef = Field(description="Reply in the thread the complaint came from.")
    address: Reporter = Field(
        description="Where to reach the reporter (never the NIK); never published.")
    status: Status
    message: str | None = Field(default=None, max_length=20_000)
    agency_name: str
    at: AwareDatetime


Stage = Literal["ingress", "intake", "follow_up"]


class DeadLetter(_Frozen):
    """A message that can never succeed as sent, kept with its original bytes."""

    schema_version: Literal[1] = SCHEMA_VERSION
    reason: str = Field(description="Machine-readable reason code, e.g. invalid_payload.")
    detail: str = Field(max_length=2000)
    stage: Stage
    topic: str
    partition: int | None = None
    offset: int | None = None
    key: str | None = Field(
        default=None, description="The original key as text (undecodable bytes replaced)."
    )
    key_base64: str | None = Field(
        default=None,
        description="The original key's bytes, base64, when they are not UTF-8 text "
        "(a binary key); `key` then shows them only roughly.",
    )
    headers: dict[str, str] = {}
    original: str = Field(
        description="The original message bytes, base64; empty when original_omitted."
    )
    original_omitted: bool = Field(
        default=False,
        description="The original record was too large to travel with this event: "
        "`original` is empty (and `key`, `key_base64` and `headers` too, if they were that "
        "large); the hub's dead_letter table keeps all of it, and `lapor-hub dlq replay` "
        "sends it again.",
    )
    at: AwareDatetime

    @property
    def key_bytes(self) -> bytes | None:
        """The original key exactly as it came."""
        if self.key_base64 is not None:
            return base64.b64decode(self.key_base64)
        return None if self.key is None else self.key.encode()


def tracking_id_for(source: SourceRef) -> str:
    """Derive the public tracking id from the source identity.

    Deterministic, so a re-delivered raw message and the ingress's 202 answer
    agree on the id without shared state; 18 digits keeps collisions negligible.
    """
    digest = hashlib.blake2b(
        f"{source.system}\x00{source.message_id}".encode(), digest_size=8
    ).digest()
    return f"{int.from_bytes(digest, 'big') % 10**18:018d}"



EVENT_ID_MAX = 100


def derived_event_id(*parts: str) -> str:
    """The id of an event the hub derives from others (`notify-<event id>`): the parts joined
    with "-", or, past the length an event id may have, their first and a digest of all."""
    joined = "-".join(parts)
    if len(joined) <= EVENT_ID_MAX:
        return joined
    return f"{parts[0]}-blake2b-{hashlib.blake2b(joined.encode(), digest_size=20).hexdigest()}"
