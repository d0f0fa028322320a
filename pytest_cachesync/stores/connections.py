"""No other store during a test: a Redis or SQL connection to anything but the test's is refused.

An app client the user forgot to route (a module-level ``redis.Redis()``, an engine made from a
production URL) would otherwise write to a real server while the test passes. While a test uses
the plugin's Redis, every new redis-py or valkey-py connection, synchronous or asyncio, is
checked before its socket opens; while it uses the plugin's SQL store, every new DBAPI
connection of any SQLAlchemy engine (an ``AsyncEngine``'s too: its ``sync_engine`` connects)
is checked before the driver connects. A refusal raises in the app (an exception no
``except RedisError`` swallows) and is recorded, so the test fails at teardown even if the app
swallowed it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest

ROUTING_HINT = (
    "Route the app to the test's stores: hand it cachesync.redis / cachesync.bind in the app "
    "fixture, or list its module-level client in cachesync_redis_targets (module:attr). If the "
    "test really must reach it, name it in @pytest.mark.cachesync(allow_connections=[...])."
)


class ForeignConnectionRefused(Exception):
    """Raised where the app opens a connection to a store that is not the test's."""


_REDIRECTING = ("hostaddr", "service", "servicefile", "dsn", "conninfo")


class SqlAllowed(NamedTuple):
    """A SQL connection a test may open: what the plugin's engine hands its driver, and where."""

    cargs: tuple[Any, ...]
    cparams: dict[str, Any]
    address: str

    def admits(self, cargs: tuple[Any, ...], cparams: dict[str, Any], address: str) -> bool:
        """The same arguments; or the same database named as plainly (another driver, other
        options), which is the test's own store: its writes are tracked and reset alike."""
        if (cargs, _plain(cparams)) == (self.cargs, self.cparams):
            return True
        # These can send a connection elsewhere than its shown address: hostaddr (libpq dials
        # it, not host), a service (a file names the server), a connection string the driver
        # merges with the rest. A default socket is named by none of what is compared.
        elsewhere = any(key in cparams for key in _REDIRECTING)
        return address == self.address and not elsewhere and "(default socket)" not in address


@dataclass
class ConnectionPolicy:
    """What one test may connect to; ``refused`` collects what it tried beyond that."""

    nodeid: str
    redis_allowed: set[tuple[object, ...]] | None  # None: Redis is not guarded in this test
    sql_allowed: list[SqlAllowed] | None
    patterns: tuple[str, ...] = ()
    refused: list[str] = field(default_factory=list)

    def permits(self, address: str) -> bool:
        return any(fnmatch.fnmatchcase(address, pattern) for pattern in self.patterns)

    def refuse(self, address: str, kind: str) -> ForeignConnectionRefused:
        message = (
            f"cachesync refused a {kind} connection to {address} during {self.nodeid}: it is "
            f"not one of the test's stores. {ROUTING_HINT}"
        )
        self.refused.append(message)
        return ForeignConnectionRefused(message)


def _is_fake(connection: object) -> bool:
    return any(cls.__module__.startswith("fakeredis") for cls in type(connection).__mro__)


def redis_address(connection: Any) -> tuple[tuple[object, ...], str]:
    """The identity and the printable ``redis://HOST:PORT/DB`` of a redis-py connection."""
    db = getattr(connection, "db", 0)
    path = getattr(connection, "path", None)
    if path:
        return ("unix", path, db), f"unix://{path}?db={db}"
    host, port = getattr(connection, "host", "localhost"), getattr(connection, "port", 6379)
    shown = f"[{host}]" if ":" in str(host) else host
    return ("tcp", host, int(port), db), f"redis://{shown}:{port}/{db}"


