"""Staleness assertions: fresh reads, freshness within a delay, invalidations, TTL policy."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import TypeVar

from pytest_cachesync.clock.reading import ClockLike, advance

from .bypass import Bypass, read_value
from .commands import TtlEffect
from .compare import IgnoreList, comparable, diff
from .patterns import TtlPolicy, as_text
from .spy import FILL, HIT, INVALIDATION, RedisSpy

T = TypeVar("T")


def format_seconds(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:.3f}".rstrip("0").rstrip(".") + " s"


class InvalidationBlock:
    """What ``assert_invalidated(...)`` returns: the check runs when its ``with`` block exits.

    A call without ``with`` would check nothing and pass. So a block that is never entered is
    reported: when it is garbage collected (at once, for a bare call statement) and by
    :meth:`StalenessChecker.raise_unentered`, which the plugin calls at every test's teardown.
    """

    def __init__(
        self, check: Callable[[], AbstractContextManager[None]], call: str, missed: list[str]
    ) -> None:
        self._check = check
        self.call = call
        self._missed = missed
        self.entered = False
        self._running: AbstractContextManager[None] | None = None

    def __enter__(self) -> None:
        if self.entered:
            raise RuntimeError(f"{self.call} is a block for one `with` statement only")
        self.entered = True
        self._running = self._check()
        self._running.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._running is not None
        return self._running.__exit__(exc_type, exc, traceback)

    def __del__(self) -> None:
        if not self.entered:
            self._missed.append(self.call)

    def __repr__(self) -> str:
        return f"<InvalidationBlock {self.call} entered={self.entered}>"


class StalenessChecker:
    """The staleness assertions over one spied client and its bypass."""

    def __init__(self, spy: RedisSpy, bypass: Bypass, *, clock: ClockLike | None = None) -> None:
        self.spy = spy
        self.bypass = bypass
        self.clock = clock
        self._blocks: weakref.WeakSet[InvalidationBlock] = weakref.WeakSet()
        self._missed: list[str] = []

    def raise_unentered(self) -> None:
        """Fail for every ``assert_invalidated(...)`` made without a ``with`` block."""
        missed = self._missed + [b.call for b in self._blocks if not b.entered]
        self._missed.clear()
        for block in self._blocks:
            block.entered = True  # reported once
        if missed:
            calls = "\n".join(f"  {call}" for call in missed)
            raise AssertionError(
                "assert_invalidated(...) checks the block of a `with` statement; these calls had "
                f"none and checked nothing:\n{calls}\nwrite: with cachesync.assert_invalidated"
                "(...):\n    <the write that must invalidate>"
            )

    # -- assert_fresh -------------------------------------------------------------------------

    def _serving_keys(self, since: int) -> list[str]:
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
        ignored = IgnoreList(ignore)
        mark = len(self.spy.effects)
        cached = read()
        serving = self._serving_keys(mark)
        fresh = self.bypass.run(read)
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
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds must be a non-negative number, got {seconds!r}")
        moving = clock if clock is not None else self.clock
        if moving is None:
            raise TypeError("assert_fresh_within needs a clock that can advance(seconds)")
        advance(moving, seconds)
        try:
            return self.assert_fresh(read, ignore=ignore)
        except AssertionError as error:
            raise AssertionError(f"still stale {format_seconds(seconds)} later: {error}") from None

    # -- assert_invalidated -------------------------------------------------------------------

    def assert_invalidated(
        self, *keys_or_patterns: str, reads: Sequence[Callable[[], object]] = ()
    ) -> InvalidationBlock:
        """The ``with`` block must invalidate the named keys (or, with `reads`, every key they
        fill).

        With `reads`, each read runs bypassed after the block; every cache key it fills must
        then be absent from the real Redis or hold that fresh value.
        """
        if not keys_or_patterns and not reads:
            raise TypeError("name the keys or patterns to invalidate, or pass reads=[...]")
        named = ", ".join(repr(k) for k in keys_or_patterns)
        call = f"assert_invalidated({named}{', reads=[...]' if reads else ''})"
        block = InvalidationBlock(
            lambda: self._invalidated(keys_or_patterns, reads), call, self._missed
        )
        self._blocks.add(block)
        return block

    @contextmanager
    def _invalidated(
        self, keys_or_patterns: Sequence[str], reads: Sequence[Callable[[], object]]
    ) -> Iterator[None]:
        mark = len(self.spy.effects)
        yield
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
        for read in reads:
            problems.extend(self._stale_after(read))
        if problems:
            touched = sorted({f"{e.effect} {e.key}" for e in effects})
            lines = ["the block did not invalidate what it made stale:", *problems]
            lines.append("cache effects of the block: " + (", ".join(touched) or "none"))
            raise AssertionError("\n".join(lines))

    def _stale_after(self, read: Callable[[], object]) -> list[str]:
        mark = len(self.spy.effects)
        self.bypass.run(read)
        filled = {e.key for e in self.spy.effects[mark:] if e.bypassed and e.effect == FILL}
        problems = []
        for key in sorted(filled):
            real = read_value(self.spy, key)
            if real is None or self.spy.classifier.is_lease(real):
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
