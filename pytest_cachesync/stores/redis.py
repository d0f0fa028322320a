"""The Redis keyspace a test runs in: its own database number, or a key prefix in a shared one.

The plugin owns a keyspace once it carries the sentinel key. The sentinel is written when the
keyspace is claimed and after each test's teardown, and deleted by the reset before each test,
so a test always starts from a truly empty keyspace while the database between tests says
"this is a test database" to the next run's guard.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pytest
import redis

from pytest_cachesync._options import RedisIsolation
from pytest_cachesync._workers import Worker
from pytest_cachesync.clock.ttl import glob_for_prefix

from .guard import foreign_redis_refusal, unreachable
from .targets import RedisTarget

SENTINEL_KEY = "cachesync:sentinel"
SENTINEL_VALUE = b"pytest-cachesync test keyspace; the plugin empties it before every test"
_SCAN_BATCH = 1000

Mode = Literal["embedded", "db", "prefix"]


@dataclass(frozen=True)
class KeyspacePlan:
    """Where one worker's keys live."""

    mode: Mode
    db: int
    prefix: str

    def describe(self) -> str:
        if self.mode == "embedded":
            return "fakeredis"
        if self.mode == "db":
            return f"db {self.db}"
        return f"db {self.db} prefix {self.prefix!r}"


def worker_prefix(worker: Worker) -> str:
    return f"cachesync:{worker.name}:"


def server_database_count(target: RedisTarget) -> int:
    """Databases the server offers (CONFIG GET databases, else the highest SELECT that works)."""
    client = redis.Redis(connection_pool=target.pool())
    try:
        try:
            client.ping()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # rediss:// against a plain server times out in the TLS handshake.
            raise unreachable("Redis", target.masked, exc) from None
        try:
            reply: dict[Any, Any] = client.config_get("databases")
            return int(str(reply.get("databases") or reply.get(b"databases") or 0))
        except (redis.ResponseError, ValueError):
            pass
        # CONFIG may be disabled (managed servers): probe with SELECT instead.
        count = 1
        while count < 1024:
            try:
                client.execute_command("SELECT", count)  # type: ignore[no-untyped-call]
            except redis.ResponseError:
                break
            count += 1
        return count
    finally:
        client.close()


def plan_keyspace(
    target: RedisTarget | None, isolation: RedisIsolation, worker: Worker, databases: int | None
) -> KeyspacePlan:
    """Keyspace of ``worker``: db base+index when the server has them, else a prefix."""
    if target is None:
        prefix = worker_prefix(worker) if isolation == "prefix" else ""
        return KeyspacePlan("embedded", 0, prefix)
    base = target.db
    if isolation == "prefix" or (isolation == "auto" and not worker.is_xdist):
        if isolation == "prefix":
            return KeyspacePlan("prefix", base, worker_prefix(worker))
        return KeyspacePlan("db", base, "")
    needed = base + worker.count
    if databases is not None and needed <= databases:
        return KeyspacePlan("db", base + worker.index, "")
    if isolation == "db":
        raise pytest.UsageError(
            f"cachesync: --cachesync-redis-isolation=db needs databases {base}..{needed - 1} "
            f"for {worker.count} worker(s), but the server offers {databases}. Lower the base "
            "database in the URL, use fewer workers, or use 'prefix' (or 'auto')."
        )
    return KeyspacePlan("prefix", base, worker_prefix(worker))


def _no_wait() -> None:
    return None


class _DeferredReplies:
    """The plugin's own connection, whose replies are read when they are needed, not at once.

    Each command costs a round trip to the server when its reply is awaited on the spot. The
    sentinel written after a test is read back with the next test's FLUSHDB, in the same wait.
    """

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self._pool = pool
        self._connection: Any = None
        self._pending = 0

    def send(self, *args: Any) -> None:
        if self._connection is None:
            self._connection = self._pool.make_connection()
        self._pending += 1
        try:
            self._connection.send_command(*args)
        except BaseException:
            self.discard()
            raise

    def settle(self) -> None:
        """Read every pending reply; an error reply raises (and drops the connection)."""
        try:
            while self._pending:
                self._pending -= 1
                self._connection.read_response()
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        self._pending = 0
        if self._connection is not None:
            self._connection.disconnect()
            self._connection = None


