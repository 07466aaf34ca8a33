"""`lapor-hub dev`: embedded broker, the hub and a demo stream in one process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import httpx
import uvicorn
from rich.live import Live
from rich.table import Table

from hub import metrics, store, terminal
from hub.demo import web_complaints
from hub.embedded_broker import EmbeddedBroker, accepts, free_port
from hub.routing import Directory
from hub.settings import Settings
from hub.simulate import Responders, Tally

console = terminal.console(stderr=True)


def _summary(routed: dict[str, float]) -> str:
    """Complaints and what became of them; routing events counted apart from hand-ons (a
    reroute or a disposition to another agency routes a complaint again)."""
    received = sum(metrics.totals("lapor_complaints_received_total", "channel").values())
    handed = sum(n for reason, n in metrics.totals("lapor_complaints_routed_total",
                                                   "reason").items()
                 if reason in ("reroute", "disposition"))
    statuses = metrics.totals("lapor_follow_ups_total", "status")
    dead = sum(metrics.totals("lapor_dead_letters_total", "reason").values())
    return (f"received {received:.0f} · routed {sum(routed.values()) - handed:.0f} "
            f"(+{handed:.0f} handed on) · follow-ups applied {sum(statuses.values()):.0f} "
            f"(responded {statuses.get('responded', 0):.0f}, closed "
            f"{statuses.get('closed', 0):.0f}) · dead letters {dead:.0f}")


def _progress() -> Table:
    routed = metrics.totals("lapor_complaints_routed_total", "agency")
    title = (f"starting: {waiting.why}" if waiting.why else
             f"demo: posted {tally.posted}, refused {tally.refused}, follow-ups {tally.sent}")
    table = Table(title=title, expand=False)
    table.add_column("agency")
    table.add_column("routed", justify="right")
    for agency, n in sorted(routed.items(), key=lambda kv: -kv[1])[:12]:
        table.add_row(agency, f"{n:.0f}")
    table.caption = _summary(routed)
    return table


def progress_line() -> str:
    """One line of progress, for output that is not a terminal (a log, a pipe)."""
    if waiting.why:
        return f"{datetime.now(UTC):%H:%M:%S} starting: {waiting.why}"
    routed = metrics.totals("lapor_complaints_routed_total", "agency")
    return (f"{datetime.now(UTC):%H:%M:%S} demo posted {tally.posted}, refused "
            f"{tally.refused}, follow-ups sent {tally.sent} · {_summary(routed)}")


async def _show_progress(serving: asyncio.Task[None]) -> None:
    """A live table on a terminal; elsewhere a line every 5 s, so a log shows it too."""
    if console.is_terminal:
        with Live(_progress(), console=console, refresh_per_second=2) as live:
            while not serving.done():
                await asyncio.sleep(0.5)
                live.update(_progress())
        return
    while not serving.done():
        await asyncio.wait([serving], timeout=5)
        console.print(progress_line(), highlight=False, soft_wrap=True)


def _open_from_earlier_runs(url: str) -> int:
    """Open complaints already in the demo's SQLite file (0 for none, or no such file)."""
    path = store.sqlite_file(url)
    if path is None or not path.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            (count,) = db.execute("SELECT count(*) FROM complaint WHERE status NOT IN "
                                  "('closed', 'archived') AND duplicate_of IS NULL").fetchone()
    except sqlite3.Error:  # no tables yet
        return 0
    return int(count)


DEMO_LEFT = "kota-bekasi-dinkes"
"""The agency the demo leaves to people by default: the one the README's agency client
example answers for. Answered by the demo too, what was typed there was refused."""


def _pointed(bootstrap: str) -> str:
    """What a command needs before it to reach this demo's broker: nothing on the default."""
    default = Settings.model_fields["kafka_bootstrap"].default
    return "" if bootstrap == default else f"HUB_KAFKA_BOOTSTRAP={bootstrap} "


