"""The hub's HTTP side: `/intake/<source>` ingress (and Open311's GeoReport v2 face,
hub.georeport), `/metrics`, `/healthz`, `/readyz`.

Plain ASGI callables served beside the broker by FastStream's `AsgiFastStream`.
The ingress checks what it can cheaply (method, content type, size, that the body
normalizes), publishes the vendor's bytes unchanged to the source's raw topic and
answers 202 with the tracking ids; the intake consumer does the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub import georeport, metrics, topics
from hub.adapters import SOURCES, RawMessage, Rejection, Source
from hub.asgi import (
    ASGIApp,
    BodyRefusedError,
    Message,
    Receive,
    Scope,
    Send,
    TooLargeError,
    header,
    read_body,
    respond,
)
from hub.ingress_auth import META_SOURCES, refusal, same
from hub.intake import RECEIVED_AT
from hub.model import Complaint
from hub.service import Hub
from hub.settings import Settings
from hub.store import Pending

log = logging.getLogger("hub.http")


def meta_verification(scope: Scope, settings: Settings) -> tuple[int, bytes]:
    """Meta's webhook handshake: echo hub.challenge when hub.verify_token is ours."""
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    token = settings.meta_verify_token
    if (
        query.get("hub.mode") == "subscribe"
        and token is not None
        and same(query.get("hub.verify_token", ""), token.get_secret_value())
    ):
        return 200, query.get("hub.challenge", "").encode()
    return 403, b"verification failed"


def request_url(scope: Scope, settings: Settings) -> str:
    """The URL the vendor called, as it signed it: with its query string, which Twilio
    signs too (a webhook configured as …/intake/sms-twilio?region=32 was refused)."""
    query = scope.get("query_string", b"").decode("latin-1")
    path = str(scope["path"]) + (f"?{query}" if query else "")
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/") + path
    host = header(scope, b"host") or "localhost"
    return f"{scope.get('scheme', 'http')}://{host}{path}"


EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
"""Twilio's answer to an inbound SMS: TwiML that sends no reply. Twilio reads JSON as an
error (12300 Invalid Content-Type, for every citizen's SMS); a client that asks for
`application/json` gets the tracking ids as from every other source."""


def ingress(source: Source, hub: Hub, settings: Settings) -> ASGIApp:
    topic = topics.raw(source.name)
    max_body = settings.max_body_bytes
    # Meta retries any webhook answered with another status than 200, for a day.
    accepted_status = 200 if source.name in META_SOURCES else 202

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "GET" and source.name in META_SOURCES:
            status, text = meta_verification(scope, settings)
            await respond(send, status, text, "text/plain")
            return
        if scope["method"] != "POST":
            await respond(send, 405, {"error": "use POST"})
            return
        content_type = header(scope, b"content-type").split(";")[0].strip().lower()
        if content_type not in source.content_types:
            await respond(
                send, 415,
                {"error": f"content type {content_type or 'missing'!r} not accepted; "
                          f"send {' or '.join(source.content_types)}"},
            )
            return
        declared = header(scope, b"content-length")
        try:
            if declared.isdigit() and int(declared) > max_body:
                raise TooLargeError(max_body)
            body = await read_body(receive, max_body)
        except BodyRefusedError as exc:
            await respond(send, exc.status, {"error": exc.detail}, close=True)
            return
        except ConnectionAbortedError:
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        why = refusal(settings, source.name, headers, body, request_url(scope, settings))
        if why is not None:
            await respond(send, 401, {"error": why})
            return
        # No envelope id: a payload without its own id is identified by its bytes, so a
        # sender retrying after a 503 or a timeout does not make a second complaint.
        raw = RawMessage(
            source=source.name,
            body=body,
            content_type=content_type,
            received_at=datetime.now(UTC),
        )
        outcomes = source.normalize(raw)
        accepted = [o.tracking_id for o in outcomes if isinstance(o, Complaint)]
        rejected = [
            # The entry's id where it has one: which row of an export, which message.
            {"reason": o.reason, "detail": o.detail}
            | ({"id": o.source_message_id} if o.source_message_id else {})
            for o in outcomes
            if isinstance(o, Rejection)
        ]
        twiml = source.name == "sms-twilio" and "application/json" not in header(scope, b"accept")
        if all(isinstance(o, Rejection) for o in outcomes):
            ignorable = all(r["reason"] == "not_a_complaint" for r in rejected)
            # Webhook vendors also send events that are no complaint (read receipts);
            # a 4xx would make them retry, so those get 200 and the reason. A relayed
            # message refused goes on to become a dead letter: nobody would see a 422.
            if ignorable or not source.relays:
                await answer(send, 200 if ignorable else 422,
                             {"accepted": [], "rejected": rejected}, twiml=twiml)
                return
        envelope = {
            "content-type": content_type,
            RECEIVED_AT: raw.received_at.isoformat(),
        }
        pending = Pending(0, topic, raw.fallback_message_id(), body, envelope)
        try:
            await asyncio.wait_for(hub.publisher.send([pending]), timeout=10)
        except Exception as exc:
            log.warning("ingress %s: broker unavailable: %s", source.name, exc)
            await respond(send, 503, {"error": "broker unavailable, retry later"})
            return
        await answer(send, accepted_status, {"accepted": accepted, "rejected": rejected},
                     twiml=twiml)

    return counted(source.name, app, accepted_status)


