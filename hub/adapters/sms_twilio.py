"""SMS to 1708 through Twilio: the inbound-message webhook, form-encoded; a message from
a Twilio WhatsApp sender (From "whatsapp:+62...") to the same webhook is a WhatsApp one.

Fields are Twilio's own (MessageSid, From, To, Body, NumSegments, NumMedia,
MediaUrlN, MediaContentTypeN, OptOutType); see tests/fixtures/sms-twilio/.
"""

from __future__ import annotations

from hub.adapters.base import (
    Outcome,
    RawMessage,
    RejectedError,
    e164_phone,
    entry_outcome,
    form_text,
    parse_form,
    rejecting,
)
from hub.model import Attachment, Channel, Complaint, Reporter, SourceRef, tracking_id_for

_MAX_MEDIA = 10
"""Twilio delivers at most ten media items per message."""


@rejecting
def normalize(raw: RawMessage) -> list[Outcome]:
    """One inbound SMS/MMS is one complaint."""
    form = parse_form(raw)
    message_id = form_text(form, "MessageSid") or raw.fallback_message_id()
    return [entry_outcome(message_id, lambda: _complaint(raw, form, message_id))]


def _complaint(raw: RawMessage, form: dict[str, list[str]], message_id: str) -> Complaint:
    status = form_text(form, "MessageStatus")
    if status and "Body" not in form:
        # A status callback pointed at the inbound URL: the fate of an SMS the hub sent.
        raise RejectedError("not_a_complaint", f"status callback {status[:30]}")
    if keyword := form_text(form, "OptOutType"):
        # Advanced Opt-Out: the whole text was a keyword (STOP, START, HELP, or the service's
        # own, such as BERHENTI), which Twilio has acted on: no complaint.
        raise RejectedError("not_a_complaint", f"opt-out keyword ({keyword[:30]})")
    source = SourceRef(system=raw.source, message_id=message_id)
    sender = form_text(form, "From")
    return Complaint(
        tracking_id=tracking_id_for(source),
        source=source,
        # Twilio's WhatsApp senders post to the same webhook, From "whatsapp:+62...": the
        # citizen is answered where they wrote (the notification's channel), not by SMS.
        channel=Channel.WHATSAPP if _on_whatsapp(sender) else Channel.SMS,
        # Twilio has already joined a multi-segment SMS (NumSegments > 1) into Body.
        description=form_text(form, "Body", required=True) or "",
        # An unparseable sender (alphanumeric id, short code) leaves the reporter empty.
        reporter=Reporter(phone=e164_phone(sender)),
        attachments=_attachments(form),
        submitted_at=raw.received_at,
        received_at=raw.received_at,
    )


def _on_whatsapp(sender: str | None) -> bool:
    return sender is not None and sender.lower().startswith("whatsapp:")


def _attachments(form: dict[str, list[str]]) -> tuple[Attachment, ...]:
    count = form_text(form, "NumMedia") or "0"
    if not (count.isdecimal() and len(count) <= 2 and int(count) <= _MAX_MEDIA):
        raise RejectedError("invalid_field", f"NumMedia must be 0 to {_MAX_MEDIA}")
    found = []
    for i in range(int(count)):
        url = form_text(form, f"MediaUrl{i}", required=True) or ""
        found.append(Attachment(url=url, media_type=form_text(form, f"MediaContentType{i}")))
    return tuple(found)
