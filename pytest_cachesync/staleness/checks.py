"""Staleness assertions: fresh reads, freshness within a delay, invalidations, TTL policy."""

from __future__ import annotations

import json
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
from .spy import FILL, HIT, INVALIDATION, MISS, RedisSpy

T = TypeVar("T")
B = TypeVar("B", bound="TrackedBlock")


def _decoded(value: object) -> object:
    """A cached value as the diff shows it: JSON decoded when it is JSON, else its text."""
    text = as_text(value) if isinstance(value, bytes | str) else value
    if isinstance(text, str):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def format_seconds(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:.3f}".rstrip("0").rstrip(".") + " s"


class TrackedBlock:
    """A block object that must be entered: ``assert_invalidated(...)`` returns one.

    A call without ``with`` would check nothing and pass. So a block that is never entered is
    reported: when it is garbage collected (at once, for a bare call statement) and by
    :meth:`StalenessChecker.raise_unentered`, which the plugin calls at every test's teardown.
    """

    def __init__(self, call: str) -> None:
        self.call = call
        self.entered = False
        self._missed: list[str] | None = None  # set by the checker that tracks the block

    def _enter_once(self, statement: str) -> None:
        if self.entered:
            raise RuntimeError(f"{self.call} is a block for one `{statement}` statement only")
        self.entered = True

    def __del__(self) -> None:
        if not self.entered and self._missed is not None:
            self._missed.append(self.call)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.call} entered={self.entered}>"


class InvalidationBlock(TrackedBlock):
    """What ``assert_invalidated(...)`` returns: the check runs when its ``with`` block exits."""

    def __init__(self, check: Callable[[], AbstractContextManager[None]], call: str) -> None:
        super().__init__(call)
        self._check = check
        self._running: AbstractContextManager[None] | None = None

    def __enter__(self) -> None:
        self._enter_once("with")
        self._running = self._check()
        self._running.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        __tracebackhide__ = True
        assert self._running is not None
        return self._running.__exit__(exc_type, exc, traceback)


def block_call(name: str, keys_or_patterns: Sequence[str], reads: bool) -> str:
    """How a block's call is shown when it was never entered."""
    named = ", ".join(repr(k) for k in keys_or_patterns)
    return (
        f"{name}({named}{', reads=[...]' if reads and named else 'reads=[...]' if reads else ''})"
    )


def still_stale(seconds: float, error: AssertionError) -> AssertionError:
    return AssertionError(f"still stale {format_seconds(seconds)} later: {error}")


