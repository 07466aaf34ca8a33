"""Encryption at rest for what identifies a citizen (name, NIK, phone, e-mail, handle).

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under a key derived from
HUB_SECRET_KEY. Previous keys (HUB_PREVIOUS_SECRET_KEYS) still open old rows, so a key
can be rotated without rewriting the database at once.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from hub.settings import Settings


def _fernet(secret: bytes) -> Fernet:
    digest = hashlib.sha256(b"lapor-hub identity at rest\x00" + secret).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class SealError(ValueError):
    """Sealed data that no configured key opens."""


class Sealer:
    def __init__(self, secret: bytes, previous: Sequence[bytes] = ()) -> None:
        self._keys = MultiFernet([_fernet(secret), *(_fernet(p) for p in previous)])

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealer:
        return cls(
            settings.secret_key.get_secret_value().encode(),
            [k.get_secret_value().encode() for k in settings.previous_secret_keys],
        )

    def seal(self, data: bytes) -> bytes:
        return self._keys.encrypt(data)

    def open(self, token: bytes) -> bytes:
        try:
            return self._keys.decrypt(token)
        except InvalidToken as exc:
            raise SealError("sealed with a key that is not configured") from exc
