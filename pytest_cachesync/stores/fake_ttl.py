"""Exact TTLs on the embedded fakeredis server, as on a real one.

fakeredis stores the expiry of ``SETEX``, ``PSETEX`` and ``GETEX EX/PX/PXAT`` rounded down to
a whole second of the clock: ``PTTL`` right after ``SETEX k 10`` reads anywhere from 9001 to
10000, so ``advance(ttl - 0.1)`` may find the key gone where a real server keeps it. The
embedded server's connections run those commands with the exact expiry (``SET EX/PX`` and
``EXPIRE``/``PEXPIRE`` are exact in fakeredis already).

The boundary follows the plugin's time travel on a real server, which deletes a key whose TTL
the clock has used up: a key is gone once the clock reaches its expiry, not a moment later.

fakeredis is imported by the caller: this module only derives classes from the ones it is
handed, so it holds across fakeredis versions that keep these method names.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

_EXACT: dict[type, type] = {}


def _exact_socket_class(base: Any) -> type:
    cls = _EXACT.get(base)
    if cls is not None:
        return cls

    def setex(self: Any, key: Any, seconds: int, value: bytes) -> Any:
        result = base.setex(self, key, seconds, value)
        key.expireat = self._db.time + seconds
        return result

    def psetex(self: Any, key: Any, ms: int, value: bytes) -> Any:
        result = base.psetex(self, key, ms, value)
        key.expireat = self._db.time + ms / 1000.0
        return result

    def getex(self: Any, key: Any, *args: bytes) -> Any:
        result = base.getex(self, key, *args)
        if len(args) == 2 and key.expireat is not None:
            option, amount = args[0].lower(), int(args[1])
            if option == b"ex":
                key.expireat = self._db.time + amount
            elif option == b"px":
                key.expireat = self._db.time + amount / 1000.0
            elif option == b"pxat":
                key.expireat = amount / 1000.0
        return result

    cls = type(
        f"ExactTtl{base.__name__}",
        (base,),
        {"setex": setex, "psetex": psetex, "getex": getex},
    )
    _EXACT[base] = cls
    return cls


def _exact_database_class(base: type) -> type:
    cls = _EXACT.get(base)
    if cls is not None:
        return cls

    def expired(self: Any, item: Any) -> bool:
        return item.expireat is not None and item.expireat <= self.time

    def _remove_expired(self: Any) -> None:
        heap = self._expiry_heap
        while heap and heap[0][0] <= self.time:
            _, key = heapq.heappop(heap)
            item = self._dict.get(key)
            if item is not None and self.expired(item):
                del self._dict[key]

    namespace: dict[str, Any] = {"expired": expired}
    if hasattr(base, "_remove_expired") and hasattr(base, "schedule_expiry"):
        namespace["_remove_expired"] = _remove_expired
    cls = type(f"ExactTtl{base.__name__}", (base,), namespace)
    _EXACT[base] = cls
    return cls


def make_exact(server: Any, client: Any) -> None:
    """Make ``server`` (a FakeServer) and the connections of ``client`` keep exact TTLs."""
    dbs = server.dbs
    factory: Callable[[], Any] = dbs.default_factory

    def exact_db() -> Any:
        db = factory()
        db.__class__ = _exact_database_class(type(db))
        return db

    dbs.default_factory = exact_db
    for db in dbs.values():
        db.__class__ = _exact_database_class(type(db))

    pool = client.connection_pool
    connection_class = pool.connection_class

    def _connect(self: Any) -> Any:
        sock = connection_class._connect(self)
        sock.__class__ = _exact_socket_class(type(sock))
        return sock

    pool.connection_class = type(
        f"ExactTtl{connection_class.__name__}", (connection_class,), {"_connect": _connect}
    )
