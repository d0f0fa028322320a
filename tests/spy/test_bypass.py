from __future__ import annotations

import pytest
import redis
from sqlalchemy.engine import Engine

from pytest_cachesync import RedisSpy
from pytest_cachesync.staleness.bypass import Bypass
from pytest_cachesync.staleness.sql_recorder import SqlRecorder

from .conftest import create_toy_app


def snapshot(client: redis.Redis) -> dict[bytes, tuple[bytes, int]]:
    """Every key's serialized value and absolute expiry: byte-for-byte state of the keyspace."""
    return {
        key: (client.dump(key), client.pexpiretime(key))  # type: ignore[misc]
        for key in client.scan_iter(count=1000)
    }


def test_bypassed_requests_leave_redis_byte_for_byte_unchanged(
    redis_client: redis.Redis, spy: RedisSpy, bypass: Bypass, engine: Engine
) -> None:
    app = create_toy_app(redis_client, engine, mode="lease")
    client = app.test_client()
    client.get("/lots/1")
    client.get("/lots")
    redis_client.hset("user_session:abc", mapping={"user": "1"})
    redis_client.expire("user_session:abc", 600)
    before = snapshot(redis_client)
    assert {b"lot:1", b"lots:all", b"rate_limit:127.0.0.1", b"user_session:abc"} <= set(before)

    mark = len(spy.events)
    fresh = bypass.run(lambda: (client.get("/lots/1"), client.get("/lots/2"), client.get("/lots")))
    replayed = spy.events[mark:]
    assert [r.status_code for r in fresh] == [200, 200, 200]
    assert snapshot(redis_client) == before
    assert replayed
    assert all(e.bypassed for e in replayed)
    # The replay missed every cache key (none were copied) and saw the state keys.
    assert sorted(bypass.copied) == ["rate_limit:127.0.0.1", "user_session:abc"]
    scratch = bypass.scratch
    assert scratch is not None
    assert scratch.get("rate_limit:127.0.0.1") == b"5"  # 2 real requests + 3 replayed
    assert 0 < scratch.ttl("user_session:abc") <= 600
    assert scratch.get("lot:2") is not None  # the replay's fill landed on the scratch server


def test_bypassed_reads_do_not_count_in_figures_or_sql(
    redis_client: redis.Redis, spy: RedisSpy, bypass: Bypass, sql: SqlRecorder, engine: Engine
) -> None:
    client = create_toy_app(redis_client, engine).test_client()
    client.get("/lots/1")
    statements, stats = sql.count, spy.stats()["lot:*"]
    bypass.run(lambda: client.get("/lots/1"))
    assert sql.count == statements
    assert spy.stats()["lot:*"] == stats


def test_bypass_needs_an_installed_spy(fake_redis: redis.Redis) -> None:
    with pytest.raises(RuntimeError, match="install the spy"):
        Bypass(RedisSpy(fake_redis, ["lot:*"]))
    spy = RedisSpy(fake_redis, ["lot:*"]).install()
    with pytest.raises(RuntimeError, match="nothing ran bypassed yet"):
        Bypass(spy).scratch_value("lot:1")


def test_bypass_under_a_key_prefix_with_decoded_responses() -> None:
    import fakeredis

    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    client.set("other:lot:1", "not this test's")
    client.set("gw1:lot:1", "cached", ex=10)
    client.zadd("gw1:rate_limit:w", {"a": 1.5, "b": 2})
    client.rpush("gw1:daily_log", "x", "y")
    client.sadd("gw1:active_users", "1")
    with RedisSpy(client, ["lot:*"], prefix="gw1:") as spy:
        bypass = Bypass(spy)
        seen = bypass.run(
            lambda: (
                client.get("gw1:lot:1"),
                client.zrange("gw1:rate_limit:w", 0, -1, withscores=True),
                client.lrange("gw1:daily_log", 0, -1),
                client.smembers("gw1:active_users"),
            )
        )
    assert seen == (None, [("a", 1.5), ("b", 2.0)], ["x", "y"], {"1"})
    assert sorted(bypass.copied) == ["gw1:active_users", "gw1:daily_log", "gw1:rate_limit:w"]
    assert (spy.effects[-1].key, spy.effects[-1].effect) == ("lot:1", "miss")


def test_a_bypass_reroutes_only_its_own_thread(redis_client: redis.Redis, spy: RedisSpy) -> None:
    # A threaded app keeps serving other requests while one GET is replayed: their commands
    # (invalidations included) must still reach the real server.
    import threading

    import fakeredis

    scratch = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    inside, written = threading.Event(), threading.Event()

    def other_request() -> None:
        inside.wait(timeout=5)
        redis_client.set("parking_lot:1", "from another thread")
        written.set()

    worker = threading.Thread(target=other_request)
    worker.start()
    with spy.routed_to(scratch):
        redis_client.set("parking_lot:2", "replayed")
        inside.set()
        assert written.wait(timeout=5)
    worker.join(timeout=5)
    assert spy.routed is False
    assert redis_client.get("parking_lot:1") == b"from another thread"
    assert scratch.get("parking_lot:1") is None
    assert (redis_client.get("parking_lot:2"), scratch.get("parking_lot:2")) == (None, b"replayed")
