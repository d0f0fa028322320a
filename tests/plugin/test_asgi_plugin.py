"""asyncio apps through the plugin: a FastAPI shop on redis.asyncio and async SQLAlchemy.

Runs on the embedded default, and on the real servers when the outer run has them.
"""

from __future__ import annotations

import pytest

from .shop import shop  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("backend", "shop")


def test_oracle_flags_the_missing_invalidation_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_shop="""
        def test_price_change_is_invalidated(client):
            assert client.get("/products/1").json()["price"] == 30
            assert client.get("/products/1").json()["price"] == 30  # served by the cache
            client.put("/products/1/price", json={"price": 35})
            assert client.get("/products/1").json()["price"] == 35
            assert client.get("/catalog/1").json()["price"] == 35
            assert len(client.checks) == 4
            assert not client.violations

        def test_rename_is_not_invalidated(client):
            client.get("/products/1")
            client.put("/products/1/name", json={"name": "teapot"})
            client.get("/products/1")
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*stale read beyond the allowed staleness:",
            "*GET /products/1: stale for * (allowed: 0 s)",
            '*-    "name": "kettle",',
            '*+    "name": "teapot",',
            "*served from the cache by:",
            "*product:1  (pattern product:*, age *, TTL left *)",
        ]
    )
    assert "test_price_change_is_invalidated PASSED" in "".join(
        pytester.runpytest("-p", "no:randomly", "-v", "-k", "price").outlines
    )


def test_the_spy_counts_the_async_clients_commands(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_spy="""
        import pytest

        @pytest.mark.cachesync(oracle=False)
        def test_hits_and_fills(client, cachesync):
            client.get("/catalog/1")
            client.get("/catalog/1")
            spy = cachesync.spy
            spy.assert_missed("catalog:1")
            spy.assert_filled("catalog:1")
            spy.assert_hit("catalog:1")
            assert spy.stats()["catalog:*"].hits == 1
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


def test_the_clock_expires_keys_the_async_client_wrote(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_clock="""
        import pytest

        @pytest.mark.cachesync(oracle=False)
        def test_fill_expires(client, cachesync, cachesync_clock):
            client.get("/catalog/1")
            key = cachesync.key("catalog:1")
            assert 0 < cachesync.redis.ttl(key) <= 30
            cachesync_clock.advance(29)
            assert cachesync.redis.exists(key)
            cachesync_clock.advance(2)
            assert not cachesync.redis.exists(key)

        @pytest.mark.anyio
        async def test_async_write_expires(cachesync, cachesync_clock):
            key = cachesync.key("product:9")
            await cachesync.async_redis.set(key, b"cached", ex=10)
            cachesync_clock.advance(11)
            assert await cachesync.async_redis.get(key) is None
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_the_race_injector_flags_a_plain_async_set_fill(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_race="""
        import pytest

        pytestmark = pytest.mark.cachesync(oracle=False)

        def test_plain_fill_races(client, cachesync):
            outcome = cachesync.race.run(
                "catalog:*",
                trigger=lambda: client.get("/catalog/1"),
                during=lambda: client.put("/products/1/price", json={"price": 99}),
            )
            assert not outcome.consistent
            assert outcome.key == "catalog:1" and outcome.command == "SET"
            client.post("/products", json={"name": "mug", "price": 5})
            with pytest.raises(AssertionError, match="cache-fill race on catalog:2"):
                cachesync.race.assert_no_race(
                    "catalog:*",
                    trigger=lambda: client.get("/catalog/2"),
                    during=lambda: client.put("/products/2/price", json={"price": 7}),
                )

        def test_leased_fill_does_not(client, cachesync):
            cachesync.race.assert_no_race(
                "product:*",
                trigger=lambda: client.get("/products/1"),
                during=lambda: client.put("/products/1/price", json={"price": 99}),
            )
            assert client.get("/products/1").json()["price"] == 99
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_an_app_that_is_neither_flask_nor_asgi_is_named(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_neither="""
        import pytest

        @pytest.fixture
        def app():
            return object()

        def test_client(cachesync_client):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*returned object, neither a Flask application*ASGI one*"])


def test_a_bare_asgi_callable_is_served(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bare="""
        import json

        import pytest

        @pytest.fixture
        def app(cachesync):
            redis = cachesync.async_redis

            async def asgi(scope, receive, send):
                if scope["type"] == "lifespan":
                    while (message := await receive())["type"] != "lifespan.shutdown":
                        await send({"type": message["type"] + ".complete"})
                    await send({"type": "lifespan.shutdown.complete"})
                    return
                body = await redis.get("product:1") or b"null"
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})

            return asgi

        def test_served_from_the_cache_while_the_truth_moved_on(cachesync, cachesync_client):
            cachesync.redis.set("product:1", json.dumps({"price": 1}))
            cachesync_client.get("/")
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    # The replay misses the cache (the scratch server holds no cache keys): null, not the price.
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*GET /: stale for *", '*-  "body": {', '*+  "body": null,'])


def test_xdist_workers_keep_their_own_stores(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_isolated="""
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_starts_empty(client, cachesync, n):
            # The client fixture created product 1: an empty table and keyspace before it.
            assert cachesync.redis.dbsize() == 0 or cachesync.key_prefix
            assert not cachesync.redis.exists(cachesync.key("product:1"))
            assert client.get("/products/1").json()["price"] == 30
            client.put("/products/1/price", json={"price": 30 + n})
            assert client.get("/products/1").json()["price"] == 30 + n
            assert cachesync.redis.exists(cachesync.key("product:1"))
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "2")
    result.assert_outcomes(passed=6)
