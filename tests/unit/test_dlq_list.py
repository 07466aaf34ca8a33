"""`lapor-hub dlq list` shows a dead letter's reason and detail as they were stored."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from hub import migrate, store, topics
from hub.intake import Record, dead_letter, store_dead_letters
from hub.sealing import Sealer
from hub.settings import Settings
from tests.support import LAPOR_HUB


def test_a_detail_with_brackets_is_listed_as_stored(tmp_path: Path) -> None:
    """Rich would read "[/]" as markup and stop the command, or drop "[rusak]"."""
    url = f"sqlite:///{tmp_path}/hub.db"
    migrate.upgrade(url)
    now = datetime.now(UTC)
    record = Record(topics.raw("web"), 0, 7, b"k", b"{}", {}, now)
    detail = "unknown kategori '[rusak] [/]'"
    letter = dead_letter(record, "unroutable", detail, "intake", now)
    engine = store.make_engine(url)
    with store.transaction(engine) as conn:
        store_dead_letters(conn, [(letter, "one")], Sealer.from_settings(Settings()))
    engine.dispose()
    out = subprocess.run([LAPOR_HUB, "dlq", "list"], capture_output=True, text=True,
                         timeout=60, check=False, env={**os.environ, "HUB_DATABASE_URL": url})
    assert out.returncode == 0, out.stderr
    assert detail in out.stdout, out.stdout
