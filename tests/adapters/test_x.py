"""X API v2 tweet objects -> Complaint."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hub.adapters.base import Outcome, RawMessage, Rejection
from hub.adapters.x import normalize
from hub.model import Attachment, Channel, Complaint, SourceRef, tracking_id_for

FIXTURES = Path(__file__).parents[1] / "fixtures" / "x"
RECEIVED = datetime(2024, 5, 2, 1, 20, tzinfo=UTC)


def load(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return value


def run(payload: dict[str, Any]) -> list[Outcome]:
    return normalize(RawMessage("x", json.dumps(payload).encode(), "application/json", RECEIVED))


def tweet(text: str, **extra: Any) -> dict[str, Any]:
    return {"data": {"id": "1", "text": text, "author_id": "9", **extra},
            "includes": {"users": [{"id": "9", "name": "N", "username": "someone"}]}}


def test_lookup_tweet_becomes_a_complaint_without_tag_and_mention() -> None:
    (found,) = run(load("tweet_lookup.json"))
    assert isinstance(found, Complaint)
    source = SourceRef(system="x", message_id="1785912345678901234")
    assert found.source == source
    assert found.tracking_id == tracking_id_for(source)
    assert found.channel is Channel.X
    assert found.description == (
        "Lampu lalu lintas di simpang Bulak Kapal mati sejak kemarin & macet parah."
        " https://t.co/AbCdEf1234"
    )
    assert found.reporter.handle == "@warga_bks"
    assert found.reporter.name is None
    # GeoJSON [longitude, latitude].
    assert (found.location.latitude, found.location.longitude) == (-6.2383, 106.9896)
    assert (found.location.region_code, found.location.region_name) == ("32.75", "Kota Bekasi")
    assert found.attachments == (Attachment(url="https://pbs.twimg.com/media/GMabc123XYZ.jpg"),)
    assert found.submitted_at == datetime(2024, 5, 2, 1, 10, 22, tzinfo=UTC)
    assert found.received_at == RECEIVED


def test_same_tweet_gives_the_same_tracking_id() -> None:
    first, second = run(load("tweet_lookup.json")), run(load("tweet_lookup.json"))
    assert first == second


def test_several_tweets_each_get_their_own_outcome() -> None:
    outcomes = run(load("tweet_lookup_many.json"))
    summary = [
        (type(o).__name__, o.reason if isinstance(o, Rejection) else None,
         o.source_message_id if isinstance(o, Rejection) else o.source.message_id)
        for o in outcomes
        if isinstance(o, Complaint | Rejection)
    ]
    assert summary == [
        ("Complaint", None, "1785920000000000001"),
        ("Rejection", "not_a_complaint", "1785920000000000002"),
        ("Rejection", "not_a_complaint", "1785920000000000003"),  # a retweet
        ("Rejection", "missing_field", "1785920000000000004"),
        ("Complaint", None, "1785920000000000005"),
        ("Rejection", "source_error", "1785920000000000006"),  # lookup error
    ]


def test_lowercase_tag_and_leading_mention_are_recognised_and_stripped() -> None:
    found = run(load("tweet_lookup_many.json"))[0]
    assert isinstance(found, Complaint)
    assert found.description.startswith("Antrean BPJS Kesehatan di RSUD Singkawang")
    assert "lapor" not in found.description.casefold()
    assert found.reporter.handle == "@ani_skw"


def test_video_attachment_is_the_best_mp4_variant() -> None:
    found = run(load("tweet_lookup_many.json"))[4]
    assert isinstance(found, Complaint)
    assert found.attachments == (
        Attachment(
            url="https://video.twimg.com/ext_tw_video/1785920000000000099/pu/vid/1280x720/high.mp4",
            media_type="video/mp4",
        ),
    )


def test_a_longer_hashtag_or_handle_does_not_count() -> None:
    for text in ("#LAPORAN jalan rusak @LAPOR1708", "#LAPOR jalan rusak @LAPOR1708x"):
        (refused,) = run(tweet(text))
        assert isinstance(refused, Rejection)
        assert (refused.reason, refused.source_message_id) == ("not_a_complaint", "1")


def test_only_tag_and_mention_is_refused() -> None:
    (refused,) = run(tweet("#LAPOR @LAPOR1708"))
    assert isinstance(refused, Rejection)
    assert refused.reason == "missing_field"


def test_an_ambiguous_place_stays_unresolved_but_named() -> None:
    payload = tweet("#LAPOR Banjir di perumahan @LAPOR1708", geo={"place_id": "p"})
    place = {"id": "p", "name": "Bekasi", "full_name": "Bekasi, Indonesia"}
    payload["includes"]["places"] = [place]
    (found,) = run(payload)
    assert isinstance(found, Complaint)
    assert (found.location.region_code, found.location.region_name) == (None, "Bekasi")
    assert found.location.latitude is None


def test_a_place_is_read_from_its_full_name_which_x_returns_by_default() -> None:
    # Without place.fields X returns a place's id and full_name only.
    payload = tweet("#LAPOR Jalan berlubang @LAPOR1708", geo={"place_id": "p"})
    payload["includes"]["places"] = [{"id": "p", "full_name": "Surabaya, Jawa Timur"}]
    (found,) = run(payload)
    assert isinstance(found, Complaint)
    assert found.location.region_code == "35.78"


def test_a_district_is_placed_by_the_city_its_full_name_gives() -> None:
    # Kuningan is also a regency in West Java; the full name says which.
    payload = tweet("#LAPOR Trotoar rusak @LAPOR1708", geo={"place_id": "p"})
    payload["includes"]["places"] = [
        {"id": "p", "name": "Kuningan", "full_name": "Kuningan, Jakarta Selatan",
         "place_type": "neighborhood"}]
    (found,) = run(payload)
    assert isinstance(found, Complaint)
    assert found.location.region_code == "31.74"


def test_a_payload_without_tweets_is_refused() -> None:
    (refused,) = run({"meta": {"result_count": 0}})
    assert isinstance(refused, Rejection)
    assert refused.reason == "invalid_payload"


def test_a_long_post_is_read_whole_from_note_tweet() -> None:
    # API v2 cuts a long post's `text` at about 280 characters, before a mention at its end.
    whole = ("#LAPOR Sudah dua bulan jalan di depan Pasar Proyek berlubang. " * 6
             + "Mohon segera ditindaklanjuti. @LAPOR1708")
    cut = whole[:270] + "… https://t.co/Ab12Cd34Ef"
    (found,) = run(tweet(cut, note_tweet={"text": whole, "entities": {}}))
    assert isinstance(found, Complaint)
    assert found.description.endswith("Mohon segera ditindaklanjuti.")
    assert "https://t.co" not in found.description


def test_a_note_tweet_not_as_documented_leaves_the_text() -> None:
    notes: list[object] = ["a long text", [], {"text": ["a"]}, {"text": "  "}]
    for note in notes:
        (found,) = run(tweet("#LAPOR Lampu jalan mati @LAPOR1708", note_tweet=note))
        assert isinstance(found, Complaint), (note, found)
        assert found.description == "Lampu jalan mati"


def test_a_post_at_x_longest_is_a_complaint() -> None:
    # X's subscribers post up to 25,000 characters; past the description's 20,000 such a
    # complaint was refused (invalid_complaint) and never reached an agency.
    whole = "#LAPOR @LAPOR1708 " + "Jalan di depan sekolah berlubang dan tergenang air. " * 480
    whole = whole[:25_000]
    (found,) = run(tweet(whole[:280], note_tweet={"text": whole, "entities": {}}))
    assert isinstance(found, Complaint), found
    assert found.description in whole and len(found.description) > 24_900  # tags taken out
