"""Refusals that protect data which is not a test's: remote hosts, foreign keyspaces and databases.

Every check here runs before the plugin connects anywhere (hosts) or before it writes anything
(keyspaces, leftover databases), and every refusal is one paragraph that names the way out.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from . import targets

# Re-exported: the refusals and the stores name URLs in their messages.
from .targets import REDIS_SCHEMES as REDIS_SCHEMES
from .targets import mask_redis_url as mask_redis_url


def refusal(message: str) -> pytest.UsageError:
    """The plugin refused to touch a store; the message says why and which option overrides."""
    return pytest.UsageError(message)


def is_loopback_host(host: str | None) -> bool:
    """True for an empty host, ``localhost``, 127.0.0.0/8 and ::1; names are never resolved."""
    if not host:
        return True
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def mask_db_url(url: str | URL) -> str:
    return make_url(url).render_as_string(hide_password=True)


def check_redis_url(url: str, *, allow_remote: bool) -> None:
    """Refuse a malformed URL, or a host that is not loopback unless ``allow_remote``."""
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES:
        raise pytest.UsageError(
            f"cachesync: Redis URL {mask_redis_url(url)!r} must start with redis://, rediss:// "
            "or unix:// (set it with --cachesync-redis-url, CACHESYNC_REDIS_URL or the ini key "
            "cachesync_redis_url; leave it unset for the embedded fakeredis server)."
        )
    if parts.scheme == "unix" or allow_remote:
        return
    try:
        host = parts.hostname
    except ValueError as exc:
        raise pytest.UsageError(f"cachesync: cannot parse Redis URL: {exc}.") from None
    if not is_loopback_host(host):
        raise refusal(
            f"cachesync refused Redis host {host!r} in {mask_redis_url(url)}: the plugin empties "
            "the keyspace it tests in, so it only works with a server on this machine "
            "(localhost, 127.0.0.0/8, ::1 or a unix:// socket) unless you pass "
            "--cachesync-allow-remote (or CACHESYNC_ALLOW_REMOTE=1, ini "
            "cachesync_allow_remote = true). Nothing was contacted."
        )


def redis_db_from_url(url: str) -> int:
    """The database number a redis-py URL selects (path for redis://, ``?db=`` for unix://)."""
    try:
        return targets.redis_db_from_url(url)
    except ValueError as error:
        raise pytest.UsageError(f"cachesync: {error}.") from None


def parse_db_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise pytest.UsageError(
            f"cachesync: cannot parse database URL {url!r} ({exc}); give an SQLAlchemy URL such "
            "as postgresql+psycopg://user@127.0.0.1:5432/app or sqlite:///app.db."
        ) from None


def check_db_url(url: URL, *, allow_remote: bool) -> None:
    """Refuse a database host that is not loopback or a unix socket unless ``allow_remote``."""
    if url.get_backend_name() == "sqlite" or allow_remote:
        return
    host = url.host
    query_host = url.query.get("host")
    if host is None and isinstance(query_host, str):
        host = query_host
    if host is None or host.startswith("/") or is_loopback_host(host):
        return
    raise refusal(
        f"cachesync refused database host {host!r} in {mask_db_url(url)}: the plugin creates, "
        "empties and drops test databases there, so it only works with a server on this machine "
        "(localhost, 127.0.0.0/8, ::1 or a unix socket) unless you pass --cachesync-allow-remote "
        "(or CACHESYNC_ALLOW_REMOTE=1, ini cachesync_allow_remote = true). "
        "Nothing was contacted."
    )


def foreign_redis_refusal(where: str, key_count: int) -> pytest.UsageError:
    return refusal(
        f"cachesync refused to empty {where}: it holds {key_count} key(s) and no test sentinel, "
        "so it may be data that is not a test's. Point --cachesync-redis-url at an empty "
        "database (the plugin marks the ones it uses with a sentinel key and reuses them "
        "afterwards), or pass --cachesync-allow-foreign-redis (CACHESYNC_ALLOW_FOREIGN_REDIS=1) "
        "if its content may be deleted. No key was touched."
    )


def foreign_database_refusal(name: str, url: str, drop_hint: str) -> pytest.UsageError:
    return refusal(
        f"cachesync refused to use the existing database {name!r} ({url}): it has no "
        "cachesync marker table, so it was not created by the plugin and may hold data that "
        f"is not a test's. Drop it yourself if it is disposable ({drop_hint}) or point "
        "--cachesync-db-url at another database name. No row was touched."
    )


def unreachable(what: str, where: str, error: BaseException) -> pytest.UsageError:
    return pytest.UsageError(
        f"cachesync cannot reach {what} at {where}: {error}. Start the server, or point "
        f"--cachesync-{'redis' if what == 'Redis' else 'db'}-url at a running one "
        "(unset it to use the embedded default)."
    )


def busy_redis_refusal(where: str, holder: str, url: str) -> pytest.UsageError:
    return refusal(
        f"cachesync refused {where}: another pytest session is using it right now ({holder}), "
        "and each session empties that keyspace between its tests. Wait for that session to "
        "finish, or give this one a keyspace of its own: another database number in "
        f"--cachesync-redis-url (now {url}). Nothing was touched."
    )


def busy_database_refusal(name: str, url: str, holder: str) -> pytest.UsageError:
    return refusal(
        f"cachesync refused the test database {name!r} ({url}): another pytest session is "
        f"using it right now ({holder}), and a session drops and recreates its test database. "
        "Wait for that session to finish, or point --cachesync-db-url at another database "
        "name X (the plugin uses test_X). Nothing was touched."
    )
