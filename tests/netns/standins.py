"""Servers standing for production inside a private network namespace, counting connections.

Only usable inside a namespace made with ``unshare -rn``: 10.255.255.1 exists nowhere else, and
the namespace's 127.0.0.1:6379 is not the machine's.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

IN_NETNS = "CACHESYNC_IN_NETNS"
PRODUCTION = "10.255.255.1"
_START_TIMEOUT_SECONDS = 10.0


def inside_private_namespace() -> bool:
    return os.environ.get(IN_NETNS) == "1"


def bring_up_network() -> None:
    """Loopback up, and the production address on it (once per namespace)."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    addresses = subprocess.run(
        ["ip", "-o", "addr", "show", "dev", "lo"], check=True, capture_output=True, text=True
    ).stdout
    if f"{PRODUCTION}/32" not in addresses:
        subprocess.run(["ip", "addr", "add", f"{PRODUCTION}/32", "dev", "lo"], check=True)


class RedisStandIn:
    """A redis-server; ``connections()`` counts the ones it accepted from others than itself."""

    def __init__(self, host: str, port: int, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.host, self.port = host, port
        self._own = 0  # connections of this object's own clients
        self.process = subprocess.Popen(
            [
                binary,
                *("--bind", host, "--port", str(port), "--save", "", "--appendonly", "no"),
                *("--dir", str(workdir), "--protected-mode", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while True:
            try:
                with self.client() as client:
                    client.ping()
                break
            except redis.ConnectionError:
                self._own -= 1  # refused: the server counted nothing
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.02)  # polling a starting process, not waiting for a TTL

    def client(self, db: int = 0) -> redis.Redis:
        """A client that opens one connection, which ``connections`` does not count."""
        self._own += 1
        pool = redis.ConnectionPool(
            host=self.host, port=self.port, db=db, socket_timeout=5, max_connections=1
        )
        return redis.Redis(connection_pool=pool)

    def connections(self) -> int:
        """Connections others opened to this server so far."""
        with self.client() as client:
            stats = client.info("stats")
        return int(stats["total_connections_received"]) - self._own

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class ListenerStandIn:
    """A plain TCP port that accepts, counts and closes every connection."""

    def __init__(self, host: str, port: int) -> None:
        self.accepted = 0
        self._socket = socket.create_server((host, port))
        self._socket.settimeout(0.1)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            connection.close()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._socket.close()


@contextmanager
def production(workdir: Path) -> Iterator[tuple[RedisStandIn, ListenerStandIn]]:
    """Redis on 10.255.255.1:6379 and a listener on 10.255.255.1:5432."""
    bring_up_network()
    redis_server = RedisStandIn(PRODUCTION, 6379, workdir)
    listener = ListenerStandIn(PRODUCTION, 5432)
    try:
        yield redis_server, listener
    finally:
        listener.stop()
        redis_server.stop()
