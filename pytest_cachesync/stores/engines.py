"""The session's SQLAlchemy engine, with SQLite's SAVEPOINT fix applied."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL

_EXPLICIT_BEGIN = "cachesync_explicit_begin"


def make_engine(url: URL) -> sa.Engine:
    """An engine on the test database; on SQLite, connections can nest savepoints on demand.

    pysqlite begins transactions on its own, only before DML, which breaks the SAVEPOINTs the
    rollback strategy nests inside an outer transaction. SQLAlchemy's documented fix (turn
    pysqlite's handling off and emit BEGIN when SQLAlchemy begins) is applied only to the
    connections that need it (``use_explicit_begin``): applied to every connection, a read
    followed by a write in one deferred transaction fails at once with "database is locked"
    when another thread committed in between, which breaks threaded apps in truncate mode.
    """
    engine = sa.create_engine(url)
    if url.get_backend_name() == "sqlite":
        prepare_sqlite(engine)
    return engine


def prepare_sqlite(engine: sa.Engine) -> None:
    """The pragmas and the on-demand SAVEPOINT fix, on ``engine`` (or an AsyncEngine's
    ``sync_engine``)."""

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Through a cursor: aiosqlite's adapted connection has no execute() of its own.
        cursor = dbapi_connection.cursor()
        # With WAL a test's open Session does not block the app's commits (truncate
        # strategy), as on PostgreSQL.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        # A test database needs no durability: skip the fsync of every commit.
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _emit_begin(conn: sa.Connection) -> None:
        if conn.info.get(_EXPLICIT_BEGIN):
            conn.exec_driver_sql("BEGIN")


def begin_explicitly(engine: sa.Engine) -> None:
    """The SAVEPOINT fix on every connection of a prepared SQLite ``engine``.

    For an AsyncEngine's ``sync_engine``: its connections last one use each (it keeps none in
    a pool), and the asyncio form of the rollback recipe needs the fix on whichever one the
    test opens. The cost is SQLite's own behaviour: a transaction that read, then writes
    after another connection committed, fails with "database is locked".
    """

    @event.listens_for(engine, "connect")
    def _explicit(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        record.info[_EXPLICIT_BEGIN] = True


def use_explicit_begin(connection: sa.Connection, enabled: bool = True) -> None:
    """Switch a SQLite connection to SQLAlchemy-controlled BEGINs (the SAVEPOINT fix), or back.

    Call before the connection begins; switch back before returning it to the pool, since the
    setting lives on the pooled DBAPI connection. A no-op on other databases.
    """
    if connection.dialect.name != "sqlite":
        return
    dbapi_connection: Any = connection.connection.dbapi_connection
    dbapi_connection.isolation_level = None if enabled else ""
    if enabled:
        connection.info[_EXPLICIT_BEGIN] = True
    else:
        connection.info.pop(_EXPLICIT_BEGIN, None)
