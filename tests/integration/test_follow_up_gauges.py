"""The follow-up gauges a running hub exposes, on the real broker and each database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from hub.model import Status
from tests.integration.test_follow_up_loop import db, follow_up, form, routed, wait_for
from tests.support import HubProcess, overdue, produce

pytestmark = pytest.mark.broker

YOUNG, STOPPED = "kota-bekasi-dinkes", "kab-bekasi-dinkes"
REGION = {YOUNG: "32.75", STOPPED: "32.16"}


@pytest.fixture
def hub(kafka_bootstrap: str, database_url: str, tmp_path: Path) -> Iterator[HubProcess]:
    with HubProcess(kafka_bootstrap, database_url, log_path=tmp_path / "hub.log",
                    extra_env={"HUB_WATCHER_INTERVAL_S": "0.3"}) as process:
        yield process


async def complaint(hub: HubProcess, agency: str) -> str:
    ref = f"g-{uuid.uuid4().hex[:8]}"
    await produce(hub.bootstrap, hub.topic("raw.web"), [form(ref, "kesehatan", REGION[agency])])
    (event,) = await routed(hub, agency, ref)
    return str(event["tracking_id"])


async def answered(hub: HubProcess, tid: str, agency: str, status: Status) -> None:
    await follow_up(hub, tid, agency, status)
    assert await wait_for(lambda: db(hub, "SELECT 1 FROM complaint WHERE tracking_id = :t AND "
                                          "status = :s", t=tid, s=status.value))


def aged(hub: HubProcess, tid: str, days: int) -> None:
    """As if routed `days` ago, every time on the complaint with it: days cannot pass."""
    engine = sa.create_engine(hub.database_url)
    try:
        with engine.begin() as conn:
            assert overdue(conn, [tid], days) == 1
    finally:
        engine.dispose()


def gauges(hub: HubProcess) -> dict[tuple[str, str, str], float]:
    text = httpx.get(f"{hub.base_url}/metrics", timeout=5).text
    wanted = {"lapor_complaints_first_follow_up", "lapor_complaints_assigned"}
    return {(s.name, s.labels["agency"], s.labels["state"]): s.value
            for family in text_string_to_metric_families(text) if family.name in wanted
            for s in family.samples if s.labels.get("agency") in REGION}


async def test_overdue_first_follow_ups_are_told_from_those_still_within_their_deadline(
    hub: HubProcess,
) -> None:
    # A young agency answers on day 4, inside the 5 working days, and has one complaint two
    # days old: its follow-up rate (1 - not followed up / total) is 50 %, yet nothing of it
    # is late. Another stopped answering: one complaint untouched and one passed to its unit
    # a month ago; the one it followed up six weeks ago is history, not its present.
    on_day_4, fresh = await complaint(hub, YOUNG), await complaint(hub, YOUNG)
    aged(hub, on_day_4, 4)
    await answered(hub, on_day_4, YOUNG, Status.IN_PROGRESS)
    aged(hub, fresh, 2)
    long_ago, untouched, passed_on = [await complaint(hub, STOPPED) for _ in range(3)]
    await answered(hub, long_ago, STOPPED, Status.IN_PROGRESS)
    await answered(hub, passed_on, STOPPED, Status.DISPOSITIONED)
    for tid, days in ((long_ago, 42), (untouched, 30), (passed_on, 30)):
        aged(hub, tid, days)

    first = "lapor_complaints_first_follow_up"
    expected = {
        (first, YOUNG, "within_deadline"): 1, (first, YOUNG, "overdue"): 0,
        (first, YOUNG, "followed_up_7d"): 1,
        (first, STOPPED, "within_deadline"): 0, (first, STOPPED, "overdue"): 2,
        (first, STOPPED, "followed_up_7d"): 0,
    }
    assigned = "lapor_complaints_assigned"
    expected |= {  # the follow-up rate's own states as before: every complaint held
        (assigned, YOUNG, "not_followed_up"): 1, (assigned, YOUNG, "followed_up"): 1,
        (assigned, YOUNG, "resolved"): 0,
        (assigned, STOPPED, "not_followed_up"): 2, (assigned, STOPPED, "followed_up"): 1,
        (assigned, STOPPED, "resolved"): 0,
    }
    # The watcher refreshes the gauges at every pass: wait for one after the last change.
    await wait_for(lambda: gauges(hub) == expected)
    assert gauges(hub) == expected
