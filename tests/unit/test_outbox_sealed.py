"""The outbox holds events with a citizen's identity (a notification's address, a duplicate
report's reporter, a dead letter's original): sealed at rest, as the complaint rows are."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from hub import store, topics
from hub.app import reach_dependencies
from hub.intake import Record
from hub.model import FollowUpEvent, Status
from hub.sealing import Sealer
from hub.service import Hub
from hub.settings import CannotServe, Settings
from hub.store import OutboxRow, table_of
from tests.support import FakePublisher, web_record

TEXT = "Lampu penerangan jalan mati sepanjang Jl. Ahmad Yani depan Stasiun Bekasi sejak seminggu"
PERSON = {"nama": "Zubaidah Kartikasari", "nik": "3275014509870003",
          "telepon": "+6281299887766", "email": "zubaidah.k@contoh.id"}
NEEDLES = [b"Zubaidah", b"3275014509870003", b"81299887766", b"zubaidah.k@contoh.id"]


def plain(value: bytes) -> bytes:
    """The value as stored, with a dead letter's base64 original read as well."""
    try:
        original = json.loads(value).get("original", "")
    except ValueError:
        return value
    return value + base64.b64decode(original)


async def test_identity_in_outbox_events_is_sealed_at_rest_and_sent_plain(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, publisher = driven
    await service.intake([web_record("o-1", TEXT, pelapor=PERSON)])
    routing = json.loads(publisher.sent[0].value)
    await service.intake([web_record("o-2", TEXT, pelapor=PERSON)])  # a duplicate event
    broken = json.dumps({"id": "o-3", "isi": [1], "anonim": True, "pelapor": PERSON}).encode()
    await service.intake([Record(topics.raw("web"), 0, 9, None, broken,
                                 {"content-type": "application/json"}, datetime.now(UTC))])
    event = FollowUpEvent(event_id="o-f", tracking_id=routing["tracking_id"],
                          agency_code=routing["agency_code"], status=Status.RESPONDED,
                          at=datetime.now(UTC), message="Lampu sudah diganti.")
    await service.follow_up([Record(topics.FOLLOW_UP, 0, 0, None,
                                    event.model_dump_json().encode(), {}, datetime.now(UTC))])
    sent = {p.topic for p in publisher.sent}
    assert {topics.NOTIFICATION, topics.DEAD_LETTER} <= sent
    outbox = table_of(OutboxRow)
    with service.engine.begin() as conn:
        values = [bytes(v) for v in conn.execute(sa.select(outbox.c.value)).scalars()]
        assert len(values) >= 3
        assert not [n for v in values for n in NEEDLES if n in plain(v)]
        # Left unsent (a crash before the broker's acknowledgement): the relay sends the
        # events as they were made, not their sealed bytes.
        conn.execute(sa.update(outbox).values(sent_at=None,
                                              created_at=datetime.now(UTC) - timedelta(hours=1)))
    publisher.sent.clear()
    await service.relay_outbox()
    relayed = [json.loads(p.value) for p in publisher.sent if p.topic == topics.NOTIFICATION]
    assert relayed and relayed[0]["address"]["email"] == PERSON["email"]


async def test_a_hub_whose_keys_cannot_open_the_stored_reporters_does_not_start(
    driven: tuple[Hub, FakePublisher], database_url: str,
) -> None:
    # The old key dropped rather than moved to HUB_PREVIOUS_SECRET_KEYS: the hub said ready,
    # and every follow-up on a named complaint failed, went round the retry topic for
    # minutes and ended a dead letter.
    service, _ = driven
    await service.intake([web_record("keyed-1", TEXT, pelapor=PERSON)])
    old = Settings(database_url=database_url, secret_key=SecretStr("the-old-key-0123456789"))
    service.rules = replace(service.rules, sealer=Sealer.from_settings(old))
    await service.intake([web_record("keyed-2", TEXT + " lagi", pelapor=PERSON)])

    new = Settings(database_url=database_url, secret_key=SecretStr("the-new-key-0123456789"),
                   kafka_bootstrap="127.0.0.1:1")
    with pytest.raises(CannotServe, match="HUB_SECRET_KEY"):
        await reach_dependencies(Hub(service.engine, FakePublisher(), replace(  # type: ignore[arg-type]
            service.rules, sealer=Sealer.from_settings(new))), new)
    rotated = new.model_copy(update={"previous_secret_keys": [old.secret_key]})
    with service.engine.connect() as conn:
        assert store.newest_reporter_opens(conn, Sealer.from_settings(rotated))
        assert not store.newest_reporter_opens(conn, Sealer.from_settings(new))

