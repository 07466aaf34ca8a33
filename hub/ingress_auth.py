"""Who may post to the ingress: each source proves itself, or is turned away.

- Twilio signs each webhook: `X-Twilio-Signature` = base64(HMAC-SHA1(auth token,
  URL + every form field name and value, sorted by name)).
- Meta (Facebook, Instagram, WhatsApp) signs the body: `X-Hub-Signature-256` =
  "sha256=" + hex(HMAC-SHA256(app secret, body)).
- Every other source sends `Authorization: Bearer <token>`, one token per source.

A source with no credential configured is refused unless HUB_INGRESS_OPEN is set
(development only), so a forgotten setting fails closed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl

from hub.settings import Settings

META_SOURCES = frozenset({"meta", "whatsapp"})


def same(given: str, expected: str) -> bool:
    """Constant-time comparison of a credential sent with ours; any text may be sent
    (compare_digest refuses str with non-ASCII characters: a 500 for anyone who tried)."""
    return hmac.compare_digest(given.encode(errors="replace"), expected.encode())


def _twilio_signature(token: str, url: str, body: bytes) -> str:
    params = sorted(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    payload = url + "".join(k + v for k, v in params)
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _meta_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def refusal(
    settings: Settings, source: str, headers: dict[str, str], body: bytes, url: str
) -> str | None:
    """None when the request is authentic; otherwise why it is not (for a 401)."""
    if source == "sms-twilio" and settings.twilio_auth_token:
        expected = _twilio_signature(settings.twilio_auth_token.get_secret_value(), url, body)
        given = headers.get("x-twilio-signature", "")
        return None if same(given, expected) else "bad or missing X-Twilio-Signature"
    if source in META_SOURCES and settings.meta_app_secret:
        expected = _meta_signature(settings.meta_app_secret.get_secret_value(), body)
        given = headers.get("x-hub-signature-256", "")
        if same(given, expected):
            return None
        return "bad or missing X-Hub-Signature-256"
    token = settings.ingress_tokens.get(source)
    if token is not None:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and same(given.strip(), token.get_secret_value()):
            return None
        return "bad or missing bearer token"
    if settings.ingress_open:
        return None
    return f"no credential configured for source {source!r}"


def credentials(settings: Settings, source: str, url: str, body: bytes) -> dict[str, str]:
    """The headers an authentic sender adds, for our own clients (simulator, demo)."""
    if source == "sms-twilio" and settings.twilio_auth_token:
        token = settings.twilio_auth_token.get_secret_value()
        return {"x-twilio-signature": _twilio_signature(token, url, body)}
    if source in META_SOURCES and settings.meta_app_secret:
        secret = settings.meta_app_secret.get_secret_value()
        return {"x-hub-signature-256": _meta_signature(secret, body)}
    bearer = settings.ingress_tokens.get(source)
    return {"authorization": f"Bearer {bearer.get_secret_value()}"} if bearer else {}
