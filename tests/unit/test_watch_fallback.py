"""The deadline watch's fallback, complaint by complaint, when its pass fails on some rows."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from pydantic import SecretStr

from hub import metrics, topics
from hub.intake import Record
from hub.model import FollowUpEvent, Status
from hub.sealing import Sealer
from hub.service import Hub
from hub.settings import Settings
from tests.support import FakePublisher, overdue, web_record


def responded(routed: dict[str, str], offset: int) -> Record:
    event = FollowUpEvent(event_id=f"answer-{offset}", tracking_id=routed["tracking_id"],
                          agency_code=routed["agency_code"], status=Status.RESPONDED,
                          at=datetime.now(UTC), message="Sudah diperbaiki.")
    return Record(topics.FOLLOW_UP, 0, offset, None, event.model_dump_json().encode(), {},
                  datetime.now(UTC))


TEXT = "Trotoar rusak di depan sekolah dasar negeri"
PERSON = {"nama": "Rahmat Hidayat", "telepon": "+6281311122233"}


async def test_a_pass_full_of_complaints_it_cannot_handle_still_reaches_the_others(
    driven: tuple[Hub, FakePublisher], database_url: str,
) -> None:
    # More complaints the watch cannot handle (reporters sealed under a key since dropped)
    # than one pass takes, all due earlier: the fallback took the same first 500 every
    # pass, failed each, and never reached a complaint it could handle.
    service, publisher = driven
    good_rules = service.rules
    lost = Settings(database_url=database_url, secret_key=SecretStr("a-key-since-dropped-0123"))
    service.rules = replace(good_rules, sealer=Sealer.from_settings(lost))
    await service.intake([web_record(f"lost-{n}", f"{TEXT} nomor {n}", pelapor=PERSON)
                          for n in range(501)])
    routed = [json.loads(p.value) for p in publisher.sent]
    lost_ids = [r["tracking_id"] for r in routed]
    assert len(lost_ids) == 501
    await service.follow_up([responded(r, n) for n, r in enumerate(routed)])
    service.rules = good_rules
    publisher.sent.clear()
    await service.intake([web_record("kept", "Saluran air tersumbat di pasar baru",
                                     pelapor=PERSON)])
    (kept_event,) = [json.loads(p.value) for p in publisher.sent]
    kept = kept_event["tracking_id"]
    await service.follow_up([responded(kept_event, 501)])
    with service.engine.begin() as conn:
        assert overdue(conn, lost_ids, days=91) == 501
        assert overdue(conn, [kept], days=90) == 1
    publisher.sent.clear()
    before = metrics.watch_failures._value.get()
    assert await service.watch_deadlines() == 1
    assert metrics.watch_failures._value.get() == before + 501
    closed = [json.loads(p.value) for p in publisher.sent if p.topic == topics.NOTIFICATION]
    assert [(c["tracking_id"], c["status"]) for c in closed] == [(kept, "closed")]

