from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import update
from sqlalchemy.engine import Engine

from pytest_cachesync import OracleClient, RedisSpy
from pytest_cachesync.staleness.bypass import Bypass
from pytest_cachesync.staleness.sql_recorder import SqlRecorder

from .conftest import FakeClock, create_toy_app, lots


def oracle_for(
    redis_client: redis.Redis,
    spy: RedisSpy,
    bypass: Bypass,
    engine: Engine,
    *,
    forget: bool = False,
    **options: object,
) -> OracleClient:
    app = create_toy_app(redis_client, engine, mode="lease", forget_invalidation=forget)
    return OracleClient(app.test_client(), spy, bypass, **options)  # type: ignore[arg-type]


def exercise(oracle: OracleClient) -> None:
    """Reads and writes a user would make: list, detail, update, read again."""
    for path in ("/lots", "/lots/1", "/lots/2", "/lots/1"):
        assert oracle.get(path).status_code == 200
    oracle.put("/lots/1", json={"price": 5})
    assert oracle.get("/lots/1").get_json()["price"] in (2, 5)
    oracle.get("/lots")
    oracle.put("/lots/2", json={"name": "South-East"})
    oracle.get("/lots/2")
    oracle.get("/lots")


def test_finds_nothing_in_a_correct_app(
    redis_client: redis.Redis, spy: RedisSpy, bypass: Bypass, engine: Engine
) -> None:
    oracle = oracle_for(redis_client, spy, bypass, engine)
    exercise(oracle)
    oracle.assert_no_stale_reads()
    assert len(oracle.checks) == 8
    assert all(c.fresh for c in oracle.checks)
    assert spy.stats()["lot:*"].hits == 1  # the cache really served a read


def test_finds_a_planted_missing_invalidation(
    redis_client: redis.Redis, spy: RedisSpy, bypass: Bypass, engine: Engine
) -> None:
    oracle = oracle_for(redis_client, spy, bypass, engine, forget=True)
    exercise(oracle)
    stale = [(c.path, c.keys) for c in oracle.violations]
    assert stale == [
        ("/lots/1", ("lot:1",)),
        ("/lots", ("lots:all",)),
        ("/lots/2", ("lot:2",)),
        ("/lots", ("lots:all",)),
    ]
    with pytest.raises(AssertionError) as failure:
        oracle.assert_no_stale_reads()
    message = str(failure.value)
    assert message.startswith("4 of 8 reads were stale beyond the allowed staleness:\n")
    assert re.search(r"\nGET /lots/1: stale for [\d.]+ s \(allowed: 0 s\)\n--- cached\n", message)
    assert re.search(r'\n-\s+"price": 2,?\n\+\s+"price": 5', message)
    assert "served from the cache by:\n  lot:1  (pattern lot:*, age " in message


def test_strict_mode_fails_at_the_stale_read(
    redis_client: redis.Redis, spy: RedisSpy, bypass: Bypass, engine: Engine
) -> None:
    oracle = oracle_for(redis_client, spy, bypass, engine, forget=True, strict=True)
    oracle.get("/lots/1")
    oracle.put("/lots/1", json={"price": 5})
    with pytest.raises(
        AssertionError, match=r"^stale read beyond the allowed staleness:\nGET /lots/1"
    ):
        oracle.get("/lots/1")


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    with FakeClock() as running:
        yield running


def test_allowed_staleness_is_measured_from_the_write(
    fake_redis: redis.Redis, engine: Engine, clock: FakeClock
) -> None:
    with (
        RedisSpy(fake_redis, ["lot:*", "lots:*"], clock=clock) as spy,
        SqlRecorder(engine, clock=clock) as sql,
    ):
        app = create_toy_app(fake_redis, engine)
        oracle = OracleClient(
            app.test_client(), spy, Bypass(spy, sql=sql), allowed_staleness=10, sql=sql
        )
        oracle.get("/lots/1")
        clock.advance(3)
        with engine.begin() as conn:  # a write behind the app's back, seen by the engine
            conn.execute(update(lots).where(lots.c.id == 1).values(price=8))
        clock.advance(4)
        oracle.get("/lots/1")
        [check] = oracle.stale
        assert (check.staleness, check.violation) == (4.0, False)
        with oracle.allowing(2):
            oracle.get("/lots/1")
        assert oracle.checks[-1].violation
        assert oracle.checks[-1].staleness == 4.0
        clock.advance(2.5)  # 9.5 s since the fill, 6.5 s since the write: still cached
        oracle.get("/lots/1")
        assert oracle.checks[-1].staleness == 6.5
        assert not oracle.checks[-1].violation
        clock.advance(0.6)  # the 10 s TTL ran out
        oracle.get("/lots/1")
        assert oracle.checks[-1].fresh
    assert len(oracle.violations) == 1


def test_ignore_list_and_bad_input(
    redis_client: redis.Redis, spy: RedisSpy, bypass: Bypass, engine: Engine
) -> None:
    oracle = oracle_for(redis_client, spy, bypass, engine, forget=True, ignore=["price"])
    oracle.get("/lots/1")
    oracle.put("/lots/1", json={"price": 5})
    oracle.get("/lots/1")
    oracle.assert_no_stale_reads()
    with pytest.raises(ValueError, match="non-negative"):
        oracle_for(redis_client, spy, bypass, engine, allowed_staleness=-1)
    with pytest.raises(TypeError, match="wraps a Flask test client"):
        OracleClient(object(), spy, bypass)
    with pytest.raises(ValueError, match="cannot read the JSON path"):
        oracle_for(redis_client, spy, bypass, engine, ignore=["$..x"])
