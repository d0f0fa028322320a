"""Where the clients will really connect: each store URL parsed once, judged before any connection.

A URL is read the way its client reads it (redis-py's ``parse_url``; libpq's host, hostaddr,
service file and environment), so a host hidden in a query string, a service definition or
``PGHOST`` is judged like one written in the URL. The target object is what the rest of the
plugin builds on: nothing downstream parses the URL again.
"""

from __future__ import annotations

import configparser
import inspect
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest

if TYPE_CHECKING:
    import redis
    from sqlalchemy.engine import URL

# valkey:// is redis:// spoken to a Valkey server (the same protocol).
REDIS_SCHEMES = ("redis", "rediss", "valkey", "valkeys", "unix")
_REDIS_DEFAULT_HOST = "localhost"
_REDIS_DEFAULT_PORT = 6379


def mask_redis_url(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo = f"{parts.username or ''}:***"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{userinfo}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def mask_db_url(url: str | URL) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def redis_db_from_url(url: str) -> int:
    """The database number a redis-py URL selects (path for redis://, ``?db=`` for unix://)."""
    parts = urlsplit(url)
    query_db = parse_qs(parts.query).get("db")
    raw = query_db[0] if query_db else ""
    if not raw and parts.scheme != "unix":
        raw = parts.path.lstrip("/")
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise ValueError(
            f"Redis URL {mask_redis_url(url)!r} names database {raw!r}, which is not a number"
        ) from None


@dataclass(frozen=True)
class HostPolicy:
    """Which hosts the plugin may reach: loopback always, names in ``allowed``, or all."""

    allow_remote: bool = False
    allowed: frozenset[str] = frozenset()

    def judge(self, host: str) -> str | None:
        """None when ``host`` may be reached, else why not."""
        if self.allow_remote or host.lower() in self.allowed:
            return None
        if host.lower() == "localhost":
            return None
        try:
            address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
        except ValueError:
            return "a name that needs DNS; only localhost and IP literals are judged local"
        return None if address.is_loopback else "not a loopback address"


def _remote_refusal(what: str, host: str, why: str, masked: str, detail: str) -> pytest.UsageError:
    return pytest.UsageError(
        f"cachesync refused {what} host {host!r} in {masked}{detail} ({why}): the plugin empties "
        "the stores it tests in, so it only works with servers on this machine (localhost, "
        "127.0.0.0/8, ::1 or a unix socket). Allow a CI service by its exact name with "
        f"--cachesync-allow-host {host} (ini cachesync_allow_hosts, env CACHESYNC_ALLOW_HOSTS), "
        "or every host with --cachesync-allow-remote. Nothing was contacted."
    )


@dataclass(frozen=True)
class RedisTarget:
    """A Redis URL as redis-py reads it: the socket it opens, its database, its options.

    Parsed once where the URL enters (``--cachesync-redis-url``); judged by ``judge_redis``.
    """

    url: str
    db: int
    host: str | None = None  # None for a unix socket
    port: int | None = None
    path: str | None = None  # the unix socket
    connection_kwargs: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, url: str) -> RedisTarget:
        """Read ``url`` the way ``redis.Redis.from_url`` does; ValueError on what it would fail."""
        from redis.connection import parse_url

        from .clients import redis_py_url

        url = url.strip()
        masked = mask_redis_url(url)
        if urlsplit(url).scheme not in REDIS_SCHEMES:
            raise ValueError(
                f"Redis URL {masked!r} must start with redis://, rediss://, valkey://, "
                "valkeys:// or unix:// (leave it unset for the embedded fakeredis server; "
                "Redis Cluster is not supported)"
            )
        try:
            spoken = redis_py_url(url)
            kwargs: dict[str, Any] = parse_url(spoken)  # type: ignore[no-untyped-call]
            parts = urlsplit(spoken)
            _ = parts.port  # raises on a port that is not a number
        except ValueError as exc:
            raise ValueError(f"cannot parse Redis URL {masked!r}: {exc}") from None
        kwargs.setdefault("connection_class", _default_connection_class())
        unknown = sorted(
            set(parse_qs(parts.query)) - _redis_query_names(kwargs["connection_class"])
        )
        if unknown:
            raise ValueError(
                f"Redis URL {masked!r} has query parameter(s) {', '.join(unknown)} that redis-py "
                "does not accept for this scheme (Redis Cluster is not supported)"
            )
        db = kwargs["db"] = int(kwargs["db"]) if "db" in kwargs else redis_db_from_url(url)
        if parts.scheme == "unix":
            path = str(kwargs.get("path") or "")
            if not path:
                raise ValueError(f"Redis URL {masked!r} names no socket path")
            return cls(url, db, None, None, path, kwargs)
        host = str(kwargs.get("host") or _REDIS_DEFAULT_HOST)
        try:
            port = int(kwargs.get("port") or _REDIS_DEFAULT_PORT)
        except ValueError:
            raise ValueError(
                f"Redis URL {masked!r} has port {kwargs.get('port')!r}, not a number"
            ) from None
        kwargs["host"], kwargs["port"] = host, port
        return cls(url, db, host, port, None, kwargs)

    @property
    def masked(self) -> str:
        """The URL as shown in headers and errors: without its password."""
        return mask_redis_url(self.url)

    def __str__(self) -> str:
        return self.masked

    @property
    def address(self) -> str:
        """``redis://HOST:PORT/DB`` (or ``unix://PATH?db=DB``), never with a password."""
        if self.path is not None:
            return f"unix://{self.path}?db={self.db}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"redis://{host}:{self.port}/{self.db}"

    def pool(self, db: int | None = None) -> redis.ConnectionPool:
        """A new pool on database ``db`` (default: the URL's) with every option of the URL."""
        import redis

        kwargs = dict(self.connection_kwargs)
        kwargs["db"] = self.db if db is None else db
        # redis-py 8 caps a pool at 100 connections unless told otherwise; the test's pool
        # also serves the plugin's own observers, which must not eat the app's share.
        kwargs.setdefault("max_connections", 1024)
        return redis.ConnectionPool(**kwargs)


