"""Twilio inbound SMS/MMS webhook -> Complaint."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from hub.adapters.base import Outcome, RawMessage, Rejection
from hub.adapters.sms_twilio import normalize
from hub.model import Attachment, Channel, Complaint, SourceRef, tracking_id_for

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sms-twilio"
RECEIVED = datetime(2024, 5, 2, 1, 20, tzinfo=UTC)


def form(name: str) -> dict[str, str]:
    return dict(parse_qsl((FIXTURES / name).read_text(), keep_blank_values=True))


def run(fields: dict[str, str], message_id: str | None = None) -> list[Outcome]:
    body = urlencode(fields).encode()
    return normalize(
        RawMessage("sms-twilio", body, "application/x-www-form-urlencoded", RECEIVED, message_id)
    )


def complaint(outcomes: list[Outcome]) -> Complaint:
    assert len(outcomes) == 1
    assert isinstance(outcomes[0], Complaint), outcomes
    return outcomes[0]


def test_inbound_sms_becomes_one_sms_complaint() -> None:
    fields = form("inbound_sms.urlencoded")
    found = complaint(run(fields))
    sid = "SM5a1d6c0e8f2b4a7c9d3e1f0a2b4c6d8e"
    assert found.source == SourceRef(system="sms-twilio", message_id=sid)
    assert found.tracking_id == tracking_id_for(SourceRef(system="sms-twilio", message_id=sid))
    assert found.channel is Channel.SMS
    assert found.title is None
    assert found.description == fields["Body"]
    assert found.reporter.phone == "+6281234567890"
    assert found.attachments == ()
    assert found.submitted_at == found.received_at == RECEIVED


def test_same_bytes_give_the_same_tracking_id() -> None:
    fields = form("inbound_sms.urlencoded")
    assert complaint(run(fields)).tracking_id == complaint(run(fields)).tracking_id
    other = fields | {"MessageSid": "SM00000000000000000000000000000001"}
    assert complaint(run(other)).tracking_id != complaint(run(fields)).tracking_id


def test_multi_segment_body_is_kept_whole() -> None:
    fields = form("long_sms.urlencoded")
    assert fields["NumSegments"] == "3"
    found = complaint(run(fields))
    assert found.description == fields["Body"]
    assert len(found.description) > 3 * 100


def test_mms_media_become_attachments_in_order() -> None:
    fields = form("mms_with_photos.urlencoded")
    found = complaint(run(fields))
    assert found.attachments == (
        Attachment(url=fields["MediaUrl0"], media_type="image/jpeg"),
        Attachment(url=fields["MediaUrl1"], media_type="image/png"),
    )


def test_local_notation_is_normalized_and_a_sender_name_is_dropped() -> None:
    fields = form("inbound_sms.urlencoded")
    assert complaint(run(fields | {"From": "081234567890"})).reporter.phone == "+6281234567890"
    kept = complaint(run(fields | {"From": "TELKOMSEL"}))
    assert kept.reporter.phone is None
    assert kept.description == fields["Body"]


def test_without_message_sid_the_envelope_id_identifies_the_sms() -> None:
    fields = form("inbound_sms.urlencoded")
    del fields["MessageSid"]
    found = complaint(run(fields, message_id="ingress-42"))
    assert found.source.message_id == "ingress-42"


def test_empty_body_is_refused_with_its_message_sid() -> None:
    fields = form("inbound_sms.urlencoded") | {"Body": "  "}
    assert run(fields) == [
        Rejection("missing_field", "Body is required", "SM5a1d6c0e8f2b4a7c9d3e1f0a2b4c6d8e")
    ]


def test_a_status_callback_is_not_a_complaint() -> None:
    # Twilio's status callback, if pointed at the inbound URL, tells of an SMS sent out.
    callback = {"MessageSid": "SM0b1c", "MessageStatus": "delivered", "SmsStatus": "delivered",
                "From": "+62211708", "To": "+6281234567890", "AccountSid": "AC12",
                "ApiVersion": "2010-04-01"}
    assert run(callback) == [Rejection("not_a_complaint", "status callback delivered", "SM0b1c")]


def test_an_opt_out_keyword_is_not_a_complaint() -> None:
    # With Advanced Opt-Out Twilio still forwards the keyword, marked OptOutType: a citizen
    # answering a notification with BERHENTI was filed as the complaint "BERHENTI".
    fields = form("inbound_sms.urlencoded") | {"Body": "BERHENTI", "OptOutType": "STOP"}
    assert run(fields) == [Rejection("not_a_complaint", "opt-out keyword (STOP)",
                                     "SM5a1d6c0e8f2b4a7c9d3e1f0a2b4c6d8e")]
    complaint(run(form("inbound_sms.urlencoded") | {"OptOutType": ""}))


def test_a_message_from_a_twilio_whatsapp_sender_is_a_whatsapp_complaint() -> None:
    # Filed as SMS, its notifications went out by SMS to a citizen who wrote on WhatsApp.
    fields = form("inbound_sms.urlencoded") | {"From": "whatsapp:+6281234567890",
                                               "To": "whatsapp:+14155238886"}
    found = complaint(run(fields))
    assert (found.channel, found.reporter.phone) == (Channel.WHATSAPP, "+6281234567890")
    assert complaint(run(form("inbound_sms.urlencoded"))).channel is Channel.SMS


def test_media_count_must_match_the_media_fields() -> None:
    fields = form("inbound_sms.urlencoded")
    (missing,) = run(fields | {"NumMedia": "1"})
    assert isinstance(missing, Rejection)
    assert missing.reason == "missing_field"
    (bad,) = run(fields | {"NumMedia": "²"})
    assert isinstance(bad, Rejection)
    assert bad.reason == "invalid_field"


def test_bytes_that_are_no_form_are_refused() -> None:
    form_type = "application/x-www-form-urlencoded"
    (refused,) = normalize(RawMessage("sms-twilio", b"Body=%FF%FE", form_type, RECEIVED))
    assert isinstance(refused, Rejection)
    assert refused.reason == "invalid_encoding"
    (twice,) = normalize(RawMessage("sms-twilio", b"Body=a&Body=b", form_type, RECEIVED))
    assert isinstance(twice, Rejection)
    assert twice.reason == "invalid_field"
