"""The embedded default keeps TTLs to the millisecond, as a real server does."""

from __future__ import annotations

import pytest

from .conftest import Backend

EXACT = """
import time

import fakeredis
import pytest

WRITES = {
    "setex": lambda r, k: r.execute_command("SETEX", k, 10, "v"),
    "set_ex": lambda r, k: r.execute_command("SET", k, "v", "EX", 10),
    "set_px": lambda r, k: r.execute_command("SET", k, "v", "PX", 10000),
    "psetex": lambda r, k: r.execute_command("PSETEX", k, 10000, "v"),
    "expire": lambda r, k: (r.set(k, "v"), r.execute_command("EXPIRE", k, 10)),
    "pexpire": lambda r, k: (r.set(k, "v"), r.execute_command("PEXPIRE", k, 10000)),
    "pexpireat": lambda r, k: (
        r.set(k, "v"),
        r.execute_command("PEXPIREAT", k, round(time.time() * 1000) + 10000),
    ),
    "getex_ex": lambda r, k: (r.set(k, "v"), r.execute_command("GETEX", k, "EX", 10)),
    "getex_px": lambda r, k: (r.set(k, "v"), r.execute_command("GETEX", k, "PX", 10000)),
    "lua_setex": lambda r, k: r.eval("redis.call('SETEX', KEYS[1], 10, 'v')", 1, k),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_ten_seconds(cachesync, cachesync_clock, write):
    key = cachesync.key("user:1")
    WRITES[write](cachesync.redis, key)
    pttl = cachesync.redis.pttl(key)
    if isinstance(cachesync.redis, fakeredis.FakeRedis):
        assert pttl == 10000
    else:
        # The server's own clock runs on during the round trips (slow on a busy machine), and
        # PEXPIREAT's deadline is rounded to the millisecond: within the same millisecond the
        # server reads 10001.
        assert 9900 <= pttl <= 10001
    cachesync_clock.advance(9.9)
    assert cachesync.redis.get(key) == b"v"
    cachesync_clock.advance(0.1)
    assert cachesync.redis.get(key) is None
"""


def test_every_ttl_command_is_exact_and_ends_at_its_ttl(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    pytester.makepyfile(test_exact=EXACT)
    result = pytester.runpytest("-p", "no:xdist", "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(passed=10)
