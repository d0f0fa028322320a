"""TTLs follow the clock, on fakeredis and on a real server alike."""

from __future__ import annotations

import datetime as dt

import fakeredis
import pytest
import redis
from real_stores import NO_REAL_REDIS, real_redis_requested
from reliability.redis_server import redis_server_binary, throwaway_redis

from pytest_cachesync import CacheClock
from pytest_cachesync.clock.engines import EngineName, create_engine

START = dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.UTC)  # where the `clock` fixture starts


def test_backend_is_detected(clock: CacheClock, backend: str) -> None:
    assert clock.server_follows_python_clock is (backend == "fakeredis")


def test_ten_second_ttl_expires_after_advance_10(
    clock: CacheClock, redis_client: redis.Redis
) -> None:
    redis_client.set("user:1", "alice", ex=10)
    clock.advance(10)
    assert redis_client.get("user:1") is None


def test_ten_second_ttl_survives_advance_9_9(clock: CacheClock, redis_client: redis.Redis) -> None:
    redis_client.set("user:1", "alice", ex=10)
    clock.advance(9.9)
    assert redis_client.get("user:1") == b"alice"
    assert 0 < redis_client.pttl("user:1") <= 100


def test_ttl_expires_in_small_steps(clock: CacheClock, redis_client: redis.Redis) -> None:
    redis_client.set("user:1", "alice", ex=10)
    for _ in range(9):
        clock.advance(dt.timedelta(seconds=1.1))
    assert redis_client.get("user:1") == b"alice"
    clock.advance(0.1)
    assert redis_client.get("user:1") is None


def test_px_and_pexpire_are_followed_to_the_millisecond(
    clock: CacheClock, redis_client: redis.Redis, backend: str
) -> None:
    redis_client.set("a", 1, px=1500)
    redis_client.set("b", 1)
    redis_client.pexpire("b", 250)
    clock.advance(0.2)
    clock.advance(0.03)
    # A real server keeps counting down in real time while the clock is frozen, so it is only
    # expected to match to within the few milliseconds the test itself takes.
    slack = 0 if backend == "fakeredis" else 15
    assert 20 - slack <= redis_client.pttl("b") <= 20
    clock.advance(0.02)
    assert redis_client.get("b") is None
    assert 1250 - slack <= redis_client.pttl("a") <= 1250
    clock.advance(1.249)
    if backend == "fakeredis":
        assert redis_client.pttl("a") == 1
    clock.advance(0.001)
    assert redis_client.get("a") is None


def test_keys_without_ttl_are_untouched(clock: CacheClock, redis_client: redis.Redis) -> None:
    redis_client.set("config", "v1")
    redis_client.hset("hash", "f", "v")
    clock.advance(dt.timedelta(days=400))
    clock.advance(-dt.timedelta(days=800))
    assert redis_client.get("config") == b"v1"
    assert redis_client.hget("hash", "f") == b"v"
    assert redis_client.ttl("config") == -1
    assert redis_client.ttl("hash") == -1


def test_every_type_with_a_ttl_follows(clock: CacheClock, redis_client: redis.Redis) -> None:
    redis_client.hset("h", "f", "v")
    redis_client.rpush("l", "x")
    redis_client.zadd("z", {"m": 1.0})
    for key in ("h", "l", "z"):
        redis_client.expire(key, 60)
    clock.advance(60)
    assert redis_client.exists("h", "l", "z") == 0


def test_keys_written_while_frozen_get_the_ttl_asked_for(
    clock: CacheClock, redis_client: redis.Redis
) -> None:
    clock.advance(3600)
    redis_client.set("session:1", "s", ex=43200)
    assert redis_client.ttl("session:1") == 43200
    clock.advance(dt.timedelta(hours=12) - dt.timedelta(seconds=1))
    assert redis_client.get("session:1") == b"s"
    clock.advance(1)
    assert redis_client.get("session:1") is None


def test_move_to_is_advance_by_the_difference(clock: CacheClock, redis_client: redis.Redis) -> None:
    redis_client.set("daily:2024-03-01", 5, ex=60)
    assert clock.move_to("2024-03-01T08:00:59.9Z") == START + dt.timedelta(seconds=59.9)
    assert redis_client.get("daily:2024-03-01") == b"5"
    clock.move_to(dt.datetime(2024, 3, 2))
    assert clock.now() == dt.datetime(2024, 3, 2, tzinfo=dt.UTC)
    assert redis_client.get("daily:2024-03-01") is None


