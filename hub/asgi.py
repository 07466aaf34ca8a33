"""ASGI in a few lines: the types, a JSON (or bytes) answer, a bounded body, a header."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


BODY_WITHIN_S = 60.0
"""Longest a request's body may take to arrive: 256 KB at 2G's 20 KB/s takes 13 s. A
sender that declares a body and sends it slowly or never (slowloris) held a connection, and
its memory, for as long as it liked."""


class BodyRefusedError(Exception):
    """A request body not taken: the answer's `status` and `detail`. The answer ends the
    connection: kept alive, a sender streaming or trickling on held it still, each byte
    putting the keep-alive's timeout off again."""

    status: int

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TooLargeError(BodyRefusedError):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"body larger than {limit} bytes")


class TooSlowError(BodyRefusedError):
    status = 408

    def __init__(self) -> None:
        super().__init__(f"body not received within {BODY_WITHIN_S:.0f} s")


async def respond(
    send: Send, status: int, body: bytes | dict[str, Any] | list[Any],
    content_type: str = "application/json", *, close: bool = False,
) -> None:
    """`close`: the connection ends after the answer (`Connection: close`), as for an answer
    given before the request's body was whole."""
    data = json.dumps(body, ensure_ascii=False).encode() if isinstance(body, dict | list) else body
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(data))]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def read_body(receive: Receive, limit: int) -> bytes:
    """The request body, refusing to hold more than `limit` bytes or to wait for it longer
    than BODY_WITHIN_S."""
    try:
        async with asyncio.timeout(BODY_WITHIN_S):
            return await _body(receive, limit)
    except TimeoutError:
        raise TooSlowError() from None


async def _body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLargeError(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def header(scope: Scope, name: bytes) -> str:
    """A request header's value ("" when missing), as latin-1 text."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            text: str = value.decode("latin-1")
            return text
    return ""