class RedisKeyspace:
    """One worker's keyspace on one server: guard, claim, reset and clients."""

    def __init__(
        self,
        client: redis.Redis,
        plan: KeyspacePlan,
        where: str,
        *,
        fake_server: Any = None,
        target: RedisTarget | None = None,
    ) -> None:
        self.client = client
        self.plan = plan
        self.where = where
        self.target = target
        self._fake_server = fake_server
        self._own = _DeferredReplies(client.connection_pool) if fake_server is None else None

    @classmethod
    def embedded(cls, plan: KeyspacePlan) -> RedisKeyspace:
        import fakeredis

        # One FakeServer per session and worker: FakeRedis clients that share host and port
        # in one process would otherwise share data with every other session in it.
        from .fake_ttl import make_exact

        server = fakeredis.FakeServer()
        client = fakeredis.FakeRedis(server=server)
        make_exact(server, client)
        return cls(client, plan, "embedded fakeredis", fake_server=server)

    @classmethod
    def on_server(cls, target: RedisTarget, plan: KeyspacePlan) -> RedisKeyspace:
        client = redis.Redis(connection_pool=target.pool(plan.db))
        where = f"Redis database {plan.db} at {target.masked}"
        if plan.mode == "prefix":
            where += f" (keys under {plan.prefix!r})"
        return cls(client, plan, where, target=target)

    @property
    def key_prefix(self) -> str:
        return self.plan.prefix

    @property
    def fake_server(self) -> Any:
        """The embedded fakeredis server (None on a real one): other clients may share it."""
        return self._fake_server

    @property
    def sentinel(self) -> str:
        """The claim's mark: inside the prefix in prefix mode, so it licenses nothing outside."""
        return self.plan.prefix + SENTINEL_KEY

    def check(self, *, allow_foreign: bool) -> None:
        """Refuse a keyspace holding keys the plugin did not write; writes nothing.

        In db mode the whole database is the keyspace: only a database whose sole mark is the
        db-mode sentinel (not one of a prefix-mode claim) is taken as a test's. In prefix mode
        only the keys under the prefix are the keyspace.
        """
        if self.plan.mode == "embedded":
            return
        try:
            has_sentinel = bool(self.client.exists(self.sentinel))
            size = int(self.client.dbsize()) if self.plan.mode == "db" else len(self._prefixed())
        except redis.ConnectionError as exc:
            raise unreachable("Redis", self.where, exc) from None
        except redis.RedisError as exc:
            raise unreachable("Redis", self.where, exc) from None
        if size and not has_sentinel and not allow_foreign:
            raise foreign_redis_refusal(self.where, size)

    def claim(self) -> None:
        """Mark the keyspace as a test's (after every worker's keyspace passed ``check``)."""
        if self.plan.mode != "embedded":
            self.client.set(self.sentinel, SENTINEL_VALUE)

    def _prefixed(self) -> list[bytes]:
        pattern = glob_for_prefix(self.plan.prefix)
        return list(self.client.scan_iter(match=pattern, count=_SCAN_BATCH))

    def reset(self) -> None:
        """Empty this keyspace (its whole database, or every key under its prefix)."""
        self.start_reset()()

    def start_reset(self) -> Callable[[], None]:
        """Start emptying this keyspace; the call returned waits until it is empty.

        The caller can do other work (the SQL reset) while the server flushes.
        """
        if self.plan.prefix:
            self._unlink_prefixed()
            return _no_wait
        if self._fake_server is not None:
            self._clear_fake_database()
            return _no_wait
        assert self._own is not None
        self._own.send("FLUSHDB")
        return self._own.settle

    def mark(self) -> None:
        """Write the sentinel between tests (never during one: tests see an empty keyspace).

        Sent without waiting for the reply: the next reset, or ``close``, reads it.
        """
        if self.plan.mode == "db" and self._own is not None:
            self._own.send("SET", SENTINEL_KEY, SENTINEL_VALUE)

    def _clear_fake_database(self) -> None:
        # What FLUSHDB does inside fakeredis, without encoding a command for its socket
        # emulation: a third of the plugin's per-test cost on the embedded default.
        server = self._fake_server
        dbs = getattr(server, "dbs", None)
        lock = getattr(server, "lock", None)
        if dbs is None or lock is None:  # a fakeredis without these: take the documented way
            self.client.flushdb()
            return
        with lock:
            database = dbs.get(self.plan.db)
            if database is not None:
                database.clear()

    def keys(self) -> list[bytes]:
        """Keys of this keyspace (under the prefix in prefix mode), sentinel excluded."""
        pattern = glob_for_prefix(self.plan.prefix)
        sentinel = self.sentinel.encode()
        return [
            key
            for key in self.client.scan_iter(match=pattern, count=_SCAN_BATCH)
            if key != sentinel
        ]

    def _unlink_prefixed(self) -> None:
        # The prefix's sentinel stays for the whole session: the claim is never left unmarked.
        pattern = glob_for_prefix(self.plan.prefix)
        sentinel = self.sentinel.encode()
        cursor = 0
        while True:
            cursor, found = self.client.scan(cursor, match=pattern, count=_SCAN_BATCH)
            batch = [key for key in found if key != sentinel]
            if batch:
                self.client.unlink(*batch)
            if cursor == 0:
                return

    def empty(self) -> None:
        """Leave only the claim's sentinel: what a session leaves behind on a real server."""
        if self.plan.mode == "embedded":
            return
        self.reset()
        self.claim()

    def close(self) -> None:
        if self._own is not None:
            try:
                self._own.settle()
            finally:
                self._own.discard()
        self.client.close()
