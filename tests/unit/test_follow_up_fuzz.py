"""Property: whatever arrives on the follow-up topic is applied or dead-lettered, never raises."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import SQLModel

from hub import store, topics
from hub.calendar import load_calendar_config
from hub.deadlines import Rules
from hub.followup import store_follow_ups
from hub.intake import Record, plan_intake, store_intake
from hub.model import Status
from hub.routing import Directory

RULES = Rules.of(Directory.load(), load_calendar_config())
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def fresh_db(folder: Path) -> tuple[sa.Engine, str]:
    engine = store.make_engine(f"sqlite:///{folder}/fuzz.db")
    SQLModel.metadata.drop_all(engine)
    SQLModel.metadata.create_all(engine)
    body = json.dumps({"id": "f1", "isi": "Lampu jalan mati", "kategori": "jalan",
                       "lokasi": {"kode_wilayah": "32.75"}}).encode()
    raw = Record(topics.raw("web"), 0, 0, None, body, {}, NOW)
    with store.transaction(engine) as conn:
        stored = store_intake(conn, plan_intake([raw], RULES, NOW), RULES, NOW)
    return engine, stored.routed[0][0].tracking_id


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=12,
)


def event_like(tracking_id: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "event_id": st.text(min_size=1, max_size=20),
        "tracking_id": st.sampled_from([tracking_id, "1" * 18, "abc"]),
        "agency_code": st.sampled_from(["kota-bekasi-dbmsda", "kota-bekasi", "nobody", ""]),
        "status": st.sampled_from([s.value for s in Status] + ["selesai"]),
        "at": st.sampled_from(["2026-11-24T01:00:00Z", "2026-11-24", "not a date"]),
    }, optional={"target_agency": st.sampled_from(["kota-bekasi-rsud", "nope"]),
                 "message": st.text(max_size=50), "extra": json_values})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_follow_up_batches_never_raise(tmp_path: Path, data: st.DataObject) -> None:
    engine, tracking_id = fresh_db(tmp_path)
    bodies = data.draw(st.lists(
        st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode())
        | event_like(tracking_id).map(lambda v: json.dumps(v).encode()),
        min_size=1, max_size=8,
    ))
    records = [Record(topics.FOLLOW_UP, 0, i, None, b, {}, NOW) for i, b in enumerate(bodies)]
    with store.transaction(engine) as conn:
        applied = store_follow_ups(conn, records, RULES, NOW)
    with engine.connect() as conn:
        letters = conn.execute(sa.text("SELECT count(*) FROM dead_letter")).scalar_one()
    # Every record is accounted for: applied, dead-lettered, or a replay of an applied event id.
    assert len(applied.effects) + letters <= len(records)
    ids = [json.loads(b).get("event_id") if _is_obj(b) else None for b in bodies]
    replays = sum(1 for i, e in enumerate(ids) if e is not None and e in ids[:i])
    assert len(applied.effects) + letters + replays >= len(records)
    engine.dispose()


def _is_obj(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False
