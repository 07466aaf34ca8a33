"""A record near the broker's size limit: the dead letter that wraps it must not stall intake."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from hub.dlq import replayable
from hub.model import SourceRef, tracking_id_for
from hub.sealing import Sealer
from tests.support import HubProcess, consume_all, find_routed, produce

pytestmark = pytest.mark.broker
SECRET = "oversized-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def hub(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    folder: Path = tmp_path_factory.mktemp("oversized")
    with HubProcess(kafka_bootstrap, f"sqlite:///{folder}/hub.db", log_path=folder / "hub.log",
                    extra_env={"HUB_SECRET_KEY": SECRET}) as process:
        yield process


async def test_an_unreadable_record_near_the_size_limit_is_dead_lettered_without_its_bytes(
    hub: HubProcess,
) -> None:
    run = uuid.uuid4().hex[:6]
    # Under the broker's 1 MiB as sent; base64 in a dead-letter event would be 1.2 MB.
    garbage = b'{"isi": "' + run.encode() + b'"' + b"x" * 900_000
    form = {"id": f"{run}-after", "isi": f"Jalan berlubang {run}", "kategori": "jalan",
            "lokasi": {"kode_wilayah": "32.75"}}
    await produce(hub.bootstrap, hub.topic("raw.web"), [
        (b"k", garbage, {"content-type": "application/json"}),
        (b"k", json.dumps(form).encode(), {"content-type": "application/json"}),
    ])
    # The complaint behind it in the same partition goes through.
    after = tracking_id_for(SourceRef(system="web", message_id=f"{run}-after"))
    assert await find_routed(hub.bootstrap, hub.prefix, {after}, within=40)

    letters = [json.loads(r.value)
               for r in await consume_all(hub.bootstrap, hub.topic("deadletter"), expect=1)]
    (letter,) = [dl for dl in letters if dl["topic"] == hub.topic("raw.web")]
    assert letter["reason"] == "invalid_json"
    assert (letter["original"], letter["original_omitted"]) == ("", True)
    # The database keeps the bytes, and a replay sends them whole.
    engine = sa.create_engine(hub.database_url)
    (pending,) = replayable(engine, Sealer(SECRET.encode()), [], None).pending
    assert pending.value == garbage
    assert base64.b64encode(garbage) not in b"".join(json.dumps(dl).encode() for dl in letters)


async def test_an_unreadable_follow_up_near_the_size_limit_is_dead_lettered(
    hub: HubProcess,
) -> None:
    garbage = b"[" + b"y" * 900_000
    await produce(hub.bootstrap, hub.topic("followup"), [(b"f", garbage, {})])
    letters = await consume_all(hub.bootstrap, hub.topic("deadletter"), expect=2)
    (letter,) = [json.loads(r.value) for r in letters
                 if json.loads(r.value)["topic"] == hub.topic("followup")]
    assert letter["stage"] == "follow_up" and letter["original_omitted"] is True
    assert httpx.get(f"{hub.base_url}/readyz", timeout=10).status_code == 200
