"""valkey-py and asyncio clients wherever a redis-py client works: spy, bypass, clock, URLs."""

from __future__ import annotations

import asyncio
import datetime as dt

import fakeredis
import pytest
import redis
import valkey

from pytest_cachesync.clock.clock import CacheClock
from pytest_cachesync.clock.ttl import follows_python_clock
from pytest_cachesync.staleness.async_spy import AsyncTap
from pytest_cachesync.staleness.bypass import Bypass
from pytest_cachesync.staleness.spy import FILL, HIT, MISS, RedisSpy
from pytest_cachesync.stores.clients import redis_py_url
from pytest_cachesync.stores.targets import HostPolicy, redis_target


def effects(spy: RedisSpy) -> list[tuple[str, str, bool]]:
    return [(e.key, e.effect, e.bypassed) for e in spy.effects]


def test_the_spy_observes_a_fake_valkey_client() -> None:
    client = fakeredis.FakeValkey(server=fakeredis.FakeServer())
    assert isinstance(client, valkey.Valkey)
    assert not isinstance(client, redis.Redis)
    with RedisSpy(client, "lot:*") as spy:
        client.get("lot:1")
        client.set("lot:1", b"v", ex=10)
        client.get("lot:1")
        pipe = client.pipeline()
        pipe.get("lot:1").delete("lot:1")
        pipe.execute()
    assert effects(spy)[:3] == [
        ("lot:1", MISS, False),
        ("lot:1", FILL, False),
        ("lot:1", HIT, False),
    ]
    assert spy.keys["lot:1"].ttl == 10
    assert spy.stats()["lot:*"].invalidations == 1


def test_the_clock_takes_valkey_clients() -> None:
    client = fakeredis.FakeValkey(server=fakeredis.FakeServer())
    assert follows_python_clock(client)
    with CacheClock(client, start_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)) as clock:
        client.set("k", b"v", ex=5)
        clock.advance(4)
        assert client.get("k") == b"v"
        clock.advance(2)
        assert client.get("k") is None


def test_the_clock_names_what_to_pass_for_an_asyncio_client() -> None:
    with pytest.raises(TypeError, match="for an asyncio client pass a synchronous one"):
        CacheClock(fakeredis.FakeAsyncRedis())


def test_valkey_urls_are_accepted_and_spoken_as_redis() -> None:
    local = HostPolicy()
    assert redis_target("valkey://127.0.0.1:6379/3", local).db == 3
    assert redis_target("valkeys://127.0.0.1:6380/0", local).port == 6380
    assert redis_py_url("valkeys://u:p@127.0.0.1:1/2") == "rediss://u:p@127.0.0.1:1/2"
    assert redis_py_url("redis://127.0.0.1/2") == "redis://127.0.0.1/2"
    pool = redis_target("valkey://127.0.0.1:6390/3", local).pool(5)
    assert pool.connection_kwargs["db"] == 5
    assert pool.connection_kwargs["port"] == 6390


@pytest.mark.parametrize("make", [fakeredis.FakeAsyncRedis, fakeredis.FakeAsyncValkey])
def test_an_asyncio_client_feeds_the_same_spy(make: type) -> None:
    server = fakeredis.FakeServer()
    sync = fakeredis.FakeRedis(server=server)
    aio = make(server=server)
    spy = RedisSpy(sync, "lot:*").install()
    tap = AsyncTap(spy, aio).install()
    bypass = Bypass(spy)

    async def scenario() -> object:
        await aio.get("lot:1")
        await aio.set("lot:1", b"cached", ex=10)
        sync.get("lot:1")
        async with aio.pipeline() as pipe:
            pipe.get("lot:1")
            await pipe.execute()
        with bypass.active():
            await aio.get("lot:1")  # the scratch server holds no cache keys
            await aio.set("lot:1", b"fresh")
        return await aio.get("lot:1")

    try:
        assert asyncio.run(scenario()) == b"cached"
    finally:
        tap.uninstall()
        spy.uninstall()
    assert effects(spy) == [
        ("lot:1", MISS, False),
        ("lot:1", FILL, False),
        ("lot:1", HIT, False),
        ("lot:1", HIT, False),
        ("lot:1", MISS, True),
        ("lot:1", FILL, True),
        ("lot:1", HIT, False),
    ]
    assert bypass.scratch_value("lot:1") == b"fresh"
    assert "execute_command" not in aio.__dict__


def test_the_tap_refuses_a_synchronous_client() -> None:
    client = fakeredis.FakeRedis()
    with pytest.raises(TypeError, match="asyncio tap wraps"):
        AsyncTap(RedisSpy(client, "lot:*"), client)
