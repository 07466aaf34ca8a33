"""The ingress authenticates every source and survives hostile input."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from tests.support import HubProcess, find_routed, wait_for

pytestmark = pytest.mark.broker
FIXTURES = Path(__file__).parent.parent / "fixtures"
TOKEN, TWILIO, META, VERIFY = "web-token-1", "twilio-secret", "meta-secret", "verify-me"


@pytest.fixture(scope="module")
def hub(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    folder = tmp_path_factory.mktemp("security")
    env = {
        "HUB_INGRESS_OPEN": "false",
        "HUB_INGRESS_TOKENS": json.dumps({"web": TOKEN}),
        "HUB_TWILIO_AUTH_TOKEN": TWILIO,
        "HUB_META_APP_SECRET": META,
        "HUB_META_VERIFY_TOKEN": VERIFY,
    }
    with HubProcess(kafka_bootstrap, f"sqlite:///{folder}/hub.db", log_path=folder / "hub.log",
                    extra_env=env) as process:
        yield process


def web(hub: HubProcess, body: bytes, token: str | None = TOKEN,
        content_type: str = "application/json") -> httpx.Response:
    headers = {"content-type": content_type}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return httpx.post(f"{hub.base_url}/intake/web", content=body, headers=headers, timeout=10)


def form(text: str) -> bytes:
    return json.dumps({"id": uuid.uuid4().hex, "isi": text, "kategori": "jalan",
                       "lokasi": {"kode_wilayah": "32.75"}}).encode()


def test_each_source_must_prove_itself(hub: HubProcess) -> None:
    body = form("Trotoar rusak di depan sekolah dasar negeri 3")
    assert web(hub, body, token=None).status_code == 401
    assert web(hub, body, token="guess").status_code == 401
    assert web(hub, body).status_code == 202
    # No credential configured for Open311 here: refused, not silently open.
    answer = httpx.post(f"{hub.base_url}/intake/open311", content=b"description=x",
                        headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 401
    assert "no credential configured" in answer.json()["error"]


def answered(hub: HubProcess) -> dict[tuple[str, str], float]:
    """The ingress's answers so far, by (source, status), as Prometheus scrapes them."""
    text = httpx.get(f"{hub.base_url}/metrics", timeout=10).text
    return {(s.labels["source"], s.labels["status"]): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == "lapor_ingress_answers_total"}


def test_refusals_are_counted_by_source_and_status(hub: HubProcess) -> None:
    # A sender refused wholesale (a token changed on one side only) left no complaint, no
    # dead letter and no log line: nothing an operator could see or alert on.
    before = answered(hub)
    body = form("Lampu jalan mati sepanjang Jl. Ahmad Yani sejak seminggu")
    for _ in range(3):
        assert web(hub, body, token="rotated-on-one-side").status_code == 401
    assert web(hub, body, content_type="text/plain").status_code == 415
    assert web(hub, body).status_code == 202
    counted = {key: n - before.get(key, 0.0) for key, n in answered(hub).items()}
    assert {key: n for key, n in counted.items() if n} == {
        ("web", "401"): 3, ("web", "415"): 1, ("web", "202"): 1}
    # Every source's refusal series is there from the start, for increase() to see.
    assert {source for source, status in before if status == "401"} >= {"web", "sms-twilio"}


def test_twilio_signature(hub: HubProcess) -> None:
    params = {"MessageSid": f"SM{uuid.uuid4().hex}", "From": "+6281311112222", "To": "1708",
              "Body": "Banjir setinggi lutut di Jl. Kartini, mohon pompa air", "NumSegments": "1"}
    body = urllib.parse.urlencode(params).encode()
    url = f"{hub.base_url}/intake/sms-twilio"
    # Twilio's documented scheme, written out independently of the hub's code.
    signed = url + "".join(k + params[k] for k in sorted(params))
    good = base64.b64encode(hmac.new(TWILIO.encode(), signed.encode(), hashlib.sha1).digest())
    headers = {"content-type": "application/x-www-form-urlencoded"}
    assert httpx.post(url, content=body, headers=headers).status_code == 401
    bad = {**headers, "x-twilio-signature": "AAAA"}
    assert httpx.post(url, content=body, headers=bad).status_code == 401
    ok = {**headers, "x-twilio-signature": good.decode()}
    assert httpx.post(url, content=body, headers=ok).status_code == 202
    # A webhook URL with a query string: Twilio signs it whole.
    params["MessageSid"] = f"SM{uuid.uuid4().hex}"
    body = urllib.parse.urlencode(params).encode()
    with_query = f"{url}?region=32.75&channel=1708"
    signed = with_query + "".join(k + params[k] for k in sorted(params))
    good = base64.b64encode(hmac.new(TWILIO.encode(), signed.encode(), hashlib.sha1).digest())
    ok = {**headers, "x-twilio-signature": good.decode()}
    assert httpx.post(with_query, content=body, headers=ok).status_code == 202


