"""Multi-part SMS: a part that never comes does not hold the SMS back for ever; a part sent
again is no new SMS; another text under a waiting part's place is kept to replay."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub import migrate, store, topics
from hub.adapters import SOURCES
from hub.adapters.base import Fragment, Outcome, Rejection
from hub.adapters.sms_gateway import missing_part
from hub.calendar import load_calendar_config
from hub.deadlines import Rules
from hub.intake import Record, plan_intake, store_intake
from hub.model import SourceRef, tracking_id_for
from hub.routing import Directory
from hub.service import Hub
from hub.store import FragmentRow, table_of
from tests.support import FakePublisher

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sms-gateway"
TRACKING_ID = tracking_id_for(SourceRef(system="sms-gateway", message_id="smsc-8b2c01"))


OFFSETS = count(100)
"""The hub passes over an offset it has taken before: each delivery its own."""


def parts(*numbers: int, **changes: object) -> list[Record]:
    """Fixture parts as delivered to the raw topic, each at a new offset; `changes` replace
    fields of every part (a new SMS: its id and text)."""
    found = []
    for n in numbers:
        body = (FIXTURES / f"fragment_{n}.json").read_bytes()
        if changes:
            fields = json.loads(body) | {
                k: f"{v}-{n}" if k == "id" else v for k, v in changes.items()}
            body = json.dumps(fields).encode()
        found.append(Record(topics.raw("sms-gateway"), 0, next(OFFSETS), None, body,
                            {"content-type": "application/json"}, datetime.now(UTC)))
    return found


def routed(publisher: FakePublisher) -> dict[str, dict[str, object]]:
    return {p.key or "": json.loads(p.value) for p in publisher.sent
            if p.topic != topics.DEAD_LETTER}


def fragments_left(service: Hub) -> int:
    """Parts still waiting for their SMS to be joined."""
    table = table_of(FragmentRow)
    with service.engine.connect() as conn:
        return int(conn.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.joined_at.is_(None))
        ).scalar_one())


def letters(publisher: FakePublisher) -> list[dict[str, object]]:
    return [json.loads(p.value) for p in publisher.sent if p.topic == topics.DEAD_LETTER]


async def test_a_complete_group_is_routed_at_once(driven: tuple[Hub, FakePublisher]) -> None:
    service, publisher = driven
    await service.intake(parts(2, 3))
    assert routed(publisher) == {}
    await service.intake(parts(1))
    assert list(routed(publisher)) == [TRACKING_ID]
    assert fragments_left(service) == 0


async def test_a_group_missing_a_part_is_routed_with_the_gap_after_the_wait(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, publisher = driven
    await service.intake(parts(1, 3))
    assert await service.expire_fragments(timedelta(hours=1)) == 0  # not waited long enough
    assert routed(publisher) == {} and fragments_left(service) == 2

    assert await service.expire_fragments(timedelta(0)) == 1
    event = routed(publisher)[TRACKING_ID]
    description = event["complaint"]["description"]  # type: ignore[index]
    assert missing_part(2, 3).strip() in description
    assert "Jembatan penghubung" in description
    assert fragments_left(service) == 0
    assert await service.expire_fragments(timedelta(0)) == 0  # joined once
    assert len(publisher.sent) == 1


async def test_a_part_sent_again_after_its_sms_was_joined_is_no_new_complaint(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # Its group was forgotten at the join: the re-sent part began a new SMS, routed after the
    # wait as "[bagian 1/3 tidak diterima] ..." - a second complaint that was none.
    service, publisher = driven
    await service.intake(parts(1, 2, 3))
    await service.intake(parts(2))
    assert await service.expire_fragments(timedelta(0)) == 0
    assert list(routed(publisher)) == [TRACKING_ID]
    assert fragments_left(service) == 0


async def test_a_part_sent_again_with_other_spacing_is_the_same_part(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # Compared byte for byte, a gateway's re-serialized re-send was another text: a
    # fragment_conflict while the SMS waited, a second complaint after its join.
    service, publisher = driven
    (waiting,) = parts(1)
    respaced = replace(waiting, offset=next(OFFSETS),
                       value=json.dumps(json.loads(waiting.value), indent=2).encode())
    await service.intake([waiting])
    await service.intake([respaced])
    assert not letters(publisher)
    await service.intake(parts(2, 3))
    (again,) = parts(2)
    await service.intake([replace(again, value=json.dumps(json.loads(again.value),
                                                           separators=(",", ":")).encode())])
    assert await service.expire_fragments(timedelta(0)) == 0
    assert list(routed(publisher)) == [TRACKING_ID]
    assert not letters(publisher)


async def test_a_reference_reused_after_the_join_is_a_new_sms(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, publisher = driven
    await service.intake(parts(1, 2, 3))
    await service.intake(parts(1, 2, 3, id="smsc-next", text="Lampu jalan mati."))
    second = tracking_id_for(SourceRef(system="sms-gateway", message_id="smsc-next-1"))
    assert list(routed(publisher)) == [TRACKING_ID, second]
    assert routed(publisher)[second]["complaint"]["description"] == (  # type: ignore[index]
        "Lampu jalan mati." * 3)


async def test_another_text_for_a_waiting_part_is_kept_to_replay(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # Its part 1 was thrown away (the stored one kept its place) and its text lost unseen.
    service, publisher = driven
    await service.intake(parts(1))
    clash = parts(1, id="smsc-other", text="Pesan lain")
    await service.intake(clash)
    (letter,) = letters(publisher)
    assert letter["reason"] == "fragment_conflict"
    assert base64.b64decode(str(letter["original"])) == clash[0].value
    await service.intake(parts(2, 3))
    assert list(routed(publisher)) == [TRACKING_ID]  # the first SMS whole


async def test_a_refused_group_leaves_each_part_replayable(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # The parts disagree on their total. The dead letter held all parts' bodies joined by
    # newlines, which a replay refused as invalid JSON.
    service, publisher = driven
    records = parts(1, 2, 3)
    odd = json.loads(records[2].value)
    odd["concat"]["total"] = 4
    records[2] = Record(records[2].topic, 0, next(OFFSETS), None, json.dumps(odd).encode(),
                        records[2].headers, records[2].timestamp)
    await service.intake(records)
    found = letters(publisher)
    assert {str(dl["reason"]) for dl in found} == {"inconsistent_fragments"}
    assert sorted(base64.b64decode(str(dl["original"])) for dl in found) == sorted(
        r.value for r in records)


async def test_the_parts_of_a_refused_sms_replayed_after_a_fix_make_the_complaint(
    driven: tuple[Hub, FakePublisher], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The refused group's parts were kept as joined: their replay looked like a gateway's
    # re-send and vanished, with no complaint and no dead letter.
    service, publisher = driven
    gateway = SOURCES["sms-gateway"]
    def refuse(parts: list[Fragment], partial: bool = False) -> list[Outcome]:
        return [Rejection("adapter_error", "a bug")]

    monkeypatch.setitem(SOURCES, "sms-gateway", replace(gateway, join=refuse))
    await service.intake(parts(1, 2, 3))
    refused = letters(publisher)
    assert [dl["reason"] for dl in refused] == ["adapter_error"] * 3
    monkeypatch.setitem(SOURCES, "sms-gateway", gateway)  # fixed; `dlq replay` sends them
    await service.intake([Record(topics.raw("sms-gateway"), 0, next(OFFSETS), None,
                                 base64.b64decode(str(dl["original"])),
                                 {"content-type": "application/json", "hub-replay-of": "1"},
                                 datetime.now(UTC)) for dl in refused])
    assert list(routed(publisher)) == [TRACKING_ID]


async def test_the_sender_of_a_part_is_stored_only_sealed_or_hashed(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # The group key "+6281398765432:<ref>" stood in plain text in the fragment table and in
    # the dedupe key of a refused SMS's dead letters.
    service, _ = driven
    await service.intake(parts(1))  # waits for its other parts
    records = parts(1, 2, 3, id="odd")
    odd = json.loads(records[2].value)
    odd["concat"]["total"] = 4
    records[2] = replace(records[2], value=json.dumps(odd).encode(), offset=next(OFFSETS))
    await service.intake(records)
    with service.engine.connect() as conn:
        stored = [*conn.execute(sa.text("SELECT group_key FROM fragment")).scalars(),
                  *conn.execute(sa.text("SELECT dedupe_key FROM dead_letter")).scalars()]
    assert stored and not [s for s in stored if "6281398765432" in s], stored


@pytest.mark.parametrize("headers", [
    {"content-type": "application/json; charset=utf-8; " + "x" * 120},
    {"content-type": "application/json", "hub-message-id": "m" * 300},
])
async def test_a_part_whose_headers_do_not_fit_is_a_dead_letter_at_once(
    driven: tuple[Hub, FakePublisher], headers: dict[str, str],
) -> None:
    # On PostgreSQL its insert failed on every retry for 7 minutes, then as a
    # processing_error that no replay could mend.
    service, publisher = driven
    (part,) = parts(1)
    await service.intake([replace(part, headers=headers)])
    (letter,) = letters(publisher)
    assert letter["reason"] == "invalid_header"
    assert fragments_left(service) == 0


def test_two_parts_taken_at_once_by_two_instances_are_joined(database_url: str) -> None:
    # Each instance's transaction saw only its own part (READ COMMITTED on PostgreSQL):
    # neither joined them, and the SMS waited out HUB_FRAGMENT_WAIT_MINUTES.
    migrate.upgrade(database_url)
    engine = store.make_engine(database_url)
    rules = Rules.of(Directory.load(), load_calendar_config())
    now = datetime.now(UTC)
    first, second = parts(1, 2, 3)[:2]
    third = parts(3)[0]
    with engine.begin() as conn:  # the third part first, so that the race is over the last two
        store_intake(conn, plan_intake([third], rules, now), rules, now)
    joined: list[int] = []

    def other_instance() -> None:
        with engine.begin() as conn:
            joined.append(len(store_intake(conn, plan_intake([second], rules, now),
                                           rules, now).routed))

    with engine.connect() as conn, conn.begin():
        mine = len(store_intake(conn, plan_intake([first], rules, now), rules, now).routed)
        other = threading.Thread(target=other_instance)
        other.start()
        other.join(1.0)  # it waits for this transaction, or finds nothing to join
    other.join(30)
    engine.dispose()
    assert mine + sum(joined) == 1


async def test_a_part_stored_before_groups_were_hashed_joins_the_parts_after_it(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # An SMS whose parts straddled the upgrade became two partial complaints, and the
    # sender's number stayed in the table in plain text.
    service, publisher = driven
    first = parts(1)[0]
    plain = "+6281398765432:17"  # its sender and reference, as the group was kept
    table = table_of(FragmentRow)
    with service.engine.begin() as conn:  # as the hub before the keyed hash stored it
        conn.execute(sa.insert(table).values(
            group_key=plain, idx=1, total=3, source="sms-gateway",
            body=service.rules.sealer.seal(first.value), content_type="application/json",
            message_id=None, received_at=datetime.now(UTC)))
    await service.intake(parts(2, 3))
    assert not routed(publisher)  # waiting: the first part is under its old key
    await service.expire_fragments(timedelta(minutes=60))
    (event,) = routed(publisher).values()
    assert event["tracking_id"] == TRACKING_ID
    assert "tidak diterima" not in json.dumps(event["complaint"])  # no part marked missing
    with service.engine.connect() as conn:
        assert not conn.execute(sa.select(table.c.group_key).where(
            table.c.group_key.like("%:%"))).all()
