"""`lapor-hub dlq list` shows a dead letter's reason and detail as they were stored."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from hub import migrate, store, topics
from hub.intake import Record, dead_letter, store_dead_letters
from hub.model import Stage
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
