"""A configured ``postgresql+asyncpg://`` URL: the plugin's AsyncEngine on asyncpg, and the guard.

Real PostgreSQL only (asyncpg needs a server; the embedded run touches none). The inner runs use
a database name of their own, apart from every other inner run's.
"""

from __future__ import annotations

from collections.abc import Iterator

# Imported once by the outer run, as psycopg is in conftest.py: pytester forgets the modules an
# inner run imported, and asyncpg imported again beside its compiled protocol, which stays,
# crashes the process (a segmentation fault in the next in-process run that connects).
import asyncpg  # noqa: F401
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from .conftest import REAL_DB_URL, inner_db_url, needs_real_db

pytestmark = [needs_real_db, pytest.mark.usefixtures("backend", "models")]

ASYNC_MODULE = """
import pytest
import sqlalchemy as sa
from models import count, items

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"
"""

ENGINE_TESTS = (
    ASYNC_MODULE
    + """

@pytest.mark.parametrize("run", range(4))
async def test_each_test_starts_empty(cachesync, run):
    async with cachesync.async_engine.begin() as conn:
        raw = await conn.get_raw_connection()
        assert type(raw.driver_connection).__module__.startswith("asyncpg.")
        assert await conn.run_sync(count) == 0
        written = await conn.execute(items.insert().values(name=f"run {run}"))
        assert written.inserted_primary_key == (1,)
    # Committed for real: the plugin's own side (psycopg) reads it as well.
    assert count(cachesync.db) == 1
"""
)


def _asyncpg_base() -> URL:
    """The inner runs' asyncpg URL: the suite's server and user, a base name of their own."""
    assert REAL_DB_URL is not None
    return make_url(inner_db_url(REAL_DB_URL, "apg")).set(drivername="postgresql+asyncpg")


def _args(url: URL, workers: int | None, *more: str) -> list[str]:
    shown = url.render_as_string(hide_password=False)
    return ["-p", "no:randomly", f"--cachesync-db-url={shown}", *more] + (
        ["-n", str(workers)] if workers else []
    )


@pytest.mark.parametrize("workers", [None, 2])
@pytest.mark.parametrize("reset", ["rollback", "truncate"])
def test_async_engine_on_asyncpg_starts_every_test_empty(
    pytester: pytest.Pytester, reset: str, workers: int | None
) -> None:
    pytester.makepyfile(test_engine=ENGINE_TESTS)
    result = pytester.runpytest(*_args(_asyncpg_base(), workers, f"--cachesync-db-reset={reset}"))
    result.assert_outcomes(passed=4)


OPTIONS_TEST = """

async def test_each_side_gets_the_options_its_driver_takes(cachesync):
    assert dict(cachesync.engine.url.query) == {"sslmode": "disable"}
    assert dict(cachesync.async_engine.url.query) == {
        "ssl": "disable", "prepared_statement_cache_size": "0", "command_timeout": "30"
    }
    async with cachesync.async_engine.begin() as conn:
        await conn.execute(items.insert().values(name="x"))
    assert count(cachesync.db) == 1
"""


def test_asyncpg_options_stay_with_asyncpg(pytester: pytest.Pytester) -> None:
    # libpq refuses asyncpg's options: the plugin's own (psycopg) side gets libpq's words.
    options = {"ssl": "disable", "prepared_statement_cache_size": "0", "command_timeout": "30"}
    pytester.makepyfile(test_options=ASYNC_MODULE + OPTIONS_TEST)
    url = _asyncpg_base().update_query_dict(options)
    pytester.runpytest(*_args(url, None)).assert_outcomes(passed=1)


@pytest.fixture
def elsewhere() -> Iterator[URL]:
    """A database on the same server that belongs to no inner run: created empty, dropped after."""
    base = _asyncpg_base().set(drivername="postgresql+psycopg")
    name = f"{base.database}_elsewhere"
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield base.set(database=name)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def _tables_of(url: URL) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            return list(conn.exec_driver_sql(query).scalars())
    finally:
        engine.dispose()


GUARDED_TESTS = """
from sqlalchemy.ext.asyncio import create_async_engine

# What an app builds from its own settings, not from the test's stores.
ELSEWHERE = create_async_engine({url!r})


async def write_elsewhere():
    async with ELSEWHERE.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS leaked (n int)")
        await conn.exec_driver_sql("INSERT INTO leaked VALUES (1)")


async def test_writes_here_then_elsewhere(cachesync):
    async with cachesync.async_engine.begin() as conn:
        await conn.execute(items.insert().values(name="here"))
    await write_elsewhere()


async def test_swallows_the_refusal(cachesync):
    try:
        await write_elsewhere()
    except Exception:
        pass


async def test_the_plugins_engine_alone(cachesync):
    async with cachesync.async_engine.begin() as conn:
        assert await conn.run_sync(count) == 0
        await conn.execute(items.insert().values(name="here"))
"""


@pytest.mark.parametrize("workers", [None, 2])
def test_an_asyncpg_engine_on_another_database_is_refused(
    pytester: pytest.Pytester, elsewhere: URL, workers: int | None
) -> None:
    foreign = elsewhere.set(drivername="postgresql+asyncpg", password="s3cret")
    module = ASYNC_MODULE + GUARDED_TESTS.format(url=foreign.render_as_string(hide_password=False))
    pytester.makepyfile(test_guarded=module)
    result = pytester.runpytest(*_args(_asyncpg_base(), workers))
    assert _tables_of(elsewhere) == []
    # A refused test also errors at teardown, where the recorded refusal is reported; the
    # swallowing test's call and the one on the plugin's engine alone pass.
    result.assert_outcomes(passed=2, failed=1, errors=2)
    port = f":{elsewhere.port}" if elsewhere.port else ""
    address = f"postgresql://{elsewhere.username}@{elsewhere.host}{port}/{elsewhere.database}"
    for test in ("test_writes_here_then_elsewhere", "test_swallows_the_refusal"):
        result.stdout.fnmatch_lines(
            [f"*cachesync refused a SQL connection to {address} during *{test}*"]
        )
    assert "s3cret" not in result.stdout.str()
