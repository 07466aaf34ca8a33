"""Facebook Page and Instagram webhooks (Meta Graph API), as the regional bots receive them.

`object` is "page" or "instagram" (a WhatsApp Business Account's webhook, sent to the
same callback, is read as the WhatsApp adapter reads it); each `entry[]` carries
`changes[]` (feed and comment events) and/or `messaging[]` (Messenger and Instagram
Direct). A complaint is:

- a new comment on the page's feed: field "feed", item "comment", verb "add";
- a comment on an Instagram media: field "comments";
- a message to the page or account: a `messaging[]` event (or a `standby[]` one, sent
  while another app holds the conversation) with a `message` that is not an echo of the
  page's own reply, a quick-reply button tapped, a sticker (a like) nor a message the
  sender unsent (a kind Meta does not show to apps is "unsupported_message").

A comment whose author is the page or account itself (`from.id` is the entry's id) is its
own reply to a citizen, not a complaint. Every other event (likes, reactions, edits,
removals, new posts, receipts) is a "not_a_complaint" rejection, so nothing the bot
forwarded disappears unseen.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from hub.adapters import whatsapp
from hub.adapters.base import (
    Outcome,
    RawMessage,
    RejectedError,
    Rejection,
    as_list,
    as_object,
    as_text,
    entry_outcome,
    epoch_datetime,
    message_id_of,
    parse_json_object,
    rejecting,
)
from hub.model import Attachment, Channel, Complaint, Reporter, SourceRef, tracking_id_for

_CHANNELS = {"page": Channel.FACEBOOK, "instagram": Channel.INSTAGRAM}


@rejecting
def normalize(raw: RawMessage) -> list[Outcome]:
    """Each comment or message in each entry is one complaint."""
    payload = parse_json_object(raw)
    kind = as_text(payload.get("object"), "object", required=True) or ""
    if kind == whatsapp.OBJECT:
        # One Meta app may send all its webhooks to one callback, this one: read as if
        # posted to the WhatsApp path (same source, so a copy sent there is the same message).
        return whatsapp.normalize(replace(raw, source=whatsapp.SOURCE))
    channel = _CHANNELS.get(kind)
    if channel is None:
        raise RejectedError("not_a_complaint", f"object {kind[:50]!r} is not page or instagram")
    entries = as_list(payload.get("entry"), "entry")
    if not entries:
        raise RejectedError("invalid_payload", "entry is empty")
    outcomes: list[Outcome] = []
    for entry in entries:
        try:
            outcomes.extend(_entry(raw, channel, entry))
        except RejectedError as exc:
            outcomes.append(Rejection(exc.reason, exc.detail))
    return outcomes


def _entry(raw: RawMessage, channel: Channel, entry: Any) -> list[Outcome]:
    if not isinstance(entry, dict):
        raise RejectedError("invalid_payload", "entry[] must be an object")
    changes = as_list(entry.get("changes"), "entry[].changes")
    messaging = [
        *as_list(entry.get("messaging"), "entry[].messaging"),
        *as_list(entry.get("standby"), "entry[].standby"),
    ]
    if not changes and not messaging:
        raise RejectedError("not_a_complaint", "entry has no changes, messaging or standby")
    return [
        *(
            entry_outcome(_change_id(change), partial(_from_change, raw, channel, entry, change))
            for change in changes
        ),
        *(
            entry_outcome(_event_id(event), partial(_from_message, raw, channel, event))
            for event in messaging
        ),
    ]


def _change_id(change: Any) -> str | None:
    value = change.get("value") if isinstance(change, dict) else None
    if not isinstance(value, dict):
        return None
    for key in ("comment_id", "id", "post_id"):
        found = message_id_of(value.get(key))
        if found:
            return found
    return None


def _event_id(event: Any) -> str | None:
    message = event.get("message") if isinstance(event, dict) else None
    return message_id_of(message.get("mid")) if isinstance(message, dict) else None


def _from_change(
    raw: RawMessage, channel: Channel, entry: dict[str, Any], change: Any
) -> Complaint:
    if not isinstance(change, dict):
        raise RejectedError("invalid_payload", "changes[] must be an object")
    field = change.get("field")
    value = as_object(change.get("value"), "changes[].value")
    author = value.get("from")
    if isinstance(author, dict) and author.get("id") is not None \
            and str(author["id"]) == str(entry.get("id")):
        # The page answering a citizen under the post: filed, it would be answered again.
        raise RejectedError("not_a_complaint", "the page's or account's own comment")
    if channel is Channel.FACEBOOK and field == "feed":
        return _page_comment(raw, value)
    if channel is Channel.INSTAGRAM and field == "comments":
        return _instagram_comment(raw, entry, value)
    raise RejectedError("not_a_complaint", f"{channel} {str(field)[:50]} event")


def _page_comment(raw: RawMessage, value: dict[str, Any]) -> Complaint:
    item, verb = value.get("item"), value.get("verb")
    if (item, verb) != ("comment", "add"):
        raise RejectedError("not_a_complaint", f"feed {str(item)[:30]} {str(verb)[:30]}")
    author = as_object(value.get("from"), "value.from")
    photo = as_text(value.get("photo"), "value.photo")
    return _complaint(
        raw,
        Channel.FACEBOOK,
        message_id=as_text(value.get("comment_id"), "value.comment_id", required=True),
        text=value.get("message"),
        reporter=Reporter(name=as_text(author.get("name"), "value.from.name")),
        attachments=(Attachment(url=photo),) if photo else (),
        sent=epoch_datetime(value.get("created_time"), "value.created_time"),
    )


def _instagram_comment(raw: RawMessage, entry: dict[str, Any], value: dict[str, Any]) -> Complaint:
    author = as_object(value.get("from"), "value.from")
    username = as_text(author.get("username"), "value.from.username")
    return _complaint(
        raw,
        Channel.INSTAGRAM,
        message_id=as_text(value.get("id"), "value.id", required=True),
        text=value.get("text"),
        reporter=Reporter(handle=f"@{username}" if username else None),
        attachments=(),
        # The comment itself carries no time; the entry's is when Meta saw it.
        sent=epoch_datetime(entry.get("time"), "entry[].time"),
    )


def _from_message(raw: RawMessage, channel: Channel, event: Any) -> Complaint:
    if not isinstance(event, dict):
        raise RejectedError("invalid_payload", "messaging[] must be an object")
    message = event.get("message")
    if not isinstance(message, dict):
        raise RejectedError("not_a_complaint", "messaging event without a message")
    if message.get("is_echo") is True:
        raise RejectedError("not_a_complaint", "echo of the page's own message")
    if isinstance(message.get("quick_reply"), dict):
        # A bot menu's button ("Cek Status Laporan"): its label is the text, not the citizen's.
        raise RejectedError("not_a_complaint", "quick-reply button tapped")
    if message.get("is_deleted") is True:
        # Instagram: the citizen unsent a message; this event carries its mid and no text.
        raise RejectedError("not_a_complaint", "message unsent by its sender")
    if message.get("is_unsupported") is True:
        # A kind Instagram does not show to apps: the citizen sent something nobody can read.
        raise RejectedError("unsupported_message", "a message kind Meta does not show to apps")
    if message.get("text") is None and _sticker(message):
        # A sticker (Messenger's like button is one): nothing the citizen wrote, as on WhatsApp.
        raise RejectedError("not_a_complaint", "sticker message")
    return _complaint(
        raw,
        channel,
        message_id=as_text(message.get("mid"), "message.mid", required=True),
        text=message.get("text"),
        # Messaging only names the sender by a page-scoped id, which is no handle.
        reporter=Reporter(),
        attachments=_message_attachments(message.get("attachments")),
        sent=epoch_datetime(event.get("timestamp"), "messaging[].timestamp", millis=True),
    )


def _sticker(message: dict[str, Any]) -> bool:
    """A sticker: `sticker_id` on the message, or attachments of type "sticker" alone (Meta
    sends both forms while it moves to the second)."""
    kinds = {item.get("type") if isinstance(item, dict) else None
             for item in as_list(message.get("attachments"), "message.attachments")}
    return message.get("sticker_id") is not None or kinds == {"sticker"}


def _message_attachments(value: Any) -> tuple[Attachment, ...]:
    found = []
    for item in as_list(value, "message.attachments"):
        payload = as_object(as_object(item, "message.attachments[]").get("payload"), "payload")
        url = as_text(payload.get("url"), "message.attachments[].payload.url")
        if url:  # stickers and shared locations carry no evidence to keep
            found.append(Attachment(url=url))
    return tuple(found)


def _complaint(
    raw: RawMessage,
    channel: Channel,
    *,
    message_id: str | None,
    text: Any,
    reporter: Reporter,
    attachments: tuple[Attachment, ...],
    sent: datetime | None,
) -> Complaint:
    source = SourceRef(system=raw.source, message_id=message_id or "")
    return Complaint(
        tracking_id=tracking_id_for(source),
        source=source,
        channel=channel,
        description=as_text(text, "text", required=True) or "",
        reporter=reporter,
        attachments=attachments,
        submitted_at=sent or raw.received_at,
        received_at=raw.received_at,
    )