def redis_target(url: str, policy: HostPolicy) -> RedisTarget:
    """``url`` parsed and judged: one UsageError for a malformed URL or a refused host."""
    try:
        target = RedisTarget.parse(url)
    except ValueError as error:
        raise pytest.UsageError(f"cachesync: {error}.") from None
    judge_redis(target, policy)
    return target


def judge_redis(target: RedisTarget, policy: HostPolicy) -> None:
    """Refuse the host redis-py would dial unless ``policy`` allows it; connects nowhere."""
    if target.host is None:
        return  # a unix socket on this machine
    why = policy.judge(target.host)
    if why is not None:
        from_query = not urlsplit(target.url).hostname
        detail = " (taken from its query string, as redis-py does)" if from_query else ""
        raise _remote_refusal("Redis", target.host, why, target.masked, detail)


def _redis_query_names(connection_class: type) -> set[str]:
    """The keyword arguments a connection (and its pool) accepts: the query names that work."""
    import redis

    names: set[str] = set()
    for cls in (*connection_class.__mro__, redis.ConnectionPool):
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        for parameter in inspect.signature(init).parameters.values():
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                names.add(parameter.name)
    return names - {"self", "connection_class"}


def _default_connection_class() -> type:
    import redis

    return redis.Connection


@dataclass(frozen=True)
class DatabaseTarget:
    """One SQLAlchemy URL, with the server addresses its driver would try, in order."""

    url: URL
    masked: str
    addresses: tuple[str, ...] = ()


def database_target(
    raw: str, policy: HostPolicy, environ: Mapping[str, str] | None = None
) -> DatabaseTarget:
    """Parse ``raw`` and judge every host the driver would connect to; never connects."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from .async_sql import is_async_url, sync_url

    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise pytest.UsageError(
            f"cachesync: cannot parse database URL {raw!r} ({exc}); give an SQLAlchemy URL such "
            "as postgresql+psycopg://user@127.0.0.1:5432/app or sqlite:///app.db."
        ) from None
    masked = mask_db_url(url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return DatabaseTarget(url, masked)
    if backend != "postgresql":
        raise pytest.UsageError(
            f"cachesync: database backend {backend!r} is not supported; use sqlite or "
            "postgresql (psycopg 3: postgresql+psycopg://...)."
        )
    _check_driver(url, masked)
    if is_async_url(url):
        _check_driver(sync_url(url), masked, " (the plugin's own work on the database uses it)")
    env = os.environ if environ is None else environ
    addresses = libpq_addresses(url, env, masked)
    for address in addresses:
        if address.startswith(("/", "@")) or address == "":
            continue  # a unix socket on this machine
        why = policy.judge(address)
        if why is not None:
            raise _remote_refusal("database", address, why, masked, _libpq_detail(url, env))
    return DatabaseTarget(url, masked, addresses)


def _check_driver(url: URL, masked: str, use: str = "") -> None:
    """Refuse a missing driver at start-up, found without importing it (a DBAPI imported here
    would be imported once more by SQLAlchemy, in another state, under pytester)."""
    import importlib.util

    from sqlalchemy.exc import NoSuchModuleError

    try:
        driver = str(url.get_dialect().driver)
    except NoSuchModuleError as exc:
        raise pytest.UsageError(f"cachesync: database URL {masked}: {exc}.") from None
    module = driver.removesuffix("_async")
    if importlib.util.find_spec(module) is None:
        extra = ""
        if module == "asyncpg":
            extra = " (pip install asyncpg)"  # no extra of the plugin's installs it
        elif url.get_backend_name() == "postgresql":
            extra = " (pip install 'pytest-cachesync[postgres]')"
        raise pytest.UsageError(
            f"cachesync: the driver {module!r} for {masked} is not installed{use}. "
            f"Install it{extra}."
        )


def _query_values(url: URL, name: str) -> list[str]:
    value = url.query.get(name)
    if value is None:
        return []
    values = [value] if isinstance(value, str) else list(value)
    return [part for item in values for part in item.split(",")]


def _strip_port(host: str) -> str:
    """SQLAlchemy's multi-host form ``?host=h:5432``; a socket path or IPv6 literal is left."""
    if host.startswith(("/", "@")) or host.count(":") > 1:
        return host.strip("[]") if host.startswith("[") and host.endswith("]") else host
    if host.startswith("[") and "]:" in host:
        return host[1 : host.index("]")]
    return host.split(":", 1)[0]


