"""The checked-in contract files in schemas/ must match the models they come from."""

from __future__ import annotations

from pathlib import Path

from hub.specs import generate

SCHEMAS = Path(__file__).parent.parent / "schemas"


def test_checked_in_schemas_match_the_models() -> None:
    for name, text in generate().items():
        path = SCHEMAS / name
        assert path.exists(), f"schemas/{name} is missing: run `make schemas`"
        assert path.read_text("utf-8") == text, f"schemas/{name} drifted: run `make schemas`"
