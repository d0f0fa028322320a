"""Test databases the plugin creates, marks, reuses and drops (one per xdist worker).

For a URL naming database ``X`` the test database is ``test_X`` (``test_X_gwN`` per worker),
created through the server's maintenance database like Django's test runner does. A database
that already exists is reused only if it carries the plugin's marker table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from pytest_cachesync._workers import Worker

from .guard import foreign_database_refusal, mask_db_url, unreachable

MARKER_TABLE = "cachesync_test_database"
MAINTENANCE_DB = "postgres"


class TestDatabase(Protocol):
    """A database the plugin owns for one worker."""

    url: URL

    def describe(self) -> str: ...

    def preflight(self) -> None:
        """Check reachability and refuse a foreign leftover; touches no data."""

    def create(self, *, reuse: bool) -> bool:
        """Create (or recreate, or reuse) it; True if an existing one was reused."""

    def drop(self) -> None: ...


def _marker_ddl() -> str:
    return f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (created_by VARCHAR(64) NOT NULL)"


def _write_marker(url: URL) -> None:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(_marker_ddl())
            conn.exec_driver_sql(
                f"INSERT INTO {MARKER_TABLE} (created_by) VALUES ('pytest-cachesync')"
            )
    finally:
        engine.dispose()


def has_marker(url: URL) -> bool:
    """Whether the database at ``url`` carries the plugin's marker table."""
    return _has_marker(url)


def _has_marker(url: URL) -> bool:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return sa.inspect(conn).has_table(MARKER_TABLE)
    finally:
        engine.dispose()


class SqliteFileDatabase:
    """A SQLite file; the default lives in pytest's basetemp, one per worker."""

    __test__ = False

    def __init__(self, path: Path, *, default: bool) -> None:
        self.path = path
        self.default = default
        self.url = URL.create("sqlite", database=str(path))

    def describe(self) -> str:
        return "sqlite file per worker" if self.default else f"sqlite {self.path}"

    def preflight(self) -> None:
        if self.path.exists() and not _has_marker(self.url):
            raise foreign_database_refusal(str(self.path), mask_db_url(self.url), f"rm {self.path}")

    def create(self, *, reuse: bool) -> bool:
        self.preflight()
        if self.path.exists():
            if reuse:
                return True
            self.path.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _write_marker(self.url)
        return False

    def drop(self) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)


class ServerDatabase:
    """A database on a PostgreSQL server, created and dropped via the maintenance database."""

    __test__ = False

    def __init__(self, url: URL) -> None:
        self.url = url
        self.name = str(url.database)
        self.admin_url = url.set(database=MAINTENANCE_DB)

    def describe(self) -> str:
        return f"{self.url.get_backend_name()} {mask_db_url(self.url)}"

    def _admin(self) -> sa.Engine:
        return sa.create_engine(self.admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")

    def admin_engine(self) -> sa.Engine:
        """An autocommit engine on the server's maintenance database (for DDL on databases)."""
        return self._admin()

    def exists(self) -> bool:
        return self._exists()

    def refuse_foreign(self) -> None:
        """Raise if the database exists without the plugin's marker."""
        self.preflight()

    def _exists(self) -> bool:
        engine = self._admin()
        try:
            with engine.connect() as conn:
                found = conn.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                    {"name": self.name},
                ).first()
                return found is not None
        except OperationalError as exc:
            raise unreachable(
                "the database server", mask_db_url(self.admin_url), exc.orig or exc
            ) from None
        finally:
            engine.dispose()

    def preflight(self) -> None:
        if self._exists() and not _has_marker(self.url):
            raise foreign_database_refusal(
                self.name, mask_db_url(self.url), f'DROP DATABASE "{self.name}"'
            )

    def create(self, *, reuse: bool, template: str | None = None) -> bool:
        """Create it (empty, or as a copy of the plugin's ``template`` database)."""
        exists = self._exists()
        if exists and not _has_marker(self.url):
            raise foreign_database_refusal(
                self.name, mask_db_url(self.url), f'DROP DATABASE "{self.name}"'
            )
        if exists and reuse:
            return True
        engine = self._admin()
        try:
            with engine.connect() as conn:
                if exists:
                    conn.exec_driver_sql(f'DROP DATABASE "{self.name}" WITH (FORCE)')
                copy = f' TEMPLATE "{template}"' if template else ""
                conn.exec_driver_sql(f'CREATE DATABASE "{self.name}"{copy}')
                # A test database needs no durability: commits need not wait for the WAL flush.
                conn.exec_driver_sql(f'ALTER DATABASE "{self.name}" SET synchronous_commit = off')
        finally:
            engine.dispose()
        if template is None:
            # A copy has the template's marker already.
            _write_marker(self.url)
        return False

    def drop(self) -> None:
        engine = self._admin()
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            engine.dispose()


def test_database_name(name: str, worker: Worker) -> str:
    return f"test_{name}{worker.suffix}"


def plan_database(url: URL | None, worker: Worker, basetemp: Path | None) -> TestDatabase:
    """The test database for ``worker`` given the configured URL (None = default SQLite)."""
    if url is None or (
        url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
    ):
        if basetemp is None:
            raise RuntimeError("the default SQLite database needs pytest's basetemp")
        return SqliteFileDatabase(basetemp / f"cachesync-{worker.name}.sqlite3", default=True)
    if url.get_backend_name() == "sqlite":
        given = Path(str(url.database))
        path = given.with_name(test_database_name(given.stem, worker) + given.suffix)
        return SqliteFileDatabase(path, default=False)
    if url.get_backend_name() == "postgresql":
        if not url.database:
            raise pytest.UsageError(
                f"cachesync: database URL {mask_db_url(url)} names no database; the plugin "
                "needs a name X to create test_X."
            )
        return ServerDatabase(url.set(database=test_database_name(url.database, worker)))
    raise pytest.UsageError(
        f"cachesync: database backend {url.get_backend_name()!r} is not supported; use "
        "sqlite or postgresql (psycopg 3: postgresql+psycopg://...)."
    )
