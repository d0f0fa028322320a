"""A clock confined to a key prefix moves only the TTLs under it on a real server."""

from __future__ import annotations

import datetime as dt

import fakeredis
import pytest
import redis

from pytest_cachesync import CacheClock
from pytest_cachesync.clock.engines import EngineName
from pytest_cachesync.clock.ttl import glob_for_prefix

START = dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.UTC)


def test_keys_outside_the_prefix_keep_their_ttl_on_a_real_server(
    real_redis: redis.Redis, engine: EngineName
) -> None:
    real_redis.set("other-test:user:1", 1, ex=100)
    with CacheClock(real_redis, prefix="gw0:", engine=engine, start_at=START) as clock:
        real_redis.set("gw0:user:1", 1, ex=10)
        clock.advance(10)
        assert real_redis.get("gw0:user:1") is None
        assert real_redis.get("other-test:user:1") == b"1"
    # START is in the past: entering and leaving it moved the TTLs under the prefix only.
    assert 99_000 < real_redis.pttl("other-test:user:1") <= 100_000


def test_prefix_with_glob_characters_matches_literally(
    real_redis: redis.Redis, engine: EngineName
) -> None:
    real_redis.set("t[1]*:k", 1, ex=10)
    real_redis.set("t1x:k", 1, ex=10)
    with CacheClock(real_redis, prefix="t[1]*:", engine=engine, start_at=START) as clock:
        clock.advance(-3600)
        assert real_redis.ttl("t[1]*:k") > 3600
        assert real_redis.ttl("t1x:k") <= 10


def test_on_fakeredis_every_key_reads_the_same_python_clock(engine: EngineName) -> None:
    """A fake server has no clock of its own, so keys outside the prefix age with Python's time."""
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    with CacheClock(client, prefix="gw0:", engine=engine, start_at=START) as clock:
        client.set("gw0:k", 1, ex=10)
        client.set("outside:k", 1, ex=10)
        clock.advance(9)
        assert client.ttl("outside:k") == 1
        clock.advance(1.001)
        assert client.get("gw0:k") is None
        assert client.get("outside:k") is None


@pytest.mark.parametrize(
    ("prefix", "pattern"),
    [
        ("", b"*"),
        ("app:", b"app:*"),
        (b"a*b?", b"a\\*b\\?*"),
        ("x[y]\\", b"x\\[y\\]\\\\*"),
    ],
)
def test_glob_for_prefix(prefix: str | bytes, pattern: bytes) -> None:
    assert glob_for_prefix(prefix) == pattern
