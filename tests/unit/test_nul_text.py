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
