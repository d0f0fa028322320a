"""The asyncio engine on the test database, and which driver each side speaks.

The plugin's own work (creating the database, its tables, emptying them) runs on a
synchronous engine; an app written for asyncio gets an ``AsyncEngine`` on the same database.
A configured asyncio URL (``sqlite+aiosqlite://``, ``postgresql+asyncpg://``) names the driver
of the ``AsyncEngine``, kept as given; the synchronous side uses the matching synchronous
driver. A synchronous URL gets its usual asyncio counterpart (aiosqlite for SQLite, psycopg's
own asyncio mode for ``postgresql+psycopg``). An asyncpg URL's options are keyword arguments
of asyncpg, some of which libpq refuses: the synchronous side gets libpq's word for those that
have one and goes without those that only tune asyncpg; the ``AsyncEngine`` gets them as given.

The engine keeps no connection between uses (``NullPool``): a connection belongs to the event
loop that opened it, and a test's loop is not the next test's. Writes through it are committed
for real in both reset modes; the write tracker sees them (engine events reach the
``sync_engine``), so the tables they touched are emptied before the next test, as for an app
engine that bypasses the test's connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import URL

# Drivers of asyncio dialects, and the synchronous driver for the same database.
_ASYNC_TO_SYNC = {
    "aiosqlite": "pysqlite",
    "asyncpg": "psycopg",
    "psycopg_async": "psycopg",
}
_SYNC_TO_ASYNC = {
    "sqlite": {"pysqlite": "aiosqlite", "": "aiosqlite"},
    "postgresql": {"psycopg": "psycopg", "psycopg2": "psycopg", "": "psycopg"},
}
# The options of asyncpg's URLs (SQLAlchemy passes them to asyncpg.connect) that libpq does not
# know: ``ssl`` takes sslmode's values; the others tune asyncpg alone (its statement cache, its
# query timeout, TLS without negotiation). Those libpq shares (passfile, target_session_attrs,
# krbsrvname, gsslib, multi-host ``host``) pass unchanged.
_ASYNCPG_TO_LIBPQ = {"ssl": "sslmode"}
_ASYNCPG_ONLY = frozenset({"prepared_statement_cache_size", "command_timeout", "direct_tls"})


def _driver(url: URL) -> str:
    name = url.drivername
    return name.split("+", 1)[1] if "+" in name else ""


def is_async_url(url: URL) -> bool:
    return _driver(url) in _ASYNC_TO_SYNC


def sync_url(url: URL) -> URL:
    """``url`` with a synchronous driver (unchanged when it has one)."""
    driver = _driver(url)
    if driver not in _ASYNC_TO_SYNC:
        return url
    synchronous = url.set(drivername=f"{url.get_backend_name()}+{_ASYNC_TO_SYNC[driver]}")
    if driver != "asyncpg":
        return synchronous
    return synchronous.set(query=_libpq_query(url.query))


def _libpq_query(query: Mapping[str, str | tuple[str, ...]]) -> dict[str, str | tuple[str, ...]]:
    return {
        _ASYNCPG_TO_LIBPQ.get(name, name): value
        for name, value in query.items()
        if name not in _ASYNCPG_ONLY
    }


def async_url(database_url: URL, configured: URL | None) -> URL:
    """The asyncio URL of the test database at ``database_url``.

    The configured URL's driver when it is an asyncio one, else the backend's usual one.
    """
    backend = database_url.get_backend_name()
    if configured is not None and is_async_url(configured):
        url = database_url.set(drivername=configured.drivername)
        if _driver(configured) == "asyncpg":
            # ``database_url`` has libpq's options; asyncpg takes its own, as configured.
            url = url.set(query=configured.query)
        return url
    driver = _SYNC_TO_ASYNC.get(backend, {}).get(_driver(database_url))
    if driver is None:
        raise RuntimeError(
            f"cachesync: no asyncio driver is known for {database_url.drivername!r}; give an "
            "asyncio database URL (e.g. postgresql+asyncpg://... or sqlite+aiosqlite:///...)."
        )
    return database_url.set(drivername=f"{backend}+{driver}")


def make_async_engine(url: URL) -> Any:
    """An ``AsyncEngine`` on ``url``; on SQLite with the sync engine's pragmas, and the SAVEPOINT
    fix on every connection."""
    try:
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import NullPool
    except ImportError as error:  # pragma: no cover - SQLAlchemy always ships the module
        raise RuntimeError(f"cachesync: async SQLAlchemy is unavailable: {error}") from None
    try:
        engine = create_async_engine(url, poolclass=NullPool)
    except ImportError as error:
        raise RuntimeError(
            f"cachesync: the asyncio driver for {url.drivername!r} is not installed ({error}); "
            "install pytest-cachesync[async]."
        ) from None
    if url.get_backend_name() == "sqlite":
        from .engines import begin_explicitly, prepare_sqlite

        prepare_sqlite(engine.sync_engine)
        begin_explicitly(engine.sync_engine)
    return engine
