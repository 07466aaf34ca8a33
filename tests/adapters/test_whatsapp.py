"""WhatsApp Cloud API webhooks -> Complaint."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hub.adapters.base import Outcome, RawMessage, Rejection
from hub.adapters.whatsapp import message_ref, normalize
from hub.model import Attachment, Channel, Complaint, SourceRef, tracking_id_for

FIXTURES = Path(__file__).parents[1] / "fixtures" / "whatsapp"
RECEIVED = datetime(2024, 5, 2, 1, 20, tzinfo=UTC)
WAMID = "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFDNBMDQ0RjRFQjc5NjU0NTJCQjAxAA=="


def load(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return value


def run(payload: dict[str, Any]) -> list[Outcome]:
    body = json.dumps(payload).encode()
    return normalize(RawMessage("whatsapp", body, "application/json", RECEIVED))


def test_text_message_becomes_a_complaint() -> None:
    (found,) = run(load("text_message.json"))
    assert isinstance(found, Complaint)
    source = SourceRef(system="whatsapp", message_id=message_ref(WAMID))
    assert found.source == source
    assert found.tracking_id == tracking_id_for(source)
    assert found.channel is Channel.WHATSAPP
    assert found.description.startswith("Selamat pagi, saya mau lapor. Air PDAM")
    assert found.reporter.name == "Budi Santoso"
    assert found.reporter.phone == "+6281234567890"
    assert found.submitted_at == datetime.fromtimestamp(1714612500, UTC)
    assert found.received_at == RECEIVED


def test_mixed_batch_keeps_each_message_and_receipt_apart() -> None:
    outcomes = run(load("mixed_batch.json"))
    kinds = [o.reason if isinstance(o, Rejection) else "complaint" for o in outcomes]
    assert kinds == [
        "complaint",  # image with caption
        "complaint",  # text
        "missing_field",  # image without caption
        "not_a_complaint",  # reaction
        "not_a_complaint",  # delivery status
    ]
    ids = [o.source_message_id if isinstance(o, Rejection) else None for o in outcomes]
    assert all(i and i.startswith("wa-") for i in ids[2:])
    image = outcomes[0]
    assert isinstance(image, Complaint)
    assert image.description == "Tumpukan sampah di pinggir Kali Malang, sudah seminggu."
    assert image.attachments == (
        Attachment(url="whatsapp-media:1038471659283746", media_type="image/jpeg"),
    )
    assert image.reporter.name == "Sri Wahyuni"
    text = outcomes[1]
    assert isinstance(text, Complaint)
    assert (text.reporter.name, text.reporter.phone) == ("Joko", "+6281398765432")


def test_status_receipts_alone_are_not_complaints() -> None:
    (refused,) = run(load("status_only.json"))
    assert isinstance(refused, Rejection)
    assert refused.reason == "not_a_complaint"
    assert refused.source_message_id == message_ref(
        "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEkE5OEI3NkM1NEQzMkUxRjBBAA=="
    )


def test_a_broken_change_does_not_lose_the_next_one() -> None:
    payload = load("text_message.json")
    changes = payload["entry"][0]["changes"]
    changes.insert(0, {"field": "messages", "value": {"messages": "oops"}})
    changes.append({"field": "account_update", "value": {}})
    outcomes = run(payload)
    assert [type(o).__name__ for o in outcomes] == ["Rejection", "Complaint", "Rejection"]
    assert isinstance(outcomes[2], Rejection)
    assert outcomes[2].reason == "not_a_complaint"


def test_an_invalid_sender_number_only_leaves_the_phone_empty() -> None:
    payload = load("text_message.json")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = "0000"
    (found,) = run(payload)
    assert isinstance(found, Complaint)
    assert found.reporter.phone is None


def test_other_objects_are_refused() -> None:
    (refused,) = run({"object": "page", "entry": []})
    assert isinstance(refused, Rejection)
    assert refused.reason == "invalid_payload"


def test_the_sender_number_in_a_wamid_goes_nowhere() -> None:
    # A wamid is the sender's number in base64 and more: as the message id it went to every
    # agency with the complaint, anonymous ones too, and into dead letters' details.
    outcomes = run(load("mixed_batch.json"))
    shown = json.dumps([o.model_dump(mode="json") if isinstance(o, Complaint) else
                        [o.source_message_id, o.detail] for o in outcomes
                        if isinstance(o, Complaint | Rejection)])
    assert "wamid." not in shown and "HBgN" not in shown


@pytest.mark.parametrize(("kind", "body", "reason"), [
    ("location", {"latitude": -6.24, "longitude": 106.99, "name": "Kali Malang"},
     "unsupported_message"),
    ("contacts", [{"name": {"formatted_name": "Pak RT"}}], "unsupported_message"),
    ("unsupported", {}, "unsupported_message"),
    ("interactive", {"type": "list_reply", "list_reply": {"id": "1", "title": "Lapor"}},
     "not_a_complaint"),
    ("sticker", {"id": "123", "mime_type": "image/webp"}, "not_a_complaint"),
])
def test_a_message_the_hub_cannot_read_is_refused_for_a_dead_letter(
    kind: str, body: object, reason: str,
) -> None:
    # The ingress answers 200 and drops only what is "not_a_complaint": a citizen's location
    # or contact card left no trace at all.
    payload = load("text_message.json")
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message.update({"type": kind, kind: body})
    (refused,) = run(payload)
    assert isinstance(refused, Rejection)
    assert (refused.reason, refused.detail) == (reason, f"{kind} message")