def counted(source: str, app: ASGIApp, accepted_status: int) -> ASGIApp:
    """`app` with each answer counted by source and status: refusals leave nothing else
    behind (no complaint, no dead letter, no log line), so a sender refused wholesale – a
    token or signing secret changed on one side only – was seen nowhere."""
    for status in (accepted_status, 401):  # at zero from the start: increase() sees the first
        metrics.ingress_answers.labels(source, str(status))

    async def app_counted(scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                metrics.ingress_answers.labels(source, str(message["status"])).inc()
            await send(message)

        await app(scope, receive, sending)

    return app_counted


async def answer(send: Send, status: int, body: dict[str, Any], *, twiml: bool) -> None:
    """The ingress's answer; for Twilio a success is EMPTY_TWIML, all it reads."""
    if twiml and status < 300:
        await respond(send, status, EMPTY_TWIML, "text/xml")
    else:
        await respond(send, status, body)


def metrics_app() -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # Off the event loop: with 1,000 agencies the text takes about half a second to
        # write, and the consumers, their heartbeats and the ingress stood still for it at
        # every scrape.
        body = await asyncio.to_thread(generate_latest, metrics.REGISTRY)
        await respond(send, 200, body, CONTENT_TYPE_LATEST)

    return app


def healthz() -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 200, {"status": "alive"})

    return app


async def readiness(
    hub: Hub, broker_problem: Callable[[], Awaitable[str | None]]
) -> dict[str, str]:
    """What keeps the hub from being ready, checked now (none: ready), also set as the
    `lapor_ready` gauge: the database and the broker answer, the topics exist, the consumers
    have joined their groups, and the last attempts of the hub's own work met no outage."""

    def ping_db() -> None:
        with hub.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    problems: dict[str, str] = dict(hub.health.problems)
    try:
        await asyncio.wait_for(asyncio.to_thread(ping_db), timeout=3)
    except Exception as exc:
        problems["database"] = f"{type(exc).__name__}: {exc}"[:300]
    try:
        problem = await asyncio.wait_for(broker_problem(), timeout=3)
        if problem:
            problems["broker"] = problem
        else:
            # A broker that answers may still have lost our topics (the embedded one
            # keeps them in memory); until the publisher re-creates them we are not ready.
            missing = await asyncio.wait_for(hub.publisher.missing_topics(), timeout=3)
            if missing:
                problems["broker"] = (
                    f"{len(missing)} topics missing, being re-created: "
                    + ", ".join(sorted(missing)[:5])
                )[:300]
    except Exception as exc:
        problems["broker"] = f"{type(exc).__name__}: {exc}"[:300]
    metrics.ready.set(0 if problems else 1)
    return problems


def readyz(hub: Hub, broker_problem: Callable[[], Awaitable[str | None]]) -> ASGIApp:
    """200 when `readiness` finds nothing, else 503 with what it found."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        problems = await readiness(hub, broker_problem)
        if problems:
            await respond(send, 503, {"status": "not ready", "problems": problems})
        else:
            await respond(send, 200, {"status": "ready"})

    return app


INTAKE = "/intake/"


async def not_found(path: str, send: Send, served: Sequence[str]) -> None:
    """A path the hub does not serve: say which it does, from the paths it serves (a
    source's name mistyped, most likely), not FastStream's "Application doesn't support
    regular HTTP protocol"."""
    ingresses = [p for p in served if p.startswith(INTAKE) and "/" not in p.removeprefix(INTAKE)]
    others = [f"{'GET, POST' if p.endswith(georeport.REQUESTS) else 'GET'} {p}"
              for p in served if p not in ingresses]
    await respond(send, 404, {
        "error": f"no such path: {path[:200]}",
        "paths": [f"POST {INTAKE}<source>"] * bool(ingresses) + others,
        "sources": sorted(p.removeprefix(INTAKE) for p in ingresses),
    })


def _service_requests(hub: Hub, ids: Sequence[str]) -> list[dict[str, Any]]:
    with hub.engine.connect() as conn:
        return georeport.service_requests(conn, ids, hub.rules.directory)


def routes(
    hub: Hub, settings: Settings, broker_problem: Callable[[], Awaitable[str | None]]
) -> list[tuple[str, ASGIApp]]:
    ingresses = {name: ingress(source, hub, settings) for name, source in SOURCES.items()}
    found: list[tuple[str, ASGIApp]] = [(f"{INTAKE}{name}", app) for name, app in ingresses.items()]
    # Open311's endpoint for GeoReport v2 clients is the source's own path.
    open311 = f"{INTAKE}open311"
    found += [
        (f"{open311}/{georeport.SERVICES}", georeport.services_app()),
        (f"{open311}/{georeport.REQUESTS}",
         georeport.requests_app(ingresses["open311"], settings.max_body_bytes,
                                lambda ids: asyncio.to_thread(_service_requests, hub, ids))),
    ]
    found += [
        ("/metrics", metrics_app()),
        ("/healthz", healthz()),
        ("/readyz", readyz(hub, broker_problem)),
    ]
    return found
