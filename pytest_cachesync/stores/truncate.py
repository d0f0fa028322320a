"""The truncate strategy: delete the rows of tables written since the last reset.

Writes are noticed on every engine connected to the test database (the app may build its own),
so only dirty tables are emptied, children first, and their sequences restarted.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from .inflight_query import InFlightQuery

_WRITE = re.compile(
    r"^\s*(?:insert\s+(?:or\s+\w+\s+)?into|update(?:\s+or\s+\w+)?|delete\s+from|replace\s+into)"
    r"\s+((?:\"[^\"]+\"|\w+)(?:\.(?:\"[^\"]+\"|\w+))?)",
    re.IGNORECASE,
)
# Statements that cannot change rows of the metadata's tables.
READ_OR_CONTROL = re.compile(
    r"^\s*(?:select|pragma|savepoint|release|rollback|begin|commit|end|show|set|explain"
    r"|create|drop|alter|comment|analyze|vacuum)\b",
    re.IGNORECASE,
)


def _database_key(url: sa.URL) -> tuple[str, str | None, int | None, str | None]:
    return (url.get_backend_name(), url.host, url.port, url.database)


class WriteTracker:
    """Records which tables of ``metadata`` were written on the test database."""

    def __init__(self, engine: sa.Engine, metadata: sa.MetaData) -> None:
        self._database = _database_key(engine.url)
        self._by_name: dict[str, sa.Table] = {}
        for table in metadata.sorted_tables:
            self._by_name[table.name.lower()] = table
            self._by_name[table.fullname.lower()] = table
        self.dirty: set[sa.Table] = set()
        # Inserts that were rolled back still advanced sequences (PostgreSQL).
        self.sequence_dirty: set[sa.Table] = set()
        # Rolled-back work of the rollback strategy leaves nothing behind: not dirty.
        self.ignored_connection: sa.Connection | None = None

    def install(self) -> None:
        event.listen(sa.Engine, "before_cursor_execute", self._on_execute)

    def uninstall(self) -> None:
        if event.contains(sa.Engine, "before_cursor_execute", self._on_execute):
            event.remove(sa.Engine, "before_cursor_execute", self._on_execute)

    def mark_all(self) -> None:
        self.dirty.update(self._by_name.values())

    def _table(self, quoted_name: str) -> sa.Table | None:
        name = quoted_name.replace('"', "").lower()
        table = self._by_name.get(name)
        if table is None:
            table = self._by_name.get(name.rsplit(".", 1)[-1])
        return table

    def _on_execute(self, conn: sa.Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if _database_key(conn.engine.url) != self._database:
            return
        rolled_back = conn is self.ignored_connection
        match = _WRITE.match(statement)
        if rolled_back:
            if match is not None and statement.lstrip()[:6].lower() == "insert":
                table = self._table(match.group(1))
                if table is not None:
                    self.sequence_dirty.add(table)
            return
        if match is not None:
            table = self._table(match.group(1))
            if table is not None:
                self.dirty.add(table)
            return
        if not READ_OR_CONTROL.match(statement):
            # CTE-writes, MERGE, COPY...: cannot tell which table, so assume all.
            self.mark_all()


class Truncator:
    """Deletes the rows of dirty tables and restarts their sequences, in one transaction.

    The deletions go through one driver connection kept for the session, straight to the
    driver: they are the plugin's own statements, without parameters, and a pool checkout
    plus SQLAlchemy's execution path cost more than the deletions themselves.

    On PostgreSQL with psycopg, ``start_reset`` hands the deletions to the server right after a
    test and returns at once; the server runs them while pytest reports the test and sets the
    next one up, and ``reset`` before the next test reads their outcome.
    """

    def __init__(self, engine: sa.Engine, metadata: sa.MetaData, tracker: WriteTracker) -> None:
        self.engine = engine
        self.order = list(reversed(metadata.sorted_tables))
        self.tracker = tracker
        self._postgres = engine.dialect.name == "postgresql"
        self._sequences: dict[sa.Table, list[str]] | None = None
        self._has_sqlite_sequence: bool | None = None
        self._kept: sa.Connection | None = None
        self._statements_for: dict[tuple[tuple[sa.Table, ...], ...], list[str]] = {}
        # Deletions sent and not yet waited for, with the tables they empty.
        self._in_flight: tuple[InFlightQuery, list[sa.Table], list[sa.Table]] | None = None

    def _driver(self) -> Any:
        """The session's driver connection for deletions (autocommit on PostgreSQL)."""
        if self._kept is None or self._kept.invalidated or self._kept.closed:
            connection = self.engine.connect()
            if self._postgres:
                # One simple query, no BEGIN and COMMIT of its own: PostgreSQL runs the
                # statements of a simple query as one transaction.
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            self._kept = connection
        return self._kept.connection.dbapi_connection

    def close(self) -> None:
        """Wait for deletions in flight, then return the kept connection (call before
        disposing of the engine)."""
        try:
            self._settle()
        finally:
            if self._kept is not None:
                self._kept.close()
                self._kept = None

    def _discard(self) -> None:
        self._in_flight = None
        if self._kept is not None:
            self._kept.invalidate()
            self._kept = None

    def reset(self, *, restart_all_sequences: bool = False) -> None:
        """Empty the dirty tables; with ``restart_all_sequences`` also restart the sequences
        that rolled-back inserts advanced (so ids start at 1 again, as truncate promises).

        Deletions sent earlier are waited for first; tables written since are emptied now.
        """
        self._settle()
        tables, restart = self._take_dirty(restart_all_sequences)
        if not tables and not restart:
            return
        driver = self._driver()
        statements = self._statements(driver, tables, restart)
        try:
            cursor = driver.cursor()
            try:
                if self._postgres:
                    cursor.execute(";".join(statements))
                else:
                    for statement in statements:
                        cursor.execute(statement)
                    driver.commit()
            finally:
                cursor.close()
        except BaseException as error:
            self._failed(error, tables, restart)
            raise

    def start_reset(self, *, restart_all_sequences: bool = False) -> None:
        """Start emptying the dirty tables: without waiting where the driver allows it.

        psycopg on PostgreSQL sends the deletions and returns; the next ``reset`` (or
        ``close``) reads their outcome. Other drivers empty the tables at once. Tables written
        after this call stay dirty, so the next ``reset`` empties them too.
        """
        self._settle()
        driver = self._driver() if self._postgres else None
        pgconn = getattr(driver, "pgconn", None)
        if pgconn is None:
            self.reset(restart_all_sequences=restart_all_sequences)
            return
        tables, restart = self._take_dirty(restart_all_sequences)
        if not tables and not restart:
            return
        try:
            query = ";".join(self._statements(driver, tables, restart))
            self._in_flight = (InFlightQuery.send(pgconn, query), tables, restart)
        except BaseException as error:
            self._failed(error, tables, restart)
            raise

    def _failed(
        self, error: BaseException, tables: list[sa.Table], restart: list[sa.Table]
    ) -> None:
        """A broken or half-used connection is not kept, and the tables stay dirty: the next
        reset starts afresh."""
        self._discard()
        self._restore_dirty(tables, restart)
        if isinstance(error, Exception):
            # It may surface at the setup of a later test: say where it comes from.
            error.add_note(
                "cachesync: deleting the rows that tests wrote failed; the tables stay marked "
                "and are emptied again before the next test."
            )

    def _settle(self) -> None:
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is None:
            return
        query, tables, restart = in_flight
        try:
            query.wait()
        except BaseException as error:
            self._failed(error, tables, restart)
            raise

    def _take_dirty(self, restart_all_sequences: bool) -> tuple[list[sa.Table], list[sa.Table]]:
        """The dirty tables in deletion order, and those whose sequences restart; the tracker
        starts afresh, so what is written from now on is dirty again."""
        dirty = self.tracker.dirty
        sequence_dirty = self.tracker.sequence_dirty if restart_all_sequences else set()
        if not dirty and not sequence_dirty:
            return [], []
        tables = [table for table in self.order if table in dirty]
        restart = [table for table in self.order if table in dirty or table in sequence_dirty]
        dirty.clear()
        sequence_dirty.clear()
        return tables, restart

    def _restore_dirty(self, tables: list[sa.Table], restart: list[sa.Table]) -> None:
        self.tracker.dirty.update(tables)
        self.tracker.sequence_dirty.update(restart)

    def _statements(
        self, driver: Any, tables: list[sa.Table], restart: list[sa.Table]
    ) -> list[str]:
        key = (tuple(tables), tuple(restart))
        statements = self._statements_for.get(key)
        if statements is None:
            # A suite's tests write the same few sets of tables: each set's SQL is built once.
            preparer = self.engine.dialect.identifier_preparer
            statements = [f"DELETE FROM {preparer.format_table(table)}" for table in tables]
            statements += self._restart_sequences(driver, restart)
            self._statements_for[key] = statements
        return statements

    def _restart_sequences(self, driver: Any, tables: list[sa.Table]) -> list[str]:
        if self.engine.dialect.name == "sqlite":
            if self._has_sqlite_sequence is None:
                # Only the metadata's tables matter, and they were all created before the
                # first test: whether any of them has AUTOINCREMENT does not change.
                found = _fetch_one(
                    driver, "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"
                )
                self._has_sqlite_sequence = found is not None
            if not self._has_sqlite_sequence or not tables:
                return []
            names = ", ".join("'" + table.name.replace("'", "''") + "'" for table in tables)
            return [f"DELETE FROM sqlite_sequence WHERE name IN ({names})"]
        if self._postgres:
            sequences = self._postgres_sequences(driver)
            # setval, not ALTER SEQUENCE: no DDL lock, and it is a plain function call.
            return [
                "SELECT setval('" + sequence.replace("'", "''") + "', 1, false)"
                for table in tables
                for sequence in sequences.get(table, [])
            ]
        return []

    def _postgres_sequences(self, driver: Any) -> dict[sa.Table, list[str]]:
        if self._sequences is None:
            found: dict[sa.Table, list[str]] = {}
            for table in self.order:
                for column in table.columns:
                    row = _fetch_one(
                        driver,
                        "SELECT pg_get_serial_sequence(%s, %s)",
                        (table.fullname, column.name),
                    )
                    if row and row[0]:
                        found.setdefault(table, []).append(str(row[0]))
            self._sequences = found
        return self._sequences


def _fetch_one(driver: Any, statement: str, parameters: tuple[Any, ...] = ()) -> Any:
    # A DB-API cursor: driver connections do not all have execute() (psycopg2 has not).
    cursor = driver.cursor()
    try:
        cursor.execute(statement, parameters)
        return cursor.fetchone()
    finally:
        cursor.close()
