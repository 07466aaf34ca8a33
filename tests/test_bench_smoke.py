"""`lapor-hub bench --quick --json` runs end to end and says what it measured.

Tiny (HUB_BENCH_SCALE) and without timing assertions: the numbers belong to the
machine; this only checks that every phase ran and the JSON has its keys.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support import LAPOR_HUB, broker_outlives, broker_running_on

pytestmark = pytest.mark.broker
KEYS = {
    "ceiling_per_s", "naive_per_s", "prototype_per_s", "prototype_ratio", "hub_per_s", "ratio", "p50_ms", "p99_ms", "max_ms",
    "ceiling_p50_ms", "ceiling_p99_ms", "ceiling_max_ms", "agencies_10_per_s",
    "agencies_1000_per_s", "peak_rss_mb", "n", "python", "platform",
}


def test_quick_json_bench_reports_every_phase(tmp_path: Path) -> None:
    env = {**os.environ, "HUB_BENCH_SCALE": "0.02", "HUB_BENCH_RESULTS": str(tmp_path)}
    env.pop("HUB_BENCH_CHILD_WRAP", None)
    done = subprocess.run(
        [LAPOR_HUB, "bench", "--quick", "--json"],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout[-2000:]  # one JSON object, nothing else on stdout
    result = json.loads(lines[0])

    assert not KEYS - result.keys(), KEYS - result.keys()
    for key in ("ceiling_per_s", "naive_per_s", "prototype_per_s", "hub_per_s", "ratio", "p50_ms", "p99_ms",
                "max_ms", "ceiling_p50_ms", "ceiling_p99_ms", "ceiling_max_ms",
                "agencies_10_per_s", "agencies_1000_per_s", "peak_rss_mb"):
        assert result[key] > 0, key
    assert all(count > 0 for count in result["n"].values()), result["n"]
    # Every message became one routed complaint: none lost, none taken for a duplicate.
    assert result["n"]["hub"] == result["plan"]["drain"]
    # The prototype took every message the ceiling did.
    assert result["n"]["prototype"] == result["n"]["ceiling"] == result["plan"]["drain"]
    assert result["n"]["latency_received"] == result["n"]["latency_sent"]
    # The relay passed every message of the same load on, each to its agency topic.
    assert result["n"]["ceiling_latency_received"] == result["n"]["ceiling_latency_sent"]
    assert result["n"]["ceiling_latency_sent"] == result["n"]["latency_sent"]
    assert result["runs"]["agencies_1000"]["agency_topics"] == 1000
    assert not list(tmp_path.iterdir())  # --quick writes no result files


def test_sigterm_takes_the_broker_and_the_temp_folder_along(tmp_path: Path) -> None:
    env = {**os.environ, "HUB_BENCH_SCALE": "0.02", "TMPDIR": str(tmp_path)}
    env.pop("HUB_BENCH_CHILD_WRAP", None)
    proc = subprocess.Popen([LAPOR_HUB, "bench", "--quick"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        said = ""
        assert proc.stderr is not None
        while "1/5 ceiling" not in said:  # the hub child is up, the broker holds topics
            line = proc.stderr.readline()
            assert line, said[-3000:]
            said += line
        port = int(re.search(r"broker 127\.0\.0\.1:(\d+)", said).group(1))  # type: ignore[union-attr]
        assert list(tmp_path.glob("lapor-bench-*"))
        assert broker_running_on(port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not broker_outlives(port), "the embedded broker outlived the bench"
    assert not list(tmp_path.glob("lapor-bench-*")), "the bench left its temp folder"


def test_processes_bench_runs_two_hubs_in_one_group() -> None:
    env = {**os.environ, "HUB_BENCH_SCALE": "0.005"}
    env.pop("HUB_BENCH_DATABASE_URL", None)
    done = subprocess.run(
        [LAPOR_HUB, "bench", "--processes", "2"],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "150 complaints per run" in done.stderr
    row = next(line for line in done.stdout.splitlines() if line.strip("│ ").startswith("2 "))
    assert "150" in row, done.stdout


def test_processes_bench_refuses_a_bad_count() -> None:
    done = subprocess.run([LAPOR_HUB, "bench", "--processes", "two"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("lapor-hub: --processes wants counts")


async def test_a_hub_child_whose_parent_went_away_before_go_exits(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    from hub.bench import ChildConfig, Generator, HubChild, preload

    prefix = f"orphan{os.getpid()}"
    messages = Generator(prefix).take(20)
    await preload(kafka_bootstrap, prefix, messages)
    child = HubChild(ChildConfig(kafka_bootstrap, prefix, f"sqlite:///{tmp_path}/hub.db",
                                 len(messages)), tmp_path)
    try:
        await child.read("ready", within=120)  # holds its first batch, waiting for `go`
        assert child.proc.stdin is not None
        child.proc.stdin.close()  # as when the bench is killed
        assert child.proc.wait(60) == 0, child.log_path.read_text()[-3000:]
    finally:
        child.kill()
