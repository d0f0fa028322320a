"""During a test that uses the plugin's stores, no other Redis or SQL store is reached."""

from __future__ import annotations

import pytest

from .conftest import Backend

APP = """
import pytest
import redis
import sqlalchemy as sa
from redis.backoff import NoBackoff
from redis.retry import Retry

# What an app forgot to route: clients made at import, before any fixture ran.
APP_REDIS = redis.Redis(port=6, db=3, retry=Retry(NoBackoff(), 0), socket_connect_timeout=0.2)
PROD = sa.create_engine("postgresql+psycopg://app:s3cret@127.0.0.1:6/prod")
"""


def test_an_unrouted_redis_client_fails_the_test_naming_the_address(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    pytester.makepyfile(
        APP
        + """
def test_writes_to_the_real_one(cachesync):
    APP_REDIS.set("x", 1)

def test_swallows_the_error(cachesync):
    try:
        APP_REDIS.get("x")
    except Exception:
        pass

def test_only_the_plugins_redis(cachesync_redis):
    APP_REDIS.get("x")
"""
    )
    result = pytester.runpytest("-p", "no:randomly")
    # The swallowed refusal still fails the test: at teardown (its call itself passed).
    result.assert_outcomes(passed=1, failed=2, errors=3)
    result.stdout.fnmatch_lines(
        [
            "*cachesync refused a Redis connection to redis://localhost:6/3 during *"
            "test_writes_to_the_real_one*cachesync_redis_targets*allow_connections*"
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_an_engine_on_another_database_is_refused_without_showing_its_password(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    pytester.makepyfile(
        APP
        + """
def test_reads_production(cachesync):
    with PROD.connect():
        pass

def test_a_second_engine_on_the_test_database_is_fine(cachesync):
    engine = sa.create_engine(cachesync.engine.url)
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    engine.dispose()

def test_redis_only_tests_keep_their_own_sqlite(cachesync_redis, tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'own.db'}")
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    engine.dispose()
"""
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*cachesync refused a SQL connection to postgresql://app@127.0.0.1:6/prod during*"]
    )
    assert "s3cret" not in result.stdout.str()


OWN_ENGINES = """
import pytest
import sqlalchemy as sa


def own_engine(cachesync, **connect_args):
    return sa.create_engine(cachesync.engine.url, connect_args=connect_args)


def options_of_its_own(cachesync):
    if cachesync.engine.dialect.name == "sqlite":
        return {"timeout": 3}
    return {"application_name": "myapp", "connect_timeout": 5}


@pytest.mark.cachesync(db_reset="truncate")
def test_writes_through_an_engine_with_options_of_its_own(cachesync):
    engine = own_engine(cachesync, **options_of_its_own(cachesync))
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO notes (body) VALUES ('from the app')")
    engine.dispose()
    assert cachesync.db.execute(sa.text("SELECT count(*) FROM notes")).scalar() == 1


@pytest.mark.cachesync(db_reset="truncate")
def test_the_next_test_starts_empty(cachesync):
    assert cachesync.db.execute(sa.text("SELECT count(*) FROM notes")).scalar() == 0


def test_hostaddr_sends_the_same_address_elsewhere(cachesync):
    if cachesync.engine.dialect.name == "sqlite":
        pytest.skip("libpq only")
    engine = own_engine(cachesync, hostaddr="127.0.0.2", connect_timeout=1)
    with engine.connect():
        pass
"""


def test_the_test_database_is_the_tests_store_whatever_the_engine_options(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    # An app that makes its own engine on the test database (truncate mode) with options of
    # its own, which its driver gets as other connect arguments than the plugin's engine.
    pytester.makeconftest(
        """
import pytest
import sqlalchemy as sa

metadata = sa.MetaData()
sa.Table(
    "notes", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("body", sa.Text)
)


@pytest.fixture(scope="session")
def cachesync_metadata():
    return metadata
"""
    )
    pytester.makepyfile(OWN_ENGINES)
    result = pytester.runpytest("-p", "no:randomly")
    if backend.db_url is None:
        result.assert_outcomes(passed=2, skipped=1)
        return
    # libpq would dial hostaddr, not the host the URL shows: refused, naming the shown address.
    result.assert_outcomes(passed=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*cachesync refused a SQL connection to postgresql://*during*"])


def test_fakeredis_clients_and_named_stores_are_allowed(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    pytester.makepyfile(
        APP
        + """
import fakeredis

def test_fakeredis_of_its_own(cachesync):
    fakeredis.FakeRedis().set("k", 1)

@pytest.mark.cachesync(allow_connections=["redis://localhost:6/*"])
def test_named(cachesync):
    with pytest.raises(redis.ConnectionError):
        APP_REDIS.get("x")

def test_outside_the_plugin_nothing_is_guarded():
    with pytest.raises(redis.ConnectionError):
        APP_REDIS.get("x")
"""
    )
    pytester.runpytest().assert_outcomes(passed=3)


ASYNC_APP = """
import pytest
import redis.asyncio
import valkey.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.ext.asyncio import create_async_engine

APP_REDIS = redis.asyncio.Redis(port=6, db=3, retry=Retry(NoBackoff(), 0))
APP_VALKEY = valkey.asyncio.Valkey(port=6, db=4)
PROD = create_async_engine("postgresql+psycopg://app:s3cret@127.0.0.1:6/prod")

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"
"""


def test_asyncio_clients_and_engines_are_refused_before_connecting(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    pytester.makepyfile(
        ASYNC_APP
        + """
async def test_redis_asyncio(cachesync):
    await APP_REDIS.set("x", 1)

async def test_swallowed(cachesync):
    try:
        await APP_VALKEY.get("x")
    except Exception:
        pass

async def test_async_engine(cachesync):
    async with PROD.connect():
        pass

async def test_the_plugins_own_async_stores(cachesync):
    import fakeredis
    import sqlalchemy as sa

    await cachesync.async_redis.set("k", 1)
    assert await cachesync.async_redis.get("k") == b"1"
    await fakeredis.FakeAsyncRedis().set("k", 1)
    async with cachesync.async_engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT 1"))).scalar_one() == 1

@pytest.mark.cachesync(allow_connections=["redis://localhost:6/*"])
async def test_named(cachesync):
    with pytest.raises(redis.ConnectionError):
        await APP_REDIS.get("x")

async def test_outside_the_plugin_nothing_is_guarded():
    with pytest.raises(redis.ConnectionError):
        await APP_REDIS.get("x")
"""
    )
    result = pytester.runpytest("-p", "no:randomly", "-v")
    # A refused test also errors at teardown, where the recorded refusal is reported.
    result.assert_outcomes(passed=4, failed=2, errors=3)
    result.stdout.fnmatch_lines(
        [
            "*test_redis_asyncio FAILED*",
            "*test_swallowed ERROR*",
            "*test_async_engine FAILED*",
            "*test_the_plugins_own_async_stores PASSED*",
            "*test_named PASSED*",
            "*test_outside_the_plugin_nothing_is_guarded PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*cachesync refused a Redis connection to redis://localhost:6/3 during *"
            "test_redis_asyncio*cachesync_redis_targets*allow_connections*",
            "*cachesync refused a Redis connection to redis://localhost:6/4 during *swallowed*",
            "*cachesync refused a SQL connection to postgresql://app@127.0.0.1:6/prod during*",
        ]
    )
    assert "s3cret" not in result.stdout.str()