class StalenessChecker:
    """The staleness assertions over one spied client and its bypass."""

    def __init__(self, spy: RedisSpy, bypass: Bypass, *, clock: ClockLike | None = None) -> None:
        self.spy = spy
        self.bypass = bypass
        self.clock = clock
        self._blocks: weakref.WeakSet[TrackedBlock] = weakref.WeakSet()
        self._missed: list[str] = []

    def track(self, block: B) -> B:
        """``block``, reported at teardown unless it is entered."""
        block._missed = self._missed
        self._blocks.add(block)
        return block

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
                "(...):\n    <the write that must invalidate>\n(in a coroutine: async with "
                "cachesync.assert_invalidated_async(...):)"
            )

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
        __tracebackhide__ = True
        mark = len(self.spy.effects)
        cached = read()
        serving = self.serving_keys(mark)
        fresh = self.bypass.run(read)
        return self.verdict(cached, fresh, serving, ignore)

    def verdict(self, cached: T, fresh: object, serving: Sequence[str], ignore: Iterable[str]) -> T:
        """``cached`` when it matches ``fresh`` (the bypassed answer); else a stale-read failure."""
        __tracebackhide__ = True
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
        __tracebackhide__ = True
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
        call = block_call("assert_invalidated", keys_or_patterns, bool(reads))
        return self.track(
            InvalidationBlock(lambda: self._invalidated(keys_or_patterns, reads), call)
        )

    @contextmanager
    def _invalidated(
        self, keys_or_patterns: Sequence[str], reads: Sequence[Callable[[], object]]
    ) -> Iterator[None]:
        __tracebackhide__ = True
        start = self.block_start()
        yield
        problems: list[str] = []
        compared: set[str] = set()
        for read in reads:
            fills = len(self.spy.effects)
            self.bypass.run(read)
            problems.extend(self.stale_fills(fills, compared))
        self.finish_block(start, keys_or_patterns, problems, compared)

    def block_start(self) -> tuple[int, int]:
        """Where an ``assert_invalidated`` block begins: the spy's effects and the SQL commits."""
        return len(self.spy.effects), self.commit_count()

    def finish_block(
        self,
        start: tuple[int, int],
        keys_or_patterns: Sequence[str],
        problems: list[str],
        compared: set[str],
    ) -> None:
        """Add the block's missed invalidations to ``problems`` (found by its reads) and fail."""
        __tracebackhide__ = True
        mark, commits_before = start
        commits = self.commits_since(commits_before)
        problems.extend(self.missed_invalidations(mark, keys_or_patterns, commits, compared))
        self.report_invalidations(mark, problems)

    def commit_count(self) -> int:
        """How many write commits the SQL recorder has seen, to mark a block's start."""
        sql = self.bypass.sql
        return len(sql.write_marks) if sql is not None else 0

    def commits_since(self, count: int) -> Sequence[int]:
        """Positions (in the spy's effects) of the write commits after ``count``."""
        sql = self.bypass.sql
        return sql.write_marks[count:] if sql is not None else []

    def missed_invalidations(
        self,
        mark: int,
        keys_or_patterns: Sequence[str],
        commits: Sequence[int] = (),
        compared: set[str] | None = None,
    ) -> list[str]:
        """The named keys or patterns that no command since ``mark`` invalidated, and the
        invalidated ones re-filled with a value that may be stale (``compared`` keys, already
        checked against a fresh value, are skipped)."""
        effects = [e for e in self.spy.effects[mark:] if not e.bypassed]
        problems = []
        for wanted in keys_or_patterns:
            invalidated = [
                e.key
                for e in effects
                if e.effect == INVALIDATION and self.spy.classifier.matches(e.key, wanted)
            ]
            if invalidated:
                for key in dict.fromkeys(invalidated):
                    if compared is None or key not in compared:
                        problems.extend(self._refilled(key, mark, commits))
                continue
            filled = any(
                e.effect == FILL and self.spy.classifier.matches(e.key, wanted) for e in effects
            )
            note = " (it was re-filled, not deleted)" if filled else ""
            problems.append(f"  {wanted}: not invalidated{note}")
        return problems

    def report_invalidations(self, mark: int, problems: list[str]) -> None:
        __tracebackhide__ = True
        if problems:
            effects = [e for e in self.spy.effects[mark:] if not e.bypassed]
            touched = sorted({f"{e.effect} {e.key}" for e in effects})
            lines = ["the block did not invalidate what it made stale:", *problems]
            lines.append("cache effects of the block: " + (", ".join(touched) or "none"))
            raise AssertionError("\n".join(lines))

    def _refilled(self, key: str, since: int, commits: Sequence[int]) -> list[str]:
        """A problem if ``key``, invalidated in the block, holds a value that may be stale.

        Without a read to compute the fresh value, the order of events decides: a refill whose
        miss came after the block's last write commit read committed data; one filled with no
        miss seen, or from a miss before a commit (a delete before COMMIT, then a reader in
        between), may hold what the commit replaced.
        """
        real = read_value(self.spy, key)
        if real is None or self.spy.classifier.is_lease(real):
            return []
        effects = self.spy.effects
        mine = [(i, e) for i, e in enumerate(effects) if i >= since and e.key == key]
        last_delete = max(i for i, e in mine if e.effect == INVALIDATION)
        fills = [i for i, e in mine if e.effect == FILL and i > last_delete and not e.bypassed]
        if not fills:
            return []  # the value predates the block's effects on it (a lease released, say)
        fill = fills[-1]
        misses = [
            i for i, e in mine if e.effect == MISS and last_delete < i < fill and not e.bypassed
        ]
        if misses and not any(c > misses[-1] for c in commits):
            return []
        command = effects[fill].command
        why = (
            "from a read that began before a write COMMIT of the block"
            if misses
            else "with no cache miss before it (written, not read through)"
        )
        return [
            f"  {key}: invalidated, then re-filled ({command}) {why}; the cached value may be "
            f"stale:\n    cached: {as_text(real)}\n"
            "    pass reads=[...] to compare it with the fresh value"
        ]

    def stale_fills(self, mark: int, compared: set[str] | None = None) -> list[str]:
        """Keys a bypassed read filled since ``mark`` that the real Redis holds stale; each
        key compared is added to ``compared``."""
        filled = {e.key for e in self.spy.effects[mark:] if e.bypassed and e.effect == FILL}
        if compared is not None:
            compared.update(filled)
        problems = []
        for key in sorted(filled):
            real = read_value(self.spy, key)
            if real is None or self.spy.classifier.is_lease(real):
                continue
            fresh = self.bypass.scratch_value(key)
            if real != fresh:
                problems.append(
                    f"  {key}: still cached with a stale value\n"
                    + _indent(diff(_decoded(real), _decoded(fresh)), "    ")
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
        __tracebackhide__ = True
        parsed = policy if isinstance(policy, TtlPolicy | None) else TtlPolicy.parse(policy)
        problems = self.ttl_problems(parsed)
        if problems:
            listing = "\n".join(f"  {key}: {problem}" for key, problem in problems)
            raise AssertionError(f"cache keys break the TTL policy:\n{listing}")

    assert_ttl_policy = check_ttl_policy
