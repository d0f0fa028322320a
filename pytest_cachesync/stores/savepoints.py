"""Commits that survive, on the one connection the rollback strategy shares with the app.

In rollback mode every Session of the app joins the test's connection with a SAVEPOINT, so a
Session that opened its transaction first (a request paused between its read and its cache
fill) holds a SAVEPOINT around everything that runs meanwhile. Another request's commit there
is only a ``RELEASE SAVEPOINT`` inside it: when the paused Session ends with ``ROLLBACK TO
SAVEPOINT``, that commit would be undone, which no real server does.

The ledger follows the connection's SAVEPOINTs. When a Session's own SAVEPOINT (the one that
stands for its transaction) is released with writes in it, it is a commit; each enclosing
SAVEPOINT of another Session that has written nothing yet is moved after the commit
(``RELEASE`` and ``SAVEPOINT`` again under the same name), so rolling it back undoes only what
comes later, as on a server. An enclosing Session that had already written cannot be moved:
rolling it back later would lose the commit. That case is recorded and fails the test,
naming the truncate strategy, which runs every Session on a connection of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from .truncate import READ_OR_CONTROL

LEDGER_KEY = "cachesync_savepoint_ledger"
_SAVEPOINT = re.compile(r"^\s*SAVEPOINT\s+(\S+)", re.IGNORECASE)


@dataclass
class _Savepoint:
    name: str
    session_root: bool = False  # the SAVEPOINT standing for a Session's transaction
    wrote: bool = False  # writes of its own Session (its nested SAVEPOINTs released in it)
    holds_commit: str = ""  # a commit of another Session made inside it, which it cannot drop


@dataclass
class SavepointLedger:
    """The open SAVEPOINTs of one connection, and the commits a rollback would have lost."""

    connection: sa.Connection
    stack: list[_Savepoint] = field(default_factory=list)
    lost_commits: list[str] = field(default_factory=list)
    ending: bool = False  # the test is over: rolling everything back is the point
    _moving: bool = False

    def install(self) -> SavepointLedger:
        """Follow the connection (the engine's listeners, see ``install_events``, find it)."""
        self.connection.info[LEDGER_KEY] = self
        return self

    def uninstall(self) -> None:
        # The info dict belongs to the pooled DBAPI connection: it must not keep the ledger.
        self.connection.info.pop(LEDGER_KEY, None)

    # -- events -------------------------------------------------------------------------------

    def _on_execute(self, _conn: sa.Connection, _cursor: Any, statement: str, *_: Any) -> None:
        # Names come from the statement: the "savepoint" event fires before SQLAlchemy names it.
        if self._moving:
            return
        opened = _SAVEPOINT.match(statement)
        if opened is not None:
            self.stack.append(_Savepoint(opened.group(1).strip('"')))
        elif self.stack and not READ_OR_CONTROL.match(statement):
            self.stack[-1].wrote = True

    def mark_session_root(self) -> None:
        """The SAVEPOINT opened last stands for a Session's transaction (not a nested one)."""
        if self.stack:
            self.stack[-1].session_root = True

    def _pop(self, name: str) -> tuple[_Savepoint | None, list[_Savepoint]]:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index].name == name:
                popped = self.stack[index]
                del self.stack[index:]
                return popped, self.stack
        return None, self.stack

    def _on_release(self, conn: sa.Connection, name: str, _context: Any) -> None:
        if self._moving:
            return
        released, enclosing = self._pop(name)
        if released is None or not enclosing:
            return
        if not released.session_root:
            # A nested SAVEPOINT of a Session: its work stays that Session's until it commits.
            enclosing[-1].wrote |= released.wrote
            enclosing[-1].holds_commit = enclosing[-1].holds_commit or released.holds_commit
            return
        if not released.wrote:
            return
        movable = 0
        for savepoint in reversed(enclosing):
            if savepoint.wrote or savepoint.holds_commit:
                break
            movable += 1
        if movable:
            self._move_after_commit(conn, released.name, enclosing[len(enclosing) - movable :])
        for savepoint in enclosing[: len(enclosing) - movable]:
            savepoint.holds_commit = savepoint.holds_commit or released.name

    def _move_after_commit(
        self, conn: sa.Connection, committing: str, moved: list[_Savepoint]
    ) -> None:
        # The commit's RELEASE has not run yet (this listener runs just before it). Releasing
        # the outermost moved SAVEPOINT releases the commit with it; opening the moved ones and
        # the committing one again leaves SQLAlchemy's RELEASE with an empty SAVEPOINT to end.
        quote = conn.dialect.identifier_preparer.quote
        statements = [f"RELEASE SAVEPOINT {quote(moved[0].name)}"]
        statements += [f"SAVEPOINT {quote(s.name)}" for s in moved]
        statements.append(f"SAVEPOINT {quote(committing)}")
        self._moving = True
        try:
            for statement in statements:
                conn.exec_driver_sql(statement)
        finally:
            self._moving = False

    def _on_rollback(self, _conn: sa.Connection, name: str, _context: Any) -> None:
        if self._moving:
            return
        # ROLLBACK TO keeps the SAVEPOINT itself open, empty.
        for index in range(len(self.stack) - 1, -1, -1):
            savepoint = self.stack[index]
            if savepoint.name != name:
                continue
            if savepoint.holds_commit and not self.ending:
                self.lost_commits.append(savepoint.name)
            del self.stack[index + 1 :]
            savepoint.wrote = False
            savepoint.holds_commit = ""
            return

    def check(self) -> None:
        """Fail if a Session's rollback undid another Session's commit during the test."""
        if not self.lost_commits:
            return
        count = len(self.lost_commits)
        self.lost_commits.clear()
        raise AssertionError(
            f"a committed write was undone: {count} time(s) a Session of the app rolled back "
            "its own writes around another Session's commit on the test's shared connection "
            "(db_reset='rollback'). A real server keeps that commit; one connection cannot. Run "
            "this test with @pytest.mark.cachesync(db_reset='truncate') (or "
            "--cachesync-db-reset=truncate), where each Session has a connection of its own."
        )


