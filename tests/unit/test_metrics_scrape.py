"""A scrape of /metrics does not hold up the event loop the consumers run on."""

from __future__ import annotations

import threading
from collections.abc import MutableMapping
from typing import Any

import pytest
from prometheus_client import generate_latest

from hub import http


async def test_the_scrape_is_written_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # With 1,000 agencies' series the text takes about half a second to write (measured
    # with `generate_latest` alone): on the loop, every consumer, heartbeat and ingress
    # request stood still for it at each scrape.
    loop_thread = threading.current_thread()
    wrote_on: list[threading.Thread] = []

    def writing(registry: Any) -> bytes:
        wrote_on.append(threading.current_thread())
        return generate_latest(registry)

    monkeypatch.setattr(http, "generate_latest", writing)
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await http.metrics_app()({"type": "http", "method": "GET", "path": "/metrics"},
                             receive, send)
    assert sent[0]["status"] == 200
    assert b"lapor_ready" in b"".join(m.get("body", b"") for m in sent)
    assert wrote_on and wrote_on[0] is not loop_thread
