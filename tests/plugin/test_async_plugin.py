"""The async assertions, the AsyncEngine's isolation and asyncio client routing, via pytester."""

from __future__ import annotations

import pytest

from .conftest import Backend
from .shop import shop  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("backend", "shop")

ASYNC_READS = """
import httpx
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.cachesync(oracle=False)]


@pytest.fixture
async def http(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as http:
        assert (await http.post("/products", json={"name": "kettle", "price": 30})).json() == {
            "id": 1
        }
        yield http


async def read_json(http, path):
    return (await http.get(path)).json()
"""


def test_async_assertions(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_async=ASYNC_READS
        + """

async def test_fresh_after_a_correct_write(cachesync, http):
    read = lambda: read_json(http, "/products/1")
    await read()
    await http.put("/products/1/price", json={"price": 35})
    assert (await cachesync.assert_fresh_async(read))["price"] == 35


async def test_stale_after_the_planted_bug(cachesync, http):
    read = lambda: read_json(http, "/products/1")
    await read()
    await http.put("/products/1/name", json={"name": "teapot"})
    await cachesync.assert_fresh_async(read)


async def test_invalidated(cachesync, http):
    await read_json(http, "/catalog/1")
    async with cachesync.assert_invalidated_async("catalog:1"):
        await http.put("/products/1/price", json={"price": 35})


async def test_not_invalidated(cachesync, http):
    await read_json(http, "/products/1")
    async with cachesync.assert_invalidated_async(
        reads=[lambda: read_json(http, "/products/1")]
    ):
        await http.put("/products/1/name", json={"name": "teapot"})


async def test_fresh_within(cachesync, cachesync_clock, http):
    read = lambda: read_json(http, "/products/1")
    await read()
    await http.put("/products/1/name", json={"name": "teapot"})
    assert (await cachesync.assert_fresh_within_async(read, 31))["name"] == "teapot"
"""
    )
    result = pytester.runpytest("-p", "no:randomly", "-v")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_fresh_after_a_correct_write PASSED*",
            "*test_stale_after_the_planted_bug FAILED*",
            "*test_invalidated PASSED*",
            "*test_not_invalidated FAILED*",
            "*test_fresh_within PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(["*stale read: the answer differs*", '*+  "name": "teapot",'])
    result.stdout.fnmatch_lines(["*product:1: still cached with a stale value"])


def test_assert_invalidated_async_without_async_with_fails_the_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_forgot=ASYNC_READS
        + """

async def test_bare_call(cachesync, http):
    await read_json(http, "/catalog/1")
    cachesync.assert_invalidated_async("catalog:1")
    await http.put("/products/1/name", json={"name": "teapot"})


async def test_kept_but_not_entered(cachesync, http):
    check = cachesync.assert_invalidated_async(reads=[lambda: read_json(http, "/products/1")])
    await http.put("/products/1/name", json={"name": "teapot"})
    assert check is not None


async def test_misused_blocks_say_how(cachesync, http):
    with pytest.raises(TypeError, match=r"not awaitable: write `async with cachesync.assert_"):
        await cachesync.assert_invalidated_async("catalog:1")
    with pytest.raises(TypeError, match="is not a `with` block"):
        with cachesync.assert_invalidated_async("catalog:1"):
            pass
    block = cachesync.assert_invalidated_async("catalog:*")
    async with block:
        await http.put("/products/1/price", json={"price": 35})
    with pytest.raises(RuntimeError, match="one `async with` statement only"):
        async with block:
            pass
"""
    )
    result = pytester.runpytest("-p", "no:randomly", "-v")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_bare_call*",
            "*checks the block of a `with` statement; these calls had none*",
            "*  assert_invalidated_async('catalog:1')",
            "*ERROR at teardown of test_kept_but_not_entered*",
            "*  assert_invalidated_async(reads=?...?)",
        ]
    )
    assert "test_misused_blocks_say_how PASSED" in result.stdout.str()