def libpq_addresses(url: URL, environ: Mapping[str, str], masked: str) -> tuple[str, ...]:
    """The addresses libpq would try, in its order: URL and query > service file > environment.

    For each position of the host list, a non-empty ``hostaddr`` is dialled instead of the
    host name; an empty host means the default unix socket.
    """
    explicit: dict[str, list[str]] = {}
    hosts = ([url.host] if url.host else []) + [_strip_port(h) for h in _query_values(url, "host")]
    if hosts:
        explicit["host"] = hosts
    if hostaddrs := _query_values(url, "hostaddr"):
        explicit["hostaddr"] = hostaddrs
    service = (_query_values(url, "service") or [environ.get("PGSERVICE", "")])[0]
    if service:
        for key, value in _service_entries(service, environ, masked).items():
            if key in ("host", "hostaddr") and key not in explicit:
                explicit[key] = value.split(",")
    for key, variable in (("host", "PGHOST"), ("hostaddr", "PGHOSTADDR")):
        if key not in explicit and environ.get(variable):
            explicit[key] = environ[variable].split(",")
    hosts = explicit.get("host", [])
    hostaddrs = explicit.get("hostaddr", [])
    count = max(len(hosts), len(hostaddrs), 1)
    addresses = []
    for index in range(count):
        hostaddr = hostaddrs[index].strip() if index < len(hostaddrs) else ""
        host = hosts[index].strip() if index < len(hosts) else ""
        addresses.append(hostaddr or host)
    return tuple(addresses)


def _service_files(environ: Mapping[str, str]) -> Sequence[Path]:
    files = []
    if environ.get("PGSERVICEFILE"):
        files.append(Path(environ["PGSERVICEFILE"]))
    elif environ.get("HOME"):
        files.append(Path(environ["HOME"]) / ".pg_service.conf")
    if environ.get("PGSYSCONFDIR"):
        files.append(Path(environ["PGSYSCONFDIR"]) / "pg_service.conf")
    else:
        files.append(Path("/etc/postgresql-common/pg_service.conf"))
    return files


def _service_entries(service: str, environ: Mapping[str, str], masked: str) -> dict[str, str]:
    """The section ``service`` of the first service file that defines it, as libpq reads it."""
    for path in _service_files(environ):
        if not path.is_file():
            continue
        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError, OSError) as exc:
            raise pytest.UsageError(f"cachesync: cannot read service file {path}: {exc}.") from None
        if parser.has_section(service):
            return {key.lower(): value for key, value in parser.items(service)}
    raise pytest.UsageError(
        f"cachesync: database URL {masked} uses service {service!r}, which no service file "
        f"defines ({', '.join(str(p) for p in _service_files(environ))}); libpq would refuse it."
    )


def _libpq_detail(url: URL, environ: Mapping[str, str]) -> str:
    """Where a host the URL does not show came from."""
    sources = [name for name in ("hostaddr", "service") if url.query.get(name)]
    sources += [name for name in ("PGHOST", "PGHOSTADDR", "PGSERVICE") if environ.get(name)]
    if "host" in url.query:
        sources.insert(0, "host")
    return f" (with {', '.join(sources)}, as libpq reads them)" if sources else ""
