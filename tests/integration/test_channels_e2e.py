"""Every door leads in: one complaint per source through the ingress of a running hub."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from hub.adapters import SOURCES
from hub.adapters.sms_gateway import missing_part
from hub.model import SourceRef, tracking_id_for
from tests.support import HubProcess, find_routed

pytestmark = pytest.mark.broker
FIXTURES = Path(__file__).parent.parent / "fixtures"

# One native payload per source, as its vendor sends it.
SAMPLES = {
    "web": ("web-form", None),
    "mobile": ("web-form", None),
    "sms-twilio": ("sms-twilio/inbound_sms.urlencoded", None),
    "sms-gateway": ("sms-gateway/single.json", None),
    "x": ("x/tweet_lookup.json", None),
    "meta": ("meta/page_feed.json", None),
    "whatsapp": ("whatsapp/text_message.json", None),
    "open311": ("open311/pothole.urlencoded", None),
    "prov-jakarta": ("prov-jakarta/menunggu.json", None),
    "prov-jateng": ("prov-jateng/export.csv", None),
}


@pytest.fixture(scope="module")
def hub(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    folder = tmp_path_factory.mktemp("channels")
    with HubProcess(
        kafka_bootstrap, f"sqlite:///{folder}/hub.db", log_path=folder / "hub.log"
    ) as process:
        yield process


def sample(source: str) -> bytes:
    name, _ = SAMPLES[source]
    if name == "web-form":
        return json.dumps({"id": f"{source}-e2e", "isi": f"Keluhan lewat {source}: antrian "
                           "panjang di puskesmas Rawalumbu", "kategori": "kesehatan",
                           "lokasi": {"kode_wilayah": "32.75"}}).encode()
    return (FIXTURES / name).read_bytes()


def post(hub: HubProcess, source: str, body: bytes) -> httpx.Response:
    content_type = SOURCES[source].content_types[0]
    return httpx.post(f"{hub.base_url}/intake/{source}", content=body,
                      headers={"content-type": content_type, "accept": "application/json"},
                      timeout=10)


async def test_one_complaint_per_source_reaches_an_agency_topic(hub: HubProcess) -> None:
    assert set(SAMPLES) == set(SOURCES), "every registered source needs a sample here"
    accepted: dict[str, list[str]] = {}
    for source in SOURCES:
        answer = post(hub, source, sample(source))
        # Meta retries for a day what is not answered 200.
        ok = 200 if source in ("meta", "whatsapp") else 202
        assert answer.status_code == ok, f"{source}: {answer.status_code} {answer.text}"
        accepted[source] = answer.json()["accepted"]
        assert accepted[source], source
    wanted = {t for ids in accepted.values() for t in ids}
    records = await find_routed(hub.bootstrap, hub.prefix, wanted)
    routed = {r.key.decode(): json.loads(r.value) for r in records}
    for source, ids in accepted.items():
        for tracking_id in ids:
            assert tracking_id in routed, f"{source}: {tracking_id} was not routed"
            assert routed[tracking_id]["complaint"]["source"]["system"] == source


def test_twilio_gets_twiml_and_our_own_clients_json(hub: HubProcess) -> None:
    """Twilio reads any answer to an inbound SMS but TwiML as error 12300 (Invalid
    Content-Type), for every citizen's message."""
    form = urllib.parse.parse_qs(sample("sms-twilio").decode())
    form["MessageSid"] = ["SMtwiml000000000000000000000000001"]
    body = urllib.parse.urlencode(form, doseq=True).encode()
    url = f"{hub.base_url}/intake/sms-twilio"
    as_twilio = httpx.post(url, content=body, timeout=10, headers={
        "content-type": "application/x-www-form-urlencoded", "accept": "*/*"})
    assert as_twilio.status_code == 202
    assert as_twilio.headers["content-type"] == "text/xml"
    assert as_twilio.text == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    asking_json = post(hub, "sms-twilio", body)
    assert asking_json.status_code == 202
    (tracking_id,) = asking_json.json()["accepted"]
    assert tracking_id.isdigit()


async def test_the_same_complaint_by_sms_and_on_x_is_routed_once(hub: HubProcess) -> None:
    text = "Gorong-gorong ambrol di Jl. Cut Meutia dekat Stasiun Bekasi Timur, mohon segera"
    sms = urllib.parse.urlencode({
        "MessageSid": "SMdup0000000000000000000000000001", "AccountSid": "AC1", "From":
        "+6281311112222", "To": "1708", "Body": text, "NumSegments": "1", "NumMedia": "0",
    }).encode()
    tweet = json.loads((FIXTURES / "x/tweet_lookup.json").read_bytes())
    tweet["data"]["id"] = "1799999999999999999"
    tweet["data"]["text"] = f"#LAPOR {text} @LAPOR1708"
    # Tweeted now, as the SMS is sent: reports made further apart than the duplicate window
    # are two complaints (the fixture's tweet is from 2024).
    tweet["data"]["created_at"] = datetime.now(UTC).isoformat()
    tweet["data"].pop("entities", None)
    # The two arrive on different raw topics, which the hub may read in either order; the
    # tweet comes after the SMS has been routed, as a second report of it would.
    first = post(hub, "sms-twilio", sms)
    assert first.status_code == 202, first.text
    (sms_id,) = first.json()["accepted"]
    await find_routed(hub.bootstrap, hub.prefix, {sms_id}, within=15, settle=0)
    second = post(hub, "x", json.dumps(tweet).encode())
    assert second.status_code == 202, second.text
    (tweet_id,) = second.json()["accepted"]
    records = await find_routed(hub.bootstrap, hub.prefix, {sms_id, tweet_id}, within=15)
    kinds = [(r.key.decode(), r.topic, json.loads(r.value)["type"]) for r in records]
    holder = records[0].topic
    # Routed once; the holder then hears of the second report, in the same key order.
    assert kinds == [(sms_id, holder, "routing"), (sms_id, holder, "duplicate")]
    assert json.loads(records[1].value)["duplicate"]["tracking_id"] == tweet_id
    with sa.create_engine(hub.database_url).connect() as conn:
        linked = conn.execute(sa.text("SELECT duplicate_of FROM complaint WHERE tracking_id = :t"),
                              {"t": tweet_id}).scalar_one()
    assert linked == sms_id


async def test_a_long_sms_missing_a_part_is_routed_after_the_wait(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with HubProcess(
        kafka_bootstrap, f"sqlite:///{tmp_path}/hub.db", log_path=tmp_path / "hub.log",
        extra_env={"HUB_FRAGMENT_WAIT_MINUTES": "0.02", "HUB_WATCHER_INTERVAL_S": "0.5"},
    ) as hub:
        for n in (1, 3):  # part 2 of 3 never comes
            answer = post(hub, "sms-gateway", (FIXTURES / f"sms-gateway/fragment_{n}.json")
                          .read_bytes())
            assert answer.status_code == 202, answer.text
            assert answer.json()["accepted"] == []  # a part, not yet a complaint
        tracking_id = tracking_id_for(SourceRef(system="sms-gateway", message_id="smsc-8b2c01"))
        (record,) = await find_routed(hub.bootstrap, hub.prefix, {tracking_id}, within=30)
    description = json.loads(record.value)["complaint"]["description"]
    assert missing_part(2, 3).strip() in description
