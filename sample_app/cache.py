"""The cache layer: cache-aside reads with leases, invalidation after commit, Redis-down fallback.

* Reads: ``get_or_fill`` returns the cached JSON value (HIT) or, on a MISS, takes a lease
  (``SET key L:<token> NX PX``), loads from the database and stores the value with a Lua
  compare-and-set that only writes while the key still holds that lease. An invalidation
  (``DEL``) kills the lease, so a value read before a concurrent commit is never stored after
  that commit's invalidation. Readers that find a lease poll briefly, then read through.
* Writes: ``invalidate(*keys)`` registers keys on the current Session; they are deleted in
  the Session's ``after_commit`` event and forgotten on rollback.
* Redis failures: any ``RedisError`` makes the current request skip Redis (one warning line per
  request) and serve from the database. A failure also marks the cache "dirty": invalidations
  may have been lost, so the first successful Redis call afterwards deletes every cache-pattern
  key before anything is read, and no stale value survives the outage.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import redis
from flask import Flask, Response, current_app, g, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from sample_app import cache_keys
from sample_app.cache_stats import CacheStats

T = TypeVar("T")
log = logging.getLogger("sample_app.cache")

LEASE_PREFIX = "L:"
# Marks the half of a read's (JSON text, value) pair that was not needed.
_UNSET: Any = object()
_EXTENSION = "sample_app.cache"
_PENDING = "sample_app.cache.pending_invalidations"
_WAIT_POLL_SECONDS = 0.005

_FILL_IF_LEASED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _encode(value: Any) -> str:
    # As jsonify writes it (compact, keys in insertion order, ASCII).
    return json.dumps(value, separators=(",", ":"))


class CacheLayer:
    """Cache operations over one redis-py client; keys get ``prefix`` prepended."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "",
        lease_ms: int = 5000,
        lease_wait_ms: int = 1000,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.lease_ms = lease_ms
        self.lease_wait_ms = lease_wait_ms
        self.stats = CacheStats()
        self._fill = client.register_script(_FILL_IF_LEASED)
        self._release = client.register_script(_RELEASE_LEASE)
        # Failures counted vs the count the last flush covered: a failure during a flush
        # (another thread's lost invalidation) keeps the cache dirty for the next flush.
        self._failures = 0
        self._flushed_failures = 0
        self._failures_lock = threading.Lock()
        self._recovery_lock = threading.Lock()

    # -- availability ---------------------------------------------------------------------

    def key(self, name: str) -> str:
        return self.prefix + name

    @property
    def dirty(self) -> bool:
        """True while invalidations may have been lost during a Redis failure."""
        return self._failures != self._flushed_failures

    def _mark_dirty(self) -> None:
        with self._failures_lock:
            self._failures += 1

    def _skipping(self) -> bool:
        return has_app_context() and bool(g.get("_redis_down"))

    def _mark_down(self, exc: Exception) -> None:
        self._mark_dirty()
        if has_app_context():
            if g.get("_redis_down"):
                return
            g._redis_down = True
        log.warning(
            "Redis unavailable (%s: %s); serving from the database", type(exc).__name__, exc
        )

    def _recover_if_dirty(self) -> None:
        if not self.dirty:
            return
        with self._recovery_lock:
            covered = self._failures
            if covered != self._flushed_failures:
                counts = self._delete_patterns(cache_keys.CACHE_PATTERNS)
                self._flushed_failures = covered
                log.warning("Redis reachable again; dropped cache keys %s", counts)

    def guarded(self, op: Callable[[redis.Redis], T], fallback: T, *, needed: bool = False) -> T:
        """``op(client)``, or ``fallback`` when Redis fails or already failed in this request.

        ``needed=True`` marks operations whose skipping loses information (invalidations):
        skipping them marks the cache dirty.
        """
        if self._skipping():
            if needed:
                self._mark_dirty()
            return fallback
        try:
            self._recover_if_dirty()
            return op(self.client)
        except redis.RedisError as exc:
            self._mark_down(exc)
            return fallback

    def ping(self) -> tuple[bool, str | None]:
        """Ping the server now, ignoring this request's failure flag; recovers a dirty cache."""
        try:
            self.client.ping()
            self._recover_if_dirty()
        except redis.RedisError as exc:
            self._mark_dirty()
            return False, f"{type(exc).__name__}: {exc}"
        return True, None

    # -- reads ----------------------------------------------------------------------------

    def get_or_fill(self, name: str, loader: Callable[[], T | None], ttl: int) -> T | None:
        """Cache-aside read of ``name``; ``loader`` results that are ``None`` are not cached."""
        text, value = self._read(name, loader, ttl)
        if value is _UNSET:
            decoded: T = json.loads(text)
            return decoded
        return value  # type: ignore[no-any-return]

    def get_or_fill_json(self, name: str, loader: Callable[[], Any], ttl: int) -> str | None:
        """``get_or_fill``, as JSON text: a hit is returned as stored, never decoded."""
        text, value = self._read(name, loader, ttl)
        if text is _UNSET:
            return None if value is None else _encode(value)
        return text  # type: ignore[no-any-return]

    def _read(self, name: str, loader: Callable[[], Any], ttl: int) -> tuple[Any, Any]:
        """``(JSON text, value)`` of ``name``, either one ``_UNSET`` when it was not needed.

        A hit has only the text; a value loaded from the database has both when it was
        stored, and only the value when Redis was skipped.
        """
        pattern = cache_keys.pattern_of(name)
        if self._skipping():
            self.stats.record(pattern, "bypassed")
            return _UNSET, loader()
        full = self.key(name)
        try:
            self._recover_if_dirty()
            raw = self.client.get(full)
            if raw is not None:
                text = _text(raw)
                if not text.startswith(LEASE_PREFIX):
                    self.stats.record(pattern, "hits")
                    log.debug("Cache HIT: %s", full)
                    return text, _UNSET
            token = LEASE_PREFIX + uuid.uuid4().hex
            leased = raw is None and bool(self.client.set(full, token, nx=True, px=self.lease_ms))
        except redis.RedisError as exc:
            self._mark_down(exc)
            self.stats.record(pattern, "bypassed")
            return _UNSET, loader()
        self.stats.record(pattern, "misses")
        log.debug("Cache MISS: %s", full)
        if leased:
            return self._load_and_fill(full, token, loader, ttl, pattern)
        filled = self._wait_for_fill(full)
        if filled is not None:
            return filled, _UNSET
        self.stats.record(pattern, "read_throughs")
        return _UNSET, loader()

    def _load_and_fill(
        self, full: str, token: str, loader: Callable[[], Any], ttl: int, pattern: str
    ) -> tuple[Any, Any]:
        try:
            value = loader()
        except BaseException:
            self.guarded(lambda c: self._release(keys=[full], args=[token], client=c), None)
            raise
        if value is None:
            self.guarded(lambda c: self._release(keys=[full], args=[token], client=c), None)
            return _UNSET, None
        payload = _encode(value)
        stored = self.guarded(
            lambda c: self._fill(keys=[full], args=[token, payload, ttl * 1000], client=c), 0
        )
        if stored:
            self.stats.record(pattern, "fills")
        else:
            self.stats.record(pattern, "dropped_fills")
            log.debug("Cache fill dropped (lease gone): %s", full)
        return payload, value

    def _wait_for_fill(self, full: str) -> str | None:
        """The JSON text another reader stored under ``full``, or None when it did not."""
        # Bounded by a poll count, not by the clock: tests may freeze time.
        polls = max(1, int(self.lease_wait_ms / 1000 / _WAIT_POLL_SECONDS))
        for _ in range(polls):
            time.sleep(_WAIT_POLL_SECONDS)
            try:
                raw = self.client.get(full)
            except redis.RedisError as exc:
                self._mark_down(exc)
                return None
            if raw is None:
                return None  # lease killed by an invalidation or expired
            text = _text(raw)
            if not text.startswith(LEASE_PREFIX):
                self.stats.record(cache_keys.pattern_of(full[len(self.prefix) :]), "hits")
                return text
        return None

    # -- writes ---------------------------------------------------------------------------

    def delete_now(self, names: Iterable[str]) -> None:
        keys = sorted({self.key(n) for n in names})
        if keys:
            log.debug("Cache INVALIDATE: %s", ", ".join(keys))
            self.guarded(lambda c: c.delete(*keys), None, needed=True)

    def _delete_patterns(self, patterns: Iterable[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for pattern in patterns:
            match = cache_keys.escape_glob(self.prefix) + pattern
            deleted = 0
            batch: list[Any] = []
            for key in self.client.scan_iter(match=match, count=500):
                batch.append(key)
                if len(batch) >= 500:
                    deleted += int(self.client.unlink(*batch))
                    batch = []
            if batch:
                deleted += int(self.client.unlink(*batch))
            counts[pattern] = deleted
        return counts

    def clear(self, patterns: Iterable[str] = cache_keys.CACHE_PATTERNS) -> dict[str, int] | None:
        """SCAN+UNLINK every key of ``patterns``; counts per pattern, or None if Redis failed.

        On failure the cache is marked dirty, so it is flushed as soon as Redis answers again.
        """
        wanted = tuple(patterns)
        return self.guarded(lambda _c: self._delete_patterns(wanted), None, needed=True)

    def scan_keys(self, pattern: str, limit: int) -> tuple[int, list[tuple[str, int]]]:
        """(number of keys, up to ``limit`` of (key, ttl in ms)) for one pattern. Raises."""
        match = cache_keys.escape_glob(self.prefix) + pattern
        total = 0
        listed: list[tuple[str, int]] = []
        for key in self.client.scan_iter(match=match, count=500):
            total += 1
            if len(listed) < limit:
                name = _text(key)
                listed.append((name[len(self.prefix) :], int(self.client.pttl(key))))
        return total, listed


def init_app(app: Flask, client: redis.Redis, session_events_target: Any) -> CacheLayer:
    """Create the app's cache layer and hook invalidation into ``session_events_target``."""
    layer = CacheLayer(
        client,
        prefix=app.config["CACHE_KEY_PREFIX"],
        lease_ms=app.config["CACHE_LEASE_MS"],
        lease_wait_ms=app.config["CACHE_LEASE_WAIT_MS"],
    )
    app.extensions[_EXTENSION] = layer

    def after_commit(session: Session) -> None:
        names = session.info.pop(_PENDING, None)
        if names:
            layer.delete_now(names)

    def after_rollback(session: Session) -> None:
        session.info.pop(_PENDING, None)

    event.listen(session_events_target, "after_commit", after_commit)
    event.listen(session_events_target, "after_rollback", after_rollback)
    return layer


def get_cache(app: Flask | None = None) -> CacheLayer:
    layer = (app or current_app).extensions[_EXTENSION]
    assert isinstance(layer, CacheLayer)
    return layer


def invalidate_on_commit(session: Session, *names: str) -> None:
    """Delete ``names`` from the cache once ``session`` commits; forget them on rollback."""
    pending: set[str] = session.info.setdefault(_PENDING, set())
    pending.update(names)


def invalidate(*names: str) -> None:
    """Invalidate ``names`` after the current request's Session commits."""
    from sample_app.db import get_session

    invalidate_on_commit(get_session(), *names)


def cached(name: str, loader: Callable[[], T | None], ttl_setting: str) -> T | None:
    """``get_or_fill`` on the app's cache with the TTL from config key ``ttl_setting``."""
    return get_cache().get_or_fill(name, loader, int(current_app.config[ttl_setting]))


def cached_response(name: str, loader: Callable[[], Any], ttl_setting: str) -> Response | None:
    """The cached value of ``name`` as a JSON response, or None when there is no value.

    A hit is sent as the JSON text Redis holds: decoding it only to encode it again would be
    most of a hit's cost in this layer.
    """
    text = get_cache().get_or_fill_json(name, loader, int(current_app.config[ttl_setting]))
    if text is None:
        return None
    # The trailing newline is what jsonify adds: both kinds of answer read the same.
    return current_app.response_class(text + "\n", mimetype="application/json")
