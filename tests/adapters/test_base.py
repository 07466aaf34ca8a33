"""Helpers the adapters share."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.adapters.base import (
    RawMessage,
    RejectedError,
    Rejection,
    e164_phone,
    entry_outcome,
    parse_form,
    parse_json_object,
    status_from,
)
from hub.model import Status

RECEIVED = datetime(2024, 5, 2, 1, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("081234567890", "+6281234567890"),
        ("6281234567890", "+6281234567890"),
        ("62215551234", "+62215551234"),
        ("62 21 8801234", "+62218801234"),
        ("0622 123456", "+62622123456"),
        ("621 2354257", "+626212354257"),  # no number with 62 as the country code: 0621 area
        ("+62 812-3456-7890", "+6281234567890"),
        ("(021) 5551234", "+62215551234"),
        ("006281234567890", "+6281234567890"),
        ("0062 812-3456-7890", "+6281234567890"),
        ("0062-21-5551234", "+62215551234"),
        ("009 1 212 555 0100", "+12125550100"),  # 009: an Indonesian dialling prefix
        ("+14155550100", "+14155550100"),
        ("1708", None),
        ("TELKOMSEL", None),
        ("", None),
        (None, None),
    ],
)
def test_e164_phone(text: str | None, expected: str | None) -> None:
    assert e164_phone(text) == expected


def test_parse_form_keeps_repeated_fields_and_refuses_non_forms() -> None:
    raw = RawMessage("t", b"a=1&b=x%20y&a=2&c=", "application/x-www-form-urlencoded", RECEIVED)
    assert parse_form(raw) == {"a": ["1", "2"], "b": ["x y"], "c": [""]}
    with pytest.raises(RejectedError, match="not a form"):
        parse_form(RawMessage("t", b"just text", "application/x-www-form-urlencoded", RECEIVED))


def test_over_long_integer_literals_are_invalid_json_not_a_crash() -> None:
    raw = RawMessage("t", b'{"id": ' + b"9" * 5000 + b"}", "application/json", RECEIVED)
    with pytest.raises(RejectedError) as caught:
        parse_json_object(raw)
    assert caught.value.reason == "invalid_json"


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_invalid_json_not_text(constant: bytes) -> None:
    # `{"isi": NaN}` became the complaint "nan".
    raw = RawMessage("t", b'{"isi": ' + constant + b"}", "application/json", RECEIVED)
    with pytest.raises(RejectedError) as caught:
        parse_json_object(raw)
    assert (caught.value.reason, str(caught.value)) == (
        "invalid_json", f"body is not JSON: {constant.decode()} is not a JSON value")


@pytest.mark.parametrize("body", [
    b'{"id": "\xed\xa0\x80801234567890123"}',  # a surrogate written as UTF-8 bytes
    b'{"id": "\\ud800801234567890123"}',  # one escaped, without its pair
])
def test_a_lone_surrogate_is_refused_not_a_crash_downstream(body: bytes) -> None:
    # Python reads it into the text; hashing the id for the tracking id then raised.
    with pytest.raises(RejectedError) as caught:
        parse_json_object(RawMessage("t", body, "application/json", RECEIVED))
    assert caught.value.reason == "invalid_encoding"


def test_an_escaped_surrogate_pair_is_a_character() -> None:
    raw = RawMessage("t", b'{"isi": "banjir \\ud83c\\udf0a"}', "application/json", RECEIVED)
    assert parse_json_object(raw) == {"isi": "banjir \U0001f30a"}


def test_status_from_ignores_case_and_spacing_and_refuses_unknown_words() -> None:
    words = {"Proses OPD Terkait": Status.IN_PROGRESS}
    assert status_from(words, " proses  opd terkait ", "status") is Status.IN_PROGRESS
    assert status_from(words, None, "status") is None
    with pytest.raises(RejectedError, match="unknown status"):
        status_from(words, "Ditolak", "status")


def test_entry_outcome_keeps_the_entry_id_on_refusal() -> None:
    def refuse() -> Rejection:
        raise RejectedError("missing_field", "text is required")

    assert entry_outcome("m-1", refuse) == Rejection("missing_field", "text is required", "m-1")
