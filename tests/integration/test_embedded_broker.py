"""The embedded broker does not outlive the process that started it, however that ends."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

from hub.embedded_broker import EmbeddedBroker, accepts, free_port


def wait_until(check: bool, port: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while accepts(port) != check:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@contextlib.contextmanager
def lapor_hub_broker(stderr: int = subprocess.DEVNULL) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`lapor-hub broker` on a free port; whatever the test does, neither it nor its broker
    is left running."""
    port = free_port()
    starter = subprocess.Popen(
        [sys.executable, "-m", "hub", "broker", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=stderr, text=True,
    )
    try:
        yield starter, port
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()
        # A broker left behind by a failure here must not hold its port for later tests.
        with contextlib.suppress(FileNotFoundError):
            subprocess.run(["pkill", "-f", f"listener-url tcp://127.0.0.1:{port} "], check=False)


def test_a_broker_whose_starter_was_killed_outright_stops_too() -> None:
    with lapor_hub_broker() as (starter, port):
        assert wait_until(True, port, 30), "the broker did not start"
        starter.kill()  # SIGKILL: no handler, no `finally` runs in the starter
        starter.wait(10)
        assert wait_until(False, port, 15), "the broker outlived `lapor-hub broker` (SIGKILL)"


def test_stop_stops_the_broker_even_when_its_guard_hangs() -> None:
    broker = EmbeddedBroker()
    broker.start()
    real = hung = None
    try:
        hung = subprocess.Popen(  # takes the guard's place, and never reads its word
            [sys.executable, "-c", "import time; time.sleep(60)"], stdin=subprocess.PIPE
        )
        real, broker._guard = broker._guard, hung
        broker.stop(timeout=0.5)
        assert hung.poll() is not None, "the hung guard was left running"
        assert wait_until(False, broker.port, 15), "stop() left the broker running"
    finally:
        broker.stop()
        for guard in (real, hung):
            if guard is not None:
                guard.kill()
                guard.wait()


def test_lapor_hub_broker_stops_on_sigterm_with_its_broker() -> None:
    """A service manager's stop: the handler once waited for the broker inside the wait it
    had interrupted, and hung there for good."""
    with lapor_hub_broker(stderr=subprocess.PIPE) as (starter, port):
        assert starter.stderr is not None
        while not (line := starter.stderr.readline()).startswith("broker ready"):
            assert line, "`lapor-hub broker` ended before it was ready"
        starter.terminate()
        assert starter.wait(20) == 0
        assert wait_until(False, port, 15), "the broker outlived `lapor-hub broker` (SIGTERM)"