def _ledger(conn: sa.Connection) -> SavepointLedger | None:
    ledger: SavepointLedger | None = conn.info.get(LEDGER_KEY)
    return ledger


def _on_execute(conn: sa.Connection, *args: Any) -> None:
    ledger = _ledger(conn)
    if ledger is not None:
        ledger._on_execute(conn, *args)


def _on_release(conn: sa.Connection, name: str, context: Any) -> None:
    ledger = _ledger(conn)
    if ledger is not None:
        ledger._on_release(conn, name, context)


def _on_rollback(conn: sa.Connection, name: str, context: Any) -> None:
    ledger = _ledger(conn)
    if ledger is not None:
        ledger._on_rollback(conn, name, context)


_ENGINE_EVENTS: tuple[tuple[str, Any], ...] = (
    ("before_cursor_execute", _on_execute),
    ("release_savepoint", _on_release),
    ("rollback_savepoint", _on_rollback),
)


def install_events(engine: sa.Engine) -> None:
    """Let ledgers follow the connections of ``engine`` (once per run, not per test).

    Listening on each test's Connection costs about a third of a millisecond per test; on the
    engine, a connection without a ledger costs one dict lookup per statement.
    """
    for name, listener in _ENGINE_EVENTS:
        if not event.contains(engine, name, listener):
            event.listen(engine, name, listener)
    if not event.contains(Session, "after_begin", _on_session_begin):
        event.listen(Session, "after_begin", _on_session_begin)


def uninstall_events(engine: sa.Engine) -> None:
    for name, listener in _ENGINE_EVENTS:
        if event.contains(engine, name, listener):
            event.remove(engine, name, listener)
    if event.contains(Session, "after_begin", _on_session_begin):
        event.remove(Session, "after_begin", _on_session_begin)


def _on_session_begin(session: Session, transaction: SessionTransaction, conn: Any) -> None:
    ledger: SavepointLedger | None = conn.info.get(LEDGER_KEY)
    if (
        ledger is not None
        and transaction.parent is None
        and session.join_transaction_mode == "create_savepoint"
    ):
        ledger.mark_session_root()
