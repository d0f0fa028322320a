"""Fixtures for the clock's tests: both Redis backends crossed with both clock engines."""

from __future__ import annotations

import datetime as dt
import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest
import redis

from pytest_cachesync import CacheClock
from pytest_cachesync.clock.engines import EngineName

REAL_REDIS_URL = "redis://127.0.0.1:6379/6"
START = dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.UTC)  # the tests repeat it: conftest is no module

BACKENDS = ("fakeredis", "redis")
ENGINES: tuple[EngineName, ...] = ("time-machine", "freezegun")


@pytest.fixture
def fake_redis() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture
def real_redis() -> Iterator[redis.Redis]:
    """db 6 of the local server, empty at the start of the test.

    A file lock serialises the tests that use it, so that pytest-xdist workers never flush the
    database under each other's feet.
    """
    client = redis.Redis.from_url(REAL_REDIS_URL, socket_connect_timeout=1, socket_timeout=5)
    try:
        client.ping()
    except redis.ConnectionError as error:
        client.close()
        pytest.skip(f"real Redis at {REAL_REDIS_URL} is unreachable: {error}")
    lock_path = Path(tempfile.gettempdir()) / "pytest-cachesync-clock-redis-db6.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            client.flushdb()
            yield client
        finally:
            client.flushdb()
            client.close()
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def redis_client(request: pytest.FixtureRequest, backend: str) -> redis.Redis:
    fixture = "fake_redis" if backend == "fakeredis" else "real_redis"
    client: redis.Redis = request.getfixturevalue(fixture)
    return client


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> EngineName:
    name: EngineName = request.param
    return name


@pytest.fixture
def clock(redis_client: redis.Redis, engine: EngineName) -> Iterator[CacheClock]:
    """A frozen clock at START on the test's backend and engine."""
    with CacheClock(redis_client, engine=engine, start_at=START) as running:
        yield running
