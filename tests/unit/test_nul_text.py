"""Text with a NUL character is refused where the hub would keep it in a column of its own.

PostgreSQL cannot hold a NUL in text: a web form id or an agency's note with one failed the
insert, went round every retry (minutes) and ended a `processing_error` that no replay
could mend. Now the reason names the field at once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hub import topics
from hub.intake import Record
from hub.service import Hub
from tests.support import FakePublisher, web_record


def letters(publisher: FakePublisher) -> list[tuple[str, str]]:
    return [(e["reason"], e["detail"]) for e in (json.loads(p.value) for p in publisher.sent
                                                  if p.topic == topics.DEAD_LETTER)]


async def test_ids_and_notes_with_a_nul_are_refused_naming_the_field(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, publisher = driven
    await service.intake([web_record("ok-1", "Lampu jalan mati di depan balai desa")])
    (routing,) = [json.loads(p.value) for p in publisher.sent]
    await service.intake([web_record("a\x00b", "Jalan berlubang di dekat pasar lama")])
    assert letters(publisher) == [("invalid_complaint", "message_id: Value error, contains a "
                                   "NUL character, which no database text can hold")]
    publisher.sent.clear()
    for n, (field, value) in enumerate([("message", "catatan\x00"), ("event_id", "e\x00")]):
        event = {"event_id": f"ev-{n}", "tracking_id": routing["tracking_id"],
                 "agency_code": routing["agency_code"], "status": "verified",
                 "at": datetime.now(UTC).isoformat(), field: value}
        await service.follow_up([Record(topics.FOLLOW_UP, 0, n, None, json.dumps(event).encode(),
                                        {}, datetime.now(UTC))])
    assert [(reason, detail.split(":")[0]) for reason, detail in letters(publisher)] == [
        ("invalid_follow_up", "message"), ("invalid_follow_up", "event_id")]


async def test_a_field_named_with_nuls_is_refused_at_once_naming_it(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # The detail quotes the field's name, each NUL escaped in four characters: past the
    # detail's 2,000 the letter itself failed, and the event went round every retry
    # (minutes) to end a processing_error that no longer said what was wrong.
    service, publisher = driven
    await service.intake([web_record("ok-2", "Lampu jalan mati di depan balai desa")])
    (routing,) = [json.loads(p.value) for p in publisher.sent]
    publisher.sent.clear()
    event = {"event_id": "ev-nul", "tracking_id": routing["tracking_id"],
             "agency_code": routing["agency_code"], "status": "verified",
             "at": datetime.now(UTC).isoformat(), "\x00" * 600: 1}
    await service.follow_up([Record(topics.FOLLOW_UP, 0, 0, None, json.dumps(event).encode(),
                                    {}, datetime.now(UTC))])
    ((reason, detail),) = letters(publisher)
    assert reason == "invalid_follow_up"
    assert detail.startswith("\\x00" * 10)
    assert not [p for p in publisher.sent if p.topic == topics.RETRY]
