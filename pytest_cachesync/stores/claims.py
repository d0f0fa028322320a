"""Claims that keep two pytest sessions off the same stores at the same time.

From its start to its end a session holds one Redis connection whose client name lists the
keyspaces it uses, one PostgreSQL connection (to the maintenance database) holding a
session-level advisory lock per test database, and an exclusive ``flock`` on a file beside each
SQLite test database named by the user. All belong to the process: when it ends, even killed,
the server closes the connections and the kernel drops the locks, so no stale lock survives a
crash.
Under xdist the controller holds the claims of all its workers, which therefore take none.
Everything here runs once, at session start; nothing runs per test.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import redis
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from .guard import (
    busy_database_refusal,
    busy_redis_refusal,
    mask_db_url,
    unreachable,
)
from .redis import KeyspacePlan
from .sql import ServerDatabase, SqliteFileDatabase
from .targets import RedisTarget

CLAIM_NAME_PREFIX = "cachesync-session"
_ADVISORY_NAMESPACE = "pytest-cachesync test database:"


def _host_name() -> str:
    # Client names allow printable ASCII without spaces only.
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "unknown"


def holder_label(pid: int | None = None, host: str | None = None) -> str:
    return f"pytest-cachesync pid {pid or os.getpid()} on host {host or _host_name()}"


@dataclass(frozen=True)
class RedisClaim:
    """One keyspace a session uses: a whole database (``prefix=""``) or a prefix in it."""

    db: int
    prefix: str

    def overlaps(self, other: RedisClaim) -> bool:
        if self.db != other.db:
            return False
        return not self.prefix or not other.prefix or self.prefix == other.prefix

    def token(self) -> str:
        return f"{self.db}" if not self.prefix else f"{self.db}+{quote(self.prefix, safe='')}"

    @classmethod
    def from_token(cls, token: str) -> RedisClaim:
        db, _, prefix = token.partition("+")
        return cls(int(db), unquote(prefix))

    def describe(self) -> str:
        return f"db {self.db}" + (f" prefix {self.prefix!r}" if self.prefix else "")


def claim_of(plan: KeyspacePlan) -> RedisClaim:
    return RedisClaim(plan.db, plan.prefix if plan.mode == "prefix" else "")


def claim_name(claims: Sequence[RedisClaim], pid: int, host: str) -> str:
    keyspaces = ",".join(claim.token() for claim in claims)
    return f"{CLAIM_NAME_PREFIX}/host={host}/pid={pid}/keyspaces={keyspaces}"


@dataclass(frozen=True)
class ForeignClaim:
    """Another session's claim, read back from its client name."""

    host: str
    pid: int
    claims: tuple[RedisClaim, ...]

    @classmethod
    def parse(cls, name: str) -> ForeignClaim | None:
        head, _, rest = name.partition("/")
        if head != CLAIM_NAME_PREFIX:
            return None
        fields = dict(part.partition("=")[::2] for part in rest.split("/"))
        try:
            claims = tuple(
                RedisClaim.from_token(token) for token in fields["keyspaces"].split(",") if token
            )
            return cls(fields["host"], int(fields["pid"]), claims)
        except (KeyError, ValueError):
            return None


