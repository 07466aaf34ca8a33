"""Open311 GeoReport v2 as its clients speak it, in front of the Open311 ingress.

A GeoReport client is given an endpoint (the hub's `/intake/open311`) and calls
`GET …/services.json` for the service list and `POST …/requests.json` to file a request,
with its key in the form field `api_key`, and reads the answers as the specification
writes them: a list of `service_request_id`s, or a list of `{code, description}` errors.
`GET …/requests.json?service_request_id=ID[,ID…]` tells a client where its requests stand.
The request itself goes through the same ingress as a POST to `/intake/open311` (the
source's bearer token is the `api_key`); the key is taken out of the bytes published.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.adapters.open311 import SERVICE_CATEGORIES, service_code, service_name
from hub.asgi import (
    ASGIApp,
    BodyRefusedError,
    Message,
    Receive,
    Scope,
    Send,
    read_body,
    respond,
)
from hub.followup import AUTO_CLOSE_REASON, NOTIFY
from hub.lifecycle import is_open
from hub.model import Complaint, Status
from hub.routing import Directory
from hub.store import ComplaintRow, HistoryRow, table_of

Lookup = Callable[[Sequence[str]], Awaitable[list[dict[str, Any]]]]
MAX_LOOKUP = 50

REQUESTS = "requests.json"
SERVICES = "services.json"
NOTICE = "Diterima oleh LAPOR!; gunakan nomor ini untuk melacak laporan."
"""The service notice of each accepted request: the number is the LAPOR! tracking id."""


def services_app() -> ASGIApp:
    """The services a request may name, each with the category the hub routes it by."""
    listed = [
        {"service_code": code, "service_name": service_name(code),
         "description": "", "metadata": False, "type": "realtime", "keywords": "",
         "group": category}
        for code, category in sorted(SERVICE_CATEGORIES.items())
    ]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await respond(send, 405, errors(405, "use GET"))
            return
        await respond(send, 200, listed)

    return app


def requests_app(ingress: ASGIApp, max_body: int, lookup: Lookup) -> ASGIApp:
    """POST requests.json: the Open311 ingress, its key and answers as GeoReport has them;
    GET requests.json?service_request_id=…: those requests as they stand."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in ("GET", "HEAD"):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            ids = [i.strip() for v in query.get("service_request_id", []) for i in v.split(",")]
            ids = [i for i in ids if i]
            if not ids:
                await respond(send, 400, errors(400, "service_request_id is required: the "
                                                "ids given when the requests were filed"))
                return
            if len(ids) > MAX_LOOKUP:
                await respond(send, 400, errors(400, f"at most {MAX_LOOKUP} ids at once"))
                return
            try:
                found = await lookup(ids)
            except Exception:  # the database away: the client may ask again
                await respond(send, 503, errors(503, "cannot look requests up now, retry later"))
                return
            await respond(send, 200, found)
            return
        if scope["method"] != "POST":
            await respond(send, 405, errors(405, "use GET or POST"))
            return
        try:
            body = await read_body(receive, max_body)
        except BodyRefusedError as exc:
            await respond(send, exc.status, errors(exc.status, exc.detail), close=True)
            return
        except ConnectionAbortedError:
            return
        # Not into the raw topic: whoever reads it would hold the sender's key.
        body, api_key = _without_key(body)
        headers = list(scope["headers"])
        if api_key is not None:
            headers = [(k, v) for k, v in headers if k.lower() != b"authorization"]
            headers.append((b"authorization", b"Bearer " + api_key.encode("latin-1", "replace")))
        status, answer = await _call(ingress, {**scope, "headers": headers}, body)
        if status in (200, 202) and answer.get("accepted"):
            await respond(send, 200, [
                {"service_request_id": tracking_id, "service_notice": NOTICE, "account_id": None}
                for tracking_id in answer["accepted"]
            ])
            return
        refused = "; ".join(f"{r['reason']}: {r['detail']}" for r in answer.get("rejected", []))
        code = {200: 400, 202: 400, 422: 400}.get(status, status)
        why = "bad or missing api_key" if status == 401 else answer.get("error") or refused
        await respond(send, code, errors(code, why or "not accepted"))

    return app


