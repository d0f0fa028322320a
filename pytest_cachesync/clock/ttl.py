"""Make a Redis keyspace's TTLs follow a travelled Python clock.

fakeredis stores absolute expiry times and reads `time.time()`, so it follows Python's clock by
itself; it only needs keys that a jump made due to be removed, or moving the clock back would bring
them back to life. A real server keeps its own clock, so every relative TTL is moved instead: one
Lua script, atomic on the server, subtracts the jump from each key's PTTL and unlinks the keys it
makes due.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import redis

from pytest_cachesync.stores.clients import is_sync_client

# KEYS rather than SCAN: SCAN may return a key twice, which would move its TTL twice, and the whole
# script blocks the server either way. Redis runs a script with its clock stopped at the script's
# start, so every PTTL below is read at the same instant. string.format keeps large numbers out of
# the scientific notation that Lua's default number-to-string conversion would send to PEXPIRE.
_MOVE_TTLS_LUA = """
local pattern, shift = ARGV[1], tonumber(ARGV[2])
local moved, removed = 0, 0
for _, key in ipairs(redis.call('KEYS', pattern)) do
  local left = redis.call('PTTL', key)
  if left >= 0 then
    left = left - shift
    if left <= 0 then
      redis.call('UNLINK', key)
      removed = removed + 1
    elseif shift ~= 0 then
      redis.call('PEXPIRE', key, string.format('%d', left))
      moved = moved + 1
    end
  end
end
return {moved, removed}
"""

_GLOB_SPECIAL = re.compile(rb"([\\*?\[\]])")


def glob_for_prefix(prefix: str | bytes) -> bytes:
    """A KEYS pattern that matches exactly the keys starting with `prefix`."""
    raw = prefix.encode() if isinstance(prefix, str) else bytes(prefix)
    return _GLOB_SPECIAL.sub(rb"\\\1", raw) + b"*"


def follows_python_clock(client: redis.Redis) -> bool:
    """Whether the server behind `client` reads Python's `time.time()` (an in-process fakeredis)."""
    try:
        import fakeredis
    except ImportError:
        return False
    if isinstance(client, fakeredis.FakeRedis | fakeredis.FakeStrictRedis):
        return True
    # FakeValkey's connections are fakeredis's too, under a valkey-py class.
    fake_connections: tuple[type, ...] = (fakeredis.FakeRedisConnection,)
    if "valkey" in sys.modules:
        from fakeredis._clients._valkey import FakeValkeyConnection

        fake_connections += (FakeValkeyConnection,)
    connection_class = getattr(client.connection_pool, "connection_class", None)
    return isinstance(connection_class, type) and issubclass(connection_class, fake_connections)


class KeyspaceTTLs:
    """The TTLs of the keys under `prefix` (all keys of the client's db when it is empty)."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str | bytes = "",
        *,
        server_follows_python_clock: bool | None = None,
    ) -> None:
        if not is_sync_client(client):
            raise TypeError(
                "the clock needs a synchronous redis.Redis or valkey.Valkey (or fakeredis) "
                "client; for an asyncio client pass a synchronous one on the same server, "
                f"got {type(client).__name__}"
            )
        self._client = client
        self._pattern = glob_for_prefix(prefix)
        self.server_follows_python_clock = (
            follows_python_clock(client)
            if server_follows_python_clock is None
            else server_follows_python_clock
        )
        self._script: Any = client.register_script(_MOVE_TTLS_LUA)

    @property
    def pattern(self) -> bytes:
        return self._pattern

    def move(self, shift_ms: int) -> tuple[int, int]:
        """Move every TTL `shift_ms` closer to expiry (further away when negative), atomically.

        Keys whose expiry is reached are unlinked; keys without a TTL are left alone. Returns
        (keys whose TTL moved, keys removed).
        """
        moved, removed = self._script(keys=[], args=[self._pattern, int(shift_ms)])
        return int(moved), int(removed)

    def remove_due(self) -> int:
        """Remove keys whose expiry has been reached, so that moving back cannot revive them."""
        return self.move(0)[1]
