"""The checked-in contract files in schemas/ must match the models they come from."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.specs import generate

SCHEMAS = Path(__file__).parent.parent / "schemas"


def test_checked_in_schemas_match_the_models() -> None:
    for name, text in generate().items():
        path = SCHEMAS / name
        assert path.exists(), f"schemas/{name} is missing: run `make schemas`"
        assert path.read_text("utf-8") == text, f"schemas/{name} drifted: run `make schemas`"


def test_the_schemas_do_not_follow_the_broker_of_the_shell(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Made where HUB_KAFKA_BOOTSTRAP pointed at a test broker, asyncapi.json named it.
    monkeypatch.setenv("HUB_KAFKA_BOOTSTRAP", "127.0.0.1:19201")
    assert generate()["asyncapi.json"] == (SCHEMAS / "asyncapi.json").read_text("utf-8")
