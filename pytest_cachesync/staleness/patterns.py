"""Which Redis keys are cache and which are state, by glob pattern."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

LEASE_PREFIX = "L:"
"""Values starting with this mark a fill in progress (a lease), not cached data
(``--cachesync-lease-prefix``)."""


def parse_patterns(value: str | Iterable[str]) -> tuple[str, ...]:
    """Split an ini/option value (`users:* user:*`, commas allowed) into glob patterns."""
    items = re.split(r"[\s,]+", value) if isinstance(value, str) else list(value)
    patterns = tuple(item.strip() for item in items if item and item.strip())
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"cache pattern must be a string, got {pattern!r}")
    return patterns


def parse_path_patterns(value: str | Iterable[str]) -> tuple[str, ...]:
    """Glob patterns of request paths (space or comma separated); each must start with '/'."""
    patterns = parse_patterns(value)
    for pattern in patterns:
        if not pattern.startswith("/"):
            raise ValueError(
                f"request path patterns start with '/' (e.g. /admin/*), got {pattern!r}"
            )
    return patterns


def as_text(value: object) -> str:
    """A key or value as text, whatever the client's decode_responses setting."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def is_lease(value: object, lease_prefix: str = LEASE_PREFIX) -> bool:
    """Whether a stored value is a lease token (a fill in progress) rather than cached data."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).startswith(lease_prefix.encode())
    return isinstance(value, str) and value.startswith(lease_prefix)


class KeyClassifier:
    """Maps a key to the cache pattern it belongs to, or to None for state keys.

    `prefix` is stripped first, so a test running under `cachesync:gw3:` classifies
    `cachesync:gw3:user:1` as `user:1`. The first matching pattern wins, so list the
    more specific ones first when patterns overlap.

    `namespaces` are prefixes a cache library puts in front of its keys (Flask-Caching's
    `CACHE_KEY_PREFIX`, `flask_cache_` by default): each pattern is matched against the key as
    stored and without them, so `view/*` classifies `flask_cache_view//lots`. The list is
    shared with whoever routes the library, and may grow during the test.
    """

    def __init__(
        self,
        cache_patterns: Sequence[str] | str,
        prefix: str = "",
        lease_prefix: str = LEASE_PREFIX,
        *,
        namespaces: list[str] | None = None,
    ) -> None:
        self.patterns = parse_patterns(cache_patterns)
        if not isinstance(prefix, str):
            raise TypeError(f"key prefix must be a string, got {prefix!r}")
        if not isinstance(lease_prefix, str) or not lease_prefix:
            raise TypeError(f"lease prefix must be a non-empty string, got {lease_prefix!r}")
        self.prefix = prefix
        self.lease_prefix = lease_prefix
        self.namespaces = namespaces if namespaces is not None else []
        self._memo: dict[str, str | None] = {}
        self._memo_namespaces = len(self.namespaces)

    def is_lease(self, value: object) -> bool:
        """Whether a stored value is a lease (starts with ``lease_prefix``), not cached data."""
        return is_lease(value, self.lease_prefix)

    def strip(self, key: object) -> str:
        text = as_text(key)
        if self.prefix and text.startswith(self.prefix):
            return text[len(self.prefix) :]
        return text

    def _unprefixed(self, name: str) -> list[str]:
        """``name`` as stored, then without each namespace it starts with."""
        return [name] + [name[len(ns) :] for ns in self.namespaces if ns and name.startswith(ns)]

    def pattern_for(self, key: object) -> str | None:
        name = self.strip(key)
        if self._memo_namespaces != len(self.namespaces):
            self._memo.clear()
            self._memo_namespaces = len(self.namespaces)
        try:
            return self._memo[name]
        except KeyError:
            pass
        names = self._unprefixed(name)
        found = next((p for p in self.patterns if any(fnmatchcase(n, p) for n in names)), None)
        if len(self._memo) < 100_000:
            self._memo[name] = found
        return found

    def is_cache(self, key: object) -> bool:
        return self.pattern_for(key) is not None

    def matches(self, key: object, key_or_pattern: str) -> bool:
        """Whether `key` is `key_or_pattern` or matches it as a glob (prefix stripped)."""
        wanted = self.strip(key_or_pattern)
        return any(fnmatchcase(name, wanted) for name in self._unprefixed(self.strip(key)))

    def full_key(self, name: str) -> str:
        """The key as stored in Redis: `name` with the prefix in front."""
        return name if name.startswith(self.prefix) else self.prefix + name

    def __repr__(self) -> str:
        return f"KeyClassifier({list(self.patterns)!r}, prefix={self.prefix!r})"


@dataclass(frozen=True, slots=True)
class TtlPolicy:
    """Maximum TTL in seconds per cache pattern; every cache key written needs a TTL."""

    bounds: Mapping[str, float]

    @classmethod
    def parse(cls, value: str | Mapping[str, float] | Iterable[str]) -> TtlPolicy:
        """From a mapping, or `"users:*=10 user:*=10"` (ini lines / option values)."""
        if isinstance(value, Mapping):
            items = list(value.items())
        else:
            entries = value.split() if isinstance(value, str) else list(value)
            items = []
            for entry in entries:
                pattern, sep, seconds = entry.rpartition("=")
                if not sep or not pattern:
                    raise ValueError(f"TTL bound {entry!r} is not PATTERN=SECONDS")
                items.append((pattern, seconds))
        bounds: dict[str, float] = {}
        for pattern, seconds in items:
            try:
                number = float(seconds)
            except (TypeError, ValueError):
                raise ValueError(
                    f"TTL bound for {pattern!r} is not a number: {seconds!r}"
                ) from None
            if not math.isfinite(number) or number <= 0:
                raise ValueError(f"TTL bound for {pattern!r} must be positive, got {seconds!r}")
            bounds[pattern] = number
        return cls(bounds)

    def bound_for(self, pattern: str, key: str) -> float | None:
        if pattern in self.bounds:
            return self.bounds[pattern]
        return next((s for p, s in self.bounds.items() if fnmatchcase(key, p)), None)