def _without_key(body: bytes) -> tuple[bytes, str | None]:
    """The form without its `api_key` field, every other byte as sent (the adapter judges
    them, encoding and all), and the key."""
    kept: list[bytes] = []
    key = None
    for field in body.split(b"&"):
        name, _, value = field.partition(b"=")
        if unquote_plus(name.decode("latin-1")) == "api_key":
            key = unquote_plus(value.decode("latin-1"), errors="replace")
        else:
            kept.append(field)
    return (body if key is None else b"&".join(kept)), key


def errors(code: int, description: str) -> list[dict[str, Any]]:
    return [{"code": code, "description": description}]


async def _call(app: ASGIApp, scope: Scope, body: bytes) -> tuple[int, dict[str, Any]]:
    """Run an ASGI app on a body already read; its status and JSON answer."""
    given = False
    answer: dict[str, Any] = {}

    async def receive() -> Message:
        nonlocal given
        if given:
            return {"type": "http.disconnect"}
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] = answer.get("body", b"") + message.get("body", b"")

    await app(scope, receive, send)
    parsed = json.loads(answer.get("body") or b"{}")
    return int(answer.get("status", 500)), parsed if isinstance(parsed, dict) else {}


def service_requests(
    conn: Connection, ids: Sequence[str], directory: Directory
) -> list[dict[str, Any]]:
    """The GeoReport view of the Open311 requests among `ids` (other channels' complaints
    are not shown here); a confidential one without its description and the answers, and
    each with the last note of those its citizen is notified of."""
    table: sa.Table = table_of(ComplaintRow)
    rows = conn.execute(sa.select(table).where(
        table.c.tracking_id.in_(set(ids)), table.c.source_system == "open311",
    )).all()
    # A request linked to an earlier complaint as its duplicate is answered with that one:
    # its citizen hears the original's agency and answers (its own row keeps neither).
    linked = {r.duplicate_of for r in rows if r.duplicate_of}
    originals = {r.tracking_id: r for r in conn.execute(
        sa.select(table).where(table.c.tracking_id.in_(linked))
    ).all()} if linked else {}
    history: sa.Table = table_of(HistoryRow)
    # The last message of each, and the last that is no auto-close of the watcher's: a reply
    # made before the close reopens the complaint (hub.followup), and its note then said
    # 'reporter_replied – Ditutup otomatis: tidak ada tanggapan pelapor'.
    notes: dict[str, str] = {}
    standing: dict[str, str] = {}
    for tracking_id, message, reason in conn.execute(
        sa.select(history.c.tracking_id, history.c.message, history.c.reason)
        .where(history.c.tracking_id.in_({r.tracking_id for r in rows} | linked),
               history.c.message.is_not(None),
               # What its citizen is told: a note between agencies (a disposition's
               # instruction, a decline) is not theirs to read.
               history.c.status.in_([status.value for status in NOTIFY]))
        # In the order applied, which the status follows: by their stamps, an answer from
        # an agency whose clock runs behind came before the note it answered.
        .order_by(history.c.id)
    ).all() if rows else ():
        notes[tracking_id] = message
        if reason != AUTO_CLOSE_REASON:
            standing[tracking_id] = message
    shown = []
    for row in sorted(rows, key=lambda r: ids.index(r.tracking_id)):
        complaint = Complaint.model_validate_json(row.document)
        held = originals.get(row.duplicate_of or "", row)
        agency = directory.get(held.agency_code)
        status = Status(held.status)
        note = (notes if status is Status.CLOSED else standing).get(held.tracking_id)
        where = complaint.location
        confidential = row.confidential or held.confidential
        shown.append({
            "service_request_id": row.tracking_id,
            "status": "open" if is_open(status) else "closed",
            "status_notes": status.value if confidential
            else " – ".join(n for n in (status.value, note) if n),
            "service_name": complaint.title,
            "service_code": service_code(complaint.title),
            "description": None if row.confidential else complaint.description,
            "agency_responsible": agency.name if agency else held.agency_code,
            "service_notice": NOTICE,
            "requested_datetime": row.received_at.isoformat(),
            "updated_datetime": row.updated_at.isoformat(),
            "expected_datetime": held.due_at.isoformat() if held.due_at else None,
            "address": where.address,
            "address_id": None,
            "zipcode": None,
            "lat": where.latitude,
            "long": where.longitude,
            "media_url": complaint.attachments[0].url if complaint.attachments else None,
        })
    return shown
