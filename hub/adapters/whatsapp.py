"""WhatsApp through the Cloud API: the `whatsapp_business_account` webhook.

Each `entry[].changes[]` with field "messages" holds `value.messages[]` (what citizens
sent), `value.contacts[]` (their profile names) and `value.statuses[]` (receipts for
what the bot sent). A text message, or a media message with a caption, is a
complaint. Receipts, reactions, stickers, button and list taps and WhatsApp's own notices
are "not_a_complaint"; other kinds the hub cannot read (locations, contact cards,
"unsupported") are "unsupported_message", a dead letter; media without a caption is
refused as "missing_field". Each rejection keeps its wamid.

Media arrive as ids, not URLs: the bytes are fetched from the Graph API with the
bot's token, so an attachment is the reference `whatsapp-media:<id>`.
"""

from __future__ import annotations

import hashlib
from functools import partial
from typing import Any

from hub.adapters.base import (
    Outcome,
    RawMessage,
    RejectedError,
    Rejection,
    as_list,
    as_object,
    as_text,
    e164_phone,
    entry_outcome,
    epoch_datetime,
    message_id_of,
    parse_json_object,
    rejecting,
)
from hub.model import Attachment, Channel, Complaint, Reporter, SourceRef, tracking_id_for

_MEDIA = ("image", "video", "document", "audio")
_NO_CONTENT = frozenset(
    {"reaction", "sticker", "button", "interactive", "system", "request_welcome"})
"""A reaction, a sticker, a tap on the bot's buttons or list, a notice from WhatsApp itself:
no complaint, and nothing the citizen wrote."""
OBJECT = "whatsapp_business_account"
SOURCE = "whatsapp"
"""The source name complaints of this webhook carry, whichever path it was posted to."""


@rejecting
def normalize(raw: RawMessage) -> list[Outcome]:
    """Each message with text is one complaint; each status receipt a rejection."""
    payload = parse_json_object(raw)
    if payload.get("object") != OBJECT:
        hint = (": a Facebook or Instagram webhook goes to the meta source"
                if payload.get("object") in ("page", "instagram") else "")
        raise RejectedError("invalid_payload", f"object must be {OBJECT}{hint}")
    outcomes: list[Outcome] = []
    for entry in as_list(payload.get("entry"), "entry"):
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            outcomes.append(Rejection("invalid_payload", "entry[].changes must be a list"))
            continue
        for change in changes:
            try:
                outcomes.extend(_change(raw, change))
            except RejectedError as exc:
                outcomes.append(Rejection(exc.reason, exc.detail))
    if not outcomes:
        raise RejectedError("invalid_payload", "no changes in any entry")
    return outcomes


def _change(raw: RawMessage, change: Any) -> list[Outcome]:
    change = as_object(change, "changes[]")
    if change.get("field") != "messages":
        raise RejectedError("not_a_complaint", f"{str(change.get('field'))[:50]} event")
    value = as_object(change.get("value"), "changes[].value")
    names = _profile_names(value.get("contacts"))
    outcomes: list[Outcome] = [
        entry_outcome(_wamid(message), partial(_complaint, raw, message, names))
        for message in as_list(value.get("messages"), "value.messages")
    ]
    outcomes.extend(
        Rejection("not_a_complaint", f"status {str(status.get('status'))[:30]}", _wamid(status))
        if isinstance(status, dict)
        else Rejection("invalid_payload", "statuses[] must be an object")
        for status in as_list(value.get("statuses"), "value.statuses")
    )
    if not outcomes:
        raise RejectedError("not_a_complaint", "change without messages or statuses")
    return outcomes


def _profile_names(contacts: Any) -> dict[str, str]:
    """wa_id -> profile name; a malformed contact only costs the name, not the message."""
    names: dict[str, str] = {}
    for contact in contacts if isinstance(contacts, list) else []:
        profile = contact.get("profile") if isinstance(contact, dict) else None
        name = profile.get("name") if isinstance(profile, dict) else None
        wa_id = message_id_of(contact.get("wa_id")) if isinstance(contact, dict) else None
        if wa_id and isinstance(name, str) and name.strip():
            names[wa_id] = name.strip()
    return names


def _wamid(item: Any) -> str | None:
    found = message_id_of(item.get("id")) if isinstance(item, dict) else None
    return None if found is None else message_ref(found)


def message_ref(wamid: str) -> str:
    """The hub's id for a WhatsApp message: a digest of its wamid, which is the sender's
    number in base64 and more ("wamid.HBgNNjI4MTIz…"); kept as it came, the number went to
    every agency with the complaint, anonymous ones too, and stood in dead letters' details."""
    return "wa-" + hashlib.blake2b(wamid.encode(), digest_size=16).hexdigest()


def _complaint(raw: RawMessage, message: Any, names: dict[str, str]) -> Complaint:
    message = as_object(message, "messages[]")
    kind = as_text(message.get("type"), "type", required=True) or ""
    if kind in _NO_CONTENT:
        raise RejectedError("not_a_complaint", f"{kind[:30]} message")
    if kind != "text" and kind not in _MEDIA:
        # A location, a contact card, a kind the Cloud API cannot show ("unsupported"): the
        # citizen sent something the hub cannot read. A dead letter keeps it (the ingress
        # answered 200 and dropped it).
        raise RejectedError("unsupported_message", f"{kind[:30]} message")
    wamid = as_text(message.get("id"), "id", required=True) or ""
    sender = as_text(message.get("from"), "from")
    body = as_object(message.get(kind), kind)
    text = as_text(body.get("body") if kind == "text" else body.get("caption"), f"{kind} text")
    if text is None:
        raise RejectedError("missing_field", f"{kind} message has no text")
    source = SourceRef(system=raw.source, message_id=message_ref(wamid))
    return Complaint(
        tracking_id=tracking_id_for(source),
        source=source,
        channel=Channel.WHATSAPP,
        description=text,
        # wa_id is the number without "+"; an invalid one leaves only the profile name.
        reporter=Reporter(
            name=names.get(sender or ""),
            phone=e164_phone(f"+{sender}") if sender else None,
        ),
        attachments=_attachment(body) if kind in _MEDIA else (),
        submitted_at=epoch_datetime(message.get("timestamp"), "timestamp") or raw.received_at,
        received_at=raw.received_at,
    )


def _attachment(body: dict[str, Any]) -> tuple[Attachment, ...]:
    media_id = as_text(body.get("id"), "media id", required=True)
    return (
        Attachment(
            url=f"whatsapp-media:{media_id}",
            media_type=as_text(body.get("mime_type"), "mime_type"),
            name=as_text(body.get("filename"), "filename"),
        ),
    )