def sql_address(dialect: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> str:
    """A printable URL of a DBAPI connection about to open; it never carries a password."""
    if dialect.name == "sqlite":
        return f"sqlite:///{cargs[0] if cargs else cparams.get('database', '')}"
    host = _listed(cparams.get("host")) or "(default socket)"
    port = f":{_listed(cparams['port'])}" if cparams.get("port") else ""
    user = f"{cparams['user']}@" if cparams.get("user") else ""
    database = cparams.get("dbname") or cparams.get("database") or ""
    return f"{dialect.name}://{user}{host}{port}/{database}"


def _listed(value: Any) -> str:
    # asyncpg takes several hosts (and ports) as lists; libpq's drivers as "h1,h2".
    if isinstance(value, list | tuple):
        return ",".join(str(part) for part in value)
    return "" if value is None else str(value)


def install(policy: ConnectionPolicy) -> Callable[[], None]:
    """Guard new connections for one test; the call returned removes the guard."""
    undo: list[Callable[[], None]] = []
    if policy.redis_allowed is not None:
        undo.append(_guard_redis(policy))
    if policy.sql_allowed is not None:
        undo.append(_guard_sql(policy))

    def uninstall() -> None:
        for step in reversed(undo):
            step()

    return uninstall


def _connection_classes() -> list[tuple[type, bool]]:
    """The base classes whose connect method opens a socket, and whether that method is async.

    redis-py's connect through ``connect_check_health``; valkey-py's, forked from an older
    redis-py, through ``connect``. valkey-py is optional.
    """
    import redis.asyncio.connection
    import redis.connection

    classes: list[tuple[type, bool]] = [
        (redis.connection.AbstractConnection, False),
        (redis.asyncio.connection.AbstractConnection, True),
    ]
    try:
        import valkey.asyncio.connection
        import valkey.connection
    except ImportError:
        return classes
    return [
        *classes,
        (valkey.connection.AbstractConnection, False),
        (valkey.asyncio.connection.AbstractConnection, True),
    ]


def _connect_method(cls: type) -> str:
    return "connect_check_health" if "connect_check_health" in vars(cls) else "connect"


def _opened(connection: Any) -> bool:
    if hasattr(connection, "_sock"):
        return connection._sock is not None
    return bool(connection.is_connected)  # asyncio: a reader and a writer


def _guard_redis(policy: ConnectionPolicy) -> Callable[[], None]:
    allowed = policy.redis_allowed or set()

    def check(connection: Any) -> None:
        __tracebackhide__ = True
        if not _opened(connection) and not _is_fake(connection):
            identity, shown = redis_address(connection)
            if identity not in allowed and not policy.permits(shown):
                raise policy.refuse(shown, "Redis")

    def guarded(original: Callable[..., Any], is_async: bool) -> Callable[..., Any]:
        if is_async:

            async def connect_async(self: Any, *args: Any, **kwargs: Any) -> Any:
                __tracebackhide__ = True
                check(self)  # before the socket opens: nothing reaches the server
                return await original(self, *args, **kwargs)

            return connect_async

        def connect(self: Any, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            check(self)
            return original(self, *args, **kwargs)

        return connect

    saved: list[tuple[type, str, Any]] = []
    for cls, is_async in _connection_classes():
        name = _connect_method(cls)
        original = vars(cls)[name]
        saved.append((cls, name, original))
        setattr(cls, name, guarded(original, is_async))

    def restore() -> None:
        for cls, name, original in reversed(saved):
            setattr(cls, name, original)

    return restore


def _guard_sql(policy: ConnectionPolicy) -> Callable[[], None]:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    allowed = policy.sql_allowed or []

    def do_connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> None:
        __tracebackhide__ = True  # its arguments hold the password
        shown = sql_address(dialect, tuple(cargs), dict(cparams))
        if any(entry.admits(tuple(cargs), dict(cparams), shown) for entry in allowed):
            return
        if shown in ("sqlite:///:memory:", "sqlite:///") or policy.permits(shown):
            return  # an in-memory SQLite database is nobody's store
        raise policy.refuse(shown, "SQL")

    event.listen(Engine, "do_connect", do_connect)

    def remove() -> None:
        event.remove(Engine, "do_connect", do_connect)

    return remove


_PLAIN = str | int | float | bool | None


def _plain(cparams: dict[str, Any]) -> dict[str, Any]:
    # Drivers also get per-engine objects (psycopg's adapters map): the address is in the rest.
    # asyncpg's host and port lists are part of the address, so they are kept (as tuples).
    plain: dict[str, Any] = {}
    for key, value in cparams.items():
        if isinstance(value, list | tuple) and all(isinstance(v, _PLAIN) for v in value):
            plain[key] = tuple(value)
        elif isinstance(value, _PLAIN):
            plain[key] = value
    return plain


def connect_args(engine: Any) -> SqlAllowed:
    """What ``engine`` hands its driver, and the database that names."""
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    address = sql_address(engine.dialect, tuple(cargs), dict(cparams))
    return SqlAllowed(tuple(cargs), _plain(dict(cparams)), address)


def allow_engine(item: pytest.Item, engine: Any) -> None:
    """Let ``item`` connect through ``engine`` too: the plugin's ``AsyncEngine`` on the test
    database, whose driver (asyncpg's) may be handed the same database in other words."""
    guard = item.stash.get(_GUARD, None)
    if guard is not None and guard.policy.sql_allowed is not None:
        allowed = connect_args(engine)
        if allowed not in guard.policy.sql_allowed:
            guard.policy.sql_allowed.append(allowed)


def fail_if_refused(policy: ConnectionPolicy) -> None:
    if policy.refused:
        pytest.fail("\n".join(dict.fromkeys(policy.refused)), pytrace=False)


@dataclass
class _TestGuard:
    policy: ConnectionPolicy
    parts: int = 0


_GUARD = pytest.StashKey[_TestGuard]()


def guard_test(
    item: pytest.Item,
    patterns: tuple[str, ...],
    *,
    redis_allowed: set[tuple[object, ...]] | None = None,
    sql_allowed: list[SqlAllowed] | None = None,
) -> Callable[[], None]:
    """Guard the kinds of ``item``'s connections not guarded yet (several fixtures ask); the
    call returned ends that part, and the last one fails the test if it reached for another
    store."""
    guard = item.stash.get(_GUARD, None)
    if guard is None:
        guard = item.stash[_GUARD] = _TestGuard(ConnectionPolicy(item.nodeid, None, None, patterns))
    policy = guard.policy
    new_redis = redis_allowed if policy.redis_allowed is None else None
    new_sql = sql_allowed if policy.sql_allowed is None else None
    if new_redis is not None:
        policy.redis_allowed = new_redis
    if new_sql is not None:
        policy.sql_allowed = new_sql
    uninstall = install(ConnectionPolicy(item.nodeid, new_redis, new_sql, patterns, policy.refused))
    guard.parts += 1

    def end() -> None:
        uninstall()
        guard.parts -= 1
        if guard.parts == 0:
            del item.stash[_GUARD]
            fail_if_refused(policy)

    return end
