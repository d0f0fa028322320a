"""One timeline of a test: what each cache fill read, what each write changed, what it deleted.

The recorder listens to the cache spy (misses, leases, fills, invalidations), to the engine's
statements and transaction events, and, when Flask is installed, to its request signals, so
every write and invalidation belongs to a *write site*: the request that ran it (``DELETE
/users/<id>``) or, outside requests, a write block of test code. A fill's sources are the
tables (and rows) the same thread read between the key's miss or lease and its fill.

A write counts from its commit. In the default ``rollback`` reset mode every reader shares the
test's one connection (marked by ``stores.rollback``), so the release of any SAVEPOINT on it is
a commit, and a ROLLBACK TO SAVEPOINT undoes the writes inside, released or not. Writes rolled
back or never committed are dropped.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from pytest_cachesync.stores.rollback import OUTER_TRANSACTION

from .records import FILL, INVALIDATION, LEASE, MISS, KeyEffect
from .sql_rows import Rows, Written, read_rows, shape_of, write_rows

if TYPE_CHECKING:
    from .spy import RedisSpy
    from .sql_recorder import SqlRecorder

REQUEST, BLOCK = "request", "block"
OUTSIDE_REQUESTS = "(outside requests)"
_CONVERTER = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


def rule_label(method: str, rule: str | None, path: str) -> str:
    """``DELETE /users/<id>`` for the rule ``/users/<int:id>``; the path when no rule matched."""
    shown = _CONVERTER.sub(r"<\1>", rule) if rule else path
    return f"{method} {shown}"


@dataclass(eq=False, slots=True)
class Site:
    """One request, or one block of writes outside requests."""

    label: str
    kind: str


@dataclass(eq=False, slots=True)
class Write:
    site: Site
    rows: Written
    seq: int
    committed_at: int | None = None

    @property
    def table(self) -> str:
        return self.rows.table


@dataclass(eq=False, slots=True)
class Fill:
    key: str
    pattern: str
    site: Site | None
    seq: int
    reads: dict[str, Rows]


@dataclass(eq=False, slots=True)
class Invalidation:
    key: str
    pattern: str
    site: Site | None
    seq: int
    pending: tuple[Write, ...]  # writes of its site not yet committed when it ran


@dataclass(slots=True)
class _Level:
    savepoint: str | None
    writes: list[Write] = field(default_factory=list)


class _Thread(threading.local):
    def __init__(self) -> None:
        self.sites: list[Site] = []
        self.block: Site | None = None
        self.block_committed = False
        self.reads: list[tuple[str, Rows]] = []
        self.marks: dict[str, int] = {}


@dataclass
class Recording:
    """What the recorder saw; `analysis.analyse` turns it into the map."""

    fills: list[Fill] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    invalidations: list[Invalidation] = field(default_factory=list)


class DepsRecorder:
    """Records the timeline of one test on the spy's client and the recorder's engine."""

    def __init__(self, spy: RedisSpy, sql: SqlRecorder) -> None:
        self.spy = spy
        self.sql = sql
        self.recording = Recording()
        self._seq = itertools.count()
        self._thread = _Thread()
        self._levels: dict[Connection, list[_Level]] = {}
        self._lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []
        self.commits = 0  # transaction ends seen: they change the map without a new event

    # -- installation -------------------------------------------------------------------------

    def install(self) -> DepsRecorder:
        engine: Engine = self.sql.engine
        handlers: dict[str, Callable[..., None]] = {
            "before_cursor_execute": self._on_execute,
            "commit": self._on_commit,
            "rollback": self._on_rollback,
            "savepoint": self._on_savepoint,
            "rollback_savepoint": self._on_rollback_savepoint,
            "release_savepoint": self._on_release_savepoint,
        }
        for name, handler in handlers.items():
            event.listen(engine, name, handler)
            self._undo.append(partial(event.remove, engine, name, handler))
        self._undo.append(self.spy.add_observer(self._on_effect))
        self._connect_flask()
        return self

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    def _connect_flask(self) -> None:
        try:
            from flask import signals
        except ImportError:  # an app without Flask: writes are grouped in blocks only
            return
        started, ended = signals.request_started, signals.request_tearing_down
        started.connect(self._on_request_started, weak=False)
        ended.connect(self._on_request_ended, weak=False)
        self._undo.append(lambda: started.disconnect(self._on_request_started))
        self._undo.append(lambda: ended.disconnect(self._on_request_ended))

    # -- sites --------------------------------------------------------------------------------

    def _on_request_started(self, sender: Any, **extra: Any) -> None:
        from flask import request

        rule = request.url_rule
        label = rule_label(request.method, rule.rule if rule is not None else None, request.path)
        state = self._thread
        state.sites.append(Site(label, REQUEST))
        state.block = None

    def _on_request_ended(self, sender: Any, **extra: Any) -> None:
        state = self._thread
        if state.sites:
            state.sites.pop()
        state.marks.clear()
        state.reads.clear()

    def _site(self, *, writing: bool) -> Site | None:
        state = self._thread
        if state.sites:
            return state.sites[-1]
        if writing and (state.block is None or state.block_committed):
            state.block = Site(OUTSIDE_REQUESTS, BLOCK)
            state.block_committed = False
        return state.block

    # -- SQL ----------------------------------------------------------------------------------

    def _on_execute(
        self,
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if self.sql.is_suspended:
            return
        shape = shape_of(statement)
        if shape.kind == "read":
            state = self._thread
            if state.marks:  # only reads inside a fill's window are ever used
                state.reads.extend(read_rows(shape, parameters).items())
            return
        if shape.kind != "write":
            return
        changed = write_rows(shape, parameters, executemany)
        if changed is None:
            return
        site = self._site(writing=True)
        assert site is not None
        write = Write(site, changed, next(self._seq))
        with self._lock:
            self.recording.writes.append(write)
            if conn.in_transaction():
                levels = self._levels.setdefault(conn, [_Level(None)])
                levels[-1].writes.append(write)
                return
        write.committed_at = write.seq

    def _commit(self, writes: list[Write]) -> None:
        self.commits += 1
        at = next(self._seq)
        for write in writes:
            write.committed_at = at
        if writes and not self._thread.sites:
            self._thread.block_committed = True

    def _on_commit(self, conn: Connection) -> None:
        with self._lock:
            levels = self._levels.pop(conn, [])
        self._commit([w for level in levels for w in level.writes])

    def _on_rollback(self, conn: Connection) -> None:
        with self._lock:
            self._levels.pop(conn, None)

    def _on_savepoint(self, conn: Connection, name: str) -> None:
        with self._lock:
            self._levels.setdefault(conn, [_Level(None)]).append(_Level(name))

    def _pop_to(self, conn: Connection, name: str) -> tuple[list[Write], list[_Level]]:
        """Close savepoint ``name``: the level of that name, else the innermost one.

        SQLAlchemy names a savepoint only after its event (``begin_nested()`` passes no name),
        and closes nested transactions innermost first.
        """
        levels = self._levels.get(conn, [])
        named = any(level.savepoint == name for level in levels[1:])
        popped: list[Write] = []
        while len(levels) > 1:
            level = levels.pop()
            popped += level.writes
            if not named or level.savepoint == name:
                break
        return popped, levels

    def _on_rollback_savepoint(self, conn: Connection, name: str, context: object) -> None:
        with self._lock:
            writes, _ = self._pop_to(conn, name)
        for write in writes:  # also those a nested release had made visible
            write.committed_at = None

    def _on_release_savepoint(self, conn: Connection, name: str, context: object) -> None:
        with self._lock:
            writes, levels = self._pop_to(conn, name)
            if levels:
                # Kept in the enclosing level: rolling that back undoes them too.
                levels[-1].writes += writes
        if conn.info.get(OUTER_TRANSACTION):
            # On the test's one connection every reader sees a released SAVEPOINT's rows at
            # once, whichever savepoint (the test's own Session's) encloses it: it is the
            # app's commit.
            self._commit([w for w in writes if w.committed_at is None])

    def _pending(self, site: Site) -> tuple[Write, ...]:
        # The site's own uncommitted writes only: test code holding an open transaction around
        # a request is not the request's.
        with self._lock:
            return tuple(
                w
                for levels in self._levels.values()
                for level in levels
                for w in level.writes
                if w.site is site and w.committed_at is None
            )

    # -- Redis --------------------------------------------------------------------------------

    def _on_effect(self, effect: KeyEffect) -> None:
        if effect.bypassed:
            return
        kind = effect.effect
        state = self._thread
        if kind in (MISS, LEASE):
            state.marks[effect.key] = len(state.reads)
        elif kind == FILL:
            start = state.marks.pop(effect.key, None)
            reads: dict[str, Rows] = {}
            if start is not None:
                for table, rows in state.reads[start:]:
                    reads[table] = _union(reads[table], rows) if table in reads else rows
            if not state.marks:
                state.reads.clear()
            fill = Fill(
                effect.key, effect.pattern, self._site(writing=False), next(self._seq), reads
            )
            self.recording.fills.append(fill)
        elif kind == INVALIDATION:
            site = self._site(writing=False)
            pending = self._pending(site) if site is not None else ()
            self.recording.invalidations.append(
                Invalidation(effect.key, effect.pattern, site, next(self._seq), pending)
            )


def _union(a: Rows, b: Rows) -> Rows:
    if a is None or b is None:
        return None
    return a + tuple(row for row in b if row not in a)
