"""Identity never leaks (logs, metrics, anonymous routing, rows at rest); dead letters replay."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa

from hub.model import FollowUpEvent, SourceRef, Status, tracking_id_for
from tests.support import LAPOR_HUB, HubProcess, find_routed, produce

pytestmark = pytest.mark.broker
IDENTITY = {"nama": "Siti Rahmawati Kusuma", "nik": "3275014509870003",
            "telepon": "+6281299887766", "email": "siti.rahma@contoh.id"}
NEEDLES = [b"Rahmawati", b"3275014509870003", b"6281299887766", b"81299887766",
           b"siti.rahma@contoh.id"]


@pytest.fixture(scope="module")
def hub(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    folder = tmp_path_factory.mktemp("privacy")
    with HubProcess(kafka_bootstrap, f"sqlite:///{folder}/hub.db", log_path=folder / "hub.log",
                    extra_env={"HUB_SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
                               "HUB_LOG_LEVEL": "DEBUG"}) as process:
        yield process


def post(hub: HubProcess, form: dict[str, object]) -> httpx.Response:
    return httpx.post(f"{hub.base_url}/intake/web", json=form, timeout=10)


async def test_identity_stays_out_of_logs_metrics_topics_and_plain_rows(hub: HubProcess) -> None:
    run = uuid.uuid4().hex[:6]
    anonymous = post(hub, {"id": f"{run}-anon", "isi": f"Pungli di kantor kelurahan {run}",
                           "kategori": "adminduk", "lokasi": {"kode_wilayah": "32.75"},
                           "anonim": True, "pelapor": IDENTITY})
    named = post(hub, {"id": f"{run}-named", "isi": f"Jalan amblas di perumahan {run}",
                       "kategori": "jalan", "lokasi": {"kode_wilayah": "32.75"},
                       "pelapor": IDENTITY})
    broken = post(hub, {"id": f"{run}-bad", "isi": "", "pelapor": IDENTITY})
    assert (anonymous.status_code, named.status_code, broken.status_code) == (202, 202, 422)
    (anon_id,) = anonymous.json()["accepted"]
    (named_id,) = named.json()["accepted"]
    # A malformed raw message naming the citizen becomes a dead letter, sealed at rest.
    await produce(hub.bootstrap, hub.topic("raw.web"),
                  [(None, b'{"isi": 1, "pelapor": ' + json.dumps(IDENTITY).encode(), {})])
    records = {r.key.decode(): r.value
               for r in await find_routed(hub.bootstrap, hub.prefix, {anon_id, named_id})}
    assert not [n for n in NEEDLES if n in records[anon_id]]
    assert b"Rahmawati" in records[named_id]  # a named complaint does carry its reporter
    await asyncio.sleep(1)

    assert hub.log_path is not None
    log = hub.log_path.read_bytes()
    assert not [n for n in NEEDLES if n in log]
    metrics = httpx.get(f"{hub.base_url}/metrics").content
    assert not [n for n in NEEDLES if n in metrics]
    engine = sa.create_engine(hub.database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT document, reporter_sealed FROM complaint")).all()
        letters = conn.execute(sa.text("SELECT original FROM dead_letter")).all()
    assert rows and letters
    at_rest = b"".join(r[0].encode() + (r[1] or b"") for r in rows) + b"".join(
        bytes(r[0]) for r in letters)
    assert not [n for n in NEEDLES if n in at_rest]


async def test_dead_letters_are_listed_and_replayed_after_the_cause_is_gone(
    hub: HubProcess,
) -> None:
    ref = f"early-{uuid.uuid4().hex[:6]}"
    tracking_id = tracking_id_for(SourceRef(system="web", message_id=ref))
    # The agency's answer arrives before the complaint exists: a dead letter.
    event = FollowUpEvent(event_id=uuid.uuid4().hex, tracking_id=tracking_id,
                          agency_code="kota-bekasi-dinkes", status=Status.VERIFIED,
                          at=datetime.now(UTC))
    await produce(hub.bootstrap, hub.topic("followup"),
                  [(tracking_id.encode(), event.model_dump_json().encode(), {})])
    env = hub.env()
    for _ in range(100):
        listed = subprocess.run(
            [LAPOR_HUB, "dlq", "list", "--reason", "unknown_complaint", "--json"],
            env=env, capture_output=True, text=True, check=True)
        if tracking_id in listed.stdout:
            break
        await asyncio.sleep(0.5)
    (letter,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (letter["stage"], letter["reason"]) == ("follow_up", "unknown_complaint")
    assert tracking_id in letter["detail"]
    # Named by its complaint, agency and event, which most refusals' details do not name.
    assert (letter["tracking_id"], letter["agency"], letter["event_id"]) == (
        tracking_id, "kota-bekasi-dinkes", event.event_id)
    # The table, piped: the row whole on its line, not squeezed into 80 columns.
    shown = subprocess.run([LAPOR_HUB, "dlq", "list", "--reason", "unknown_complaint"],
                           env=env, capture_output=True, text=True, check=True).stdout
    (row,) = [line for line in shown.splitlines() if "unknown_complaint" in line]
    assert [cell.strip() for cell in row.split("│")[1:-1]][2:7] == [
        "follow_up", "unknown_complaint", hub.topic("followup"), tracking_id,
        letter["detail"][:80]], row
    # Now the complaint comes in; replaying the dead letter applies the answer.
    answer = post(hub, {"id": ref, "isi": f"Obat kosong di puskesmas {ref}", "kategori":
                        "kesehatan", "lokasi": {"kode_wilayah": "32.75"}})
    assert answer.json()["accepted"] == [tracking_id]
    await find_routed(hub.bootstrap, hub.prefix, {tracking_id})
    replayed = subprocess.run([LAPOR_HUB, "dlq", "replay", "--reason", "unknown_complaint"],
                              env=env, capture_output=True, text=True, check=True)
    assert replayed.stdout.startswith("replayed ")
    engine = sa.create_engine(hub.database_url)
    for _ in range(100):
        with engine.connect() as conn:
            status = conn.execute(sa.text("SELECT status FROM complaint WHERE tracking_id = :t"),
                                  {"t": tracking_id}).scalar_one()
        if status == "verified":
            break
        await asyncio.sleep(0.2)
    assert status == "verified"
    again = subprocess.run([LAPOR_HUB, "dlq", "replay", "--reason", "unknown_complaint"],
                           env=env, capture_output=True, text=True, check=True)
    assert again.stdout.strip() == "replayed 0 dead letter(s)"
