"""Helpers the adapters share."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.adapters.base import (
    RawMessage,
    RejectedError,
    Rejection,
    _e164,
    _e164_parsed,
    as_flag,
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


written_phones = st.builds(
    lambda *parts: "".join(parts),
    st.lists(st.sampled_from(["+62", "62", "0", "(", ")", " ", "-", ".", "+"]), max_size=3)
    .map("".join),
    st.lists(st.sampled_from("8" * 8 + "0123456789"), min_size=6, max_size=15).map("".join),
    st.lists(st.sampled_from(["", " ", "-", ".", ")"]), max_size=2).map("".join),
    st.text("0123456789 -", max_size=5),
)

mobile_like = st.builds(
    lambda prefix, digits, cuts, sep: prefix + sep.join(
        digits[a:b] for a, b in zip([0, *cuts], [*cuts, None], strict=True)),
    st.sampled_from(["+62", "0", "62", "(0", "+62 ", "(+62) ", "0 ", ""]),
    st.from_regex(r"8[0-9]\d{6,11}", fullmatch=True),
    st.lists(st.integers(1, 12), max_size=3, unique=True).map(sorted),
    st.sampled_from(["", " ", "-", ".", ") "]),
)


@settings(max_examples=3000, deadline=None)
@given(written_phones | mobile_like)
def test_reading_a_mobile_number_by_the_library_s_patterns_answers_as_parsing_it(
    text: str,
) -> None:
    # The fast reading of plain mobile numbers must not change any answer the library gives.
    assert _e164(text) == _e164_parsed(text)


@pytest.mark.parametrize("text", [
    "081234567890", "+6281234567890", "0812-3456-789", "(+62) 812 3456 7890",
    "08123456", "0812345678901234", "0800123456", "+62 21 5551234", "0 812 3456 7890",
])
def test_mobile_numbers_read_fast_answer_as_parsed(text: str) -> None:
    assert _e164(text) == _e164_parsed(text)


@pytest.mark.parametrize("body", [
    b"a=1&b=x+y&", b"a=1&&b=x+y", b"&a=1&b=x+y&flag", b"a=1&b=x%20y&flag=",
])
def test_a_form_with_empty_fields_or_a_bare_name_is_read_as_browsers_read_it(body: bytes) -> None:
    # A trailing `&` or a doubled one refused the whole form (an Open311 report, a Twilio SMS).
    form = parse_form(RawMessage("t", body, "application/x-www-form-urlencoded", RECEIVED))
    assert (form["a"], form["b"], form.get("flag", [""])) == (["1"], ["x y"], [""])


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
    # The same escape in JSON written in UTF-16 or UTF-32: a 500 at the ingress.
    '{"id": "\\ud800801234567890123"}'.encode("utf-16"),
    '{"id": "\\ud800801234567890123"}'.encode("utf-32-le"),
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


@pytest.mark.parametrize(("word", "meant"), [
    ("ya", True), ("Iya", True), ("y", True), ("tidak", False), ("Tdk", False), ("", False),
])
def test_yes_and_no_as_indonesian_forms_write_them(word: str, meant: bool) -> None:
    # "iya" (the everyday "ya") refused the whole complaint: "anonim must be a yes/no flag".
    assert as_flag(word, "anonim") is meant
