"""SMSC gateway JSON -> Complaint, and long SMS parts -> Fragments -> one Complaint."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hub.adapters.base import WIB, Fragment, Outcome, RawMessage, Rejection
from hub.adapters.sms_gateway import join_fragments, missing_part, normalize
from hub.model import Channel, Complaint, SourceRef, tracking_id_for

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sms-gateway"
RECEIVED = datetime(2024, 5, 2, 1, 20, tzinfo=UTC)


def load(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return value


def raw(payload: dict[str, Any], received: datetime = RECEIVED) -> RawMessage:
    return RawMessage("sms-gateway", json.dumps(payload).encode(), "application/json", received)


def only(outcomes: list[Outcome]) -> Outcome:
    assert len(outcomes) == 1, outcomes
    return outcomes[0]


def complaint(outcomes: list[Outcome]) -> Complaint:
    found = only(outcomes)
    assert isinstance(found, Complaint), found
    return found


def fragment(name: str, received: datetime = RECEIVED) -> Fragment:
    found = only(normalize(raw(load(name), received)))
    assert isinstance(found, Fragment), found
    return found


def test_single_sms_becomes_one_complaint() -> None:
    payload = load("single.json")
    found = complaint(normalize(raw(payload)))
    source = SourceRef(system="sms-gateway", message_id="smsc-7f3a91")
    assert found.source == source
    assert found.tracking_id == tracking_id_for(source)
    assert found.channel is Channel.SMS
    assert found.title is None
    assert found.description == payload["text"]
    assert found.reporter.phone == "+6281234567890"
    assert found.submitted_at == datetime(2024, 5, 2, 1, 15, tzinfo=UTC)
    assert found.received_at == RECEIVED


def test_parts_in_one_message_are_joined_in_part_order_keeping_boundary_spaces() -> None:
    found = complaint(normalize(raw(load("parts_in_one.json"))))
    assert found.description == (
        "Sampah di TPS Jl. Pramuka sudah tiga minggu tidak diangkut dan saluran air"
        " tersumbat. Mohon segera ditindaklanjuti."
    )
    assert found.reporter.phone == "+6285712345678"
    # No zone on "received": WIB.
    assert found.submitted_at == datetime(2024, 5, 2, 8, 16, 5, tzinfo=WIB)


def test_separate_parts_become_fragments_keyed_by_sender_and_ref() -> None:
    parts = [fragment(f"fragment_{i}.json") for i in (1, 2, 3)]
    assert [(p.group_key, p.index, p.total) for p in parts] == [
        ("+6281398765432:17", 1, 3),
        ("+6281398765432:17", 2, 3),
        ("+6281398765432:17", 3, 3),
    ]


def test_join_fragments_joins_a_complete_group_in_order() -> None:
    parts = [
        fragment(f"fragment_{i}.json", RECEIVED + timedelta(seconds=i)) for i in (3, 1, 2)
    ]
    found = complaint(join_fragments(parts))
    assert found.description == (
        "Jembatan penghubung Desa Sukamaju ke Desa Sukajaya ambruk sejak banjir minggu lalu,"
        " anak-anak sekolah harus memutar 5 km. Mohon dibangun kembali."
    )
    assert found.source == SourceRef(system="sms-gateway", message_id="smsc-8b2c01")
    assert found.reporter.phone == "+6281398765432"
    assert found.submitted_at == datetime(2024, 5, 2, 2, 1, tzinfo=UTC)
    assert found.received_at == RECEIVED + timedelta(seconds=3)
    assert join_fragments(list(reversed(parts))) == [found]


def test_incomplete_group_comes_back_unchanged() -> None:
    parts = [fragment("fragment_1.json"), fragment("fragment_3.json")]
    assert join_fragments(parts) == parts


def test_a_part_delivered_twice_counts_once() -> None:
    parts = [fragment(f"fragment_{i}.json") for i in (1, 2, 2, 3)]
    assert complaint(join_fragments(parts)).description.count("ambruk") == 1


def test_the_same_sender_written_two_ways_is_one_group() -> None:
    payload = load("fragment_2.json") | {"msisdn": "081398765432"}
    assert only(normalize(raw(payload))) == Fragment(
        "+6281398765432:17", 2, 3, raw(payload)
    )


def test_groups_are_joined_separately_in_first_appearance_order() -> None:
    ours = [fragment(f"fragment_{i}.json") for i in (1, 2, 3)]
    theirs = [
        Fragment("+6281111111111:5", i, 2, raw({"id": f"t-{i}", "msisdn": "1", "text": f"p{i} "}))
        for i in (1, 2)
    ]
    joined = join_fragments([theirs[1], ours[0], ours[1], theirs[0], ours[2]])
    assert all(isinstance(c, Complaint) for c in joined)
    texts = [(c.source.message_id, c.description[:5]) for c in joined if isinstance(c, Complaint)]
    assert texts == [("t-1", "p1 p2"), ("smsc-8b2c01", "Jemba")]


def test_parts_disagreeing_on_their_total_are_refused() -> None:
    first = fragment("fragment_1.json")
    second = Fragment(first.group_key, 2, 2, first.raw)
    (refused,) = join_fragments([first, second])
    assert isinstance(refused, Rejection)
    assert refused.reason == "inconsistent_fragments"


def test_a_one_part_concat_is_a_plain_complaint() -> None:
    payload = load("fragment_1.json") | {"concat": {"ref": 17, "part": 1, "total": 1}}
    assert complaint(normalize(raw(payload))).description == payload["text"]


def test_bad_parts_are_refused_with_the_message_id() -> None:
    payload = load("parts_in_one.json")
    other = payload | {"parts": [*payload["parts"], {"part": 2, "text": "lain"}]}
    assert only(normalize(raw(other))) == Rejection(
        "invalid_field", "part 2 appears twice with other text", "smsc-7f3a92"
    )
    both = payload | {"text": "x"}
    refused = only(normalize(raw(both)))
    assert isinstance(refused, Rejection)
    assert refused.reason == "invalid_payload"
    beyond = load("fragment_1.json") | {"concat": {"ref": 17, "part": 4, "total": 3}}
    refused = only(normalize(raw(beyond)))
    assert isinstance(refused, Rejection)
    assert refused.source_message_id == "smsc-8b2c01"


def test_sender_is_required_but_an_unparseable_one_only_leaves_the_phone_empty() -> None:
    payload = load("single.json")
    missing = only(normalize(raw({k: v for k, v in payload.items() if k != "msisdn"})))
    assert missing == Rejection("missing_field", "msisdn is required", "smsc-7f3a91")
    kept = complaint(normalize(raw(payload | {"msisdn": "INFO-OPERATOR"})))
    assert kept.reporter.phone is None
    assert kept.description == payload["text"]


def test_a_group_given_up_on_is_joined_with_its_gaps_marked() -> None:
    parts = [fragment("fragment_3.json"), fragment("fragment_1.json")]
    found = complaint(join_fragments(parts, partial=True))
    first, third = (load(f"fragment_{i}.json")["text"] for i in (1, 3))
    assert found.description == f"{first}{missing_part(2, 3)}{third}".strip()
    assert found.source.message_id == "smsc-8b2c01"
    alone = complaint(join_fragments([fragment("fragment_2.json")], partial=True))
    assert alone.description.startswith("[bagian 1/3 tidak diterima]")
    assert alone.description.endswith("[bagian 3/3 tidak diterima]")


def test_parts_in_one_message_mark_each_part_missing_as_separate_parts_do() -> None:
    # The last part missing was taken for the whole SMS; a part missing within refused it;
    # a part listed twice refused it too.
    payload = load("parts_in_one.json")
    one, two, three = sorted(payload["parts"], key=lambda p: p["part"])
    for parts, expected in (
        ([two, one], one["text"] + two["text"] + missing_part(3, 3)),
        ([one, three], one["text"] + missing_part(2, 3) + three["text"]),
        ([one, two, two, three], one["text"] + two["text"] + three["text"]),
    ):
        found = complaint(normalize(raw(payload | {"parts": parts})))
        assert found.description == expected.strip()
