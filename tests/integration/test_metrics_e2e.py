"""Metrics end to end: `lapor-hub simulate` drives a real hub on the real broker, a real
Prometheus scrapes it with deploy/prometheus's rules, and every dashboard query has data."""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from hub.embedded_broker import free_port
from hub.store import ComplaintRow, HistoryRow, table_of
from tests.deploy.test_prometheus import PROMETHEUS, RULE_FILES, panel_queries
from tests.support import HUB, HubProcess, overdue

PROMETHEUS_BIN = shutil.which("prometheus")
pytestmark = [
    pytest.mark.broker,
    pytest.mark.prometheus,
    pytest.mark.skipif(
        PROMETHEUS_BIN is None,
        reason="prometheus not found; `apt-get install prometheus` enables this test",
    ),
]
SIMULATE = ["--minutes", "0.6", "--rate", "15", "--seed", "5"]
LATE = 20
"""Open complaints whose deadline the test moves into the past: working days cannot pass."""


class Prometheus:
    """A Prometheus on a free port, scraping one hub every second, storage in `folder`."""

    def __init__(self, folder: Path, hub: HubProcess) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text("utf-8"))
        config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config["rule_files"] = [str(path) for path in RULE_FILES]
        (job,) = config["scrape_configs"]
        job.pop("dns_sd_configs")  # the replicas of compose; here one hub on loopback
        job["static_configs"] = [{"targets": [f"127.0.0.1:{hub.port}"]}]
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        assert PROMETHEUS_BIN is not None
        self.log = (folder / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS_BIN, f"--config.file={folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=self.log,
        )

    def wait_ready(self, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "prometheus exited; see prometheus.log"
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("prometheus did not become ready")

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", (expr, answer)
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def values(self, expr: str) -> dict[str, float]:
        """Finite values by their labels' text."""
        found = {str(r["metric"]): float(r["value"][1]) for r in self.query(expr)}
        return {k: v for k, v in found.items() if math.isfinite(v)}

    def wait_for(self, expr: str, at_least: float = 0.0, within: float = 20.0) -> dict[str, float]:
        """Values once some are there, and their sum is `at_least`."""
        deadline = time.monotonic() + within
        while True:
            found = self.values(expr)
            if (found and sum(found.values()) >= at_least) or time.monotonic() > deadline:
                return found
            time.sleep(0.5)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def hub(kafka_bootstrap: str, tmp_path: Path) -> Iterator[HubProcess]:
    with HubProcess(
        kafka_bootstrap, f"sqlite:///{tmp_path}/hub.db", log_path=tmp_path / "hub.log",
        extra_env={"HUB_WATCHER_INTERVAL_S": "0.5"},
    ) as process:
        yield process


@pytest.fixture
def prometheus(hub: HubProcess, tmp_path: Path) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path, hub)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def wait_until_settled(hub: HubProcess, quiet_for: float = 3.0, within: float = 60.0) -> None:
    """Wait until the hub has applied every follow-up in flight: the history stops growing.

    A follow-up applied after `miss_deadlines` would set a new deadline over the moved one.
    """
    history = table_of(HistoryRow)
    engine = sa.create_engine(hub.database_url)
    seen, quiet_since, deadline = -1, time.monotonic(), time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                count = conn.execute(sa.select(sa.func.count()).select_from(history)).scalar_one()
            if count != seen:
                seen, quiet_since = count, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_for:
                return
            time.sleep(0.5)
    finally:
        engine.dispose()
    raise AssertionError("the hub kept applying follow-ups")


def miss_deadlines(hub: HubProcess, count: int) -> int:
    """Move the clocks of `count` open, unanswered complaints into the past: overdue.

    Answered ones are left alone: their deadline is the auto-close, which closes, not breaches.
    """
    table = table_of(ComplaintRow)  # typed column: the same UTC storage as the hub's
    with sa.create_engine(hub.database_url).begin() as conn:
        chosen = conn.execute(
            sa.select(table.c.tracking_id)
            .where(table.c.due_at.is_not(None),
                   table.c.status.not_in(("responded", "closed", "archived")))
            .order_by(table.c.tracking_id).limit(count)).scalars().all()
        return overdue(conn, chosen)


