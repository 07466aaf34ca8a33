"""Routing to agencies and the follow-up loop, end to end on the real broker."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from hub.agency_client import show
from hub.model import FollowUpEvent, Status
from tests.support import HubProcess, consume_all, events, overdue, produce

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def hub(
    kafka_bootstrap: str, module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubProcess]:
    folder = tmp_path_factory.mktemp("loop")
    with HubProcess(
        kafka_bootstrap, module_database_url, log_path=folder / "hub.log",
        extra_env={"HUB_WATCHER_INTERVAL_S": "0.3"},
    ) as process:
        yield process


def form(ref: str, category: str, region: str, **extra: Any) -> tuple[None, bytes, dict[str, str]]:
    body = {"id": ref, "isi": f"Keluhan {category} ({ref})", "kategori": category,
            "lokasi": {"kode_wilayah": region}, "pelapor": {"telepon": "+6281234567890"}, **extra}
    return None, json.dumps(body).encode(), {"content-type": "application/json"}


async def routed(hub: HubProcess, agency: str, ref: str, expect: int = 1) -> list[dict[str, Any]]:
    records = await consume_all(hub.bootstrap, hub.topic(f"agency.{agency}"), expect=expect)
    return [e for e in events(records)
            if e.get("type") == "routing" and e["complaint"]["source"]["message_id"] == ref]


async def follow_up(hub: HubProcess, tracking_id: str, agency: str, status: Status,
                    **extra: Any) -> str:
    event = FollowUpEvent(event_id=uuid.uuid4().hex, tracking_id=tracking_id, agency_code=agency,
                          status=status, at=datetime.now(UTC), **extra)
    await produce(hub.bootstrap, hub.topic("followup"),
                  [(tracking_id.encode(), event.model_dump_json().encode(), {})])
    return event.event_id


def db(hub: HubProcess, sql: str, **params: Any) -> list[Any]:
    with sa.create_engine(hub.database_url).begin() as conn:
        result = conn.execute(sa.text(sql), params)
        return list(result) if result.returns_rows else []


async def wait_for(check: Any, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = check()
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def test_routes_to_three_agencies_and_reroutes_on_not_authority(hub: HubProcess) -> None:
    run = uuid.uuid4().hex[:6]
    cases = [(f"{run}-a", "kesehatan", "32.16", "kab-bekasi-dinkes"),
             (f"{run}-b", "jalan", "61.72", "kota-singkawang-pupr"),
             (f"{run}-c", "pdam", "32.75", "kota-bekasi-tirta-patriot")]
    await produce(hub.bootstrap, hub.topic("raw.web"), [form(r, c, g) for r, c, g, _ in cases])
    ids = {}
    for ref, _, _, agency in cases:
        (event,) = await routed(hub, agency, ref)
        assert event["agency_code"] == agency
        assert [d["kind"] for d in event["deadlines"]] == ["verification", "first_follow_up",
                                                           "settle"]
        ids[agency] = event["tracking_id"]

    # The water utility says the complaint is not theirs: the next candidate is the rule for
    # the parent category (infrastructure), then the city as coordinator.
    tid = ids["kota-bekasi-tirta-patriot"]
    await follow_up(hub, tid, "kota-bekasi-tirta-patriot", Status.NOT_AUTHORITY,
                    message="Bukan wilayah layanan kami")
    (rerouted,) = await routed(hub, "kota-bekasi-dbmsda", f"{run}-c")
    assert rerouted["reason"] == "reroute"
    assert rerouted["previous_agency_code"] == "kota-bekasi-tirta-patriot"
    assert rerouted["event_id"] == f"route-{tid}-2"
    rows = await wait_for(lambda: db(hub, "SELECT agency_code, status FROM complaint "
                                          "WHERE tracking_id = :t", t=tid))
    assert rows == [("kota-bekasi-dbmsda", "received")]
    await follow_up(hub, tid, "kota-bekasi-dbmsda", Status.NOT_AUTHORITY)
    (again,) = await routed(hub, "kota-bekasi", f"{run}-c")
    assert (again["reason"], again["event_id"]) == ("reroute", f"route-{tid}-3")

    # The new holder verifies and answers; the history keeps every step in order.
    await follow_up(hub, tid, "kota-bekasi", Status.VERIFIED)
    await follow_up(hub, tid, "kota-bekasi", Status.DISPOSITIONED)
    await follow_up(hub, tid, "kota-bekasi", Status.IN_PROGRESS)
    await follow_up(hub, tid, "kota-bekasi", Status.RESPONDED, message="Sudah diperbaiki")
    history = await wait_for(lambda: [r[0] for r in db(
        hub, "SELECT status FROM status_history WHERE tracking_id = :t ORDER BY id", t=tid)]
        if len(db(hub, "SELECT 1 FROM status_history WHERE tracking_id = :t", t=tid)) >= 7
        else None)
    assert history == ["received", "not_authority", "not_authority", "verified", "dispositioned",
                       "in_progress", "responded"]
    notes = events(await consume_all(hub.bootstrap, hub.topic("notification"), expect=2))
    mine = [n["status"] for n in notes if n["tracking_id"] == tid]
    assert mine == ["verified", "responded"]
    assert all(n["address"]["phone"] == "+6281234567890" for n in notes if n["tracking_id"] == tid)


async def test_a_missed_deadline_escalates_exactly_once(hub: HubProcess) -> None:
    ref = f"late-{uuid.uuid4().hex[:6]}"
    await produce(hub.bootstrap, hub.topic("raw.web"), [form(ref, "kesehatan", "32.75")])
    (event,) = await routed(hub, "kota-bekasi-dinkes", ref)
    tid = event["tracking_id"]
    await wait_for(lambda: db(hub, "SELECT 1 FROM complaint WHERE tracking_id = :t", t=tid))
    # Three working days cannot pass in a test: move the complaint's clock into the past,
    # which is what the watcher reads, and let it sweep many times.
    with sa.create_engine(hub.database_url).begin() as conn:
        overdue(conn, [tid])
    await asyncio.sleep(3)  # ten sweeps at 0.3 s
    escalations = [e for e in events(await consume_all(
        hub.bootstrap, hub.topic("agency.kota-bekasi"), expect=1, settle=2.0))
        if e.get("type") == "escalation" and e["tracking_id"] == tid]
    assert len(escalations) == 1
    assert escalations[0]["agency_code"] == "kota-bekasi-dinkes"
    assert escalations[0]["coordinator_code"] == "kota-bekasi"
    assert escalations[0]["deadline"] == "verification"
    # The late answer is still applied.
    await follow_up(hub, tid, "kota-bekasi-dinkes", Status.VERIFIED)
    assert await wait_for(lambda: db(hub, "SELECT 1 FROM complaint WHERE tracking_id = :t "
                                          "AND status = 'verified'", t=tid))


async def test_spoofed_or_illegal_follow_ups_are_dead_letters(hub: HubProcess) -> None:
    ref = f"spoof-{uuid.uuid4().hex[:6]}"
    await produce(hub.bootstrap, hub.topic("raw.web"), [form(ref, "jalan", "32.16")])
    (event,) = await routed(hub, "kab-bekasi-dsdabmbk", ref)
    tid = event["tracking_id"]
    await wait_for(lambda: db(hub, "SELECT 1 FROM complaint WHERE tracking_id = :t", t=tid))
    await follow_up(hub, tid, "kota-bekasi-dbmsda", Status.RESPONDED)  # not the holder
    await follow_up(hub, tid, "kab-bekasi-dsdabmbk", Status.CLOSED)  # closed before responded
    await follow_up(hub, "9" * 18, "kab-bekasi-dsdabmbk", Status.VERIFIED)  # unknown complaint
    await produce(hub.bootstrap, hub.topic("followup"), [(None, b"not json at all", {})])
    letters = events(await consume_all(hub.bootstrap, hub.topic("deadletter"), expect=4))
    reasons = {dl["reason"] for dl in letters if dl["stage"] == "follow_up"}
    assert {"not_holder", "illegal_transition", "unknown_complaint", "invalid_follow_up"} <= reasons
    rows = db(hub, "SELECT status, agency_code FROM complaint WHERE tracking_id = :t", t=tid)
    assert rows == [("received", "kab-bekasi-dsdabmbk")]


async def taken_from(hub: HubProcess, agency: str, tracking_id: str) -> list[Any]:
    """The records on `agency`'s topic saying `tracking_id` was taken from it (once the hub
    published one: it goes out with the routing event, or after it)."""
    for _ in range(40):
        records = await consume_all(hub.bootstrap, hub.topic(f"agency.{agency}"), expect=1,
                                    settle=0.5)
        found = [r for r in records if json.loads(r.value).get("type") == "taken"
                 and json.loads(r.value)["tracking_id"] == tracking_id]
        if found:
            return found
    return []


async def test_an_agency_hears_a_complaint_was_taken_from_it(
    hub: HubProcess, capsys: pytest.CaptureFixture[str],
) -> None:
    # The coordinator took a complaint from its holder, the national admin archived it over
    # the next one's head, and neither holder heard: each kept it open, and each answer it
    # gave after was a dead letter not_holder it never saw.
    ref = f"taken-{uuid.uuid4().hex[:6]}"
    await produce(hub.bootstrap, hub.topic("raw.web"), [form(ref, "kesehatan", "32.75")])
    (event,) = await routed(hub, "kota-bekasi-dinkes", ref)
    tid = event["tracking_id"]
    await follow_up(hub, tid, "kota-bekasi", Status.DISPOSITIONED,
                    target_agency="kota-bekasi-rsud", message="Mohon ditangani RSUD")
    (moved,) = await routed(hub, "kota-bekasi-rsud", ref)
    records = await taken_from(hub, "kota-bekasi-dinkes", tid)
    assert records and {r.value for r in records} == {records[0].value}  # re-sent as it was
    taken = json.loads(records[0].value)
    assert dict(records[0].headers)["event-type"] == b"taken"
    assert {k: taken[k] for k in ("event_id", "agency_code", "by_agency", "status", "to_agency",
                                  "message")} == {
        "event_id": f"taken-{tid}-1", "agency_code": "kota-bekasi-dinkes",
        "by_agency": "kota-bekasi", "status": "dispositioned", "to_agency": "kota-bekasi-rsud",
        "message": "Mohon ditangani RSUD"}
    assert moved["previous_agency_code"] == "kota-bekasi-dinkes"

    await follow_up(hub, tid, "kemenpanrb", Status.ARCHIVED, reason="Laporan ganda")
    (archived, *_) = await taken_from(hub, "kota-bekasi-rsud", tid)
    assert json.loads(archived.value) | {"at": None} == {
        "schema_version": 1, "type": "taken", "event_id": f"taken-{tid}-2",
        "tracking_id": tid, "agency_code": "kota-bekasi-rsud", "by_agency": "kemenpanrb",
        "status": "archived", "to_agency": None, "message": None, "reason": "Laporan ganda",
        "at": None}
    # The reference client shows both to the officers of the agencies they were taken from.
    capsys.readouterr()
    show(records[0].value)
    show(archived.value)
    assert capsys.readouterr().out.splitlines() == [
        f"taken {tid} by kota-bekasi, to kota-bekasi-rsud: no longer yours to answer – "
        "Mohon ditangani RSUD",
        f"taken {tid} by kemenpanrb, archived: no longer yours to answer – Laporan ganda"]
