"""A body that is declared and then sent slowly or never is answered 408, not waited for."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest

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
