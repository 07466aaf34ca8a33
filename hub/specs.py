"""The contract files in `schemas/`: JSON Schema of each event and the AsyncAPI document.

`lapor-hub schemas` writes them; a test fails when the checked-in files drift.
"""

from __future__ import annotations

import json
from pathlib import Path

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from hub import topics
from hub.model import Complaint, DeadLetter, DuplicateEvent, FollowUpEvent, RoutingEvent
from hub.settings import Settings

MODELS: dict[str, type[BaseModel]] = {
    "complaint": Complaint,
    "routing-event": RoutingEvent,
    "duplicate-event": DuplicateEvent,
    "follow-up-event": FollowUpEvent,
    "dead-letter": DeadLetter,
}


def document_publishers(broker: KafkaBroker) -> None:
    """Declare what the hub publishes, for the AsyncAPI document only.

    The hub sends through its batched outbox producer, not these publishers.
    """
    broker.publisher(
        topics.agency("{agency}"), schema=RoutingEvent, title="routing",
        description="One topic per agency: the complaints it now holds, keyed by tracking id.",
    )
    broker.publisher(
        topics.DEAD_LETTER, schema=DeadLetter, title="dead-letter",
        description="What could never succeed as sent, with the reason and original bytes.",
    )


def asyncapi_document() -> str:
    from hub.app import build

    app, _ = build(Settings(database_url="sqlite://"))
    spec = AsyncAPI(
        *app.brokers, title="LAPOR Hub", version="1", schema_version="3.0.0",
        description="Topics of the SP4N-LAPOR! integration hub.",
    )
    return json.dumps(spec.to_specification().to_jsonable(), indent=2, sort_keys=True) + "\n"


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
