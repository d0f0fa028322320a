"""HTTP load generator, run as its own process: `python -m bench._loadgen --spec '<json>'`.

Threads with one keep-alive connection each send GETs until the request budget or the time cap
runs out, then the process prints one JSON line: per-request latencies, errors and elapsed time.
Requests go over a plain socket with a minimal HTTP/1.1 reader: with http.client the generator's
own CPU time, on a machine it shares with the server, capped the cached figures.
Thread i requests `paths[i % len(paths)]`; with `evict` set it first deletes the matching
`keys[i % len(keys)]` from Redis (untimed), so that every timed request is a cache miss and no two
threads share a key. In a burst every thread connects, waits for all the others, then sends one
request: as many simultaneous requests as threads.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class LoadSpec:
    host: str
    port: int
    paths: list[str]
    requests: int
    concurrency: int
    time_cap_s: float
    evict_redis_url: str | None = None
    keys: list[str] = field(default_factory=list)
    burst: bool = False  # every thread sends one request, all released together

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LoadSpec:
        data: dict[str, Any] = json.loads(text)
        return cls(**data)


@dataclass
class _Shared:
    remaining: int
    deadline: float
    start_together: threading.Barrier | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0

    def take(self) -> bool:
        with self.lock:
            if self.remaining <= 0 or time.perf_counter() > self.deadline:
                return False
            self.remaining -= 1
            return True

    def record(self, latency_ms: float | None) -> None:
        with self.lock:
            if latency_ms is None:
                self.errors += 1
            else:
                self.latencies_ms.append(latency_ms)


class _KeepAliveClient:
    """GETs of one path over one keep-alive connection; each answer read to its Content-Length."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self._address = (host, port)
        self._request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
        self._sock: socket.socket | None = None
        self._buffer = b""

    def connect(self) -> None:
        if self._sock is None:
            self._sock = socket.create_connection(self._address, timeout=30)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._buffer = b""

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def get(self) -> int:
        """Send the GET and read the whole answer; its status code."""
        self.connect()
        assert self._sock is not None
        self._sock.sendall(self._request)
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self._receive()
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        status = int(head[9:12])
        length = _content_length(head)
        while len(rest) < length:
            rest += self._receive()
        self._buffer = rest[length:]
        return status

    def _receive(self) -> bytes:
        assert self._sock is not None
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ValueError("an answer without Content-Length")


def _worker(spec: LoadSpec, index: int, shared: _Shared) -> None:
    path = spec.paths[index % len(spec.paths)]
    evict = None
    if spec.evict_redis_url:
        import redis

        client = redis.Redis.from_url(spec.evict_redis_url)
        key = spec.keys[index % len(spec.keys)]

        def evict() -> None:
            client.delete(key)

    http = _KeepAliveClient(spec.host, spec.port, path)
    if shared.start_together is not None:
        http.connect()
        shared.start_together.wait(timeout=spec.time_cap_s)
    try:
        while shared.take():
            if evict is not None:
                evict()
            start = time.perf_counter()
            try:
                ok = http.get() == 200
            except (OSError, ValueError):
                http.close()
                ok = False
            shared.record((time.perf_counter() - start) * 1000.0 if ok else None)
            if shared.start_together is not None:
                break
    finally:
        http.close()


def generate(spec: LoadSpec) -> dict[str, Any]:
    if spec.evict_redis_url and not spec.keys:
        raise ValueError("evicting needs the Redis keys behind the paths")
    if spec.burst and spec.requests != spec.concurrency:
        raise ValueError("a burst sends exactly one request per thread")
    start = time.perf_counter()
    shared = _Shared(
        remaining=spec.requests,
        deadline=start + spec.time_cap_s,
        start_together=threading.Barrier(spec.concurrency) if spec.burst else None,
    )
    threads = [
        threading.Thread(target=_worker, args=(spec, index, shared), daemon=True)
        for index in range(spec.concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "latencies_ms": shared.latencies_ms,
        "errors": shared.errors,
        "elapsed_s": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="LoadSpec as JSON")
    spec = LoadSpec.from_json(parser.parse_args().spec)
    print(json.dumps(generate(spec)))


if __name__ == "__main__":
    main()
