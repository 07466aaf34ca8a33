from __future__ import annotations

from hub.agency_client import HELP, parse_command
from hub.model import FollowUpEvent, Status

TID = "123456789012345678"


def test_a_typed_line_becomes_a_follow_up() -> None:
    event = parse_command(f"{TID} dispositioned --to kota-bekasi-rsud Mohon ditindaklanjuti", "a")
    assert isinstance(event, FollowUpEvent)
    assert (event.status, event.target_agency, event.message) == (
        Status.DISPOSITIONED, "kota-bekasi-rsud", "Mohon ditindaklanjuti",
    )
    assert event.agency_code == "a"


def test_bad_lines_say_why() -> None:
    assert parse_command("", "a") == HELP
    assert str(parse_command(f"{TID} done", "a")).startswith("not sent:")
    assert str(parse_command("12 responded", "a")).startswith("not sent:")
