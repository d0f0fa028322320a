"""The race injector: pause a cache fill between its database read and its Redis write.

It acts at the Redis client (through the spy) and the engine only, so it works on an app whose
code cannot change. Armed for a key or pattern, it waits for a miss on a matching key, then for
that key's fill (a SET-like write of a non-lease value, or a script whose keys include it). Just
before the fill reaches Redis it runs the given callable (say, a concurrent update through the
test client), then lets the fill proceed. The cached value must then be absent or fresh.

In an async test the trigger and the injected action may be coroutine functions
(``run_async``, ``assert_no_race_async``): the action runs on the test's event loop, which an
asyncio client's paused fill leaves free, so it can be a request to the same ASGI app.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .bypass import Bypass, read_value
from .commands import Kind, ParsedCommand
from .compare import pretty
from .patterns import LEASE_PREFIX, as_text, is_lease
from .spy import MISS, KeyEffect, RedisSpy
from .sql_recorder import SqlRecorder


@dataclass(frozen=True, slots=True)
class RaceOutcome:
    """What one injected race left in the cache."""

    key: str
    command: str
    cached: object
    fresh: object
    database_writes: int | None
    lease_prefix: str = LEASE_PREFIX

    @property
    def consistent(self) -> bool:
        cached = self.cached
        return cached is None or is_lease(cached, self.lease_prefix) or cached == self.fresh

    def describe(self) -> str:
        if not self.consistent:
            return (
                f"cache-fill race on {self.key}: the fill ({self.command}) paused after its "
                "database read wrote a value that is not the database's any more\n"
                f"  cached: {_show(self.cached)}\n  fresh:  {_show(self.fresh)}"
            )
        if self.cached is None:
            left = "left the key absent"
        elif is_lease(self.cached, self.lease_prefix):
            left = "left only a lease"
        else:
            left = f"cached the fresh value\n  cached: {_show(self.cached)}"
        return (
            f"no cache-fill race on {self.key}: the fill ({self.command}), paused after its "
            f"database read while a write ran, {left}"
        )


def _show(value: object) -> str:
    text = as_text(value) if isinstance(value, bytes | str) else pretty(value)
    return text if len(text) <= 300 else text[:297] + "..."


class _Armed:
    def __init__(
        self, spy: RedisSpy, wanted: str, inject: Callable[[], object], require_miss: bool
    ) -> None:
        self.spy = spy
        self.wanted = wanted
        self.inject = inject
        self.require_miss = require_miss
        self.missed: set[str] = set()
        self.fired_key: str | None = None
        self.fired_command = ""

    def observe(self, effect: KeyEffect) -> None:
        if effect.effect == MISS and not effect.bypassed and self._wants(effect.key):
            self.missed.add(effect.key)

    def _wants(self, key: str) -> bool:
        return self.spy.classifier.matches(key, self.wanted) or (
            self.spy.classifier.pattern_for(key) == self.wanted
        )

    def intercept(self, parsed: ParsedCommand, cache_keys: Sequence[str]) -> None:
        if self.fired_key is not None:
            return
        if parsed.kind is Kind.WRITE and self.spy.classifier.is_lease(parsed.value):
            return
        if parsed.kind not in (Kind.WRITE, Kind.SCRIPT):
            return
        for key in cache_keys:
            if self._wants(key) and (key in self.missed or not self.require_miss):
                # Fire once; commands the callable sends pass straight through.
                self.fired_key, self.fired_command = key, parsed.name
                self.inject()
                return


def run_elsewhere(action: Callable[[], object]) -> None:
    """Run ``action`` to completion in another thread, as a concurrent client would.

    Called on the paused request's own thread, ``action`` would share its context variables:
    in Flask, a request made from there reuses the paused request's application context (its
    ``g``: its Session, its logged-in user) instead of getting its own.
    """
    failure: list[BaseException] = []

    def target() -> None:
        try:
            action()
        except BaseException as error:  # re-raised on the paused thread below
            failure.append(error)

    thread = threading.Thread(target=target, name="cachesync-race")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


# How long the test's loop may take to start the injected action before the test fails
# instead of hanging: a loop that the trigger itself blocks never will.
LOOP_WAIT = 10.0


def run_on_loop(action: Callable[[], Awaitable[object]], loop: Any, context: Any) -> None:
    """Await ``action()`` on ``loop`` (the test's), in the test's ``context``, from the thread
    of a paused fill, as a concurrent client would.

    An asyncio client's fill pauses on a worker thread, its loop free to serve the action; that
    thread carries the paused request's context variables, which the action must not share
    (its own request scope, its own session). A synchronous client called from a coroutine
    pauses on the loop's own thread instead: the action then runs on a loop of its own in
    another thread.
    """
    import asyncio

    try:
        blocked = asyncio.get_running_loop() is loop
    except RuntimeError:
        blocked = False
    if blocked:
        run_elsewhere(lambda: asyncio.run(_awaited(action)))
        return
    started = threading.Event()

    async def start() -> object:
        started.set()
        return await _awaited(action)

    # The task takes the context current when it is scheduled: the test's, not the fill's.
    future = context.run(asyncio.run_coroutine_threadsafe, start(), loop)
    if not started.wait(LOOP_WAIT):
        future.cancel()
        raise RuntimeError(
            f"the test's event loop did not start the injected action within {LOOP_WAIT:g} s "
            "of the fill's pause: the trigger blocks it until the fill is done (a synchronous "
            "call inside the coroutine, such as a sync test client). Await the app in the "
            "trigger, or use the synchronous assert_no_race."
        )
    future.result()


async def _awaited(action: Callable[[], Awaitable[object]]) -> object:
    from .async_checks import awaited

    return await awaited(action, "race.assert_no_race")


class RaceInjector:
    """Injects a concurrent action into a request's cache fill and checks the aftermath."""

    def __init__(self, spy: RedisSpy, bypass: Bypass, *, sql: SqlRecorder | None = None) -> None:
        self.spy = spy
        self.bypass = bypass
        self.sql = sql
        self.outcomes: list[RaceOutcome] = []

    def run(
        self,
        key_or_pattern: str,
        trigger: Callable[[], object],
        during: Callable[[], object],
        *,
        fresh_value: Callable[[], object] | None = None,
        require_miss: bool = True,
    ) -> RaceOutcome:
        """Run `trigger` (a read that fills the key) with `during` injected before its fill.

        The fresh value is what `fresh_value()` returns, else what a bypassed rerun of
        `trigger` fills into the key.
        """
        __tracebackhide__ = True
        from .async_checks import sync_only

        trigger = sync_only(trigger, "race.assert_no_race", "trigger")
        during = sync_only(during, "race.assert_no_race", "during")
        armed = _Armed(self.spy, key_or_pattern, lambda: run_elsewhere(during), require_miss)
        writes_before = self._writes()
        with self._armed(armed):
            trigger()
        key, writes = self._fired(armed, key_or_pattern, writes_before)
        cached = read_value(self.spy, key)
        if fresh_value is not None:
            fresh = fresh_value()
        else:
            self.bypass.run(trigger)
            fresh = self._scratch_fill(key)
        return self._outcome(armed, key, writes, cached, fresh)

    async def run_async(
        self,
        key_or_pattern: str,
        trigger: Callable[[], Awaitable[object]],
        during: Callable[[], Awaitable[object]],
        *,
        fresh_value: Callable[[], object] | None = None,
        require_miss: bool = True,
    ) -> RaceOutcome:
        """`run` for coroutine functions: ``trigger`` is awaited, ``during`` awaited on this
        event loop while the fill is paused. ``fresh_value`` may be either kind."""
        __tracebackhide__ = True
        import asyncio
        import contextvars

        from .async_checks import awaited

        loop, context = asyncio.get_running_loop(), contextvars.copy_context()
        armed = _Armed(
            self.spy, key_or_pattern, lambda: run_on_loop(during, loop, context), require_miss
        )
        writes_before = self._writes()
        with self._armed(armed):
            await awaited(trigger, "race.assert_no_race")
        key, writes = self._fired(armed, key_or_pattern, writes_before)
        cached = read_value(self.spy, key)
        if fresh_value is not None:
            fresh = fresh_value()
            if inspect.isawaitable(fresh):
                fresh = await fresh
        else:
            with self.bypass.active():
                await trigger()
            fresh = self._scratch_fill(key)
        return self._outcome(armed, key, writes, cached, fresh)

    def _writes(self) -> int:
        return len(self.sql.write_times) if self.sql is not None else 0

    @contextmanager
    def _armed(self, armed: _Armed) -> Iterator[None]:
        remove_observer = self.spy.add_observer(armed.observe)
        remove_interceptor = self.spy.add_interceptor(armed.intercept)
        try:
            with self.bypass.uncompared():
                yield
        finally:
            remove_interceptor()
            remove_observer()

    def _fired(self, armed: _Armed, wanted: str, writes_before: int) -> tuple[str, int | None]:
        """The key whose fill was paused, and the database writes the action committed."""
        __tracebackhide__ = True
        key = armed.fired_key
        if key is None:
            seen = ", ".join(sorted(armed.missed)) or "none"
            raise AssertionError(
                f"no fill of {wanted!r} arrived after a miss while the trigger ran "
                f"(misses seen: {seen}); is the key cached by this request, and was it cold?"
            )
        if self.sql is None:
            return key, None
        writes = self._writes() - writes_before
        if writes == 0:
            raise AssertionError(
                f"the callable injected into the fill of {key} committed no database "
                "write, so the race tested nothing"
            )
        return key, writes

    def _outcome(
        self, armed: _Armed, key: str, writes: int | None, cached: object, fresh: object
    ) -> RaceOutcome:
        lease_prefix = self.spy.classifier.lease_prefix
        outcome = RaceOutcome(key, armed.fired_command, cached, fresh, writes, lease_prefix)
        self.outcomes.append(outcome)
        return outcome

    def _scratch_fill(self, key: str) -> object:
        """What a bypassed rerun of the trigger filled into ``key``."""
        __tracebackhide__ = True
        value = self.bypass.scratch_value(key)
        if value is None:
            raise AssertionError(
                f"a bypassed rerun of the trigger did not fill {key}; pass fresh_value= to "
                "say what the key should hold"
            )
        return value

    def assert_no_race(
        self,
        key_or_pattern: str,
        trigger: Callable[[], object],
        during: Callable[[], object],
        *,
        fresh_value: Callable[[], object] | None = None,
        require_miss: bool = True,
    ) -> RaceOutcome:
        """`run`, failing if the fill left a value that differs from the fresh one."""
        __tracebackhide__ = True
        outcome = self.run(
            key_or_pattern, trigger, during, fresh_value=fresh_value, require_miss=require_miss
        )
        if not outcome.consistent:
            raise AssertionError(outcome.describe())
        return outcome

    async def assert_no_race_async(
        self,
        key_or_pattern: str,
        trigger: Callable[[], Awaitable[object]],
        during: Callable[[], Awaitable[object]],
        *,
        fresh_value: Callable[[], object] | None = None,
        require_miss: bool = True,
    ) -> RaceOutcome:
        """`assert_no_race` for coroutine functions:
        ``await cachesync.race.assert_no_race_async(key, trigger=..., during=...)``."""
        __tracebackhide__ = True
        outcome = await self.run_async(
            key_or_pattern, trigger, during, fresh_value=fresh_value, require_miss=require_miss
        )
        if not outcome.consistent:
            raise AssertionError(outcome.describe())
        return outcome
