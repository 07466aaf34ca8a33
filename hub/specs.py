"""The contract files in `schemas/`: JSON Schema of each event and the AsyncAPI document.

`lapor-hub schemas` writes them; a test fails when the checked-in files drift.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from hub import topics
from hub.model import (
    Complaint,
    DeadLetter,
    DuplicateEvent,
    EscalationEvent,
    FollowUpEvent,
    Notification,
    RoutingEvent,
    TakenEvent,
)
from hub.settings import Settings

MODELS: dict[str, type[BaseModel]] = {
    "complaint": Complaint,
    "routing-event": RoutingEvent,
    "duplicate-event": DuplicateEvent,
    "escalation-event": EscalationEvent,
    "taken-event": TakenEvent,
    "follow-up-event": FollowUpEvent,
    "notification": Notification,
    "dead-letter": DeadLetter,
}

AGENCY_EVENTS = (RoutingEvent, EscalationEvent, DuplicateEvent, TakenEvent)
"""What the hub writes on an agency's topic (field `type`)."""

_TEXT = {"type": "string"}
_EVENT_ID = {"type": "string", "description": "The event's event_id, for idempotent readers."}
_REPLAY = {"type": "string", "description": "Set by `lapor-hub dlq replay`: the dead letter's id."}
HEADERS: dict[str, dict[str, Any]] = {
    "routing": {
        "event-id": _EVENT_ID,
        "event-type": {"enum": ["routing", "escalation", "duplicate", "taken"],
                       "description": "Which of the four events the record holds."},
        "content-type": _TEXT,
    },
    "notification": {"event-id": _EVENT_ID, "content-type": _TEXT},
    "dead-letter": {"reason": {"type": "string", "description": "The dead letter's reason."},
                    "content-type": _TEXT},
    "follow-up": {"content-type": _TEXT, "hub-replay-of": _REPLAY},
    "intake": {
        "content-type": {"type": "string", "description": "The payload's media type."},
        "hub-message-id": {"type": "string", "description": "The sender's own id, used when "
                           "the payload carries none (re-sending it is harmless)."},
        "hub-received-at": {"type": "string", "format": "date-time",
                            "description": "When the HTTP ingress took it."},
        "hub-replay-of": _REPLAY,
    },
    "retry": {
        "hub-attempt": {"type": "string", "description": "Attempts so far, a number."},
        "hub-not-before": {"type": "string", "format": "date-time"},
        "hub-original-topic": _TEXT,
        "hub-original-place": {"type": "string", "description": "partition:offset:time of "
                               "the record as it first came (its dead letter names it)."},
        "hub-retry-reason": _TEXT,
    },
}
"""The headers each channel's records carry (their own beside them on intake and retry)."""

RAW = {"type": "string", "format": "binary",
       "description": "The source's own payload as its vendor sends it (README: Sources)."}


def document_publishers(broker: KafkaBroker) -> None:
    """Declare what the hub publishes, for the AsyncAPI document only.

    The hub sends through its batched outbox producer, not these publishers.
    """
    broker.publisher(
        topics.agency("{agency}"), schema=RoutingEvent, title="routing",
        description="One topic per agency: the complaints it now holds, keyed by tracking id "
        "(and those taken from it, the escalations it receives, new reports of its complaints).",
    )
    broker.publisher(
        topics.DEAD_LETTER, schema=DeadLetter, title="dead-letter",
        description="What could never succeed as sent, with the reason and original bytes.",
    )
    broker.publisher(
        topics.NOTIFICATION, schema=Notification, title="notification",
        description="What each citizen should hear of their complaint, keyed by tracking id, "
        "for the channel adapters to send back by the door it came in.",
    )


def asyncapi_document() -> str:
    from hub.app import build

    # The contract names the development broker, whatever broker this shell points at.
    bootstrap = Settings.model_fields["kafka_bootstrap"].default
    app, _ = build(Settings(database_url="sqlite://", kafka_bootstrap=bootstrap))
    spec = AsyncAPI(
        *app.brokers, title="LAPOR Hub", version="1", schema_version="3.0.0",
        description="Topics of the SP4N-LAPOR! integration hub.",
    )
    document = _complete(spec.to_specification().to_jsonable())
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _complete(doc: dict[str, Any]) -> dict[str, Any]:
    """What FastStream's generator cannot say: the agency topics carry four events, the
    batch subscribers read one event (follow-ups) or bytes (raw, retry) a record, the headers,
    the `{agency}` parameter, and the retry topic being written too."""
    schemas = doc["components"]["schemas"]
    for model in (*AGENCY_EVENTS, FollowUpEvent):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    for name in [n for n in schemas if n.endswith(":Message:Payload")]:
        del schemas[name]
    payloads = {
        "routing": {"oneOf": [{"$ref": f"#/components/schemas/{m.__name__}"}
                              for m in AGENCY_EVENTS]},
        "follow-up": {"$ref": "#/components/schemas/FollowUpEvent"},
        "intake": RAW,
        "retry": {**RAW, "description": "A record of a raw topic or of lapor.followup that "
                  "failed for an unknown reason, as it came."},
    }
    for name, message in doc["components"]["messages"].items():
        channel = name.split(":")[0]
        message.pop("correlationId", None)  # no record carries one
        if channel in payloads:
            message["payload"] = payloads[channel]
        message["headers"] = {"type": "object", "properties": HEADERS[channel]}
    doc["channels"]["routing"]["parameters"] = {"agency": {
        "description": "The agency's code in the registry; an agency may name its own topic "
        "there (`topic`). Escalations go to the coordinator's topic."}}
    doc["operations"]["retrySend"] = {
        "action": "send", "channel": {"$ref": "#/channels/retry"},
        "messages": [{"$ref": "#/channels/retry/messages/SubscribeMessage"}],
    }
    return doc


def generate() -> dict[str, str]:
    files = {
        f"{name}.schema.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True)
        + "\n"
        for name, model in MODELS.items()
    }
    files["asyncapi.json"] = asyncapi_document()
    return files


def write(folder: Path) -> list[str]:
    """Write the files that differ; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in generate().items():
        path = folder / name
        if not path.exists() or path.read_text("utf-8") != text:
            path.write_text(text, "utf-8")
            changed.append(name)
    return changed
