"""A body that is declared and then sent slowly or never is answered 408, not waited for."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import MutableMapping
from typing import Any

import pytest
import uvicorn

from hub import asgi, http
from hub.adapters import SOURCES
from hub.asgi import ASGIApp
from hub.service import Hub
from hub.settings import Settings
from tests.support import FakePublisher


@pytest.mark.parametrize("path", ["web", "open311/requests.json"])
async def test_a_body_that_never_comes_whole_is_answered_408(
    driven: tuple[Hub, FakePublisher], monkeypatch: pytest.MonkeyPatch, path: str,
) -> None:
    # 200 requests declaring 1,000 bytes and sending a few were all still open 75 s on: a
    # sender could hold connections, and their memory, for as long as it liked.
    monkeypatch.setattr(asgi, "BODY_WITHIN_S", 0.2, raising=False)
    service, publisher = driven
    settings = Settings(ingress_open=True)
    apps = dict(http.routes(service, settings, lambda: asyncio.sleep(0, None)))
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b'{"id": "slow-1", "isi": "Jal',
                    "more_body": True}
        await asyncio.Event().wait()  # the rest never comes
        raise AssertionError

    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": f"/intake/{path}", "query_string": b"",
             "headers": [(b"content-type", SOURCES["web"].content_types[0].encode()),
                         (b"content-length", b"1000")]}
    await asyncio.wait_for(apps[f"/intake/{path}"](scope, receive, send), 5)
    assert sent[0]["status"] == 408
    assert "within" in json.dumps(json.loads(sent[1]["body"]))
    assert not publisher.sent


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # a free port
    sock.listen(8)  # a connection waits for the server to take it
    return sock


async def closed_after_answer(app: ASGIApp, path: str, length: int, first: bytes,
                              ) -> tuple[bytes, bool]:
    """Post to `app` under uvicorn, declaring `length` bytes and sending `first`, then a byte
    every 0.2 s for 3 s (less than the keep-alive's 5 s): the answer, and whether the
    connection ended after it."""
    sock = _listening()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                           timeout_keep_alive=5))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        reader, writer = await asyncio.open_connection(*sock.getsockname())
        writer.write(f"POST /intake/{path} HTTP/1.1\r\nHost: hub\r\nContent-Type: "
                     f"{SOURCES['web'].content_types[0]}\r\nContent-Length: {length}\r\n\r\n"
                     .encode() + first)
        answer = await asyncio.wait_for(reader.read(65536), 5)
        closed = False
        for _ in range(15):
            with contextlib.suppress(ConnectionError):
                writer.write(b" ")
                await writer.drain()
            try:
                closed = await asyncio.wait_for(reader.read(65536), 0.2) == b""
            except TimeoutError:
                continue
            if closed:
                break
        writer.close()
        return answer, closed
    finally:
        server.should_exit = True
        await serving


@pytest.mark.parametrize("path", ["web", "open311/requests.json"])
async def test_a_sender_trickling_its_body_is_not_kept_connected_after_the_408(
    driven: tuple[Hub, FakePublisher], monkeypatch: pytest.MonkeyPatch, path: str,
) -> None:
    # The 408 went out on a connection kept alive: a sender trickling a byte now and then
    # (slowloris) kept it open as long as it liked, the keep-alive timer reset by each byte.
    monkeypatch.setattr(asgi, "BODY_WITHIN_S", 0.3)
    service, _ = driven
    apps = dict(http.routes(service, Settings(ingress_open=True),
                            lambda: asyncio.sleep(0, None)))
    answer, closed = await closed_after_answer(apps[f"/intake/{path}"], path, 1000,
                                               b'{"id": "slow-2"')
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert closed, "the connection is still open, held by the trickling sender"


@pytest.mark.parametrize("path", ["web", "open311/requests.json"])
@pytest.mark.parametrize("declared", [5_000_000, 3_000])
async def test_a_sender_streaming_past_the_limit_is_not_kept_connected_after_the_413(
    driven: tuple[Hub, FakePublisher], path: str, declared: int,
) -> None:
    # Declared too large, or growing past the limit: the 413 kept the connection alive, and
    # the sender streamed on into it as long as it liked.
    service, _ = driven
    apps = dict(http.routes(service, Settings(ingress_open=True, max_body_bytes=2_000),
                            lambda: asyncio.sleep(0, None)))
    answer, closed = await closed_after_answer(apps[f"/intake/{path}"], path, declared,
                                               b"x" * 2_500)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert closed, "the connection is still open, held by the streaming sender"
