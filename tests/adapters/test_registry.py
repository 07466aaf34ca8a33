"""The SOURCES registry: names, channel families, content types."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.adapters import SOURCES, RawMessage, find_source
from hub.adapters.provincial import DIALECTS
from hub.model import Complaint

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def test_sources_channels_and_content_types() -> None:
    expected = {
        "sms-twilio": ("sms", (FORM,)),
        "sms-gateway": ("sms", (JSON,)),
        "x": ("x", (JSON,)),
        "meta": ("meta", (JSON,)),
        "whatsapp": ("whatsapp", (JSON,)),
        "open311": ("open311", (FORM,)),
        "prov-jakarta": ("provincial", (JSON,)),
        "prov-jateng": ("provincial", ("text/csv",)),
    }
    for name, (channel, content_types) in expected.items():
        assert (SOURCES[name].channel, SOURCES[name].content_types) == (channel, content_types)


def test_twilio_is_the_sms_default_and_the_gateway_a_variant() -> None:
    assert find_source("sms").name == "sms-twilio"
    assert find_source("sms", "gateway").name == "sms-gateway"


def test_every_dialect_is_a_provincial_source() -> None:
    for name, dialect in DIALECTS.items():
        assert SOURCES[name].channel == "provincial"
        assert (SOURCES[name].content_types, SOURCES[name].description) == (
            dialect.content_types, dialect.description)


def test_a_source_name_is_taken_for_a_channel_and_an_unknown_one_lists_both() -> None:
    # `normalize --channel sms-twilio` (the name /intake/<source> uses) said "unknown channel".
    assert find_source("sms-twilio").name == "sms-twilio"
    assert find_source("prov-jakarta").name == "prov-jakarta"
    assert find_source("sms-twilio", "twilio").name == "sms-twilio"
    with pytest.raises(KeyError, match="is a source already"):
        find_source("sms-twilio", "gateway")
    with pytest.raises(KeyError, match=r"unknown channel 'prov'; channels: .*provincial.*; "
                       r"sources: .*prov-jakarta"):
        find_source("prov", "jakarta")


def test_a_message_without_a_place_gets_the_regency_its_text_names() -> None:
    # SMS, WhatsApp and Meta carry no place field: all went to the national admin, though
    # the citizen wrote "Kota Bekasi".
    fixtures = Path(__file__).parents[1] / "fixtures"
    for source, name, content_type in [
        ("whatsapp", "whatsapp/text_message.json", "application/json"),
        ("sms-twilio", "sms-twilio/inbound_sms.urlencoded", "application/x-www-form-urlencoded"),
    ]:
        raw = RawMessage(source, (fixtures / name).read_bytes(), content_type,
                         datetime.now(UTC))
        (found,) = SOURCES[source].normalize(raw)
        assert isinstance(found, Complaint)
        assert "Kota Bekasi" in found.description
        assert (found.location.region_code, found.location.region_name) == (
            "32.75", "Kota Bekasi")
