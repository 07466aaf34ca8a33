from __future__ import annotations

import pytest
from pydantic import SecretStr

from hub.adapters import SOURCES
from hub.ingress_auth import credentials, refusal
from hub.settings import Settings

URL = "https://hub.example.go.id/intake/x"
BODY = b"MessageSid=SM1&Body=halo&From=%2B6281"


@pytest.fixture
def settings() -> Settings:
    return Settings(
        ingress_tokens={s: SecretStr(f"token-{s}") for s in SOURCES},
        twilio_auth_token=SecretStr("twilio"),
        meta_app_secret=SecretStr("meta"),
    )


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_our_own_clients_pass_and_strangers_do_not(settings: Settings, source: str) -> None:
    headers = credentials(settings, source, URL, BODY)
    assert refusal(settings, source, headers, BODY, URL) is None
    assert refusal(settings, source, {}, BODY, URL) is not None
    assert refusal(settings, source, headers, BODY + b"x", URL + "?") is not None or (
        "authorization" in headers  # a bearer token does not cover the body
    )


def test_closed_unless_opened() -> None:
    assert refusal(Settings(), "web", {}, b"", URL) == "no credential configured for source 'web'"
    assert refusal(Settings(ingress_open=True), "web", {}, b"", URL) is None
