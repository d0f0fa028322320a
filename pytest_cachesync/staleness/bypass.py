"""Running code with the cache bypassed, leaving the real Redis untouched.

The bypassed run talks to a scratch fakeredis server seeded with a copy of the real keyspace's
state keys (sessions, rate limits, counters: everything that is not cache), with their TTLs,
and with no cache keys at all. Cache reads miss, fills land on the scratch server, and
authentication and rate limits behave as they would, without bumping the real counters.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

import fakeredis
import redis

from .patterns import as_text
from .spy import RedisSpy
from .sql_recorder import SqlRecorder

T = TypeVar("T")
Execute = Callable[..., Any]


def _copy_key(read: Execute, write: Execute, key: object) -> bool:
    """Copy one key by type; False for types that are not copied (streams, modules)."""
    kind = as_text(read("TYPE", key))
    if kind == "string":
        value = read("GET", key)
        if value is None:
            return False
        write("SET", key, value)
    elif kind == "hash":
        mapping = read("HGETALL", key)
        if mapping:
            write("HSET", key, *[item for pair in mapping.items() for item in pair])
    elif kind == "list":
        write("RPUSH", key, *read("LRANGE", key, 0, -1))
    elif kind == "set":
        write("SADD", key, *read("SMEMBERS", key))
    elif kind == "zset":
        flat = read("ZRANGE", key, 0, -1, "WITHSCORES")
        pairs = (
            flat
            if flat and isinstance(flat[0], list | tuple)
            else zip(flat[::2], flat[1::2], strict=True)
        )
        write("ZADD", key, *[item for member, score in pairs for item in (score, member)])
    else:
        return False
    pttl = read("PTTL", key)
    if isinstance(pttl, int) and pttl > 0:
        write("PEXPIRE", key, pttl)
    return True


class Bypass:
    """Runs callables with the spied client's commands routed to a seeded scratch server."""

    def __init__(self, spy: RedisSpy, *, sql: SqlRecorder | None = None) -> None:
        if not spy.installed:
            raise RuntimeError("install the spy before bypassing the cache through it")
        self.spy = spy
        self.sql = sql
        self.scratch: redis.Redis | None = None
        self.copied: list[str] = []
        self._held = threading.local()

    @property
    def comparing(self) -> bool:
        """Whether a read on this thread is to be compared with a bypassed run of itself.

        Not inside a bypassed run (it is the fresh run), nor inside ``uncompared()``.
        """
        return not self.spy.routed and not getattr(self._held, "depth", 0)

    @contextmanager
    def uncompared(self) -> Iterator[None]:
        """Reads of the block (this thread) are not replayed by the oracle client.

        The race injector's trigger answers from a read made before the injected write: that
        answer is old by design, and the injector judges what it left in the cache instead.
        """
        self._held.depth = getattr(self._held, "depth", 0) + 1
        try:
            yield
        finally:
            self._held.depth -= 1

    def _new_scratch(self) -> redis.Redis:
        kwargs = self.spy.client.get_connection_kwargs()
        scratch: redis.Redis = fakeredis.FakeRedis(
            server=fakeredis.FakeServer(),
            decode_responses=bool(kwargs.get("decode_responses", False)),
            protocol=kwargs.get("protocol", 2) or 2,
        )
        return scratch

    def seed(self) -> redis.Redis:
        """A fresh scratch server holding a copy of the real state keys and known scripts."""
        # One private server per bypass, emptied between runs: building a client costs more
        # than the copy itself.
        scratch = self.scratch if self.scratch is not None else self._new_scratch()
        scratch.flushall()
        raw, classifier = self.spy.raw, self.spy.classifier
        self.copied = []
        cursor: Any = 0
        while True:
            cursor, keys = raw("SCAN", cursor, "MATCH", classifier.prefix + "*", "COUNT", 1000)
            for key in keys:
                if not classifier.is_cache(key) and _copy_key(raw, scratch.execute_command, key):
                    self.copied.append(as_text(key))
            if int(cursor) == 0:
                break
        for script in self.spy.scripts.values():
            write: Execute = scratch.execute_command
            write("SCRIPT LOAD", script)
        self.scratch = scratch
        return scratch

    @contextmanager
    def active(self) -> Iterator[redis.Redis]:
        """Route the block's commands to a newly seeded scratch server."""
        scratch = self.seed()
        with ExitStack() as stack:
            if self.sql is not None:
                stack.enter_context(self.sql.suspended())
            stack.enter_context(self.spy.routed_to(scratch))
            yield scratch

    def run(self, fn: Callable[[], T]) -> T:
        """`fn()` with the cache bypassed."""
        with self.active():
            return fn()

    def scratch_value(self, key: str) -> object:
        """A key's value on the last scratch server (what a fresh fill wrote), None if absent."""
        if self.scratch is None:
            raise RuntimeError("nothing ran bypassed yet")
        read: Execute = self.scratch.execute_command
        return _read_any(read, self.spy.classifier.full_key(key))


def _read_any(read: Execute, key: object) -> object:
    """A key's content whatever its type, for comparisons."""
    kind = as_text(read("TYPE", key))
    if kind == "string":
        return read("GET", key)
    if kind == "hash":
        return read("HGETALL", key)
    if kind == "list":
        return read("LRANGE", key, 0, -1)
    if kind == "set":
        return read("SMEMBERS", key)
    if kind == "zset":
        return read("ZRANGE", key, 0, -1, "WITHSCORES")
    return None


def read_value(spy: RedisSpy, key: str) -> object:
    """A key's content in the real Redis (unobserved), None if absent."""
    return _read_any(spy.raw, spy.classifier.full_key(key))
