"""The truncate strategy: delete the rows of tables written since the last reset.

Writes are noticed on every engine connected to the test database (the app may build its own),
so only dirty tables are emptied, children first, and their sequences restarted.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

_WRITE = re.compile(
    r"^\s*(?:insert\s+(?:or\s+\w+\s+)?into|update(?:\s+or\s+\w+)?|delete\s+from|replace\s+into)"
    r"\s+((?:\"[^\"]+\"|\w+)(?:\.(?:\"[^\"]+\"|\w+))?)",
    re.IGNORECASE,
)
# Statements that cannot change rows of the metadata's tables.
_READ_OR_CONTROL = re.compile(
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
        if not _READ_OR_CONTROL.match(statement):
            # CTE-writes, MERGE, COPY...: cannot tell which table, so assume all.
            self.mark_all()


class Truncator:
    """Deletes the rows of dirty tables and restarts their sequences, in one transaction."""

    def __init__(self, engine: sa.Engine, metadata: sa.MetaData, tracker: WriteTracker) -> None:
        self.engine = engine
        self.order = list(reversed(metadata.sorted_tables))
        self.tracker = tracker
        self._sequences: dict[sa.Table, list[str]] | None = None

    def reset(self, *, restart_all_sequences: bool = False) -> None:
        """Empty the dirty tables; with ``restart_all_sequences`` also restart the sequences
        that rolled-back inserts advanced (so ids start at 1 again, as truncate promises)."""
        dirty = self.tracker.dirty
        sequence_dirty = self.tracker.sequence_dirty if restart_all_sequences else set()
        if not dirty and not sequence_dirty:
            return
        tables = [table for table in self.order if table in dirty]
        restart = [table for table in self.order if table in dirty or table in sequence_dirty]
        if self.engine.dialect.name == "postgresql":
            # One round trip, no BEGIN and COMMIT of their own: PostgreSQL runs the
            # statements of one simple query (no parameters) as one transaction.
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql(";".join(self._statements(conn, tables, restart)))
        else:
            with self.engine.begin() as conn:
                for statement in self._statements(conn, tables, restart):
                    conn.exec_driver_sql(statement)
        dirty.clear()
        sequence_dirty.clear()

    def _statements(
        self, conn: sa.Connection, tables: list[sa.Table], restart: list[sa.Table]
    ) -> list[str]:
        preparer = conn.dialect.identifier_preparer
        statements = [f"DELETE FROM {preparer.format_table(table)}" for table in tables]
        return statements + self._restart_sequences(conn, restart)

    def _restart_sequences(self, conn: sa.Connection, tables: list[sa.Table]) -> list[str]:
        if conn.dialect.name == "sqlite":
            has_sequence_table = conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"
            ).first()
            if not has_sequence_table or not tables:
                return []
            names = ", ".join("'" + table.name.replace("'", "''") + "'" for table in tables)
            return [f"DELETE FROM sqlite_sequence WHERE name IN ({names})"]
        if conn.dialect.name == "postgresql":
            sequences = self._postgres_sequences(conn)
            # setval, not ALTER SEQUENCE: no DDL lock, and it is a plain function call.
            return [
                "SELECT setval('" + sequence.replace("'", "''") + "', 1, false)"
                for table in tables
                for sequence in sequences.get(table, [])
            ]
        return []

    def _postgres_sequences(self, conn: sa.Connection) -> dict[sa.Table, list[str]]:
        if self._sequences is None:
            found: dict[sa.Table, list[str]] = {}
            for table in self.order:
                for column in table.columns:
                    name = conn.execute(
                        sa.text("SELECT pg_get_serial_sequence(:table, :column)"),
                        {"table": table.fullname, "column": column.name},
                    ).scalar()
                    if name:
                        found.setdefault(table, []).append(str(name))
            self._sequences = found
        return self._sequences