def advisory_key(database_name: str) -> int:
    """A stable, non-negative 64-bit advisory lock key for a test database name."""
    digest = hashlib.blake2b((_ADVISORY_NAMESPACE + database_name).encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") >> 1


class SessionLocks:
    """The claims one session (or xdist controller) holds until ``release``."""

    def __init__(self) -> None:
        self._redis_pool: redis.ConnectionPool | None = None
        self._db_engines: list[sa.Engine] = []
        self._db_connections: list[sa.Connection] = []
        self._files: list[tuple[int, Path]] = []

    def claim_redis(self, target: RedisTarget, plans: Sequence[KeyspacePlan]) -> None:
        """Name a connection after the keyspaces of ``plans``, refusing any already claimed.

        The name is set and the client list read in one MULTI/EXEC, so of two sessions that
        start together exactly one sees the other.
        """
        claims = sorted({claim_of(plan) for plan in plans if plan.mode != "embedded"}, key=str)
        if not claims:
            return
        pool = target.pool(claims[0].db)
        self._redis_pool = pool
        client = redis.Redis(connection_pool=pool)
        pipe = client.pipeline(transaction=True)
        pipe.client_setname(claim_name(claims, os.getpid(), _host_name()))
        pipe.client_id()
        pipe.client_list()
        try:
            _, own_id, clients = pipe.execute()
        except redis.ConnectionError as exc:
            raise unreachable("Redis", target.masked, exc) from None
        except redis.ResponseError:
            # CLIENT LIST is not allowed for this user (ACL) or renamed: nothing to see with.
            self._release_redis()
            return
        for entry in clients:
            if str(entry.get("id")) == str(own_id):
                continue
            other = ForeignClaim.parse(str(entry.get("name") or ""))
            if other is None:
                continue
            for mine in claims:
                if any(mine.overlaps(theirs) for theirs in other.claims):
                    self._release_redis()
                    raise busy_redis_refusal(
                        f"Redis {mine.describe()} at {target.masked}",
                        _redis_holder(other, entry),
                        target.masked,
                    )

    def lock_databases(self, databases: Sequence[ServerDatabase]) -> None:
        """Take an advisory lock per test database, refusing one another session holds."""
        by_server: dict[str, list[ServerDatabase]] = {}
        for database in databases:
            server = database.admin_url.render_as_string(hide_password=False)
            by_server.setdefault(server, []).append(database)
        for group in by_server.values():
            connection = self._connect_admin(group[0])
            for database in group:
                key = advisory_key(database.name)
                locked = connection.execute(
                    sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}
                ).scalar_one()
                if not locked:
                    holder = _pg_holder(connection, key)
                    raise busy_database_refusal(database.name, mask_db_url(database.url), holder)

    def lock_files(self, databases: Sequence[SqliteFileDatabase]) -> None:
        """Lock a file beside each SQLite test database, refusing one another session holds.

        Where there is no ``flock`` (Windows), the files are not claimed.
        """
        try:
            import fcntl
        except ImportError:
            return
        for database in databases:
            path = claim_file(database.path)
            while True:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = os.read(fd, 512).decode(errors="replace").strip()
                    os.close(fd)
                    raise busy_database_refusal(
                        str(database.path),
                        mask_db_url(database.url),
                        holder or "a session that has not said who it is yet",
                    ) from None
                # A session that ends removes its file: if this one was removed between the
                # open and the lock, the lock is on a file nobody else will look at.
                if _same_file(fd, path):
                    break
                os.close(fd)
            os.ftruncate(fd, 0)
            os.write(fd, holder_label().encode())
            self._files.append((fd, path))

    def _connect_admin(self, database: ServerDatabase) -> sa.Connection:
        engine = sa.create_engine(
            database.admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT"
        )
        self._db_engines.append(engine)
        try:
            connection = engine.connect()
        except OperationalError as exc:
            raise unreachable(
                "the database server", mask_db_url(database.admin_url), exc.orig or exc
            ) from None
        self._db_connections.append(connection)
        connection.execute(
            sa.text("SELECT set_config('application_name', :name, false)"),
            {"name": holder_label()[:63]},
        )
        return connection

    def _release_redis(self) -> None:
        if self._redis_pool is not None:
            self._redis_pool.disconnect()
            self._redis_pool = None

    def release(self) -> None:
        """Give every claim back (closing the connections releases them on the server)."""
        self._release_redis()
        for connection in self._db_connections:
            connection.close()
        for engine in self._db_engines:
            engine.dispose()
        self._db_connections.clear()
        self._db_engines.clear()
        for fd, path in self._files:
            # Removed while still locked, so no session can lock the old file afterwards.
            path.unlink(missing_ok=True)
            os.close(fd)
        self._files.clear()


def claim_file(database: Path) -> Path:
    """The file a session locks to claim the SQLite test database at ``database``."""
    return database.with_name(database.name + ".cachesync-lock")


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _redis_holder(other: ForeignClaim, entry: dict[str, Any]) -> str:
    detail = holder_label(other.pid, other.host)
    if entry.get("age") is not None:
        detail += f", connected {entry['age']} s ago"
    if entry.get("addr"):
        detail += f" from {entry['addr']}"
    return detail


def _pg_holder(connection: sa.Connection, key: int) -> str:
    row = connection.execute(
        sa.text(
            "SELECT a.application_name, a.pid, a.client_addr, a.backend_start "
            "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.classid::bigint = :high AND l.objid::bigint = :low "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        {"high": key >> 32, "low": key & 0xFFFFFFFF},
    ).first()
    if row is None:
        return "a session that has just ended or is ending"
    name, backend, addr, since = row
    who = name or "a client that did not name itself"
    started = f", connected since {since:%Y-%m-%d %H:%M:%S}" if since is not None else ""
    where = f" from {addr}" if addr else ""
    return f"{who}; PostgreSQL backend {backend}{where}{started}"


def hold_stores(
    locks: SessionLocks,
    redis_target: RedisTarget | None,
    plans: Sequence[KeyspacePlan],
    databases: Sequence[object],
) -> None:
    """Claim the session's stores: test databases first, then Redis keyspaces.

    One fixed order means two sessions that want both stores cannot each win one of them.
    """
    # The default SQLite files live in the session's own basetemp: nobody else uses them.
    files = [
        database
        for database in databases
        if isinstance(database, SqliteFileDatabase) and not database.default
    ]
    if files:
        locks.lock_files(files)
    servers = [database for database in databases if isinstance(database, ServerDatabase)]
    if servers:
        locks.lock_databases(servers)
    if redis_target is not None:
        locks.claim_redis(redis_target, plans)
