from __future__ import annotations

import re

import pytest
import redis
from sqlalchemy import text
from sqlalchemy.engine import Engine

from pytest_cachesync import RedisSpy
from pytest_cachesync.staleness.commands import Kind, TtlEffect, parse_command
from pytest_cachesync.staleness.patterns import KeyClassifier, parse_patterns
from pytest_cachesync.staleness.sql_recorder import SqlRecorder

from .conftest import CACHE_PATTERNS, FILL_IF_LEASED


def test_patterns_split_ini_values_and_classify_with_prefix() -> None:
    assert parse_patterns("users:* user:*,\n parking_lot*") == ("users:*", "user:*", "parking_lot*")
    classifier = KeyClassifier("users:* user:* parking_lot*", prefix="cachesync:gw3:")
    assert classifier.pattern_for("cachesync:gw3:user:1") == "user:*"
    assert classifier.pattern_for(b"cachesync:gw3:parking_lots:all") == "parking_lot*"
    assert classifier.pattern_for("cachesync:gw3:user_session:abc") is None
    assert classifier.pattern_for("rate_limit:1.2.3.4") is None


def test_command_table_reads_ttls_and_script_keys() -> None:
    set_ex = parse_command(("SET", "user:1", "v", "EX", 10))
    assert (set_ex.kind, set_ex.ttl, set_ex.ttl_effect) == (Kind.WRITE, 10.0, TtlEffect.SET)
    lease = parse_command(("SET", "user:1", "L:t", "NX", "PX", 5000))
    assert lease.conditional
    assert lease.ttl == 5.0
    assert parse_command(("PSETEX", "k", 1500, "v")).ttl == 1.5
    assert parse_command(("EXPIRE", "k", 0)).kind is Kind.DELETE
    script = parse_command(("EVALSHA", "abc", 2, "a", "b", "x"))
    assert script.keys == ("a", "b")
    assert script.kind is Kind.SCRIPT
    assert parse_command(("SET", "k", "v")).ttl_effect is TtlEffect.CLEARED


def test_counts_hits_misses_fills_invalidations_and_leases(
    spy: RedisSpy, redis_client: redis.Redis
) -> None:
    redis_client.get("lot:1")
    redis_client.execute_command("SETEX", "lot:1", 10, "v")
    redis_client.get("lot:1")
    redis_client.set("lot:2", "L:token", nx=True, px=5000)
    redis_client.get("lot:2")  # a lease is no cached value
    redis_client.delete("lot:1")
    redis_client.incr("rate_limit:x")  # state, not cache
    stats = spy.stats()["lot:*"]
    assert (stats.hits, stats.misses, stats.fills, stats.invalidations, stats.leases) == (
        1, 2, 1, 1, 1,
    )  # fmt: skip
    assert spy.commands_total == 7
    assert spy.stats()["lots:*"].hits == 0


def test_pipelines_transactions_and_scripts_are_observed(
    spy: RedisSpy, redis_client: redis.Redis
) -> None:
    with redis_client.pipeline(transaction=True) as pipe:
        pipe.set("lots:all", "[]", ex=10).get("lot:9").incr("daily_x")
        assert pipe.execute() == [True, None, 1]
    with redis_client.pipeline(transaction=False) as pipe:
        pipe.get("lots:all").delete("lots:all")
        pipe.execute()
    fill = redis_client.register_script(FILL_IF_LEASED)
    redis_client.set("lot:3", "L:me", nx=True)
    assert fill(keys=["lot:3"], args=["L:me", "value", 10]) == 1
    assert redis_client.eval("return redis.call('GET', KEYS[1])", 1, "lot:3") == b"value"
    lots, lot = spy.stats()["lots:*"], spy.stats()["lot:*"]
    assert (lots.fills, lots.hits, lots.invalidations) == (1, 1, 1)
    assert (lot.misses, lot.leases, lot.fills, lot.hits) == (1, 1, 1, 1)
    assert spy.keys["lot:3"].fills == 1


def test_uninstall_restores_the_instance_exactly(redis_client: redis.Redis) -> None:
    before = dict(redis_client.__dict__)
    spy = RedisSpy(redis_client, CACHE_PATTERNS).install()
    assert "execute_command" in redis_client.__dict__
    with pytest.raises(RuntimeError, match="already observes"):
        RedisSpy(redis_client, CACHE_PATTERNS).install()
    spy.uninstall()
    assert redis_client.__dict__ == before
    redis_client.get("lot:1")
    assert spy.events == []


def test_spy_refuses_what_is_not_a_redis_client() -> None:
    with pytest.raises(TypeError, match=r"wraps a redis\.Redis instance, got dict"):
        RedisSpy({}, CACHE_PATTERNS)  # type: ignore[arg-type]


def test_hit_missed_filled_invalidated_pass_and_fail_messages(
    spy: RedisSpy, redis_client: redis.Redis
) -> None:
    redis_client.get("lot:1")
    redis_client.execute_command("SETEX", "lot:1", 10, "v")
    spy.assert_missed("lot:1")
    spy.assert_filled("lot:*")
    with pytest.raises(AssertionError) as failure:
        spy.assert_hit("lot:1")
    assert str(failure.value) == (
        "expected 'lot:1' to be served from the cache (hit), but it was not.\n"
        "What happened to it:\n"
        "  miss         lot:1 (GET)\n"
        "  fill         lot:1 (SETEX)"
    )
    with pytest.raises(AssertionError, match=r"'lots:\*' to be invalidated.*\nNo command touched"):
        spy.assert_invalidated("lots:*")


def test_commands_at_most_lists_the_commands(spy: RedisSpy, redis_client: redis.Redis) -> None:
    redis_client.get("lot:1")
    redis_client.set("lot:1", "x", ex=5)
    spy.assert_commands_at_most(2)
    with pytest.raises(AssertionError) as failure:
        spy.assert_commands_at_most(1)
    assert str(failure.value) == (
        "expected at most 1 Redis commands, 2 were sent:\n    1. GET lot:1\n    2. SET lot:1 x EX 5"
    )


def test_sql_at_most_lists_the_statements(engine: Engine) -> None:
    with SqlRecorder(engine) as sql:
        with engine.begin() as conn:
            conn.execute(text("SELECT price FROM lots WHERE id = :id"), {"id": 1})
            conn.execute(text("UPDATE lots SET price = 5 WHERE id = 1"))
        sql.assert_at_most(2)
        assert len(sql.write_times) == 1
        with pytest.raises(AssertionError) as failure:
            sql.assert_at_most(1)
    message = str(failure.value)
    assert message.startswith("expected at most 1 SQL statements, 2 ran:\n")
    assert re.search(r"1\. SELECT price FROM lots WHERE id = \?  \(1,\)", message)
    assert "2. UPDATE lots SET price = 5 WHERE id = 1" in message
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert sql.count == 2  # uninstalled
