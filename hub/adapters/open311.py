"""Open311 GeoReport v2: POST service request, form-encoded as the specification says.

Fields: service_code (required), lat/long or address_string or address_id (one is
required), description, email, first_name, last_name, phone, media_url, and
`attribute[code]=value` (`attribute[code][]=value` for multi-value lists). The hub's
own service list maps each service_code to a category below. The specification makes the
description optional (a client may send a service, a place and a photo): the service's
name then stands for it.
"""

from __future__ import annotations

from hub import regions
from hub.adapters.base import (
    Outcome,
    RawMessage,
    RejectedError,
    as_coordinate,
    e164_phone,
    entry_outcome,
    form_text,
    parse_form,
    rejecting,
)
from hub.model import Attachment, Channel, Complaint, Location, Reporter, SourceRef, tracking_id_for

SERVICE_CATEGORIES: dict[str, str] = {
    "pothole": "infrastructure",
    "streetlight": "infrastructure",
    "drainage": "infrastructure",
    "water-supply": "water",
    "garbage": "environment",
    "flooding": "environment",
    "illegal-parking": "transport",
    "street-vendor": "public-order",
}
"""The services the hub publishes in its GET services list, by category code."""

_ATTRIBUTE = "attribute["


def service_name(code: str) -> str:
    """The name the service list gives a service code: `water-supply` is "Water supply"."""
    return code.replace("-", " ").capitalize()


def service_code(name: str | None) -> str | None:
    """The listed service a request's title names (its service's name), if any."""
    return next((code for code in SERVICE_CATEGORIES if service_name(code) == name), None)


@rejecting
def normalize(raw: RawMessage) -> list[Outcome]:
    """One service request is one complaint."""
    form = parse_form(raw)
    # A POST carries no request id (the server assigns service_request_id), so the
    # envelope id or the body digest identifies it.
    message_id = raw.fallback_message_id()
    return [entry_outcome(message_id, lambda: _complaint(raw, form, message_id))]


def _complaint(raw: RawMessage, form: dict[str, list[str]], message_id: str) -> Complaint:
    service = form_text(form, "service_code", required=True) or ""
    address = form_text(form, "address_string")
    # The region an address names routes the request (else it waits at the national admin).
    region = regions.resolve(address) if address else None
    location = Location(
        region_code=region.code if region else None,
        region_name=region.name if region else None,
        latitude=as_coordinate(form_text(form, "lat"), "lat"),
        longitude=as_coordinate(form_text(form, "long"), "long"),
        # address_id names a place in the jurisdiction's own address register.
        address=address or form_text(form, "address_id"),
    )
    if (location.latitude is None or location.longitude is None) and location.address is None:
        raise RejectedError(
            "missing_field", "lat and long, or address_string, or address_id, are required"
        )
    names = [form_text(form, "first_name"), form_text(form, "last_name")]
    media_url = form_text(form, "media_url")
    source = SourceRef(system=raw.source, message_id=message_id)
    return Complaint(
        tracking_id=tracking_id_for(source),
        source=source,
        channel=Channel.OPEN311,
        # The service is the request's subject (and how its status names it again).
        title=service_name(service)[:500],
        description=_description(form, service),
        category=SERVICE_CATEGORIES.get(service, "other"),
        location=location,
        reporter=Reporter(
            name=" ".join(n for n in names if n) or None,
            email=form_text(form, "email"),
            # An unparseable number is dropped; the request still counts.
            phone=e164_phone(form_text(form, "phone")),
        ),
        attachments=(Attachment(url=media_url),) if media_url else (),
        submitted_at=raw.received_at,
        received_at=raw.received_at,
    )


def _description(form: dict[str, list[str]], service: str) -> str:
    """The description (else the service's name), then the attribute answers, which have no
    field of their own."""
    text = form_text(form, "description") or service_name(service)
    answers = [
        f"{key[len(_ATTRIBUTE):].removesuffix('[]').removesuffix(']')}: {', '.join(values)}"
        for key, values in form.items()
        if key.startswith(_ATTRIBUTE)
    ]
    return "\n\n".join([text, "\n".join(answers)]) if answers else text
