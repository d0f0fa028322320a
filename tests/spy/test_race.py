from __future__ import annotations

import json

import pytest
import redis
from sqlalchemy.engine import Engine

from pytest_cachesync import RaceInjector, RedisSpy
from pytest_cachesync.staleness.bypass import Bypass
from pytest_cachesync.staleness.sql_recorder import SqlRecorder

from .conftest import create_toy_app


@pytest.fixture
def injector(spy: RedisSpy, bypass: Bypass, sql: SqlRecorder) -> RaceInjector:
    return RaceInjector(spy, bypass, sql=sql)


def test_detects_the_cache_aside_race_of_a_naive_fill(
    redis_client: redis.Redis, injector: RaceInjector, engine: Engine
) -> None:
    client = create_toy_app(redis_client, engine, mode="naive").test_client()
    with pytest.raises(AssertionError) as failure:
        injector.assert_no_race(
            "lot:1",
            trigger=lambda: client.get("/lots/1"),
            during=lambda: client.put("/lots/1", json={"price": 9}),
        )
    assert str(failure.value) == (
        "cache-fill race on lot:1: the fill (SETEX) paused after its database read wrote a "
        "value that is not the database's any more\n"
        '  cached: {"id": 1, "name": "North", "price": 2}\n'
        '  fresh:  {"id": 1, "name": "North", "price": 9}'
    )
    [outcome] = injector.outcomes
    assert outcome.database_writes == 1
    assert client.get("/lots/1").get_json()["price"] == 2  # the app now serves the stale value


def test_finds_no_race_in_a_lease_guarded_fill(
    redis_client: redis.Redis, injector: RaceInjector, engine: Engine
) -> None:
    client = create_toy_app(redis_client, engine, mode="lease").test_client()
    outcome = injector.assert_no_race(
        "lot:*",
        trigger=lambda: client.get("/lots/1"),
        during=lambda: client.put("/lots/1", json={"price": 9}),
    )
    assert outcome.key == "lot:1"
    assert outcome.command == "EVALSHA"
    assert outcome.cached is None  # the DEL killed the lease, the stale fill was dropped
    # Without interference the lease-guarded fill stores the database's value.
    client.get("/lots/1")
    assert json.loads(redis_client.get("lot:1"))["price"] == 9  # type: ignore[arg-type]


def test_fresh_value_function_and_misuse(
    redis_client: redis.Redis, injector: RaceInjector, engine: Engine
) -> None:
    client = create_toy_app(redis_client, engine, mode="naive").test_client()
    outcome = injector.run(
        "lot:2",
        trigger=lambda: client.get("/lots/2"),
        during=lambda: client.put("/lots/1", json={"price": 9}),  # another lot: no race
        fresh_value=lambda: json.dumps({"id": 2, "name": "South", "price": 3}).encode(),
    )
    assert outcome.consistent
    with pytest.raises(AssertionError, match="no fill of 'lot:2' arrived after a miss"):
        injector.run("lot:2", lambda: client.get("/lots/2"), lambda: None)  # now cached: a hit
    with pytest.raises(AssertionError, match="committed no database write"):
        injector.run("lot:1", lambda: client.get("/lots/1"), lambda: client.get("/lots/2"))
