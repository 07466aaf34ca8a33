from __future__ import annotations

import pytest
from pydantic import SecretStr

from hub.adapters import SOURCES
from hub.http import meta_verification
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


@pytest.mark.parametrize("source", ["sms-twilio", "whatsapp", "meta", "web"])
def test_a_credential_with_any_text_is_refused_not_a_server_error(
    settings: Settings, source: str,
) -> None:
    # compare_digest raised TypeError on non-ASCII text: a 500 and a traceback for anyone.
    headers = {"x-twilio-signature": "é", "x-hub-signature-256": "sha256=é",
               "authorization": "Bearer tökén"}
    assert refusal(settings, source, headers, BODY, URL) is not None


def test_meta_verification_with_any_token_text_is_refused() -> None:
    settings = Settings(meta_verify_token=SecretStr("vtok"))
    scope = {"query_string": b"hub.mode=subscribe&hub.verify_token=%C3%A9&hub.challenge=1"}
    assert meta_verification(scope, settings) == (403, b"verification failed")
    scope = {"query_string": b"hub.mode=subscribe&hub.verify_token=vtok&hub.challenge=1"}
    assert meta_verification(scope, settings) == (200, b"1")


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_credential_is_no_setting_the_hub_runs_with(blank: str) -> None:
    """HUB_INGRESS_TOKENS='{"web": ""}' (a token left out of a template) let in anyone who
    sent "Authorization: Bearer " – the source was open, not closed; a blank secret key
    sealed identities under a key everyone has. Each is refused at start, named."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="ingress_tokens"):
        Settings(ingress_tokens={"web": SecretStr(blank)})
    with pytest.raises(ValidationError, match="secret_key"):
        Settings(secret_key=SecretStr(blank))
    with pytest.raises(ValidationError, match="previous_secret_keys"):
        Settings(previous_secret_keys=[SecretStr("old"), SecretStr(blank)])
