"""Every adapter, fed anything, accounts for it with outcomes and never raises.

For every source in SOURCES: arbitrary bytes, arbitrary JSON, deeply nested JSON, and
mutated versions of its fixtures (fields dropped, replaced or retyped, bytes truncated
or spliced, invalid UTF-8). The same bytes must also give the same outcomes (purity).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.adapters import SOURCES
from hub.adapters.base import Fragment, Outcome, RawMessage, Rejection
from hub.adapters.sms_gateway import join_fragments
from hub.model import Complaint, tracking_id_for

FIXTURES = Path(__file__).parents[1] / "fixtures"
RECEIVED = datetime(2024, 5, 2, 1, 20, tzinfo=UTC)
NAMES = sorted(SOURCES)

PROPERTY = settings(
    max_examples=int(os.environ.get("HUB_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fixtures(name: str, suffix: str) -> list[bytes]:
    folder = FIXTURES / name
    return [p.read_bytes() for p in sorted(folder.glob(f"*{suffix}"))] if folder.is_dir() else []


def with_fixtures(suffix: str) -> list[str]:
    return [name for name in NAMES if fixtures(name, suffix)]


def check_outcomes(name: str, outcomes: list[Outcome]) -> None:
    assert isinstance(outcomes, list)
    for outcome in outcomes:
        assert isinstance(outcome, Complaint | Rejection | Fragment), outcome
        if isinstance(outcome, Complaint):
            assert outcome.source.system == name
            assert outcome.tracking_id == tracking_id_for(outcome.source)


def check(name: str, body: bytes) -> None:
    source = SOURCES[name]
    raw = RawMessage(name, body, source.content_types[0], RECEIVED)
    outcomes = source.normalize(raw)
    check_outcomes(name, outcomes)
    assert outcomes, "every message is accounted for"
    assert source.normalize(raw) == outcomes
    fragments = [o for o in outcomes if isinstance(o, Fragment)]
    if fragments:
        check_outcomes(name, join_fragments(fragments))


# --- strategies ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=20,
)
_NEST = "\x00nest\x00"
_ODD_BYTES = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00", b"%FF", b"%C3("]

JsonPath = tuple[str | int, ...]


def paths(doc: Any, prefix: JsonPath = ()) -> Iterator[JsonPath]:
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from paths(value, (*prefix, index))


def at(doc: Any, path: JsonPath) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def retyped(value: Any) -> list[Any]:
    return [None, True, 0, -1, 2**70, 1e308, -0.0, "", " ", "NaN", "1e999", [], {}, [value],
            {"value": value}, json.dumps(value)]


def nested(depth: int, as_list: bool) -> str:
    return "[" * depth + "]" * depth if as_list else '{"a":' * depth + "1" + "}" * depth


@st.composite
def mutated_json(draw: st.DrawFn, name: str) -> bytes:
    doc: Any = copy.deepcopy(json.loads(draw(st.sampled_from(fixtures(name, ".json")))))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(paths(doc))))
        operation = draw(st.sampled_from(["drop", "replace", "retype", "nest"]))
        if operation == "replace":
            new: Any = draw(json_values)
        elif operation == "retype":
            new = draw(st.sampled_from(retyped(at(doc, path))))
        elif operation == "nest":
            new = _NEST
        if not path:
            doc = {} if operation == "drop" else new
            continue
        parent = at(doc, path[:-1])
        if operation == "drop":
            del parent[path[-1]]
        else:
            parent[path[-1]] = new
    text = json.dumps(doc)
    deep = nested(draw(st.integers(1, 3000)), draw(st.booleans()))
    return text.replace(json.dumps(_NEST), deep).encode()


@st.composite
def mutated_form(draw: st.DrawFn, name: str) -> bytes:
    body = draw(st.sampled_from(fixtures(name, ".urlencoded"))).decode()
    pairs = parse_qsl(body, keep_blank_values=True)
    for _ in range(draw(st.integers(1, 3))):
        operation = draw(st.sampled_from(["drop", "replace", "duplicate", "rename", "add"]))
        if operation == "add" or not pairs:
            pairs.append((draw(st.sampled_from(pairs or [("Body", "")]))[0], draw(st.text())))
            continue
        i = draw(st.integers(0, len(pairs) - 1))
        key, value = pairs[i]
        if operation == "drop":
            del pairs[i]
        elif operation == "replace":
            pairs[i] = (key, draw(st.text() | st.sampled_from(["0", "-1", "99", "1e999", "nan"])))
        elif operation == "duplicate":
            pairs.append((key, value))
        else:
            pairs[i] = (draw(st.text(max_size=15)), value)
    return urlencode(pairs).encode()


@st.composite
def mutated_csv(draw: st.DrawFn, name: str) -> bytes:
    text = draw(st.sampled_from(fixtures(name, ".csv"))).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    for _ in range(draw(st.integers(1, 3))):
        if not rows:
            break
        r = draw(st.integers(0, len(rows) - 1))
        operation = draw(st.sampled_from(["drop_cell", "replace_cell", "drop_row", "add_row"]))
        if operation == "drop_row":
            del rows[r]
        elif operation == "add_row":
            rows.insert(r, draw(st.lists(st.text(max_size=20), max_size=16)))
        elif rows[r]:
            c = draw(st.integers(0, len(rows[r]) - 1))
            if operation == "drop_cell":
                del rows[r][c]
            else:
                rows[r][c] = draw(st.text(max_size=40) | st.sampled_from(["3374", "0000", "99"]))
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


@st.composite
def mutated_bytes(draw: st.DrawFn, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["truncate", "flip", "odd", "splice"]))
        if operation == "truncate":
            del data[pos:]
        elif operation == "flip" and pos < len(data):
            data[pos] ^= draw(st.integers(1, 255))
        elif operation == "odd":
            data[pos:pos] = draw(st.sampled_from(_ODD_BYTES))
        else:
            data[pos:pos] = draw(st.binary(max_size=20))
    return bytes(data)


def all_fixtures(name: str) -> list[bytes]:
    return [body for suffix in (".json", ".urlencoded", ".csv") for body in fixtures(name, suffix)]


# --- properties ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_fixtures_as_sent(name: str) -> None:
    for body in all_fixtures(name):
        check(name, body)


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(body=st.binary(max_size=3000))
def test_arbitrary_bytes(name: str, body: bytes) -> None:
    check(name, body)


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(value=json_values)
def test_arbitrary_json(name: str, value: Any) -> None:
    check(name, json.dumps(value).encode())


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(depth=st.integers(1, 100_000), as_list=st.booleans())
def test_deeply_nested_json(name: str, depth: int, as_list: bool) -> None:
    check(name, nested(depth, as_list).encode())


@pytest.mark.parametrize("name", with_fixtures(".json"))
@PROPERTY
@given(data=st.data())
def test_mutated_json_fixtures(name: str, data: st.DataObject) -> None:
    check(name, data.draw(mutated_json(name)))


@pytest.mark.parametrize("name", with_fixtures(".urlencoded"))
@PROPERTY
@given(data=st.data())
def test_mutated_form_fixtures(name: str, data: st.DataObject) -> None:
    check(name, data.draw(mutated_form(name)))


@pytest.mark.parametrize("name", with_fixtures(".csv"))
@PROPERTY
@given(data=st.data())
def test_mutated_csv_fixtures(name: str, data: st.DataObject) -> None:
    check(name, data.draw(mutated_csv(name)))


@pytest.mark.parametrize("name", [n for n in NAMES if all_fixtures(n)])
@PROPERTY
@given(data=st.data())
def test_mutated_fixture_bytes(name: str, data: st.DataObject) -> None:
    body = data.draw(st.sampled_from(all_fixtures(name)))
    check(name, data.draw(mutated_bytes(body)))


@PROPERTY
@given(data=st.data())
def test_join_fragments_takes_any_mix_of_stored_parts(data: st.DataObject) -> None:
    parts = []
    for body in fixtures("sms-gateway", ".json"):
        (outcome,) = SOURCES["sms-gateway"].normalize(
            RawMessage("sms-gateway", body, "application/json", RECEIVED)
        )
        if isinstance(outcome, Fragment):
            parts.append(outcome)
    assert parts
    chosen = data.draw(st.lists(st.sampled_from(parts), max_size=6))
    mixed = [
        Fragment(
            p.group_key,
            data.draw(st.integers(1, 4)) if data.draw(st.booleans()) else p.index,
            data.draw(st.integers(1, 4)) if data.draw(st.booleans()) else p.total,
            RawMessage(p.raw.source, data.draw(mutated_bytes(p.raw.body)), p.raw.content_type,
                       RECEIVED) if data.draw(st.booleans()) else p.raw,
        )
        for p in chosen
    ]
    check_outcomes("sms-gateway", join_fragments(mixed))
