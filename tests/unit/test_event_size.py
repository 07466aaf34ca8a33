"""Every event fits in one Kafka record, whatever the complaint or the bad record holds: the
broker refuses a larger one for ever, and the consumer would wait on it."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from hub import topics
from hub.intake import Record, dead_letter, dead_letter_outbox
from hub.model import (
    DESCRIPTION_MAX,
    MAX_ATTACHMENTS,
    MAX_EVENT_BYTES,
    Attachment,
    Channel,
    Complaint,
    Deadline,
    DuplicateEvent,
    Location,
    Reporter,
    RoutingEvent,
    SourceRef,
)

NOW = datetime(2026, 11, 24, tzinfo=UTC)
AGENCY = "a" * 63


def worst(n: int) -> str:
    """n characters that JSON escapes to six bytes each (\\u0001)."""
    return "\x01" * n


def largest_complaint(attachments: int = MAX_ATTACHMENTS) -> Complaint:
    return Complaint(
        tracking_id="0" * 18,
        source=SourceRef(system=worst(64), message_id=worst(256)),
        channel=Channel.WEB,
        title=worst(500),
        description=worst(DESCRIPTION_MAX),
        category=worst(100),
        target_agency=AGENCY,
        location=Location(region_code="32.75.01.1001", region_name=worst(200), latitude=-6.2,
                          longitude=106.8, address=worst(1000)),
        reporter=Reporter(name=worst(200), nik="3" * 16, phone="+628" + "1" * 11,
                          email=worst(320), handle=worst(200)),
        attachments=tuple(
            Attachment(url=worst(2000), media_type=worst(200), name=worst(500))
            for _ in range(attachments)
        ),
        occurred_at=NOW, submitted_at=NOW, received_at=NOW,
    )


def test_the_largest_routing_and_duplicate_events_fit_in_one_record() -> None:
    complaint = largest_complaint()
    routing = RoutingEvent(
        event_id=worst(100), tracking_id=complaint.tracking_id, agency_code=AGENCY,
        previous_agency_code=AGENCY, reason="explicit_target", routed_at=NOW, confidential=True,
        deadlines=tuple(Deadline(kind=k, due_at=NOW)
                        for k in ("verification", "first_follow_up", "settle", "auto_close")),
        complaint=complaint,
    )
    duplicate = DuplicateEvent(
        event_id=worst(100), tracking_id=complaint.tracking_id, agency_code=AGENCY,
        matched_by="reporter", confidential=True, at=NOW, duplicate=complaint,
    )
    for event in (routing, duplicate):
        size = len(event.model_dump_json())
        assert 0.7 * MAX_EVENT_BYTES < size < MAX_EVENT_BYTES, size


def test_a_complaint_with_more_attachments_is_refused() -> None:
    with pytest.raises(ValidationError, match="attachments"):
        largest_complaint(MAX_ATTACHMENTS + 1)


@pytest.mark.parametrize(("value", "key", "omitted"), [
    (b"{}", b"k", ()),
    (b"{" + b"x" * 900_000, b"k", ("original",)),
    (b"{}", b"k" * 1_000_000, ("original", "key", "headers")),
])
def test_a_dead_letter_event_leaves_out_what_would_not_fit(
    value: bytes, key: bytes, omitted: tuple[str, ...],
) -> None:
    record = Record(topics.raw("web"), 0, 1, key, value, {"content-type": "application/json"},
                    NOW)
    letter = dead_letter(record, "invalid_json", "not JSON", "intake", NOW)
    row = dead_letter_outbox(letter, NOW)
    event = json.loads(row["value"])
    assert len(row["value"]) + len(row["key"] or "") <= MAX_EVENT_BYTES
    assert event["original_omitted"] is bool(omitted)
    empty: dict[str, object] = {"original": "", "key": None, "headers": {}}
    assert {f for f in empty if event[f] == empty[f]} == set(omitted)
    if not omitted:
        assert base64.b64decode(event["original"]) == value
