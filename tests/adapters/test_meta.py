"""Meta Graph webhooks (Facebook Page, Instagram) -> Complaint."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hub.adapters import whatsapp
from hub.adapters.base import Outcome, RawMessage, Rejection
from hub.adapters.meta import normalize
from hub.model import Attachment, Channel, Complaint, SourceRef, tracking_id_for

FIXTURES = Path(__file__).parents[1] / "fixtures" / "meta"
RECEIVED = datetime(2024, 5, 2, 1, 20, tzinfo=UTC)


def load(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return value


def run(payload: dict[str, Any]) -> list[Outcome]:
    return normalize(RawMessage("meta", json.dumps(payload).encode(), "application/json", RECEIVED))


def summary(outcomes: list[Outcome]) -> list[tuple[str, str | None]]:
    return [
        (o.reason, o.source_message_id)
        if isinstance(o, Rejection)
        else ("complaint", o.source.message_id)
        for o in outcomes
        if isinstance(o, Complaint | Rejection)
    ]


def test_page_webhook_yields_one_outcome_per_change_and_message() -> None:
    assert summary(run(load("page_feed.json"))) == [
        ("complaint", "801234567890123_1029384756102938"),
        ("not_a_complaint", "104857392019283_801234567890123"),  # a reaction
        ("complaint", "801234567890123_1029384756102939"),
        ("missing_field", "801234567890123_1029384756102940"),  # a comment without text
        ("complaint", "m_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
        ("not_a_complaint", None),  # a delivery receipt
    ]


def test_page_comment_fields() -> None:
    found = run(load("page_feed.json"))[0]
    assert isinstance(found, Complaint)
    source = SourceRef(system="meta", message_id="801234567890123_1029384756102938")
    assert found.tracking_id == tracking_id_for(source)
    assert found.channel is Channel.FACEBOOK
    assert found.description.startswith("Mohon ditindaklanjuti, jalan di Perumahan")
    assert found.reporter.name == "Siti Rahmawati"
    assert found.submitted_at == datetime.fromtimestamp(1714612190, UTC)
    assert found.received_at == RECEIVED


def test_photo_comment_and_message_attachments() -> None:
    outcomes = run(load("page_feed.json"))
    photo, message = outcomes[2], outcomes[4]
    assert isinstance(photo, Complaint)
    assert photo.attachments == (
        Attachment(url="https://scontent.xx.fbcdn.net/v/t39.30808-6/441234567_n.jpg"),
    )
    assert isinstance(message, Complaint)
    assert message.channel is Channel.FACEBOOK
    assert message.attachments[0].url.startswith("https://lookaside.fbsbx.com/")
    # Messaging timestamps are in milliseconds.
    assert message.submitted_at == datetime.fromtimestamp(1714612299.876, UTC)


def test_instagram_comments_and_messages() -> None:
    outcomes = run(load("instagram_comments.json"))
    assert summary(outcomes) == [
        ("complaint", "17860000000000001"),
        ("missing_field", None),  # a comment without its id
        ("not_a_complaint", "17860000000000009"),  # a mention, not a comment
        ("complaint", "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAw"),
        ("not_a_complaint", "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAx"),  # our own echo
    ]
    comment = outcomes[0]
    assert isinstance(comment, Complaint)
    assert comment.channel is Channel.INSTAGRAM
    assert comment.reporter.handle == "@warga.kobar"
    assert comment.submitted_at == datetime.fromtimestamp(1714612400, UTC)


def test_edited_comments_are_not_new_complaints() -> None:
    payload = load("page_feed.json")
    payload["entry"][0]["changes"][0]["value"]["verb"] = "edited"
    assert summary(run(payload))[0] == ("not_a_complaint", "801234567890123_1029384756102938")


def test_a_broken_entry_costs_only_itself() -> None:
    payload = load("page_feed.json")
    payload["entry"].insert(1, "not an entry")
    outcomes = run(payload)
    assert len(outcomes) == 7
    # The first entry gave two outcomes; the broken second one gives one.
    assert outcomes[2] == Rejection("invalid_payload", "entry[] must be an object")
    assert sum(isinstance(o, Complaint) for o in outcomes) == 3


def test_other_objects_are_not_complaints() -> None:
    (refused,) = run({"object": "user", "entry": []})
    assert isinstance(refused, Rejection)
    assert refused.reason == "not_a_complaint"


def test_the_pages_own_replies_are_not_complaints() -> None:
    # Meta sends the page's answer under a citizen's comment as a feed (or comments) change
    # whose author is the page: filed, each answer would come back to an agency.
    page = load("page_feed.json")
    reply = page["entry"][0]["changes"][0]["value"]
    reply["from"] = {"id": page["entry"][0]["id"], "name": "Pemerintah Kota Bekasi"}
    assert summary(run(page))[0] == ("not_a_complaint", "801234567890123_1029384756102938")
    instagram = load("instagram_comments.json")
    instagram["entry"][0]["changes"][0]["value"]["from"]["id"] = instagram["entry"][0]["id"]
    assert summary(run(instagram))[0] == ("not_a_complaint", "17860000000000001")


def message_event(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "sender": {"id": "6789012345678901"},
        "recipient": {"id": "104857392019283"},
        "timestamp": 1714612299876,
        "message": message,
    }


def test_quick_reply_taps_are_not_complaints() -> None:
    tap = message_event({"mid": "m_qr1", "text": "Cek Status Laporan",
                         "quick_reply": {"payload": "MENU_CEK_STATUS"}})
    payload = {"object": "page", "entry": [{"id": "104857392019283", "time": 1714612300,
                                            "messaging": [tap]}]}
    assert summary(run(payload)) == [("not_a_complaint", "m_qr1")]


def test_stickers_and_unsent_messages_are_not_complaints() -> None:
    # Messenger's like button is a sticker, and Instagram tells of a message the citizen
    # unsent: neither has text, and each was a missing_field dead letter.
    sticker = {"type": "image", "payload": {"url": "https://scontent.xx.fbcdn.net/like.png",
                                            "sticker_id": 369239263222822}}
    like = message_event({"mid": "m_like", "sticker_id": 369239263222822,
                          "attachments": [sticker, {**sticker, "type": "sticker"}]})
    newer = message_event({"mid": "m_sticker", "attachments": [{**sticker, "type": "sticker"}]})
    unsent = message_event({"mid": "m_unsent", "is_deleted": True})
    unreadable = message_event({"mid": "m_unsupported", "is_unsupported": True})
    photo = message_event({"mid": "m_photo", "attachments": [{**sticker, "payload": {
        "url": "https://lookaside.fbsbx.com/photo.jpg"}}]})
    payload = {"object": "instagram", "entry": [{"id": "17841400000000001", "time": 1714612300,
                                                 "messaging": [like, newer, unsent, unreadable,
                                                               photo]}]}
    assert summary(run(payload)) == [
        ("not_a_complaint", "m_like"), ("not_a_complaint", "m_sticker"),
        ("not_a_complaint", "m_unsent"), ("unsupported_message", "m_unsupported"),
        ("missing_field", "m_photo"),  # a photo without a word, as on WhatsApp
    ]


def test_messages_in_standby_are_complaints() -> None:
    # Meta's handover protocol: while another app holds the conversation, messages come
    # under standby[]; the citizen wrote them all the same.
    said = message_event({"mid": "m_sb1", "text": "Jembatan di Desa Sukamaju ambruk."})
    echo = message_event({"mid": "m_sb2", "text": "Baik, kami cek.", "is_echo": True})
    payload = {"object": "page", "entry": [{"id": "104857392019283", "time": 1714612300,
                                            "standby": [said, echo]}]}
    assert summary(run(payload)) == [("complaint", "m_sb1"), ("not_a_complaint", "m_sb2")]


def test_a_whatsapp_webhook_sent_to_the_meta_callback_is_read_as_whatsapp() -> None:
    # One Meta app may point all its webhooks at one callback URL; the signature is the
    # same app secret's, so these were answered 200 as "not a complaint" and kept nowhere.
    body = (Path(__file__).parents[1] / "fixtures" / "whatsapp" / "mixed_batch.json").read_bytes()
    here = normalize(RawMessage("meta", body, "application/json", RECEIVED))
    there = whatsapp.normalize(RawMessage("whatsapp", body, "application/json", RECEIVED))
    assert here == there
    assert any(isinstance(o, Complaint) and o.channel is Channel.WHATSAPP for o in here)


def test_a_page_webhook_sent_to_the_whatsapp_callback_says_where_it_belongs() -> None:
    body = json.dumps(load("page_feed.json")).encode()
    (refused,) = whatsapp.normalize(RawMessage("whatsapp", body, "application/json", RECEIVED))
    assert isinstance(refused, Rejection)
    assert refused.reason == "invalid_payload"
    assert "meta source" in refused.detail
