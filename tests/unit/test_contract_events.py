"""What the hub writes on its topics is what schemas/asyncapi.json says: every event of the
main paths, with its headers, checked against the document's channel for its topic."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import jsonschema

from hub import topics
from hub.intake import Record
from hub.model import FollowUpEvent, Status
from hub.service import Hub
from tests.support import FakePublisher, overdue, web_record

DOCUMENT: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "schemas" / "asyncapi.json").read_text("utf-8"))
TEXT = "Lampu penerangan jalan mati sepanjang Jl. Ahmad Yani depan Stasiun Bekasi sejak seminggu"
OFFSETS = count()


def channel_of(topic: str) -> dict[str, Any]:
    for channel in DOCUMENT["channels"].values():
        pattern = re.escape(channel["address"]).replace(r"\{agency\}", "[^.]+")
        if re.fullmatch(pattern, topic):
            return channel  # type: ignore[no-any-return]
    raise AssertionError(f"no channel for topic {topic}")


def check(topic: str, value: bytes, headers: dict[str, str]) -> None:
    (ref,) = [m["$ref"] for m in channel_of(topic)["messages"].values()]
    message = DOCUMENT["components"]["messages"][ref.rsplit("/", 1)[-1]]
    jsonschema.validate(json.loads(value), {**message["payload"],
                                            "components": DOCUMENT["components"]})
    assert set(headers) <= set(message["headers"]["properties"]), (topic, headers)


async def test_every_event_of_the_main_paths_is_as_documented(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, publisher = driven
    await service.intake([web_record("c-1", TEXT, pelapor={"telepon": "+6281234567890"})])
    routing = json.loads(publisher.sent[0].value)
    await service.intake([web_record("c-2", TEXT, pelapor={"telepon": "+6281299990000"})])
    await service.intake([Record(topics.raw("web"), 0, 9, None, b"{not json", {}, datetime.now(UTC))])
    now = datetime.now(UTC)
    for status in (Status.VERIFIED, Status.DISPOSITIONED):
        event = FollowUpEvent(event_id=f"c-{status}", tracking_id=routing["tracking_id"],
                              agency_code=routing["agency_code"], status=status, at=now)
        await service.follow_up([Record(topics.FOLLOW_UP, 0, next(OFFSETS), None,
                                        event.model_dump_json().encode(), {}, now)])
    with service.engine.begin() as conn:  # its first follow-up is overdue: escalated
        overdue(conn, [routing["tracking_id"]])
    await service.watch_deadlines()
    archive = FollowUpEvent(  # over the holder's head: it hears the complaint was taken
        event_id="c-archive", tracking_id=routing["tracking_id"],
        agency_code=service.rules.directory.national.code, status=Status.ARCHIVED, at=now,
        reason="Bukan pengaduan pelayanan publik")
    await service.follow_up([Record(topics.FOLLOW_UP, 0, next(OFFSETS), None,
                                    archive.model_dump_json().encode(), {}, now)])

    kinds = {p.headers.get("event-type") or p.topic.split(".")[1] for p in publisher.sent}
    assert kinds == {"routing", "duplicate", "escalation", "taken", "notification",
                     "deadletter"}, kinds
    for sent in publisher.sent:
        check(sent.topic, sent.value, dict(sent.headers))
