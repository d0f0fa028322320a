from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import update
from sqlalchemy.engine import Engine

from pytest_cachesync import RedisSpy, TtlPolicy
from pytest_cachesync.clock.reading import clock_reader
from pytest_cachesync.staleness.bypass import Bypass
from pytest_cachesync.staleness.checks import StalenessChecker

from .conftest import FakeClock, create_toy_app, lots


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    with FakeClock() as running:
        yield running


@pytest.fixture
def checker(spy: RedisSpy, bypass: Bypass) -> StalenessChecker:
    return StalenessChecker(spy, bypass)


def set_price(engine: Engine, lot_id: int, price: int) -> None:
    with engine.begin() as conn:
        conn.execute(update(lots).where(lots.c.id == lot_id).values(price=price))


def test_assert_fresh_passes_on_a_fresh_cached_read(
    redis_client: redis.Redis, checker: StalenessChecker, engine: Engine
) -> None:
    client = create_toy_app(redis_client, engine).test_client()
    client.get("/lots/1")
    answer = checker.assert_fresh(lambda: client.get("/lots/1").get_json())
    assert answer == {"id": 1, "name": "North", "price": 2}


def test_assert_fresh_fails_with_diff_keys_age_and_ttl(
    fake_redis: redis.Redis, engine: Engine, clock: FakeClock
) -> None:
    with RedisSpy(fake_redis, ["lot:*"], clock=clock) as spy:
        checker = StalenessChecker(spy, Bypass(spy))
        client = create_toy_app(fake_redis, engine).test_client()
        client.get("/lots/1")
        clock.advance(4)
        set_price(engine, 1, 7)  # behind the app's back: nothing invalidates
        with pytest.raises(AssertionError) as failure:
            checker.assert_fresh(lambda: client.get("/lots/1").get_json())
    assert str(failure.value) == (
        "stale read: the answer differs from the one computed with the cache bypassed\n"
        "--- cached\n"
        "+++ fresh\n"
        "@@ -1,5 +1,5 @@\n"
        " {\n"
        '   "id": 1,\n'
        '   "name": "North",\n'
        '-  "price": 2\n'
        '+  "price": 7\n'
        " }\n"
        "served from the cache by:\n"
        "  lot:1  (pattern lot:*, age 4 s, TTL left 6 s)"
    )


def test_assert_fresh_ignores_volatile_fields(
    redis_client: redis.Redis, checker: StalenessChecker, engine: Engine
) -> None:
    client = create_toy_app(redis_client, engine).test_client()
    client.get("/lots/1")
    set_price(engine, 1, 9)
    checker.assert_fresh(lambda: client.get("/lots/1").get_json(), ignore=["$.price"])
    checker.assert_fresh(lambda: client.get("/lots").get_json(), ignore=["price"])
    with pytest.raises(AssertionError, match="stale read"):
        checker.assert_fresh(lambda: client.get("/lots/1").get_json(), ignore=["$.name"])


def test_assert_fresh_within_the_ttl_and_not_before(
    fake_redis: redis.Redis, engine: Engine, clock: FakeClock
) -> None:
    with RedisSpy(fake_redis, ["lot:*", "lots:*"], clock=clock) as spy:
        checker = StalenessChecker(spy, Bypass(spy), clock=clock)
        client = create_toy_app(fake_redis, engine).test_client()

        def read() -> Any:
            return client.get("/lots/1").get_json()

        read()
        set_price(engine, 1, 7)
        with pytest.raises(AssertionError, match=r"^still stale 5 s later: stale read"):
            checker.assert_fresh_within(read, 5)
        # Redis serves a key until its TTL has passed by 1 ms: at exactly 10 s it is still there.
        with pytest.raises(AssertionError, match=r"age 10 s, TTL left 0 s\)$"):
            checker.assert_fresh_within(read, 5)
        assert checker.assert_fresh_within(read, 0.001)["price"] == 7
    with pytest.raises(TypeError, match="needs a clock"):
        StalenessChecker(spy, Bypass(spy.install())).assert_fresh_within(read, 1)
    with pytest.raises(ValueError, match="non-negative"):
        checker.assert_fresh_within(read, -1)