def test_moving_back_makes_ttls_longer(clock: CacheClock, redis_client: redis.Redis) -> None:
    redis_client.set("k", 1, ex=10)
    clock.advance(-5)
    assert 14_900 < redis_client.pttl("k") <= 15_000
    clock.advance(14.9)
    assert redis_client.get("k") == b"1"
    clock.advance(0.1)
    assert redis_client.get("k") is None


def test_keys_gone_stay_gone_when_moving_back(clock: CacheClock, redis_client: redis.Redis) -> None:
    redis_client.set("never-read", 1, ex=10)
    clock.advance(10)
    clock.advance(-10)
    assert redis_client.get("never-read") is None
    clock.move_to(START - dt.timedelta(days=1))
    assert redis_client.exists("never-read") == 0


def test_backwards_then_forwards_round_trip(clock: CacheClock, redis_client: redis.Redis) -> None:
    redis_client.set("k", 1, ex=100)
    clock.move_to(START - dt.timedelta(hours=1))
    clock.move_to(START + dt.timedelta(seconds=99.9))
    assert redis_client.get("k") == b"1"
    clock.advance(0.1)
    assert redis_client.get("k") is None


def test_keys_set_before_start_follow_the_jump_to_the_start(
    redis_client: redis.Redis, engine: EngineName
) -> None:
    redis_client.set("early", 1, ex=10)
    with CacheClock(redis_client, engine=engine, start_at=START):
        # START lies in the past, so the key now has the distance travelled back added to its TTL.
        assert redis_client.pttl("early") > 10_000 + 86_400_000


def test_stop_brings_the_keyspace_back_to_real_time(
    redis_client: redis.Redis, engine: EngineName
) -> None:
    with CacheClock(redis_client, engine=engine, start_at="2001-01-01"):
        redis_client.set("old", 1, ex=3600)
        redis_client.set("kept", 1)
    assert redis_client.get("old") is None
    assert redis_client.get("kept") == b"1"


def test_other_databases_of_a_real_server_are_untouched(
    request: pytest.FixtureRequest, engine: EngineName
) -> None:
    # Two databases of one server: a server of the test's own, on a free port, so that no
    # database of a shared server is written outside the plugin's claims.
    if not real_redis_requested(request.config):
        pytest.skip(NO_REAL_REDIS)
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("redis-server is not installed")
    with throwaway_redis(binary) as server:
        moved = redis.Redis(host="127.0.0.1", port=server.port, db=0)
        other = redis.Redis(host="127.0.0.1", port=server.port, db=1)
        try:
            other.set("other-db", 1, ex=100)
            with CacheClock(moved, engine=engine, start_at=START) as clock:
                clock.advance(50)
            assert 99_000 < other.pttl("other-db") <= 100_000
        finally:
            moved.close()
            other.close()


@pytest.mark.parametrize("engine_name", ["time-machine", "freezegun"])
def test_fakeredis_reads_pythons_clock(engine_name: EngineName) -> None:
    """fakeredis follows a travelled clock with no help: the engine alone, no CacheClock."""
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    engine = create_engine(engine_name)
    engine.start(START.timestamp(), tick=False)
    try:
        client.set("k", 1, ex=10)
        engine.shift(9.9)
        assert client.pttl("k") == 100
        engine.shift(0.2)
        assert client.get("k") is None
    finally:
        engine.stop()


@pytest.mark.parametrize("engine_name", ["time-machine", "freezegun"])
def test_fakeredis_alone_revives_an_unread_key_when_time_goes_back(
    engine_name: EngineName,
) -> None:
    """Why the clock removes due keys on fakeredis: left alone, an expired key that nobody read
    comes back when the clock moves back, which a real server never does."""
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    engine = create_engine(engine_name)
    engine.start(START.timestamp(), tick=False)
    try:
        client.set("k", 1, ex=10)
        engine.shift(11)
        engine.shift(-11)
        assert client.get("k") == b"1"
    finally:
        engine.stop()


def test_fakeredis_keeps_a_key_at_its_exact_expiry_instant(fake_redis: fakeredis.FakeRedis) -> None:
    """fakeredis expires a key strictly after its expiry instant; the clock removes it at the
    instant, so that advance(ttl) reads nil on both backends."""
    engine = create_engine("time-machine")
    engine.start(START.timestamp(), tick=False)
    try:
        fake_redis.set("k", 1, ex=10)
        engine.shift(10)
        assert fake_redis.get("k") == b"1"
    finally:
        engine.stop()