def test_meta_signature_and_verification(hub: HubProcess) -> None:
    body = (FIXTURES / "whatsapp/text_message.json").read_bytes()
    url = f"{hub.base_url}/intake/whatsapp"
    signature = "sha256=" + hmac.new(META.encode(), body, hashlib.sha256).hexdigest()
    headers = {"content-type": "application/json"}
    assert httpx.post(url, content=body, headers=headers).status_code == 401
    tampered = body.replace(b"}", b" }", 1)
    assert httpx.post(url, content=tampered, headers={
        **headers, "x-hub-signature-256": signature}).status_code == 401
    assert httpx.post(url, content=body, headers={
        **headers, "x-hub-signature-256": signature}).status_code == 200  # Meta's success
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}
    answer = httpx.get(url, params=query)
    assert (answer.status_code, answer.text) == (200, "1158201444")
    assert httpx.get(url, params={**query, "hub.verify_token": "no"}).status_code == 403


async def test_hostile_input_is_refused_or_stored_as_plain_data(hub: HubProcess) -> None:
    assert web(hub, b'{"isi": "\xff\xfe bukan utf-8"}').status_code == 422
    assert web(hub, b"[" * 100_000 + b"]" * 100_000).status_code in (413, 422)
    assert web(hub, b"[" * 20_000 + b"]" * 20_000).status_code == 422
    assert web(hub, form("x" * 30_000)).status_code == 422
    assert web(hub, form("ok"), content_type="text/html").status_code == 415
    assert web(hub, b"{" + b'"a":1,' * 60_000 + b'"b":2}').status_code == 413
    nasty = ("<script>alert('x')</script> '; DROP TABLE complaint; -- "
             "{{7*7}} ${jndi:ldap://x} \u202e\u0000 selesai")
    answer = web(hub, form(nasty))
    assert answer.status_code == 202, answer.text
    (tracking_id,) = answer.json()["accepted"]
    (record,) = await find_routed(hub.bootstrap, hub.prefix, {tracking_id})
    assert json.loads(record.value)["complaint"]["description"] == nasty.strip()
    with sa.create_engine(hub.database_url).connect() as conn:
        stored = conn.execute(sa.text("SELECT document FROM complaint WHERE tracking_id = :t"),
                              {"t": tracking_id}).scalar_one()
        assert json.loads(stored)["description"] == nasty.strip()
        assert conn.execute(sa.text("SELECT count(*) FROM complaint")).scalar_one() >= 1
    assert httpx.get(f"{hub.base_url}/readyz").status_code == 200


async def test_a_relayed_message_refused_becomes_a_dead_letter_not_a_422(hub: HubProcess) -> None:
    # A photo without a caption: no text to complain with. Answered 422 it was neither
    # published nor kept, and Meta re-sent it for a day.
    body = (FIXTURES / "whatsapp/text_message.json").read_bytes().replace(
        b'"type": "text"', b'"type": "image"').replace(b"wamid.HBgN", uuid.uuid4().hex.encode())
    signature = "sha256=" + hmac.new(META.encode(), body, hashlib.sha256).hexdigest()
    answer = httpx.post(f"{hub.base_url}/intake/whatsapp", content=body, headers={
        "content-type": "application/json", "x-hub-signature-256": signature})
    assert answer.status_code == 200, answer.text
    (refused,) = answer.json()["rejected"]
    # Named by the message's id (the wamid's digest: the wamid holds the sender's number).
    assert (refused["reason"], refused["id"][:3]) == ("missing_field", "wa-")
    engine = sa.create_engine(hub.database_url)

    async def kept() -> bool:
        with engine.connect() as conn:
            return bool(conn.execute(sa.text(
                "SELECT count(*) FROM dead_letter WHERE reason = 'missing_field' "
                "AND topic = :t"), {"t": hub.topic("raw.whatsapp")}).scalar_one())

    await wait_for(kept, 30, "the refused message's dead letter")
    # The web form's own client reads the refusal: still a 422, nothing published.
    assert web(hub, b"{}").status_code == 422