@pytest.mark.parametrize("forget", [False, True])
def test_assert_invalidated_explicit_keys(
    redis_client: redis.Redis, checker: StalenessChecker, engine: Engine, forget: bool
) -> None:
    client = create_toy_app(redis_client, engine, forget_invalidation=forget).test_client()
    client.get("/lots/1")
    if not forget:
        with checker.assert_invalidated("lot:1", "lots:*"):
            client.put("/lots/1", json={"price": 4})
        return
    with pytest.raises(AssertionError) as failure, checker.assert_invalidated("lot:1", "lots:*"):
        client.put("/lots/1", json={"price": 4})
    assert str(failure.value) == (
        "the block did not invalidate what it made stale:\n"
        "  lot:1: not invalidated\n"
        "  lots:*: not invalidated\n"
        "cache effects of the block: none"
    )


@pytest.mark.parametrize("forget", [False, True])
def test_assert_invalidated_finds_stale_keys_through_reads(
    redis_client: redis.Redis, checker: StalenessChecker, engine: Engine, forget: bool
) -> None:
    client = create_toy_app(redis_client, engine, forget_invalidation=forget).test_client()
    client.get("/lots/1")
    client.get("/lots/2")
    reads = [lambda: client.get("/lots/1"), lambda: client.get("/lots/2")]
    if not forget:
        with checker.assert_invalidated(reads=reads):
            client.put("/lots/1", json={"price": 4})
        return
    with pytest.raises(AssertionError) as failure, checker.assert_invalidated(reads=reads):
        client.put("/lots/1", json={"price": 4})
    message = str(failure.value)
    assert "  lot:1: still cached with a stale value\n" in message
    assert '"price": 2' in message
    assert '"price": 4' in message
    assert "lot:2" not in message.split("cache effects")[0]  # lot:2 did not go stale
    with pytest.raises(TypeError, match="name the keys"), checker.assert_invalidated():
        pass


def test_ttl_policy(redis_client: redis.Redis, checker: StalenessChecker) -> None:
    policy = TtlPolicy.parse("lot:*=10 lots:*=60")
    redis_client.set("lot:1", "a", ex=10)
    redis_client.set("lot:2", "b")
    redis_client.expire("lot:2", 5)  # a TTL given after the write counts
    checker.check_ttl_policy(policy)
    redis_client.set("lot:3", "c", ex=300)
    redis_client.set("lots:all", "[]")
    redis_client.set("rate_limit:x", "1")  # state keys are not held to the policy
    with pytest.raises(AssertionError) as failure:
        checker.check_ttl_policy("lot:*=10 lots:*=60")
    assert str(failure.value) == (
        "cache keys break the TTL policy:\n"
        "  lot:3: written with TTL 300 s, bound 10 s\n"
        "  lots:all: no TTL"
    )
    assert checker.keys_without_ttl() == ["lots:all"]


def test_ttl_policy_of_script_fills_reads_the_server(
    redis_client: redis.Redis, checker: StalenessChecker
) -> None:
    redis_client.eval("redis.call('SET', KEYS[1], 'v', 'EX', 60)", 1, "lot:9")
    with pytest.raises(AssertionError, match=r"lot:9: written with TTL ~60 s, bound 10 s"):
        checker.check_ttl_policy({"lot:*": 10})
    checker.check_ttl_policy({"lot:*": 60})


@pytest.mark.parametrize(
    ("value", "message"),
    [("lot:*", "not PATTERN=SECONDS"), ("lot:*=x", "not a number"), ("lot:*=0", "positive")],
)
def test_ttl_policy_refuses_bad_bounds(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TtlPolicy.parse(value)


def test_assert_fresh_within_on_the_time_travel_clock(
    redis_client: redis.Redis, spy: RedisSpy, bypass: Bypass, engine: Engine
) -> None:
    from pytest_cachesync import CacheClock

    with CacheClock(redis_client) as clock:
        spy.now = clock_reader(clock)
        checker = StalenessChecker(spy, bypass, clock=clock)
        client = create_toy_app(redis_client, engine).test_client()
        client.get("/lots/1")
        set_price(engine, 1, 7)
        with pytest.raises(AssertionError, match=r"age 9 s, TTL left (1|0\.\d+) s\)$"):
            checker.assert_fresh_within(lambda: client.get("/lots/1").get_json(), 9)
        assert checker.assert_fresh_within(lambda: client.get("/lots/1").get_json(), 1.5)
    assert clock_reader(clock)() > 0  # a stopped clock reads as wall time
