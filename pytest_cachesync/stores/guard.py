"""Refusals that protect data which is not a test's: remote hosts, foreign keyspaces and databases.

Every check here runs before the plugin connects anywhere (hosts) or before it writes anything
(keyspaces, leftover databases), and every refusal is one paragraph that names the way out.
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import URL

from . import targets

# Re-exported: the refusals and the stores name URLs in their messages.
from .targets import REDIS_SCHEMES as REDIS_SCHEMES
from .targets import mask_redis_url as mask_redis_url


def refusal(message: str) -> pytest.UsageError:
    """The plugin refused to touch a store; the message says why and which option overrides."""
    return pytest.UsageError(message)


def mask_db_url(url: str | URL) -> str:
    return targets.mask_db_url(url)


def redis_db_from_url(url: str) -> int:
    """The database number a redis-py URL selects (path for redis://, ``?db=`` for unix://)."""
    try:
        return targets.redis_db_from_url(url)
    except ValueError as error:
        raise pytest.UsageError(f"cachesync: {error}.") from None


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
