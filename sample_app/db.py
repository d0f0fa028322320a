"""Engine/bind setup and one SQLAlchemy Session per application context."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, g
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.schema import CreateIndex, CreateTable

from sample_app.models import Base

_EXTENSION = "sample_app.db"
Bind = sa.Engine | sa.Connection


@dataclass(frozen=True)
class Database:
    bind: Bind
    session_factory: sessionmaker[Session]
    owns_engine: bool


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while one writer commits, which the threaded server needs.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def prepare_sqlite_engine(engine: sa.Engine, *, wal: bool) -> None:
    """Enable foreign keys and a busy timeout on every new SQLite connection of ``engine``."""
    if engine.dialect.name != "sqlite":
        return
    if not event.contains(engine, "connect", _sqlite_pragmas):
        event.listen(engine, "connect", _sqlite_pragmas)
    if wal and not event.contains(engine, "connect", _sqlite_wal):
        event.listen(engine, "connect", _sqlite_wal)


def create_engine_for(url: str) -> sa.Engine:
    """An engine for ``url`` set up the way the app needs it (threads, FKs on SQLite)."""
    if url.startswith("sqlite"):
        # check_same_thread=False: the threaded server hands pooled connections between threads.
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        prepare_sqlite_engine(engine, wal=":memory:" not in url)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def default_database_url(app: Flask) -> str:
    os.makedirs(app.instance_path, exist_ok=True)
    return "sqlite:///" + os.path.join(app.instance_path, "sample_app.sqlite3")


def init_app(app: Flask, bind: Bind | None = None) -> Database:
    """Attach the bind (an injected one wins over ``DATABASE_URL``) and per-context sessions."""
    owns_engine = bind is None
    if bind is None:
        url = app.config.get("DATABASE_URL") or default_database_url(app)
        bind = create_engine_for(url)
        if not app.config.get("DATABASE_URL"):
            # The embedded default is meant to work with nothing else run first.
            create_or_upgrade(bind)
    elif isinstance(bind, sa.Engine):
        prepare_sqlite_engine(bind, wal=False)
    factory = sessionmaker(
        bind=bind, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    database = Database(bind=bind, session_factory=factory, owns_engine=owns_engine)
    app.extensions[_EXTENSION] = database
    app.teardown_appcontext(_close_session)
    return database


def get_database(app: Flask | None = None) -> Database:
    database = (app or current_app).extensions[_EXTENSION]
    assert isinstance(database, Database)
    return database


def get_session() -> Session:
    """The Session of the current application context, created on first use."""
    session = g.get("_db_session")
    if session is None:
        session = get_database().session_factory()
        g._db_session = session
    assert isinstance(session, Session)
    return session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("_db_session", None)
    if session is not None:
        session.close()


def create_all(app: Flask | None = None) -> None:
    create_or_upgrade(get_database(app).bind)


def create_or_upgrade(bind: Bind) -> None:
    """Create missing tables and bring tables of earlier releases to the current schema.

    Earlier releases had no ``users.token_version`` and, on SQLite, tables without
    ``AUTOINCREMENT`` (ids of deleted rows were handed out again). Idempotent.
    """
    Base.metadata.create_all(bind)
    if isinstance(bind, sa.Connection):
        _upgrade(bind)
        return
    with bind.connect() as connection:
        _upgrade(connection)
        connection.commit()


def _upgrade(connection: sa.Connection) -> None:
    columns = {c["name"] for c in sa.inspect(connection).get_columns("users")}
    if "token_version" not in columns:
        connection.exec_driver_sql(
            "ALTER TABLE users ADD COLUMN token_version INTEGER DEFAULT 0 NOT NULL"
        )
    if connection.dialect.name == "sqlite":
        _sqlite_autoincrement(connection)


def _sqlite_autoincrement(connection: sa.Connection) -> None:
    """Rebuild the tables created without AUTOINCREMENT (SQLite cannot alter that in place).

    Rows keep their ids; new ids start above the highest id left, as SQLite cannot know the
    ids deleted before. Foreign keys are off during the rebuild: with them on, dropping the old
    ``users`` table would run its ON DELETE actions and unlink every spot and reservation.
    """
    stale = []
    for table in Base.metadata.sorted_tables:
        if not table.kwargs.get("sqlite_autoincrement"):
            continue
        created = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table.name,)
        ).scalar()
        if isinstance(created, str) and "AUTOINCREMENT" not in created.upper():
            stale.append(table)
    if not stale:
        return
    connection.commit()  # the pragma below is ignored inside a transaction
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    if connection.exec_driver_sql("PRAGMA foreign_keys").scalar() != 0:
        raise RuntimeError("cannot upgrade the SQLite schema inside an open transaction")
    # The driver opens transactions only before DML, so the DDL would commit one by one.
    connection.exec_driver_sql("SAVEPOINT schema_upgrade")
    for table in stale:
        quoted = connection.dialect.identifier_preparer.quote
        draft = f"{table.name}__upgrade"
        ddl = str(CreateTable(table).compile(dialect=connection.dialect)).strip()
        prefix = f"CREATE TABLE {quoted(table.name)} "
        assert ddl.startswith(prefix), ddl
        connection.exec_driver_sql(f"CREATE TABLE {quoted(draft)} " + ddl[len(prefix) :])
        names = ", ".join(quoted(c.name) for c in table.columns)
        connection.exec_driver_sql(
            f"INSERT INTO {quoted(draft)} ({names}) SELECT {names} FROM {quoted(table.name)}"
        )
        connection.exec_driver_sql(f"DROP TABLE {quoted(table.name)}")
        connection.exec_driver_sql(f"ALTER TABLE {quoted(draft)} RENAME TO {quoted(table.name)}")
        for index in table.indexes:
            connection.execute(CreateIndex(index))
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        connection.exec_driver_sql("ROLLBACK TO schema_upgrade")
    connection.exec_driver_sql("RELEASE schema_upgrade")
    connection.commit()
    connection.exec_driver_sql("PRAGMA foreign_keys=ON")
    if broken:
        raise RuntimeError(f"schema upgrade would break references, nothing changed: {broken[:5]}")
