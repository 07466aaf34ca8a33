"""`lapor-hub dlq list` shows a dead letter's reason and detail as they were stored."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from hub import migrate, store, topics
from hub.calendar import load_calendar_config
from hub.deadlines import Rules
from hub.followup import store_follow_ups
from hub.intake import Record, dead_letter, plan_intake, store_dead_letters, store_intake
from hub.model import FollowUpEvent, SourceRef, Stage, Status, tracking_id_for
from hub.routing import Directory
from hub.sealing import Sealer
from hub.settings import Settings
from tests.support import LAPOR_HUB


def dlq(url: str, *args: str, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LAPOR_HUB, "dlq", *args], capture_output=True, text=True,
                          timeout=60, check=False,
                          env={**os.environ, "HUB_DATABASE_URL": url, **(env or {})})


def database_with_letter(tmp_path: Path, reason: str, detail: str, stage: Stage,
                         count: int = 1) -> str:
    """A migrated SQLite database holding `count` such dead letters; its URL."""
    url = f"sqlite:///{tmp_path}/hub.db"
    migrate.upgrade(url)
    now = datetime.now(UTC)
    letters = [(dead_letter(Record(topics.raw("web"), 0, 7 + n, b"k", b"{}", {}, now), reason,
                            detail, stage, now), f"letter-{n}") for n in range(count)]
    engine = store.make_engine(url)
    with store.transaction(engine) as conn:
        store_dead_letters(conn, letters, Sealer.from_settings(Settings()))
    engine.dispose()
    return url


def test_a_detail_with_brackets_is_listed_as_stored(tmp_path: Path) -> None:
    """Rich would read "[/]" as markup and stop the command, or drop "[rusak]"."""
    detail = "unknown kategori '[rusak] [/]'"
    out = dlq(database_with_letter(tmp_path, "unroutable", detail, "intake"), "list")
    assert out.returncode == 0, out.stderr
    assert detail in out.stdout, out.stdout


def test_terminal_controls_a_sender_wrote_are_shown_not_obeyed(tmp_path: Path) -> None:
    # A field name quoted in a detail ("... is given more than once") reached the operator's
    # terminal as written: an escape sequence clears the screen or sets the clipboard.
    detail = "\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07nama is given more than once"
    out = dlq(database_with_letter(tmp_path, "invalid_field", detail, "intake"), "list")
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout
    assert "\\x1b[2J" in out.stdout, out.stdout


def test_a_list_cut_at_its_limit_says_how_many_there_are(tmp_path: Path) -> None:
    """The newest 50 were shown alone, and read as all the letters there were."""
    url = database_with_letter(tmp_path, "invalid_json", "Expecting value", "intake", count=3)
    out = dlq(url, "list", "--limit", "2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("Expecting value") == 2
    assert out.stdout.endswith("the newest 2 of 3 shown (--limit N shows more)\n"), out.stdout
    assert "shown" not in dlq(url, "list").stdout
    assert "shown" not in dlq(url, "list", "--limit", "2", "--reason", "invalid_json",
                              "--json").stdout


def test_a_missing_database_is_named_not_made(tmp_path: Path) -> None:
    """On a mistyped path `dlq` made an empty SQLite file and said "no such table"."""
    missing = tmp_path / "hub.db"
    for args in (["list"], ["replay", "--all"]):
        out = dlq(f"sqlite:///{missing}", *args)
        assert (out.returncode, out.stderr) == (
            2, f"lapor-hub: no database at {missing} (HUB_DATABASE_URL)\n")
    assert not missing.exists()


def test_ids_that_cannot_be_replayed_are_named(tmp_path: Path) -> None:
    """`dlq replay 99` said "replayed 0 dead letter(s)" and succeeded."""
    url = f"sqlite:///{tmp_path}/hub.db"
    migrate.upgrade(url)
    out = dlq(url, "replay", "99", "7")
    assert out.returncode == 2
    assert out.stdout == "replayed 0 dead letter(s)\n"
    assert out.stderr == ("lapor-hub: not replayed: 7, 99: no such dead letter, or replayed "
                          "already (lapor-hub dlq list --replayed)\n")


def test_a_long_detail_is_shown_cut_with_a_mark_and_whole_in_json(tmp_path: Path) -> None:
    """The table cut details at 80 characters without a sign: "allowed after in_progress:"
    read as the end of the reason."""
    detail = ("a complaint that is in_progress cannot become closed; allowed after "
              "in_progress: archived, in_progress, needs_info, not_authority, responded; and "
              "this sentence runs on past what a table row shows")
    url = database_with_letter(tmp_path, "illegal_transition", detail, "follow_up")
    shown = dlq(url, "list").stdout
    assert detail[:119] + "…" in shown, shown
    assert json.loads(dlq(url, "list", "--json").stdout)["detail"] == detail


def test_a_reason_no_dead_letter_has_is_named_with_those_held(tmp_path: Path) -> None:
    """`dlq replay --reason invalid_jsn` said "replayed 0 dead letter(s)" and succeeded."""
    url = database_with_letter(tmp_path, "invalid_json", "Expecting value", "intake")
    for args in (["replay", "--reason", "invalid_jsn"], ["list", "--reason", "invalid_jsn"]):
        out = dlq(url, *args)
        assert (out.returncode, out.stderr) == (2, "lapor-hub: no dead letter has reason "
                                                "'invalid_jsn'; reasons held: invalid_json\n")
    out = dlq(url, "list", "--reason", "invalid_json")
    assert out.returncode == 0 and "Expecting value" in out.stdout


def test_operator_mistakes_are_one_line_not_a_traceback(tmp_path: Path) -> None:
    url = database_with_letter(tmp_path, "invalid_json", "Expecting value", "intake")
    out = dlq(url, "list", "--limit", "-1")  # PostgreSQL: "LIMIT must not be negative"
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    # A letter sealed under a key no longer configured: named, not a SealError for all.
    out = dlq(url, "replay", "--all", env={"HUB_SECRET_KEY": "another-key"})
    assert "Traceback" not in out.stderr, out.stderr
    assert (out.returncode, out.stdout) == (2, "replayed 0 dead letter(s)\n")
    assert out.stderr.startswith("lapor-hub: not replayed: 1: sealed under a secret key not "
                                 "configured")
    upgrade = subprocess.run([LAPOR_HUB, "db", "upgrade", "nonsense"], capture_output=True,
                             text=True, timeout=60, check=False,
                             env={**os.environ, "HUB_DATABASE_URL": url})
    assert upgrade.returncode == 2 and upgrade.stderr.count("\n") == 1, upgrade.stderr
    assert upgrade.stderr.startswith("lapor-hub: database migrations: ")
    upgrade = subprocess.run([LAPOR_HUB, "db", "upgrade", "head+1"], capture_output=True,
                             text=True, timeout=60, check=False,
                             env={**os.environ, "HUB_DATABASE_URL": url})
    assert (upgrade.returncode, upgrade.stderr) == (
        2, "lapor-hub: database migrations: no revision 'head+1' (the newest is head)\n")
    report = subprocess.run([LAPOR_HUB, "report", "--from", "0001-01-01", "--to", "9999-12-31"],
                            capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "HUB_DATABASE_URL": url})
    assert report.returncode == 2 and "Traceback" not in report.stderr, report.stderr


def test_a_letter_names_its_complaint_agency_and_message_never_the_citizen(
    tmp_path: Path,
) -> None:
    """An agency asking why its answer to a complaint was refused: the list named neither
    the complaint nor the agency, and the detail of most refusals names neither."""
    url = f"sqlite:///{tmp_path}/hub.db"
    migrate.upgrade(url)
    rules = Rules.of(Directory.load(), load_calendar_config())
    now = datetime.now(UTC)
    form = {"id": "w1", "isi": "Jalan berlubang di depan sekolah.", "kategori": "jalan",
            "lokasi": {"kode_wilayah": "32.75"}, "pelapor": {"telepon": "+6281299990001"}}
    closed = FollowUpEvent(event_id="jawab-77", tracking_id=tracking_id_for(
        SourceRef(system="web", message_id="w1")), agency_code="kota-bekasi-dbmsda",
        status=Status.CLOSED, at=now)  # not answered yet: illegal_transition
    tid = closed.tracking_id
    engine = store.make_engine(url)
    with store.transaction(engine) as conn:
        store_intake(conn, plan_intake([Record(topics.raw("web"), 0, 1, None,
                                               json.dumps(form).encode(), {}, now)], rules, now),
                     rules, now)
        refused = store_follow_ups(conn, [
            Record(topics.FOLLOW_UP, 0, 2, tid.encode(), closed.model_dump_json().encode(),
                   {}, now),
            # Bytes that are no event: the key it was sent under names the complaint.
            Record(topics.FOLLOW_UP, 0, 3, tid.encode(), b"{rusak", {}, now)], rules, now)
        # A raw record a relay keyed by the citizen's number: the key is not shown.
        refused_raw = store_intake(conn, plan_intake([Record(
            topics.raw("web"), 0, 4, b"+6281299990001", b"{rusak",
            {"hub-message-id": "relay-msg-9"}, now)], rules, now), rules, now)
    engine.dispose()
    assert [dl.reason for dl in refused.dead_letters] == ["illegal_transition",
                                                          "invalid_follow_up"]
    assert len(refused_raw.dead_letters) == 1
    listed = dlq(url, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    about = [{k: letter[k] for k in ("tracking_id", "agency", "event_id", "message_id")}
             for letter in map(json.loads, listed.stdout.splitlines())]
    assert about == [
        {"tracking_id": None, "agency": None, "event_id": None, "message_id": "relay-msg-9"},
        {"tracking_id": tid, "agency": None, "event_id": None, "message_id": None},
        {"tracking_id": tid, "agency": "kota-bekasi-dbmsda", "event_id": "jawab-77",
         "message_id": None},
    ]
    table = dlq(url, "list").stdout
    assert all(text in table for text in (tid, "kota-bekasi-dbmsda", "jawab-77", "relay-msg-9"))
    assert "6281299990001" not in listed.stdout + table
    # Under a key that cannot open the follow-up: the record key still names the complaint.
    other = dlq(url, "list", "--json", env={"HUB_SECRET_KEY": "another-key"})
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout.splitlines()[2])["tracking_id"] == tid