def test_sync_assertions_refuse_coroutine_functions(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_refused=ASYNC_READS
        + """
import warnings


async def test_coroutine_function(cachesync, http):
    async def read():
        return await read_json(http, "/products/1")

    with pytest.raises(TypeError, match=r"assert_fresh_async\\("):
        cachesync.assert_fresh(read)
    with pytest.raises(TypeError, match=r"assert_fresh_within_async\\("):
        cachesync.assert_fresh_within(read, 5)


async def test_lambda_returning_a_coroutine(cachesync, http):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a coroutine left unawaited would warn
        with pytest.raises(TypeError, match=r"assert_fresh_async\\("):
            cachesync.assert_fresh(lambda: read_json(http, "/products/1"))
        with pytest.raises(TypeError, match=r"assert_invalidated_async\\("):
            with cachesync.assert_invalidated(reads=[lambda: read_json(http, "/products/1")]):
                pass
        import gc

        gc.collect()


async def test_async_variant_refuses_a_sync_read(cachesync):
    with pytest.raises(TypeError, match="use assert_fresh for synchronous reads"):
        await cachesync.assert_fresh_async(lambda: 1)
"""
    )
    pytester.runpytest("-p", "no:randomly", "-W", "error::RuntimeWarning").assert_outcomes(passed=3)


ENGINE_TESTS = """
import pytest
import sqlalchemy as sa
from shop import Product

pytestmark = pytest.mark.anyio


async def count(engine):
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(Product))).scalar_one()


@pytest.mark.parametrize("run", range(4))
async def test_each_test_starts_empty(cachesync, run):
    engine = cachesync.async_engine
    assert await count(engine) == 0
    async with engine.begin() as conn:
        await conn.execute(sa.insert(Product).values(name=f"n{run}", price=run))
    assert await count(engine) == 1
    assert cachesync.sql.count >= 3


@pytest.mark.cachesync(db_reset="truncate")
async def test_truncate_mode_too(cachesync):
    assert await count(cachesync.async_engine) == 0
    async with cachesync.async_engine.begin() as conn:
        await conn.execute(sa.insert(Product).values(name="t", price=1))


def test_the_sync_side_sees_the_same_tables(cachesync):
    assert cachesync.db.scalar(sa.select(sa.func.count()).select_from(Product)) == 0
"""


@pytest.mark.parametrize("workers", [None, 2])
def test_async_engine_is_reset_between_tests(
    pytester: pytest.Pytester, workers: int | None
) -> None:
    pytester.makepyfile(test_engine=ENGINE_TESTS)
    args = ["-p", "no:randomly"] + (["-n", str(workers)] if workers else [])
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=6)


def test_async_urls_are_kept(pytester: pytest.Pytester, backend: Backend) -> None:
    if backend.db_url is None:
        url = f"sqlite+aiosqlite:///{pytester.path / 'app.db'}"
        kept, sync = "sqlite+aiosqlite", ("sqlite", "sqlite+pysqlite")
    else:
        url = backend.db_url.replace("postgresql+psycopg://", "postgresql+psycopg_async://")
        kept, sync = "postgresql+psycopg_async", ("postgresql+psycopg",)
    pytester.makepyfile(
        test_url=f"""
        import pytest
        import sqlalchemy as sa

        @pytest.mark.anyio
        async def test_driver(cachesync):
            assert cachesync.async_engine.url.drivername == {kept!r}
            assert cachesync.engine.url.drivername in {sync!r}
            async with cachesync.async_engine.connect() as conn:
                assert (await conn.execute(sa.text("select 1"))).scalar_one() == 1
        """
    )
    result = pytester.runpytest("-p", "no:randomly", f"--cachesync-db-url={url}")
    result.assert_outcomes(passed=1)


