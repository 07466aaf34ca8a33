"""`lapor-hub dev` (what `make run` starts): its demo stream gets routed, on a new database
and again on the last run's, its progress shows in a log, and SIGTERM stops the embedded
broker with it."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from hub.embedded_broker import accepts, free_port
from tests.support import broker_outlives, broker_running_on


def test_dev_shows_progress_and_stops_its_broker_on_sigterm(tmp_path: Path) -> None:
    first = run_dev_until_routed(tmp_path)
    assert not [line for line in first if "earlier runs" in line]
    # One agency is left to people (the README's agency client example): the demo answered
    # it too, and what was typed there was refused as coming too late.
    # On a broker port other than the default, the command says where that broker is.
    assert any(re.search(r"kota-bekasi-dinkes is left to you: HUB_KAFKA_BOOTSTRAP=127\.0\.0\.1:"
                         r"\d+ lapor-hub agency kota-bekasi-dinkes", line)
               for line in first), "".join(first)[-3000:]
    with sqlite3.connect(tmp_path / "hub.db") as db:
        answered = dict(db.execute(
            "SELECT agency_code = 'kota-bekasi-dinkes', count(*) FROM status_history "
            "WHERE status <> 'received' GROUP BY 1").fetchall())
    assert not answered.get(1) and answered.get(0), answered
    # `make run` again on the same database: the demo is new complaints, not the last
    # run's again (stored already: routed 0 until it passed the last run's count); the
    # last run's open ones are said to be there, their topics gone with its broker.
    again = run_dev_until_routed(tmp_path)
    (said,) = [line for line in again if "earlier runs" in line]
    assert re.match(r"\d+ open complaints of earlier runs are in the database", said), said
    with sqlite3.connect(tmp_path / "hub.db") as db:
        streams = {row[0].rsplit("-", 1)[0] for row in db.execute(
            "SELECT source_message_id FROM complaint WHERE source_system = 'web'")}
    assert len(streams) == 2, streams


def run_dev_until_routed(tmp_path: Path) -> list[str]:
    """Run `dev` until the demo is routed, then stop it; what it printed."""
    broker_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "HUB_HTTP_PORT": str(http_port),
        "HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.db",
    }
    env.pop("HUB_KAFKA_BOOTSTRAP", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub", "dev", "--port", str(broker_port), "--rate", "20"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(proc.stdout.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    try:
        routed = 0
        deadline = time.monotonic() + 90
        while routed == 0 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1)
            found = [int(m.group(1)) for line in list(lines)
                     if (m := re.search(r"· routed (\d+) \(\+\d+ handed on\) ·", line))]
            routed = found[-1] if found else 0
        assert routed > 0, "".join(lines)[-3000:]
        # Until the demo posts, the progress says what it waits for (the groups' joins take
        # seconds), not a row of zeros.
        progress = [line for line in lines if re.match(r"\d\d:\d\d:\d\d ", line)]
        assert progress[0].split(" ", 1)[1].startswith("starting: "), "".join(lines)[-3000:]
        assert accepts(broker_port) and broker_running_on(broker_port)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, "".join(lines)[-3000:]
        reader.join(10)
        # Posts the closing hub no longer answers are no refusals (the last line said
        # "refused 1" after many a stop).
        counts = [m.group(1) for line in lines if (m := re.search(r"refused (\d+)", line))]
        assert counts and set(counts) == {"0"}, "".join(lines)[-3000:]
        assert not broker_outlives(broker_port), "the embedded broker outlived `lapor-hub dev`"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return lines


def test_a_taken_broker_port_is_said_with_the_bootstrap_to_use(tmp_path: Path) -> None:
    # dev moved its broker to a free port without a word; the agency client, on the port it
    # was told, then talked to whatever held it and saw nothing of the demo.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    env = {**os.environ, "HUB_HTTP_PORT": str(free_port()),
           "HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.db"}
    env.pop("HUB_KAFKA_BOOTSTRAP", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub", "dev", "--port", str(port), "--rate", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        said = ""
        deadline = time.monotonic() + 60
        while "is taken" not in said and time.monotonic() < deadline:
            said += proc.stdout.readline()
        (line,) = [line for line in said.splitlines() if "is taken" in line]
        assert line.startswith(f"port {port} is taken: this demo's broker listens on "), line
        assert re.search(r"set HUB_KAFKA_BOOTSTRAP=127\.0\.0\.1:\d+$", line), line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        taken.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_leaving_an_agency_not_in_the_registry_is_refused_in_one_line(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "hub", "dev", "--leave", "kota-bekasi-dinkez"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
                         env={**os.environ, "HUB_HTTP_PORT": str(free_port())})
    assert (out.returncode, out.stderr) == (
        2, "lapor-hub: --leave: no agency kota-bekasi-dinkez in the registry\n")
