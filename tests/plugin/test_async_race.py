"""The race injector driven from an async test: coroutine triggers and injected actions."""

from __future__ import annotations

import pytest

from .shop import shop  # noqa: F401  (a fixture)
from .test_async_plugin import ASYNC_READS

pytestmark = pytest.mark.usefixtures("backend", "shop")


def test_coroutine_trigger_and_action_on_one_loop(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_race=ASYNC_READS
        + """

async def test_plain_set_fill_races(cachesync, http):
    with pytest.raises(AssertionError, match="cache-fill race on catalog:1"):
        await cachesync.race.assert_no_race_async(
            "catalog:*",
            trigger=lambda: http.get("/catalog/1"),
            during=lambda: http.put("/products/1/price", json={"price": 99}),
        )
    outcome = cachesync.race.outcomes[-1]
    assert outcome.command == "SET" and outcome.database_writes == 1
    assert b'"price": 30' in outcome.cached and b'"price": 99' in outcome.fresh


async def test_leased_fill_does_not(cachesync, http):
    outcome = await cachesync.race.assert_no_race_async(
        "product:*",
        trigger=lambda: http.get("/products/1"),
        during=lambda: http.put("/products/1/price", json={"price": 99}),
    )
    assert outcome.key == "product:1" and outcome.consistent
    assert (await read_json(http, "/products/1"))["price"] == 99


async def test_run_async_with_an_async_fresh_value(cachesync, http):
    async def fresh():
        return (await http.get("/products/1")).json()

    outcome = await cachesync.race.run_async(
        "catalog:1",
        trigger=lambda: http.get("/catalog/1"),
        during=lambda: http.put("/products/1/name", json={"name": "teapot"}),
        fresh_value=fresh,
    )
    assert outcome.fresh["name"] == "teapot" and not outcome.consistent


async def test_an_action_that_fails_fails_the_test(cachesync, http):
    async def broken():
        raise LookupError("the injected action broke")

    with pytest.raises(LookupError, match="the injected action broke"):
        await cachesync.race.run_async(
            "catalog:*", trigger=lambda: http.get("/catalog/1"), during=broken
        )


async def test_the_sync_injector_names_the_async_one(cachesync, http):
    with pytest.raises(TypeError, match=r"race.assert_no_race_async\\("):
        cachesync.race.assert_no_race(
            "catalog:*",
            trigger=lambda: http.get("/catalog/1"),
            during=lambda: http.put("/products/1/price", json={"price": 99}),
        )
    with pytest.raises(TypeError, match="use race.assert_no_race for synchronous reads"):
        await cachesync.race.assert_no_race_async(
            "catalog:*", trigger=lambda: None, during=lambda: None
        )
"""
    )
    result = pytester.runpytest("-p", "no:randomly", "-v", "-W", "error::RuntimeWarning")
    result.assert_outcomes(passed=5)


def test_a_synchronous_fill_inside_a_coroutine(pytester: pytest.Pytester) -> None:
    # A sync client called from a coroutine pauses on the loop's own thread: the action cannot
    # run on that loop, and runs on one of its own instead of deadlocking.
    pytester.makepyfile(
        test_sync_fill="""
import json

import pytest
import sqlalchemy as sa
from shop import Product

pytestmark = [pytest.mark.anyio, pytest.mark.cachesync(oracle=False)]


async def test_fill_through_the_sync_client(cachesync):
    engine = cachesync.async_engine
    async with engine.begin() as conn:
        await conn.execute(sa.insert(Product).values(id=1, name="kettle", price=30))

    async def read():
        if cachesync.redis.get("catalog:1") is None:
            async with engine.connect() as conn:
                price = (await conn.execute(sa.select(Product.price))).scalar_one()
            cachesync.redis.set("catalog:1", json.dumps(price))

    async def write():
        async with engine.begin() as conn:
            await conn.execute(sa.update(Product).values(price=99))

    with pytest.raises(AssertionError, match="cache-fill race on catalog:1"):
        await cachesync.race.assert_no_race_async("catalog:*", trigger=read, during=write)
"""
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


def test_the_action_does_not_share_the_paused_requests_context(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_context="""
import contextvars

import pytest
import sqlalchemy as sa
from shop import Product

pytestmark = [pytest.mark.anyio, pytest.mark.cachesync(oracle=False)]
REQUEST = contextvars.ContextVar("request", default="none")


async def test_fresh_context(cachesync):
    engine, redis = cachesync.async_engine, cachesync.async_redis
    async with engine.begin() as conn:
        await conn.execute(sa.insert(Product).values(id=1, name="kettle", price=30))
    seen = []

    async def read():
        REQUEST.set("the paused request")
        if await redis.get("catalog:1") is None:
            await redis.set("catalog:1", b"30")

    async def write():
        seen.append(REQUEST.get())
        async with engine.begin() as conn:
            await conn.execute(sa.update(Product).values(price=99))

    outcome = await cachesync.race.run_async(
        "catalog:*", trigger=read, during=write, fresh_value=lambda: b"99"
    )
    assert not outcome.consistent
    assert seen == ["none"]
"""
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


def test_a_trigger_that_blocks_its_loop_fails_instead_of_hanging(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_blocked="""
import asyncio
import threading

import pytest
import sqlalchemy as sa
from shop import Product

import pytest_cachesync.staleness.race as race

pytestmark = [pytest.mark.anyio, pytest.mark.cachesync(oracle=False)]


async def test_fill_on_another_loop_while_this_one_waits(cachesync, monkeypatch):
    monkeypatch.setattr(race, "LOOP_WAIT", 0.2)
    redis = cachesync.async_redis

    async def fill():
        if await redis.get("catalog:1") is None:
            await redis.set("catalog:1", b"30")

    async def trigger():
        # A synchronous wait for a fill served elsewhere: this loop is stuck until it ends.
        failures = []
        thread = threading.Thread(target=lambda: failures.append(_run(fill)))
        thread.start()
        thread.join()
        if failures[0] is not None:
            raise failures[0]

    async def write():
        raise AssertionError("never started")

    with pytest.raises(RuntimeError, match="did not start the injected action within 0.2 s"):
        await cachesync.race.run_async("catalog:*", trigger=trigger, during=write)


def _run(fill):
    try:
        asyncio.run(fill())
    except Exception as error:
        return error
    return None
"""
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)
