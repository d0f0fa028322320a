"""The session's SQLAlchemy engine, with SQLite's SAVEPOINT fix applied."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL


def make_engine(url: URL) -> sa.Engine:
    """An engine on the test database; on SQLite, transactions that nest savepoints work.

    pysqlite begins transactions on its own, only before DML, which breaks the SAVEPOINTs the
    rollback strategy nests inside an outer transaction. SQLAlchemy's documented fix: turn
    pysqlite's handling off and emit BEGIN when SQLAlchemy begins.
    """
    engine = sa.create_engine(url)
    if url.get_backend_name() == "sqlite":
        apply_sqlite_savepoint_fix(engine)
    return engine


def apply_sqlite_savepoint_fix(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _disable_pysqlite_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        # Real BEGINs make reads hold a lock until the Session ends; with WAL a test's open
        # Session does not block the app's commits (truncate strategy), as on PostgreSQL.
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA busy_timeout=5000")
        # A test database needs no durability: skip the fsync of every commit.
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    @event.listens_for(engine, "begin")
    def _emit_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN")
