"""SQL statements and database writes, observed through SQLAlchemy engine events."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from pytest_cachesync.clock.reading import ClockLike, clock_reader

_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|MERGE|TRUNCATE|UPSERT)\b", re.IGNORECASE)
_PENDING_WRITE = "cachesync_pending_write"


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    parameters: object
    at: float
    is_write: bool

    def render(self) -> str:
        sql = " ".join(self.sql.split())
        sql = sql if len(sql) <= 160 else sql[:157] + "..."
        return f"{sql}  {self.parameters!r}" if self.parameters else sql


class SqlRecorder:
    """Records every statement an engine runs, and when writes were committed.

    `write_times` holds the clock time of each commit of a transaction that wrote (or of a
    write run outside a transaction): the moments at which cached answers may go stale.
    While `suspended()` is active (a bypassed replay) nothing is recorded.
    """

    def __init__(self, engine: Engine, *, clock: ClockLike | None = None) -> None:
        if not isinstance(engine, Engine):
            raise TypeError(f"SqlRecorder needs a SQLAlchemy Engine, got {type(engine).__name__}")
        self.engine = engine
        self.now = clock_reader(clock)
        self.statements: list[Statement] = []
        self.write_times: list[float] = []
        # Where each write commit falls in another record's order (the spy's effects), when
        # `mark` is given: clock times tie on a frozen clock, positions never do.
        self.mark: Callable[[], int] | None = None
        self.write_marks: list[int] = []
        self._suspended = 0
        self._also: list[Engine] = []
        self.installed = False

    def _hooks(self) -> tuple[tuple[str, Callable[..., None]], ...]:
        return (
            ("before_cursor_execute", self._on_execute),
            ("commit", self._on_commit),
            ("rollback", self._on_rollback),
            ("release_savepoint", self._on_release_savepoint),
        )

    def install(self) -> SqlRecorder:
        if not self.installed:
            for name, hook in self._hooks():
                event.listen(self.engine, name, hook)
            self.installed = True
        return self

    def uninstall(self) -> None:
        if self.installed:
            for other in list(self._also):
                self.forget(other)
            for name, hook in self._hooks():
                event.remove(self.engine, name, hook)
            self.installed = False

    def also_record(self, engine: Engine) -> None:
        """Record ``engine`` too (an AsyncEngine's ``sync_engine`` on the same database)."""
        if engine is self.engine or engine in self._also:
            return
        for name, hook in self._hooks():
            event.listen(engine, name, hook)
        self._also.append(engine)

    def forget(self, engine: Engine) -> None:
        if engine in self._also:
            self._also.remove(engine)
            for name, hook in self._hooks():
                event.remove(engine, name, hook)

    def __enter__(self) -> SqlRecorder:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    @contextmanager
    def suspended(self) -> Iterator[None]:
        self._suspended += 1
        try:
            yield
        finally:
            self._suspended -= 1

    @property
    def is_suspended(self) -> bool:
        """Whether a bypassed replay runs now (its statements are not the test's)."""
        return self._suspended > 0

    def _on_execute(
        self,
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if self._suspended:
            return
        is_write = bool(_WRITE.match(statement))
        now = self.now()
        self.statements.append(Statement(statement, parameters, now, is_write))
        if is_write:
            if conn.in_transaction():
                conn.info[_PENDING_WRITE] = True
            else:
                self._committed(now)

    def _committed(self, at: float) -> None:
        self.write_times.append(at)
        if self.mark is not None:
            self.write_marks.append(self.mark())

    def _on_commit(self, conn: Connection) -> None:
        if conn.info.pop(_PENDING_WRITE, False) and not self._suspended:
            self._committed(self.now())

    def _on_release_savepoint(self, conn: Connection, name: str, context: object) -> None:
        # A test that runs the app inside a rolled-back outer transaction sees the app's
        # commits as released SAVEPOINTs: they are the moments its writes become visible.
        self._on_commit(conn)

    def _on_rollback(self, conn: Connection) -> None:
        conn.info.pop(_PENDING_WRITE, None)

    def reset(self) -> None:
        self.statements.clear()
        self.write_times.clear()
        self.write_marks.clear()

    @property
    def count(self) -> int:
        return len(self.statements)

    def assert_at_most(self, limit: int) -> None:
        """Fail, listing the statements, if more than `limit` ran."""
        if len(self.statements) <= limit:
            return
        listing = "\n".join(f"  {i:>3}. {s.render()}" for i, s in enumerate(self.statements, 1))
        raise AssertionError(
            f"expected at most {limit} SQL statements, {len(self.statements)} ran:\n{listing}"
        )
