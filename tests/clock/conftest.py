"""Fixtures for the clock's tests: both Redis backends crossed with both clock engines."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import fakeredis
import pytest
import redis
from real_stores import claimed_real_redis

from pytest_cachesync import CacheClock
from pytest_cachesync.clock.engines import EngineName

START = dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.UTC)  # the tests repeat it: conftest is no module

BACKENDS = ("fakeredis", "redis")
ENGINES: tuple[EngineName, ...] = ("time-machine", "freezegun")


@pytest.fixture
def fake_redis() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture
def real_redis(request: pytest.FixtureRequest) -> redis.Redis:
    """The plugin's real keyspace, empty at the start; skipped unless a real Redis was asked for.

    Each xdist worker has a database of its own there, and concurrent sessions are refused, so
    no test flushes a database under another's feet.
    """
    return claimed_real_redis(request)


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
