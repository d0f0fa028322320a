"""The oracle client: every GET through a Flask test client is replayed with the cache bypassed.

A read is stale when its answer differs from the bypassed replay's. Its staleness is measured in
clock seconds since the first write after which the served answer was no longer fresh; a stale
read is a violation when that reaches the allowed staleness (0 = read-your-writes).

The replay starts from the state (Redis state keys, cookies) the real request started from, so a
request that moves state (a rate-limit counter reaching its limit, a session refresh) is compared
with itself, not with the next request. GETs whose path matches a skip pattern (ops endpoints that
describe Redis itself: TTLs, counts, latency) pass through unchecked.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import redis

from .bypass import Bypass
from .checks import StalenessChecker, format_seconds
from .compare import IgnoreList, comparable, diff
from .patterns import parse_path_patterns
from .spy import HIT, RedisSpy
from .sql_recorder import SqlRecorder

REPLAY_LOG_ATTRIBUTE = "cachesync_replay"
"""Set to True on every log record created while a replay runs, to tell its lines apart."""


class CacheSyncClient(Protocol):
    """What ``cachesync_client`` gives a test: a Flask test client, or the oracle around one.

    Both answer the request methods with the app's response (a Flask ``TestResponse``).
    """

    def get(self, *args: Any, **kwargs: Any) -> Any: ...

    def post(self, *args: Any, **kwargs: Any) -> Any: ...

    def put(self, *args: Any, **kwargs: Any) -> Any: ...

    def patch(self, *args: Any, **kwargs: Any) -> Any: ...

    def delete(self, *args: Any, **kwargs: Any) -> Any: ...


class PathSkipList:
    """Request paths the oracle does not replay, matched on the path without its query string.

    ``*`` also matches ``/``: ``/admin/*`` covers ``/admin/a/b``. Matching is case-sensitive,
    as URL paths are.
    """

    def __init__(self, patterns: str | Iterable[str] = ()) -> None:
        self.patterns = parse_path_patterns(patterns)

    def matches(self, path: str) -> bool:
        only_path = urlsplit(path).path or "/"
        return any(fnmatchcase(only_path, pattern) for pattern in self.patterns)


@contextmanager
def replay_log_records() -> Iterator[None]:
    """Mark the log records created in the block with ``REPLAY_LOG_ATTRIBUTE``.

    A replay runs the app a second time, so its log lines (cache misses, queries) would count
    as the test's own; tests that count log lines filter on the attribute.
    """
    previous = logging.getLogRecordFactory()

    def tagged(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        setattr(record, REPLAY_LOG_ATTRIBUTE, True)
        return record

    logging.setLogRecordFactory(tagged)
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous)


@dataclass(frozen=True, slots=True)
class ReadCheck:
    """One GET compared with its bypassed replay."""

    path: str
    at: float
    fresh: bool
    staleness: float | None  # None when stale since an unknown moment
    allowed: float
    violation: bool
    keys: tuple[str, ...]
    patterns: tuple[str, ...]
    diff: str = ""
    key_details: tuple[str, ...] = ()

    def describe(self) -> str:
        age = format_seconds(self.staleness)
        allowed = format_seconds(self.allowed)
        lines = [f"GET {self.path}: stale for {age} (allowed: {allowed})", self.diff]
        if self.key_details:
            lines += ["served from the cache by:", *self.key_details]
        return "\n".join(lines)


class OracleClient:
    """Wraps a Flask test client; `get` replays bypassed and records a `ReadCheck`.

    GETs of a path matching `skip` pass through unchecked (listed in `skipped`). Other
    requests pass through and count as writes (so do database commits seen by `sql`).
    With `strict`, a violation fails the request's caller at once; otherwise call
    `assert_no_stale_reads()` (or read `checks`) when the test is done.
    """

    def __init__(
        self,
        client: Any,
        spy: RedisSpy,
        bypass: Bypass,
        *,
        allowed_staleness: float = 0.0,
        ignore: Iterable[str] = (),
        skip: str | Iterable[str] = (),
        strict: bool = False,
        sql: SqlRecorder | None = None,
    ) -> None:
        if not callable(getattr(client, "get", None)) or not callable(
            getattr(client, "open", None)
        ):
            raise TypeError(f"the oracle wraps a Flask test client, got {type(client).__name__}")
        self.client = client
        self.spy = spy
        self.bypass = bypass
        self.allowed_staleness = self._budget(allowed_staleness)
        self.ignore = IgnoreList(ignore)
        self.skip = PathSkipList(skip)
        self.strict = strict
        self.sql = sql
        self.checks: list[ReadCheck] = []
        self.skipped: list[str] = []
        self.request_writes: list[float] = []
        self._fresh_history: dict[str, list[tuple[float, Any]]] = {}
        self._describer = StalenessChecker(spy, bypass)

    @staticmethod
    def _budget(seconds: float) -> float:
        if not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"allowed staleness must be a non-negative number, got {seconds!r}")
        return float(seconds)

    @contextmanager
    def allowing(self, seconds: float) -> Iterator[None]:
        """Another staleness budget for the block's reads."""
        saved, self.allowed_staleness = self.allowed_staleness, self._budget(seconds)
        try:
            yield
        finally:
            self.allowed_staleness = saved

    # -- requests -----------------------------------------------------------------------------

    def get(self, *args: Any, **kwargs: Any) -> Any:
        path = self._path(args, kwargs)
        if self.skip.matches(path):
            self.skipped.append(path)
            return self.client.get(*args, **kwargs)
        cookies_before = self._cookies()
        scratch = self.bypass.seed()
        mark = len(self.spy.effects)
        response = self.client.get(*args, **kwargs)
        served = [e for e in self.spy.effects[mark:] if e.effect == HIT and not e.bypassed]
        replayed = self._replay(lambda: self.client.get(*args, **kwargs), scratch, cookies_before)
        self._check(path, response, replayed, served)
        return response

    def _cookies(self) -> dict[Any, Any] | None:
        cookies = getattr(self.client, "_cookies", None)
        return dict(cookies) if isinstance(cookies, dict) else None

    def _set_cookies(self, saved: dict[Any, Any] | None) -> None:
        cookies = getattr(self.client, "_cookies", None)
        if saved is not None and isinstance(cookies, dict):
            cookies.clear()
            cookies.update(saved)

    def _replay(
        self,
        request: Callable[[], Any],
        scratch: redis.Redis,
        cookies_before: dict[Any, Any] | None,
    ) -> Any:
        # `scratch` was seeded before the real request: the replay sees the state that request
        # saw. It sends the cookies that request sent, and leaves the client with the real
        # request's cookies.
        cookies_after = self._cookies()
        for script in self.spy.scripts.values():  # loaded by the real request, maybe
            load: Callable[..., Any] = scratch.execute_command
            load("SCRIPT LOAD", script)
        self._set_cookies(cookies_before)
        try:
            with ExitStack() as stack:
                if self.bypass.sql is not None:
                    stack.enter_context(self.bypass.sql.suspended())
                stack.enter_context(self.spy.routed_to(scratch))
                stack.enter_context(replay_log_records())
                return request()
        finally:
            self._set_cookies(cookies_after)

    def _write(self, method: str, *args: Any, **kwargs: Any) -> Any:
        response = getattr(self.client, method)(*args, **kwargs)
        self.request_writes.append(self.spy.now())
        return response

    def post(self, *args: Any, **kwargs: Any) -> Any:
        return self._write("post", *args, **kwargs)

    def put(self, *args: Any, **kwargs: Any) -> Any:
        return self._write("put", *args, **kwargs)

    def patch(self, *args: Any, **kwargs: Any) -> Any:
        return self._write("patch", *args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        return self._write("delete", *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    # -- checking -----------------------------------------------------------------------------

    @staticmethod
    def _path(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        path = str(args[0]) if args else str(kwargs.get("path", "/"))
        query = kwargs.get("query_string")
        if query:
            path += "?" + (query if isinstance(query, str) else urlencode(query, doseq=True))
        return path

    def write_times(self) -> list[float]:
        times = list(self.request_writes)
        if self.sql is not None:
            times += self.sql.write_times
        return sorted(times)

    def _stale_since(self, path: str, served_view: Any, keys: list[str]) -> float | None:
        # Last moment the served answer is known to have been fresh: a replay that agreed
        # with it, or the fill of the keys that served it. It went stale at the first write
        # after that.
        known: list[float] = [
            at for at, view in self._fresh_history.get(path, ()) if view == served_view
        ]
        fills = [self.spy.keys[k].last_fill_at for k in keys if k in self.spy.keys]
        if keys and fills and None not in fills:
            known.append(min(f for f in fills if f is not None))
        writes = self.write_times()
        if not known:
            return writes[0] if writes else None
        fresh_at = max(known)
        index = bisect.bisect_left(writes, fresh_at)
        return writes[index] if index < len(writes) else fresh_at

    def _check(self, path: str, response: Any, replayed: Any, served: list[Any]) -> ReadCheck:
        now = self.spy.now()
        served_view = self.ignore.scrub(comparable(response))
        fresh_view = self.ignore.scrub(comparable(replayed))
        keys = list(dict.fromkeys(e.key for e in served))
        patterns = tuple(dict.fromkeys(e.pattern for e in served))
        fresh = served_view == fresh_view
        if fresh:
            check = ReadCheck(
                path, now, True, 0.0, self.allowed_staleness, False, tuple(keys), patterns
            )
        else:
            since = self._stale_since(path, served_view, keys)
            staleness = None if since is None else max(0.0, now - since)
            violation = staleness is None or staleness >= self.allowed_staleness
            check = ReadCheck(
                path,
                now,
                False,
                staleness,
                self.allowed_staleness,
                violation,
                tuple(keys),
                patterns,
                diff(served_view, fresh_view),
                tuple(self._describer.describe_keys(keys)),
            )
        self._fresh_history.setdefault(path, []).append((now, fresh_view))
        self.checks.append(check)
        if self.strict and check.violation:
            raise AssertionError("stale read beyond the allowed staleness:\n" + check.describe())
        return check

    # -- results ------------------------------------------------------------------------------

    @property
    def violations(self) -> list[ReadCheck]:
        return [c for c in self.checks if c.violation]

    @property
    def stale(self) -> list[ReadCheck]:
        return [c for c in self.checks if not c.fresh]

    def assert_no_stale_reads(self) -> None:
        """Fail listing every read that was staler than allowed."""
        violations = self.violations
        if violations:
            details = "\n\n".join(c.describe() for c in violations)
            raise AssertionError(
                f"{len(violations)} of {len(self.checks)} reads were stale beyond the allowed "
                f"staleness:\n{details}"
            )
