"""Open311 GeoReport v2 clients file requests as the specification has it: services.json,
requests.json with `api_key`, answers as lists of request ids or of errors."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from hub.adapters.open311 import SERVICE_CATEGORIES
from hub.georeport import NOTICE
from tests.support import HubProcess, find_routed

pytestmark = pytest.mark.broker
KEY = "open311-key-1"
FORM = {"service_code": "pothole", "lat": "-6.2383", "long": "106.9756",
        "description": "Lubang besar di Jl. Ahmad Yani depan Summarecon Bekasi",
        "phone": "081311112222"}


@pytest.fixture(scope="module")
def hub(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    folder = tmp_path_factory.mktemp("georeport")
    env = {"HUB_INGRESS_OPEN": "false", "HUB_INGRESS_TOKENS": json.dumps({"open311": KEY})}
    with HubProcess(kafka_bootstrap, f"sqlite:///{folder}/hub.db", log_path=folder / "hub.log",
                    extra_env=env) as process:
        yield process


def file_request(hub: HubProcess, form: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{hub.base_url}/intake/open311/requests.json", timeout=10,
                      content=urllib.parse.urlencode(form).encode(),
                      headers={"content-type": "application/x-www-form-urlencoded"})


def test_the_service_list(hub: HubProcess) -> None:
    answer = httpx.get(f"{hub.base_url}/intake/open311/services.json", timeout=10)
    assert answer.status_code == 200
    listed = {s["service_code"]: s for s in answer.json()}
    assert set(listed) == set(SERVICE_CATEGORIES)
    assert listed["water-supply"]["service_name"] == "Water supply"
    assert listed["water-supply"]["group"] == "water"


async def test_a_request_with_its_api_key_is_routed_and_the_key_kept_out_of_kafka(
    hub: HubProcess,
) -> None:
    answer = file_request(hub, {**FORM, "api_key": KEY})
    assert answer.status_code == 200, answer.text
    (filed,) = answer.json()
    assert filed == {"service_request_id": filed["service_request_id"], "service_notice": NOTICE,
                     "account_id": None}
    tracking_id = filed["service_request_id"]
    (routed,) = await find_routed(hub.bootstrap, hub.prefix, {tracking_id})
    assert json.loads(routed.value)["complaint"]["reporter"]["phone"] == "+6281311112222"
    consumer = AIOKafkaConsumer(bootstrap_servers=hub.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        topic = f"{hub.prefix}.raw.open311"
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        raw = [r.value for batch in (await consumer.getmany(timeout_ms=2000)).values()
               for r in batch]
    finally:
        await consumer.stop()
    assert raw and all(KEY.encode() not in value for value in raw)
    assert any(b"Summarecon" in value for value in raw)


def test_a_field_that_is_not_utf8_is_refused_as_the_ingress_refuses_it(hub: HubProcess) -> None:
    """Taking the key out must not re-encode the rest ("%FF" read as U+FFFD and accepted)."""
    body = urllib.parse.urlencode({**FORM, "api_key": KEY}).encode() + b"&first_name=%FF"
    answer = httpx.post(f"{hub.base_url}/intake/open311/requests.json", content=body,
                        headers={"content-type": "application/x-www-form-urlencoded"},
                        timeout=10)
    assert (answer.status_code, answer.json()) == (400, [{
        "code": 400, "description": "invalid_encoding: form is not UTF-8: invalid start byte"}])


@pytest.mark.parametrize(("form", "code", "description"), [
    ({**FORM, "api_key": "guess"}, 401, "bad or missing api_key"),
    (FORM, 401, "bad or missing api_key"),
    ({"api_key": KEY, "description": "Lampu mati", "lat": "-6.2", "long": "106.9"}, 400,
     "missing_field: service_code is required"),
])
def test_what_is_not_filed_is_an_error_list(
    hub: HubProcess, form: dict[str, str], code: int, description: str
) -> None:
    answer = file_request(hub, form)
    assert (answer.status_code, answer.json()) == (code, [{"code": code,
                                                           "description": description}])


def test_a_client_with_the_bearer_header_instead_is_let_in_too(hub: HubProcess) -> None:
    answer = httpx.post(f"{hub.base_url}/intake/open311/requests.json", timeout=10,
                        content=urllib.parse.urlencode(FORM).encode(), headers={
                            "content-type": "application/x-www-form-urlencoded",
                            "authorization": f"Bearer {KEY}"})
    assert answer.status_code == 200, answer.text


def test_the_methods_are_the_specifications(hub: HubProcess) -> None:
    assert httpx.put(f"{hub.base_url}/intake/open311/requests.json").status_code == 405
    assert httpx.post(f"{hub.base_url}/intake/open311/services.json").status_code == 405
    # GET requests.json lists requests by id; the hub lists no others.
    assert httpx.get(f"{hub.base_url}/intake/open311/requests.json").status_code == 400


async def test_a_client_looks_its_requests_up_by_id(hub: HubProcess) -> None:
    # Every request's notice says to track it by its number; nothing answered that before.
    filed = [file_request(hub, {**FORM, "api_key": KEY, "description": text,
                                "address_string": "Jl. Ahmad Yani, Kota Bekasi"}).json()[0]
             ["service_request_id"] for text in ("Lampu jalan mati total di depan pasar baru",
                                                 "Saluran air tersumbat sampah di gang tujuh")]
    await find_routed(hub.bootstrap, hub.prefix, set(filed))
    url = f"{hub.base_url}/intake/open311/requests.json"
    answer = httpx.get(url, params={"service_request_id": f"{filed[1]},{filed[0]},404404404"})
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert [r["service_request_id"] for r in found] == [filed[1], filed[0]]
    assert found[1]["status"] == "open"
    assert found[1]["description"] == "Lampu jalan mati total di depan pasar baru"
    assert found[1]["agency_responsible"] == "Dinas Bina Marga dan Sumber Daya Air Kota Bekasi"
    assert found[1]["address"] == "Jl. Ahmad Yani, Kota Bekasi"
    assert (found[1]["service_code"], found[1]["service_name"]) == ("pothole", "Pothole")
    assert (found[1]["lat"], found[1]["long"]) == (-6.2383, 106.9756)
    assert found[1]["requested_datetime"] and found[1]["expected_datetime"]
