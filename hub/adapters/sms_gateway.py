"""SMS to 1708 through an operator's SMSC gateway: plain JSON, one SMS per POST.

The shape is ours; gateways are configured to post it::

    {"id": "smsc-7f3a91",                    # the gateway's message id
     "msisdn": "081234567890",               # the sender, in any Indonesian notation
     "shortcode": "1708",
     "text": "Jalan rusak di ...",
     "received": "2024-05-02T08:15:00+07:00", # SMSC time; without a zone it is WIB
     "concat": {"ref": 17, "part": 1, "total": 3}}  # only on one part of a long SMS

A long SMS arrives in one of two ways. Either the gateway joined nothing but sends
all parts in one message, as `"parts": [{"part": 1, "text": "..."}, ...]` instead of
`"text"` (with `"concat": {"total": N}` where it knows the count); they are joined here in
part order, each part missing marked. Or each part is its own message with
`"concat"`: `normalize` then returns a `Fragment` keyed by sender and ref, intake
stores it, and calls `join_fragments` once every part is there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.adapters.base import (
    Fragment,
    Outcome,
    RawMessage,
    RejectedError,
    Rejection,
    as_object,
    as_text,
    e164_phone,
    entry_outcome,
    iso_datetime,
    message_id_of,
    parse_json_object,
    rejecting,
)
from hub.model import Channel, Complaint, Reporter, SourceRef, tracking_id_for

_MAX_PARTS = 255
"""A concatenated SMS has at most 255 parts (one octet in the UDH)."""


@rejecting
def normalize(raw: RawMessage) -> list[Outcome]:
    """One SMS is one complaint, or one Fragment of a long SMS still to be joined."""
    payload = parse_json_object(raw)
    message_id = message_id_of(payload.get("id")) or raw.fallback_message_id()
    return [entry_outcome(message_id, lambda: _outcome(raw, payload, message_id))]


def join_fragments(parts: list[Fragment], partial: bool = False) -> list[Outcome]:
    """Join each complete group of fragments, in part order, into one complaint.

    Groups that still miss a part come back unchanged so the caller keeps waiting –
    unless `partial` (the caller waited long enough): then the parts that came are
    joined and each missing one is marked in the text, so the agency sees the gap.
    A part delivered twice counts once. Outcomes follow the groups' first appearance.
    """
    groups: dict[str, list[Fragment]] = {}
    for part in parts:
        groups.setdefault(part.group_key, []).append(part)
    outcomes: list[Outcome] = []
    for group in groups.values():
        outcomes.extend(_join_group(group, partial))
    return outcomes


def missing_part(index: int, total: int) -> str:
    """What stands in the text for a part that never came."""
    return f" [bagian {index}/{total} tidak diterima] "


def _join_group(group: list[Fragment], partial: bool) -> list[Outcome]:
    totals = {part.total for part in group}
    by_index: dict[int, Fragment] = {}
    for part in group:
        by_index.setdefault(part.index, part)
    if len(totals) != 1:
        # The key holds the sender's number, which stays out of rejection details.
        return [Rejection("inconsistent_fragments", "parts of one SMS disagree on their total")]
    total = totals.pop()
    complete = len(by_index) == total and all(1 <= i <= total for i in by_index)
    if not complete and not partial:
        return list(group)
    ordered = [by_index[i] for i in sorted(by_index)]
    first = ordered[0].raw
    try:
        payload = parse_json_object(first)
    except RejectedError as exc:
        return [Rejection(exc.reason, exc.detail, first.fallback_message_id())]
    message_id = message_id_of(payload.get("id")) or first.fallback_message_id()
    # The complaint is whole only once its last part is in.
    received_at = max(part.raw.received_at for part in ordered)

    def build() -> Complaint:
        text = "".join(
            _fragment_text(by_index[i].raw) if i in by_index else missing_part(i, total)
            for i in range(1, max(total, *by_index) + 1)
        )
        return _complaint(first, payload, message_id, text, received_at)

    return [entry_outcome(message_id, build)]


def _outcome(raw: RawMessage, payload: dict[str, Any], message_id: str) -> Outcome:
    sender = as_text(payload.get("msisdn"), "msisdn", required=True) or ""
    if "parts" in payload:
        if "text" in payload:
            raise RejectedError("invalid_payload", "text and parts exclude each other")
        concat = as_object(payload.get("concat"), "concat")
        total = _count(concat["total"], "concat.total") if "total" in concat else None
        return _complaint(raw, payload, message_id, _joined(payload["parts"], total),
                          raw.received_at)
    text = _part_text(payload.get("text"), "text")
    concat = as_object(payload.get("concat"), "concat")
    if concat:
        index, total = _position(concat)
        if total > 1:
            ref = message_id_of(concat.get("ref"))
            if ref is None:
                raise RejectedError("missing_field", "concat.ref is required")
            # A ref is unique only per sender, and the same number may come written two ways.
            return Fragment(f"{e164_phone(sender) or sender}:{ref}", index, total, raw)
    return _complaint(raw, payload, message_id, text, raw.received_at)


def _complaint(
    raw: RawMessage, payload: dict[str, Any], message_id: str, text: str, received_at: datetime
) -> Complaint:
    source = SourceRef(system=raw.source, message_id=message_id)
    description = text.strip()
    if not description:
        raise RejectedError("missing_field", "text is empty")
    return Complaint(
        tracking_id=tracking_id_for(source),
        source=source,
        channel=Channel.SMS,
        description=description,
        # An unparseable sender leaves the reporter empty; the complaint still counts.
        reporter=Reporter(phone=e164_phone(as_text(payload.get("msisdn"), "msisdn"))),
        submitted_at=iso_datetime(payload.get("received"), "received") or raw.received_at,
        received_at=received_at,
    )


def _joined(value: Any, total: int | None) -> str:
    """The parts in part order, as the separate parts are joined: a part listed twice with
    the same text counts once, and each part missing (below `concat.total`, where given, or
    the highest part listed) is marked in the text – the agency sees the gap."""
    if not isinstance(value, list) or not value or len(value) > _MAX_PARTS:
        raise RejectedError("invalid_field", f"parts must be a list of 1 to {_MAX_PARTS} parts")
    numbered: dict[int, str] = {}
    for item in value:
        part = as_object(item, "parts[]")
        index = _count(part.get("part"), "parts[].part")
        text = _part_text(part.get("text"), "parts[].text")
        if numbered.setdefault(index, text) != text:
            raise RejectedError("invalid_field", f"part {index} appears twice with other text")
    last = max(numbered)
    if total is not None and last > total:
        raise RejectedError("invalid_field", f"part {last} is beyond concat.total {total}")
    last = total or last
    return "".join(numbered.get(i, missing_part(i, last)) for i in range(1, last + 1))


def _position(concat: dict[str, Any]) -> tuple[int, int]:
    index = _count(concat.get("part"), "concat.part")
    total = _count(concat.get("total"), "concat.total")
    if index > total:
        raise RejectedError("invalid_field", "concat.part is beyond concat.total")
    return index, total


def _count(value: Any, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_PARTS:
        raise RejectedError("invalid_field", f"{field_name} must be 1 to {_MAX_PARTS}")
    return value


def _part_text(value: Any, field_name: str) -> str:
    # Not trimmed: the SMSC splits anywhere, so a part may begin or end with the space
    # between two words.
    if not isinstance(value, str):
        raise RejectedError("missing_field", f"{field_name} must be text")
    return value


def _fragment_text(raw: RawMessage) -> str:
    return _part_text(parse_json_object(raw).get("text"), "text")
