"""A throwaway ``redis-server`` on a loopback port of its own, to kill, pause and restart."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

PORTS = range(6420, 6440)
# What a test that connects to one names in @pytest.mark.cachesync(allow_connections=...).
THROWAWAY_REDIS = "redis://127.0.0.1:64[23]?/*"
_START_TIMEOUT_SECONDS = 10.0


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class ThrowawayRedis:
    """One ``redis-server`` process without persistence; ``kill`` loses everything it held."""

    def __init__(self, binary: str, port: int) -> None:
        self.binary = binary
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def control(self) -> redis.Redis:
        """A client of the test's own, with a generous timeout (it issues the faults)."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"redis-server on port {self.port} is already running")
        self.process = subprocess.Popen(
            [
                self.binary,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
                # DEBUG SLEEP makes the server slow; only loopback clients may send it.
                *("--enable-debug-command", "local"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5)
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited at startup")
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)  # polling a starting process, not waiting for a TTL
            finally:
                client.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save, open connections reset."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def throwaway_redis(binary: str) -> Iterator[ThrowawayRedis]:
    """A started server on the first free port of ``PORTS``; always stopped on exit."""
    for port in PORTS:
        if not _port_is_free(port):
            continue
        server = ThrowawayRedis(binary, port)
        try:
            server.start()
        except (RuntimeError, redis.ConnectionError):
            server.stop()
            continue  # another process took the port between the probe and the start
        try:
            yield server
        finally:
            server.stop()
        return
    raise RuntimeError(f"no free port for a throwaway redis-server in {PORTS}")
