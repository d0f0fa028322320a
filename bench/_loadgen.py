"""HTTP load generator, run as its own process: `python -m bench._loadgen --spec '<json>'`.

Threads with one keep-alive connection each send GETs until the request budget or the time cap
runs out, then the process prints one JSON line: per-request latencies, errors and elapsed time.
Thread i requests `paths[i % len(paths)]`; with `evict` set it first deletes the matching
`keys[i % len(keys)]` from Redis (untimed), so that every timed request is a cache miss and no two
threads share a key. In a burst every thread connects, waits for all the others, then sends one
request: as many simultaneous requests as threads.
"""

from __future__ import annotations

import argparse
import http.client
import json
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


def _worker(spec: LoadSpec, index: int, shared: _Shared) -> None:
    path = spec.paths[index % len(spec.paths)]
    evict = None
    if spec.evict_redis_url:
        import redis

        client = redis.Redis.from_url(spec.evict_redis_url)
        key = spec.keys[index % len(spec.keys)]

        def evict() -> None:
            client.delete(key)

    conn = http.client.HTTPConnection(spec.host, spec.port, timeout=30)
    if shared.start_together is not None:
        conn.connect()
        shared.start_together.wait(timeout=spec.time_cap_s)
    try:
        while shared.take():
            if evict is not None:
                evict()
            start = time.perf_counter()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(spec.host, spec.port, timeout=30)
                ok = False
            shared.record((time.perf_counter() - start) * 1000.0 if ok else None)
            if shared.start_together is not None:
                break
    finally:
        conn.close()


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
