"""Staleness assertions: fresh reads, freshness within a delay, invalidations, TTL policy."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TypeVar

from pytest_cachesync.clock.reading import ClockLike, advance

from .bypass import Bypass, read_value
from .commands import TtlEffect
from .compare import IgnoreList, comparable, diff
from .patterns import as_text, is_lease
from .spy import FILL, HIT, INVALIDATION, RedisSpy

T = TypeVar("T")


def format_seconds(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:.3f}".rstrip("0").rstrip(".") + " s"


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


def still_stale(seconds: float, error: AssertionError) -> AssertionError:
    return AssertionError(f"still stale {format_seconds(seconds)} later: {error}")


class StalenessChecker:
    """The staleness assertions over one spied client and its bypass."""

    def __init__(self, spy: RedisSpy, bypass: Bypass, *, clock: ClockLike | None = None) -> None:
        self.spy = spy
        self.bypass = bypass
        self.clock = clock

    # -- assert_fresh -------------------------------------------------------------------------

    def serving_keys(self, since: int) -> list[str]:
        keys = [e.key for e in self.spy.effects[since:] if e.effect == HIT and not e.bypassed]
        return list(dict.fromkeys(keys))

    def describe_keys(self, keys: Sequence[str]) -> list[str]:
        """One line per key: pattern, age since its observed fill, TTL left."""
        now = self.spy.now()
        lines = []
        for key in keys:
            record = self.spy.keys.get(key)
            filled = record.last_fill_at if record else None
            age = (
                format_seconds(now - filled)
                if filled is not None
                else "unknown (filled unobserved)"
            )
            pttl = self.spy.raw("PTTL", self.spy.classifier.full_key(key))
            left = {-1: "none", -2: "expired"}.get(int(pttl), format_seconds(int(pttl) / 1000))
            pattern = self.spy.classifier.pattern_for(key)
            lines.append(f"  {key}  (pattern {pattern}, age {age}, TTL left {left})")
        return lines

    def assert_fresh(self, read: Callable[[], T], *, ignore: Iterable[str] = ()) -> T:
        """Run `read` as the app would, then with the cache bypassed; the results must match.

        Returns what the first run returned.
        """
        mark = len(self.spy.effects)
        cached = read()
        serving = self.serving_keys(mark)
        fresh = self.bypass.run(read)
        return self.verdict(cached, fresh, serving, ignore)

    def verdict(self, cached: T, fresh: object, serving: Sequence[str], ignore: Iterable[str]) -> T:
        """``cached`` when it matches ``fresh`` (the bypassed answer); else a stale-read failure."""
        ignored = IgnoreList(ignore)
        cached_view = ignored.scrub(comparable(cached))
        fresh_view = ignored.scrub(comparable(fresh))
        if cached_view == fresh_view:
            return cached
        lines = ["stale read: the answer differs from the one computed with the cache bypassed"]
        lines.append(diff(cached_view, fresh_view))
        if serving:
            lines.append("served from the cache by:")
            lines.extend(self.describe_keys(serving))
        else:
            lines.append("no cache hit was observed during the read")
        raise AssertionError("\n".join(lines))

    def assert_fresh_within(
        self,
        read: Callable[[], T],
        seconds: float,
        clock: ClockLike | None = None,
        *,
        ignore: Iterable[str] = (),
    ) -> T:
        """`read` may be stale now, but must be fresh once the clock has advanced `seconds`."""
        self.advance_for(seconds, clock)
        try:
            return self.assert_fresh(read, ignore=ignore)
        except AssertionError as error:
            raise still_stale(seconds, error) from None

    def advance_for(self, seconds: float, clock: ClockLike | None) -> None:
        """Move ``clock`` (else the checker's) ``seconds`` on, for ``assert_fresh_within``."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds must be a non-negative number, got {seconds!r}")
        moving = clock if clock is not None else self.clock
        if moving is None:
            raise TypeError("assert_fresh_within needs a clock that can advance(seconds)")
        advance(moving, seconds)

    # -- assert_invalidated -------------------------------------------------------------------

    @contextmanager
    def assert_invalidated(
        self, *keys_or_patterns: str, reads: Sequence[Callable[[], object]] = ()
    ) -> Iterator[None]:
        """The block must invalidate the named keys (or, with `reads`, every key they fill).

        With `reads`, each read runs bypassed after the block; every cache key it fills must
        then be absent from the real Redis or hold that fresh value.
        """
        mark = self.invalidation_mark(keys_or_patterns, reads)
        yield
        problems = self.missed_invalidations(mark, keys_or_patterns)
        for read in reads:
            fills = len(self.spy.effects)
            self.bypass.run(read)
            problems.extend(self.stale_fills(fills))
        self.report_invalidations(mark, problems)

    def invalidation_mark(
        self, keys_or_patterns: Sequence[str], reads: Sequence[Callable[[], object]]
    ) -> int:
        if not keys_or_patterns and not reads:
            raise TypeError("name the keys or patterns to invalidate, or pass reads=[...]")
        return len(self.spy.effects)

    def missed_invalidations(self, mark: int, keys_or_patterns: Sequence[str]) -> list[str]:
        effects = [e for e in self.spy.effects[mark:] if not e.bypassed]
        problems = []
        for wanted in keys_or_patterns:
            if any(
                e.effect == INVALIDATION and self.spy.classifier.matches(e.key, wanted)
                for e in effects
            ):
                continue
            filled = any(
                e.effect == FILL and self.spy.classifier.matches(e.key, wanted) for e in effects
            )
            note = " (it was re-filled, not deleted)" if filled else ""
            problems.append(f"  {wanted}: not invalidated{note}")
        return problems

    def report_invalidations(self, mark: int, problems: list[str]) -> None:
        if problems:
            effects = [e for e in self.spy.effects[mark:] if not e.bypassed]
            touched = sorted({f"{e.effect} {e.key}" for e in effects})
            lines = ["the block did not invalidate what it made stale:", *problems]
            lines.append("cache effects of the block: " + (", ".join(touched) or "none"))
            raise AssertionError("\n".join(lines))

    def stale_fills(self, mark: int) -> list[str]:
        """Keys a bypassed read filled since ``mark`` that the real Redis holds stale."""
        filled = {e.key for e in self.spy.effects[mark:] if e.bypassed and e.effect == FILL}
        problems = []
        for key in sorted(filled):
            real = read_value(self.spy, key)
            if real is None or is_lease(real):
                continue
            fresh = self.bypass.scratch_value(key)
            if real != fresh:
                problems.append(
                    f"  {key}: still cached with a stale value\n"
                    f"    cached: {as_text(real)[:200]}\n    fresh:  {as_text(fresh)[:200]}"
                )
        return problems

    # -- TTL policy ---------------------------------------------------------------------------

    def ttl_problems(self, policy: TtlPolicy | None = None) -> list[tuple[str, str]]:
        """(key, problem) for each cache key written with no TTL, or one over its bound."""
        problems: list[tuple[str, str]] = []
        now = self.spy.now()
        for key, record in sorted(self.spy.keys.items()):
            if not record.fills:
                continue
            bound = policy.bound_for(record.pattern, key) if policy else None
            limit = format_seconds(bound)
            written = record.max_ttl_written
            if bound is not None and written is not None and written > bound:
                problems.append(
                    (
                        key,
                        f"written with TTL {format_seconds(written)}, bound {limit}",
                    )
                )
                continue
            if record.ttl_effect is TtlEffect.SET:
                continue
            pttl = int(self.spy.raw("PTTL", self.spy.classifier.full_key(key)))
            if pttl == -1:
                problems.append((key, "no TTL"))
            elif pttl > 0 and bound is not None and record.last_fill_at is not None:
                given = pttl / 1000 + (now - record.last_fill_at)
                if given > bound + 0.001:
                    problems.append(
                        (
                            key,
                            f"written with TTL ~{round(given, 1):g} s, bound {limit}",
                        )
                    )
        return problems

    def keys_without_ttl(self) -> list[str]:
        return [key for key, problem in self.ttl_problems() if problem == "no TTL"]

    def check_ttl_policy(self, policy: TtlPolicy | Mapping[str, float] | str | None = None) -> None:
        """Fail if a cache key written so far has no TTL or a TTL over its pattern's bound."""
        parsed = policy if isinstance(policy, TtlPolicy | None) else TtlPolicy.parse(policy)
        problems = self.ttl_problems(parsed)
        if problems:
            listing = "\n".join(f"  {key}: {problem}" for key, problem in problems)
            raise AssertionError(f"cache keys break the TTL policy:\n{listing}")

    assert_ttl_policy = check_ttl_policy
