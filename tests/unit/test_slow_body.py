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
    for port in range(19850, 19900):
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        sock.listen(8)  # a connection waits for the server to take it
        return sock
    raise RuntimeError("no free port in 19850-19899")


@pytest.mark.parametrize("path", ["web", "open311/requests.json"])
async def test_a_sender_trickling_its_body_is_not_kept_connected_after_the_408(
    driven: tuple[Hub, FakePublisher], monkeypatch: pytest.MonkeyPatch, path: str,
) -> None:
    # The 408 went out on a connection kept alive: a sender trickling a byte now and then
    # (slowloris) kept it open as long as it liked, the keep-alive timer reset by each byte.
    monkeypatch.setattr(asgi, "BODY_WITHIN_S", 0.3)
    service, _ = driven
    settings = Settings(ingress_open=True)
    apps = dict(http.routes(service, settings, lambda: asyncio.sleep(0, None)))
    sock = _listening()
    server = uvicorn.Server(uvicorn.Config(apps[f"/intake/{path}"], log_level="warning",
                                           lifespan="off", timeout_keep_alive=5))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        reader, writer = await asyncio.open_connection(*sock.getsockname())
        writer.write(f"POST /intake/{path} HTTP/1.1".encode() + b"\r\nHost: hub\r\n"
                     b"Content-Type: " + SOURCES["web"].content_types[0].encode() +
                     b"\r\nContent-Length: 1000\r\n\r\n{\"id\": \"slow-2\"")
        answer = await asyncio.wait_for(reader.read(65536), 5)
        assert answer.startswith(b"HTTP/1.1 408 ")
        closed = False
        for _ in range(15):  # a byte every 0.2 s, for 3 s: less than the keep-alive's 5 s
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
        assert closed, "the connection is still open, held by the trickling sender"
    finally:
        server.should_exit = True
        await serving
