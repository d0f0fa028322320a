"""The Redis clients the plugin works with: redis-py's and valkey-py's, synchronous and asyncio.

valkey-py is a fork of redis-py with the same API and wire protocol but its own classes, so a
type check against ``redis.Redis`` alone refuses it. valkey is only looked up when it is
already imported: a valkey client exists only once its package is, and a session without one
pays no import.
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# valkey:// is redis:// spoken to a Valkey server: redis-py's pool takes the same URL under
# the redis names, and the plugin's own connections are redis-py's.
_REDIS_PY_SCHEMES = {"valkey": "redis", "valkeys": "rediss"}


def _valkey() -> Any:
    return sys.modules.get("valkey")


def sync_client_types() -> tuple[type, ...]:
    """Classes of the synchronous clients (fakeredis's FakeRedis and FakeValkey subclass them)."""
    import redis

    found: list[type] = [redis.Redis]
    valkey = _valkey()
    if valkey is not None:
        found.append(valkey.Valkey)
    return tuple(found)


def async_client_types() -> tuple[type, ...]:
    """Classes of the asyncio clients (FakeAsyncRedis and FakeAsyncValkey subclass them)."""
    import redis.asyncio

    found: list[type] = [redis.asyncio.Redis]
    if "valkey.asyncio" in sys.modules:
        found.append(sys.modules["valkey.asyncio"].Valkey)
    return tuple(found)


def is_sync_client(client: object) -> bool:
    return isinstance(client, sync_client_types())


def is_async_client(client: object) -> bool:
    return isinstance(client, async_client_types())


def response_errors() -> tuple[type[BaseException], ...]:
    """The "the server answered with an error" exceptions of both libraries."""
    import redis

    found: list[type[BaseException]] = [redis.ResponseError]
    valkey = _valkey()
    if valkey is not None:
        found.append(valkey.ResponseError)
    return tuple(found)


def redis_py_url(url: str) -> str:
    """``url`` in the scheme redis-py accepts (valkey:// becomes redis://, valkeys:// rediss://)."""
    parts = urlsplit(url)
    scheme = _REDIS_PY_SCHEMES.get(parts.scheme)
    if scheme is None:
        return url
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))