def test_every_dashboard_query_has_data_from_a_simulated_day(
    hub: HubProcess, prometheus: Prometheus, tmp_path: Path
) -> None:
    with (tmp_path / "simulate.log").open("wb") as log:
        subprocess.run([*HUB, "simulate", "--hub-url", hub.base_url, *SIMULATE], env=hub.env(),
                       stdout=log, stderr=log, timeout=90, check=True)
    # In a log: whole lines – progress every 10 s and the summary – none cut at 80 columns.
    lines = (tmp_path / "simulate.log").read_text("utf-8").splitlines()
    progress = [line for line in lines if line.startswith("simulate ")]
    assert len(progress) >= 3 and all(line.endswith(" ignored") for line in progress), lines
    (summary,) = [line for line in lines if line.startswith("simulated ")]
    assert summary.endswith(" follow-ups were still due when time ran out."), lines
    assert not any("…" in line for line in lines), lines
    wait_until_settled(hub)
    assert miss_deadlines(hub, LATE) == LATE
    breached = prometheus.wait_for("agency_deadline:lapor_deadline_breaches:increase15m", LATE)
    assert sum(breached.values()) >= LATE

    empty = [f"{q.panel} [{q.ref}]: {q.expr}" for q in panel_queries()
             if not prometheus.values(q.expr)]
    assert empty == [], "dashboard queries without data"

    latency = prometheus.values(
        'sum by (agency) (lapor_follow_up_latency_seconds_count{stage="first_follow_up"}) > 0'
    )
    assert len(latency) >= 8, latency
    firing = prometheus.wait_for('ALERTS{alertname="LaporDeadlineBreached", alertstate="firing"}')
    assert firing

    def one(expr: str) -> float:
        return sum(prometheus.values(expr).values())

    # Every complaint routed is timed once, door to acknowledged routing event; the agencies'
    # reroutes and dispositions are routing events too, counted beside them.
    assert one("sum(lapor_routing_delay_seconds_count)") == one(
        'sum(lapor_complaints_routed_total{reason!~"reroute|disposition"})'
    ) > 0
    assert one('sum(lapor_complaints_routed_total{reason=~"reroute|disposition"})') > 0

    assigned = "agency_state:lapor_complaints_assigned:max"
    first = 'agency_stage:lapor_follow_up_latency_seconds_bucket:rate1d{stage="first_follow_up"'
    measured = {
        "complaints": "sum(lapor_complaints_received_total)",
        "routed": "sum(lapor_complaints_routed_total)",
        "follow-ups": "sum(lapor_follow_ups_total)",
        "dead letters": "sum(lapor_dead_letters_total)",
        "first follow-ups": 'sum(lapor_follow_up_latency_seconds_count{stage="first_follow_up"})',
        "within 5 wd": f'sum({first}, le=~"432000(.0)?"}}) / sum({first}, le="+Inf"}})',
        "p90 wd": f"histogram_quantile(0.9, sum by (le) ({first}}})) / 86400",
        "followed up": f'1 - sum({assigned}{{state="not_followed_up"}}) / sum({assigned})',
        "resolved": f'sum({assigned}{{state="resolved"}}) / sum({assigned})',
        "routing p99 s": "histogram_quantile(0.99, sum by (le) (lapor_routing_delay_seconds_bucket))",
        "store p99 s": 'histogram_quantile(0.99, sum by (le) '
        '(lapor_intake_step_seconds_bucket{step="store"}))',
    }
    alerts = sorted({f'{a["metric"]["alertname"]} ({a["metric"]["alertstate"]})'
                     for a in prometheus.query("ALERTS")})
    print(  # the run's figures, for the record (pytest -s)
        "\n" + ", ".join(f"{name} {one(expr):.3g}" for name, expr in measured.items())
        + f", agencies with first follow-ups {len(latency)}, breaches {sum(breached.values()):.0f}"
        + f", alerts {alerts}"
    )
