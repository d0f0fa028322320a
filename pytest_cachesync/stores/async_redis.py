"""The test's asyncio Redis client: on the embedded server, or on the worker's real database.

An asyncio connection belongs to the event loop that opened it. A test and its app do not
always share one: Starlette's ``TestClient`` runs the app on a loop in a thread of its own, and
each async test gets a new loop. The real-server client therefore keeps the connections of
one loop at a time and lets go of the others; fakeredis's asyncio connections are not tied
to a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from .redis import RedisKeyspace
from .targets import RedisTarget


def _drop(connection: Any) -> None:
    """Close a connection of a loop that may be closed already, without that loop's help."""
    writer = getattr(connection, "_writer", None)
    transport = getattr(writer, "transport", None)
    sock = getattr(transport, "_sock", None)
    if transport is not None:
        with contextlib.suppress(RuntimeError):  # its loop is closed: the socket goes below
            transport.abort()
    if sock is not None:
        sock.close()
        # The transport would close it again when collected, with an "unclosed" warning.
        if transport is not None and getattr(transport, "_sock", None) is sock:
            transport._sock = None
    connection._reader = connection._writer = None


def loop_bound_pool(target: RedisTarget, db: int) -> Any:
    import redis.asyncio

    from .clients import redis_py_url

    class LoopBoundPool(redis.asyncio.ConnectionPool):
        """Connections of the running event loop only; those of an earlier loop are dropped."""

        _cachesync_loop: asyncio.AbstractEventLoop | None = None

        async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
            loop = asyncio.get_running_loop()
            if self._cachesync_loop is not loop:
                self.drop_all()
                self._lock = asyncio.Lock()
                self._cachesync_loop = loop
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]

        def drop_all(self) -> None:
            for connection in [*self._available_connections, *self._in_use_connections]:
                _drop(connection)
            self.reset()  # type: ignore[no-untyped-call]

    template = redis.asyncio.ConnectionPool.from_url(redis_py_url(target.url))
    kwargs = dict(template.connection_kwargs)
    kwargs["db"] = db
    return LoopBoundPool(connection_class=template.connection_class, **kwargs)


def new_async_client(keyspace: RedisKeyspace) -> Any:
    """A new asyncio client on ``keyspace`` (the same keys as ``keyspace.client``)."""
    if keyspace.fake_server is not None:
        import fakeredis

        return fakeredis.FakeAsyncRedis(server=keyspace.fake_server, db=keyspace.plan.db)
    if keyspace.target is None:
        raise RuntimeError("this keyspace was built without a URL; it has no asyncio client")
    import redis.asyncio

    return redis.asyncio.Redis(connection_pool=loop_bound_pool(keyspace.target, keyspace.plan.db))


def close_async_client(client: Any) -> None:
    """Release the client's connections, whichever loop (open or closed) they belong to."""
    pool = client.connection_pool
    drop_all = getattr(pool, "drop_all", None)
    if callable(drop_all):
        drop_all()