async def run_dev(rate: float, port: int, leave: frozenset[str] = frozenset()) -> None:
    # SIGTERM (a service manager, `timeout`, `kill`) must stop the broker too: it runs in
    # its own session, so dying at once would leave it running, port and all. Uvicorn
    # takes the signal while it serves and raises it again once it has stopped; this
    # handler then only asks for the stop, and the `with` blocks below shut down in order.
    server: uvicorn.Server | None = None
    stopping = False

    def on_term(*_: object) -> None:
        nonlocal stopping
        stopping = True
        if server is not None:
            server.should_exit = True

    signal.signal(signal.SIGTERM, on_term)
    with EmbeddedBroker(free_port() if accepts(port) else port) as broker:
        os.environ["HUB_KAFKA_BOOTSTRAP"] = broker.bootstrap
        # The demo feeder posts without credentials; never set this in production.
        os.environ.setdefault("HUB_INGRESS_OPEN", "true")
        settings = Settings()
        from hub.app import build

        app, _ = build(settings)
        config = uvicorn.Config(
            app, host=settings.http_host, port=settings.http_port, log_level="warning"
        )
        server = _DemoServer(config)
        server.should_exit = stopping
        base = f"http://{settings.http_host}:{settings.http_port}"
        console.print(
            f"[bold]LAPOR Hub[/] broker {broker.bootstrap} · database {settings.database_url}\n"
            f"  post complaints: {base}/intake/<source> · metrics: {base}/metrics · "
            f"ready: {base}/readyz\n  Ctrl-C stops everything."
            + "".join(f"\n  {code} is left to you: {_pointed(broker.bootstrap)}lapor-hub "
                      f"agency {code}" for code in sorted(leave)),
            soft_wrap=True,
        )
        if earlier := _open_from_earlier_runs(settings.database_url):
            # Their routing events went to the last run's broker, which kept them in memory.
            console.print(
                f"[yellow]{earlier} open complaints of earlier runs[/] are in the database; "
                "their agencies' topics went with the last run's broker (`make clean` starts "
                "afresh)", soft_wrap=True,
            )
        if broker.port != port:
            # Another broker holds the port the other commands default to: they would talk
            # to it and see nothing of this demo.
            console.print(
                f"[yellow]port {port} is taken[/]: this demo's broker listens on "
                f"{broker.port}; for lapor-hub agency, simulate or dlq replay set "
                f"HUB_KAFKA_BOOTSTRAP={broker.bootstrap}", soft_wrap=True,
            )
        feeding = asyncio.create_task(_feed(base, rate, settings, leave))
        server.before_shutdown = partial(_stop_feeding, feeding)
        serving = asyncio.create_task(server.serve())
        try:
            await _show_progress(serving)
        finally:
            server.should_exit = True
            feeding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeding
            await serving


tally = Tally()
"""What the demo posted and the responders sent, shared with the progress display."""

DRAIN_S = 5.0
"""Longest the hub is given at a stop to apply the follow-ups the demo sent."""


class _DemoServer(uvicorn.Server):
    """Uvicorn, stopping the demo before the hub: the responders kept sending while the
    hub's consumers stopped, and what they sent went with the memory-only broker (a stop
    lost 1-5 follow-ups, their complaints open for good)."""

    before_shutdown: Callable[[], Awaitable[None]] | None = None

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.before_shutdown is not None:
            await self.before_shutdown()
        await super().shutdown(sockets)


async def _stop_feeding(feeding: asyncio.Task[None]) -> None:
    """Stop the demo, then wait (a while) until the hub has taken what it sent."""
    feeding.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await feeding
    for _ in range(int(DRAIN_S / 0.1)):  # polled: the metrics are the only signal
        if _follow_ups_taken() >= tally.sent:
            return
        await asyncio.sleep(0.1)


def _follow_ups_taken() -> float:
    """Follow-ups the hub applied or refused (a dead letter of the follow-up stage)."""
    applied = sum(metrics.totals("lapor_follow_ups_total", "status").values())
    refused = metrics.totals("lapor_dead_letters_total", "stage").get("follow_up", 0.0)
    return applied + refused


@dataclass(slots=True)
class Waiting:
    why: str | None = "the HTTP side"
    """What the demo waits for: what /readyz says keeps the hub unready, then the demo's
    responders; None once the demo feeds the hub."""


waiting = Waiting()


async def _feed(base: str, rate: float, settings: Settings, leave: frozenset[str]) -> None:
    """Post demo complaints once the hub is ready, and answer them as the agencies would
    (the simulator's responders: time compressed, one simulated day per second)."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        while True:
            try:
                ready = await client.get("/readyz")
                if ready.status_code == 200:
                    break
                problems = ready.json().get("problems", {})
                waiting.why = "; ".join(f"{k}: {v}" for k, v in problems.items()) or "not yet"
            except (httpx.HTTPError, ValueError):
                pass
            await asyncio.sleep(0.5)
        waiting.why = "the demo's agency responders joining their consumer group"
        responders = Responders(settings, Directory.load(settings.agencies_file), 1708, tally,
                                since=datetime.now(UTC), leave=leave)
        await responders.start()
        waiting.why = None
        answering = asyncio.create_task(responders.run(float("inf")))
        try:
            await _post_forms(client, rate)
        finally:
            answering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await answering
            await responders.stop()


async def _post_forms(client: httpx.AsyncClient, rate: float) -> None:
    # A stream of its own each run: the same ids again would be complaints already stored
    # (received once, never routed twice), the same texts duplicates of the last run's.
    for body in web_complaints(seed=int(time.time())):
        try:
            answer = await client.post("/intake/web", json=body)
        except httpx.TransportError:
            # No answer: the hub (in this process) is stopping, at Ctrl-C or SIGTERM, and
            # has closed its port; no refusal of the hub's to count.
            pass
        else:
            if answer.status_code == 202:
                tally.posted += 1
            else:
                tally.refuse(str(answer.status_code))
        await asyncio.sleep(1 / rate)
