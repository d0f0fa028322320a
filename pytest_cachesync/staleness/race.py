"""The race injector: pause a cache fill between its database read and its Redis write.

It acts at the Redis client (through the spy) and the engine only, so it works on an app whose
code cannot change. Armed for a key or pattern, it waits for a miss on a matching key, then for
that key's fill (a SET-like write of a non-lease value, or a script whose keys include it). Just
before the fill reaches Redis it runs the given callable (say, a concurrent update through the
test client), then lets the fill proceed. The cached value must then be absent or fresh.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
        return (
            f"cache-fill race on {self.key}: the fill ({self.command}) paused after its "
            "database read wrote a value that is not the database's any more\n"
            f"  cached: {_show(self.cached)}\n  fresh:  {_show(self.fresh)}"
        )


def _show(value: object) -> str:
    text = as_text(value) if isinstance(value, bytes | str) else pretty(value)
    return text if len(text) <= 300 else text[:297] + "..."


class _Armed:
    def __init__(
        self, spy: RedisSpy, wanted: str, during: Callable[[], object], require_miss: bool
    ) -> None:
        self.spy = spy
        self.wanted = wanted
        self.during = during
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
                run_elsewhere(self.during)
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
        armed = _Armed(self.spy, key_or_pattern, during, require_miss)
        writes_before = len(self.sql.write_times) if self.sql is not None else 0
        remove_observer = self.spy.add_observer(armed.observe)
        remove_interceptor = self.spy.add_interceptor(armed.intercept)
        try:
            trigger()
        finally:
            remove_interceptor()
            remove_observer()
        key = armed.fired_key
        if key is None:
            seen = ", ".join(sorted(armed.missed)) or "none"
            raise AssertionError(
                f"no fill of {key_or_pattern!r} arrived after a miss while the trigger ran "
                f"(misses seen: {seen}); is the key cached by this request, and was it cold?"
            )
        writes = None
        if self.sql is not None:
            writes = len(self.sql.write_times) - writes_before
            if writes == 0:
                raise AssertionError(
                    f"the callable injected into the fill of {key} committed no database "
                    "write, so the race tested nothing"
                )
        cached = read_value(self.spy, key)
        fresh = self._fresh(key, trigger, fresh_value)
        lease_prefix = self.spy.classifier.lease_prefix
        outcome = RaceOutcome(key, armed.fired_command, cached, fresh, writes, lease_prefix)
        self.outcomes.append(outcome)
        return outcome

    def _fresh(
        self, key: str, trigger: Callable[[], object], fresh_value: Callable[[], object] | None
    ) -> object:
        if fresh_value is not None:
            return fresh_value()
        self.bypass.run(trigger)
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
        outcome = self.run(
            key_or_pattern, trigger, during, fresh_value=fresh_value, require_miss=require_miss
        )
        if not outcome.consistent:
            raise AssertionError(outcome.describe())
        return outcome