def test_redis_targets_route_asyncio_clients(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        clients="""
        import redis
        import redis.asyncio

        SYNC = redis.Redis(host="redis.invalid")
        ASYNC = redis.asyncio.Redis(host="redis.invalid")
        """,
        test_targets="""
        import pytest
        import clients

        @pytest.mark.anyio
        async def test_routed(cachesync):
            assert clients.SYNC is cachesync.redis
            assert clients.ASYNC is cachesync.async_redis
            await clients.ASYNC.set(cachesync.key("catalog:1"), b"x")
            assert cachesync.redis.get(cachesync.key("catalog:1")) == b"x"
            cachesync.spy.assert_filled("catalog:1")
        """,
    )
    pytester.makeini(
        "[pytest]\ncachesync_cache_patterns = catalog:*\n"
        "cachesync_redis_targets =\n    clients:SYNC\n    clients:ASYNC\n"
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)


def test_the_documented_dependency_overrides(pytester: pytest.Pytester) -> None:
    # docs/async.md's wiring, on an app that takes its stores from FastAPI dependencies.
    pytester.makepyfile(
        deps="""
        import json

        import sqlalchemy as sa
        from fastapi import Depends, FastAPI
        from redis.asyncio import Redis
        from shop import Product

        redis_client = Redis(host="redis.invalid")


        async def get_redis():
            return redis_client


        async def get_session():
            raise RuntimeError("the production database is not for tests")
            yield


        app = FastAPI()


        @app.get("/names/{product_id}")
        async def name(product_id: int, redis=Depends(get_redis), session=Depends(get_session)):
            cached = await redis.get(f"product:{product_id}")
            if cached is not None:
                return json.loads(cached)
            product = await session.get(Product, product_id)
            await redis.set(f"product:{product_id}", json.dumps(product.name), ex=30)
            return product.name


        @app.put("/names/{product_id}")
        async def rename(product_id: int, body: dict, session=Depends(get_session)):
            product = await session.get(Product, product_id)
            product.name = body["name"]
            await session.commit()
        """,
        conftest="""
        import pytest
        from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

        from deps import app as shop_app, get_redis, get_session
        from shop import Base, Product


        @pytest.fixture(scope="session")
        def cachesync_metadata():
            return Base.metadata


        @pytest.fixture
        def anyio_backend():
            return "asyncio"


        @pytest.fixture
        def app(cachesync):
            sessions = async_sessionmaker(cachesync.async_engine, expire_on_commit=False)

            async def test_session():
                async with sessions() as session:
                    yield session

            shop_app.dependency_overrides[get_redis] = lambda: cachesync.async_redis
            shop_app.dependency_overrides[get_session] = test_session
            yield shop_app
            shop_app.dependency_overrides.clear()
        """,
        test_deps="""
        import pytest
        import sqlalchemy as sa
        from sqlalchemy.ext.asyncio import AsyncSession
        from shop import Product


        @pytest.mark.anyio
        async def seed(cachesync):
            async with cachesync.async_engine.begin() as conn:
                await conn.execute(sa.insert(Product).values(id=1, name="kettle", price=1))


        def test_overrides_reach_the_app_and_the_oracle_flags_it(cachesync, cachesync_client):
            import anyio

            anyio.run(seed, cachesync)
            assert cachesync_client.get("/names/1").json() == "kettle"
            cachesync_client.put("/names/1", json={"name": "teapot"})
            cachesync_client.get("/names/1")


        @pytest.mark.anyio
        async def test_inside_one_transaction(cachesync):
            async with cachesync.async_engine.connect() as conn:
                outer = await conn.begin()
                session = AsyncSession(bind=conn, join_transaction_mode="create_savepoint")
                session.add(Product(name="inner", price=2))
                await session.commit()
                assert await session.scalar(sa.select(sa.func.count(Product.id))) == 1
                await session.close()
                await outer.rollback()
            async with cachesync.async_engine.connect() as conn:
                count = await conn.scalar(sa.select(sa.func.count(Product.id)))
            assert count == 0
        """,
    )
    pytester.makeini("[pytest]\ncachesync_cache_patterns = product:*\ncachesync_oracle = true\n")
    result = pytester.runpytest("-p", "no:randomly", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_overrides_reach_the_app_and_the_oracle_flags_it FAILED*",
            "*test_inside_one_transaction PASSED*",
            "*GET /names/1: stale for *",
            '*-  "body": "kettle",',
        ]
    )
