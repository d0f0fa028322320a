"""Fixtures for asyncio apps: an asyncio Redis client and an AsyncEngine on the test's stores.

Both are plain (synchronous) fixtures, so they work with any async test runner (anyio's
pytest plugin, pytest-asyncio) and with sync tests that drive an ASGI app through its test
client. Nothing asyncio is imported until a test asks for one of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from ._session import RUNTIME_KEY

if TYPE_CHECKING:
    from .fixtures import SqlStore
    from .staleness.watch import Watch
    from .stores.redis import RedisKeyspace


@pytest.fixture
def cachesync_async_redis(
    _cachesync_keyspace: RedisKeyspace, cachesync_redis: Any, _cachesync_watch: Watch
) -> Iterator[Any]:
    """A ``redis.asyncio.Redis`` on the test's keyspace, emptied before the test.

    On the default backend a ``fakeredis.FakeAsyncRedis`` on the embedded server of
    ``cachesync.redis``; on a real server an asyncio client on the worker's database. The
    spy observes it (its commands count with those of ``cachesync.redis``), the clock moves
    its keys' TTLs, and bypassed runs send its commands to the scratch server. It serves any
    event loop: its connections follow the loop of the moment (a test's, or the one an ASGI
    test client runs the app on). Also reachable as ``cachesync.async_redis``.
    """
    from .staleness.async_spy import AsyncTap
    from .stores.async_redis import close_async_client, new_async_client

    client = new_async_client(_cachesync_keyspace)
    tap = AsyncTap(_cachesync_watch.spy, client).install()
    try:
        yield client
    finally:
        tap.uninstall()
        close_async_client(client)


@pytest.fixture(scope="session")
def _cachesync_async_engine(_cachesync_config: pytest.Config, _cachesync_sql: SqlStore) -> Any:
    from .stores.async_sql import async_url, make_async_engine

    runtime = _cachesync_config.stash[RUNTIME_KEY]
    try:
        engine = make_async_engine(async_url(_cachesync_sql.database.url, runtime.db_url))
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    # NullPool: no connection outlives its use, so disposing needs no event loop.
    return engine


@pytest.fixture
def cachesync_async_engine(
    request: pytest.FixtureRequest,
    cachesync: Any,
    _cachesync_async_engine: Any,
    _cachesync_watch: Watch,
) -> Iterator[Any]:
    """An ``AsyncEngine`` on the test database (aiosqlite, or psycopg's asyncio mode).

    The tables of ``cachesync_metadata`` exist; rows written through it are deleted before the
    next test in both reset modes (they are committed for real: hand the app this engine, or
    join its sessions into one connection's transaction with
    ``join_transaction_mode="create_savepoint"``). Its statements count in ``cachesync.sql``.
    A configured asyncio URL (``sqlite+aiosqlite``, ``postgresql+asyncpg``) chooses its driver.
    Also reachable as ``cachesync.async_engine``.
    """
    from .stores.connections import allow_engine

    sync_engine = _cachesync_async_engine.sync_engine
    allow_engine(request.node, sync_engine)
    _cachesync_watch.sql.also_record(sync_engine)
    try:
        yield _cachesync_async_engine
    finally:
        _cachesync_watch.sql.forget(sync_engine)
