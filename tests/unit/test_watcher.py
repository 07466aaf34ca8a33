"""The deadline watcher: one escalation per breach, auto-close after the response."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from hub import metrics, store, topics, watcher
from hub.calendar import load_calendar_config
from hub.deadlines import Rules
from hub.followup import store_follow_ups
from hub.intake import Record, plan_intake, store_intake
from hub.model import FollowUpEvent, Status
from hub.routing import Directory

RULES = Rules.of(Directory.load(), load_calendar_config())
MONDAY = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 09:00 WIB


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = store.make_engine(f"sqlite:///{tmp_path}/w.db")
    SQLModel.metadata.create_all(engine)
    return engine


def intake(engine: sa.Engine, ref: str) -> str:
    body = json.dumps({"id": ref, "isi": f"Puskesmas tutup {ref}", "kategori": "kesehatan",
                       "lokasi": {"kode_wilayah": "32.75"}}).encode()
    with store.transaction(engine) as conn:
        stored = store_intake(conn, plan_intake(
            [Record(topics.raw("web"), 0, 0, None, body, {}, MONDAY)], RULES, MONDAY),
            RULES, MONDAY)
    return stored.routed[0][0].tracking_id


def follow(engine: sa.Engine, tid: str, status: Status, at: datetime) -> None:
    event = FollowUpEvent(event_id=f"{tid}-{status.value}", tracking_id=tid,
                          agency_code="kota-bekasi-dinkes", status=status, at=at)
    with store.transaction(engine) as conn:
        store_follow_ups(conn, [Record(topics.FOLLOW_UP, 0, 0, None,
                                       event.model_dump_json().encode(), {}, at)], RULES, at)


def sweep(engine: sa.Engine, now: datetime) -> watcher.Sweep:
    with store.transaction(engine) as conn:
        return watcher.sweep(conn, RULES, now)


def test_a_breach_is_escalated_once_to_the_coordinator(engine: sa.Engine) -> None:
    tid = intake(engine, "late")
    # Verification: 3 working days from Monday = due Friday 00:00 WIB.
    assert not sweep(engine, datetime(2026, 11, 26, 16, 59, tzinfo=UTC)).pending
    first = sweep(engine, datetime(2026, 11, 26, 17, 1, tzinfo=UTC))
    assert [p.topic for p in first.pending] == [topics.agency("kota-bekasi")]
    event = json.loads(first.pending[0].value)
    assert (event["tracking_id"], event["deadline"], event["coordinator_code"]) == (
        tid, "verification", "kota-bekasi")
    assert not sweep(engine, datetime(2026, 11, 27, 9, 0, tzinfo=UTC)).pending
    # A new deadline (first follow-up after the disposition) may be escalated again.
    follow(engine, tid, Status.DISPOSITIONED, datetime(2026, 11, 27, 3, 0, tzinfo=UTC))
    later = sweep(engine, datetime(2026, 12, 31, 0, 0, tzinfo=UTC))
    assert [json.loads(p.value)["deadline"] for p in later.pending] == ["first_follow_up"]


def test_a_response_without_reply_closes_after_ten_working_days(engine: sa.Engine) -> None:
    tid = intake(engine, "answered")
    follow(engine, tid, Status.DISPOSITIONED, MONDAY + timedelta(hours=1))
    follow(engine, tid, Status.RESPONDED, MONDAY + timedelta(hours=2))
    # The response day does not count: ten working days are Tue 24 Nov .. Mon 7 Dec, so the
    # complaint closes at Tue 8 Dec 00:00 WIB (no holiday between).
    assert not sweep(engine, datetime(2026, 12, 7, 16, 59, tzinfo=UTC)).pending
    before = metrics.latency.labels("kota-bekasi-dinkes", "close")._sum.get()
    swept = sweep(engine, datetime(2026, 12, 7, 17, 1, tzinfo=UTC))
    swept.count()
    assert [p.topic for p in swept.pending] == [topics.NOTIFICATION]
    assert json.loads(swept.pending[0].value)["status"] == "closed"
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT status, closed_at FROM complaint WHERE tracking_id = :t"),
                           {"t": tid}).one()
    assert row[0] == "closed"
    # Closed at the deadline, not at the sweep; 10 working days of working time.
    assert metrics.latency.labels("kota-bekasi-dinkes", "close")._sum.get() - before == (
        10 * 86_400)
