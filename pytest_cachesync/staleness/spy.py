"""The cache spy: observes every command sent through one Redis client instance.

The client instance (not its class) gets its own `execute_command` and `pipeline`, the way
OpenTelemetry's redis instrumentation does it, so other clients are untouched and
`uninstall()` restores the instance exactly. `fakeredis.FakeRedis` subclasses `redis.Redis`,
so the same wrapper serves both.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis

from pytest_cachesync.clock.reading import ClockLike, clock_reader
from pytest_cachesync.stores.clients import is_sync_client, response_errors

from .commands import Kind, ParsedCommand, parse_command
from .key_effects import NOT_A_STRING, KeyEffects
from .patterns import LEASE_PREFIX, KeyClassifier, as_text
from .records import (
    FILL,
    HIT,
    INVALIDATION,
    LEASE,
    MISS,
    CommandEvent,
    KeyEffect,
    KeyRecord,
)
from .report import PatternStats

Execute = Callable[..., Any]
Interceptor = Callable[[ParsedCommand, Sequence[str]], None]

__all__ = [
    "FILL",
    "HIT",
    "INVALIDATION",
    "LEASE",
    "MISS",
    "CommandEvent",
    "Interceptor",
    "KeyEffect",
    "KeyRecord",
    "RedisSpy",
]
"""Called before a command runs, with the cache keys (prefix stripped) it touches."""

_MISSING = object()
_WRITES = frozenset({Kind.WRITE, Kind.DELETE, Kind.EXPIRE, Kind.SCRIPT})
_WRAPPED = ("execute_command", "pipeline")


def save_wrapped(client: object, wrapper: type) -> dict[str, object]:
    """What ``client`` itself holds under the names a spy wraps, before it wraps them.

    Refuses a client a ``wrapper`` already observes: two spies would record every command twice.
    """
    current = client.__dict__.get("execute_command")
    if isinstance(getattr(current, "__self__", None), wrapper):
        raise RuntimeError("another cache spy already observes this client")
    return {name: client.__dict__.get(name, _MISSING) for name in _WRAPPED}


def restore_wrapped(client: object, saved: dict[str, object]) -> None:
    """Undo a wrap: the instance gets back what it held, or falls back to its class's methods."""
    for name, value in saved.items():
        if value is _MISSING:
            client.__dict__.pop(name, None)
        else:
            setattr(client, name, value)


class RedisSpy:
    """Observer of one `redis.Redis` (or FakeRedis) instance.

    `events` lists every command, `effects` every cache-key effect, `stats()` the figures per
    pattern. Commands issued while `routed_to()` is active go to another client (the bypass's
    scratch server) and are flagged `bypassed`; they never count in the figures.
    """

    def __init__(
        self,
        client: redis.Redis,
        classifier: KeyClassifier | Sequence[str] | str,
        *,
        clock: ClockLike | None = None,
        prefix: str = "",
        lease_prefix: str = LEASE_PREFIX,
    ) -> None:
        if not is_sync_client(client):
            raise TypeError(
                "the spy wraps a redis.Redis or valkey.Valkey instance (or a fakeredis one), "
                f"got {type(client).__name__}"
            )
        self.client = client
        self.classifier = (
            classifier
            if isinstance(classifier, KeyClassifier)
            else KeyClassifier(classifier, prefix, lease_prefix)
        )
        self.now = clock_reader(clock)
        self.events: list[CommandEvent] = []
        self._key_effects = KeyEffects(self.classifier)
        # The key side's own lists: reset() empties them in place.
        self.effects = self._key_effects.effects
        self.keys = self._key_effects.keys
        self.scripts: dict[str, object] = {}
        # Keys written outside the test's key prefix (prefix isolation): another keyspace's.
        self.outside_prefix: list[str] = []
        self._interceptors: list[Interceptor] = []
        # Per thread: a replay in one thread must not reroute a threaded app's other requests.
        self._routes = threading.local()
        # Unless an ASGI test client runs the app on an event loop in a thread of its own: then
        # a replay reroutes every thread, which is safe since such a client is sequential.
        self.route_every_thread = False
        self._shared_route: redis.Redis | None = None
        self._saved: dict[str, object] = {}
        self._raw: Execute = client.execute_command
        self._raw_pipeline: Callable[..., redis.client.Pipeline] = client.pipeline
        self.installed = False

    # -- installation -------------------------------------------------------------------------

    def install(self) -> RedisSpy:
        if self.installed:
            raise RuntimeError("this spy is already installed")
        self._saved = save_wrapped(self.client, RedisSpy)
        self._raw = self.client.execute_command
        self._raw_pipeline = self.client.pipeline
        self.client.execute_command = self._execute_command  # type: ignore[method-assign]
        self.client.pipeline = self._pipeline  # type: ignore[method-assign]
        self.installed = True
        return self

    def uninstall(self) -> None:
        if not self.installed:
            return
        restore_wrapped(self.client, self._saved)
        self._saved = {}
        self.installed = False

    def __enter__(self) -> RedisSpy:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    def raw(self, *args: object) -> Any:
        """Run a command on the observed client without observing it (for inspections)."""
        return self._raw(*args)

    # -- hooks for the bypass and the race injector -------------------------------------------

    def add_interceptor(self, interceptor: Interceptor) -> Callable[[], None]:
        """Call `interceptor` before each unrouted command; returns a function removing it."""
        self._interceptors.append(interceptor)
        return lambda: self._interceptors.remove(interceptor)

    def add_observer(self, observer: Callable[[KeyEffect], None]) -> Callable[[], None]:
        observers = self._key_effects.observers
        observers.append(observer)
        return lambda: observers.remove(observer)

    @property
    def _route(self) -> redis.Redis | None:
        """Where this thread's commands go instead of the observed client (None: nowhere else)."""
        target: redis.Redis | None = getattr(self._routes, "target", None)
        return target if target is not None else self._shared_route

    @property
    def routed(self) -> bool:
        return self._route is not None

    @contextmanager
    def routed_to(self, target: redis.Redis) -> Iterator[None]:
        """Send every command of the block to `target` instead of the observed client."""
        if self._route is not None:
            raise RuntimeError("commands are already routed elsewhere; bypasses do not nest")
        if self.route_every_thread:
            self._shared_route = target
            try:
                yield
            finally:
                self._shared_route = None
            return
        self._routes.target = target
        try:
            yield
        finally:
            self._routes.target = None

    def _check_prefix(self, parsed: ParsedCommand) -> None:
        for key in parsed.keys:
            name = as_text(key)
            if not name.startswith(self.classifier.prefix) and name not in self.outside_prefix:
                self.outside_prefix.append(name)

    def assert_within_prefix(self) -> None:
        """Fail naming each key written outside the test's prefix (prefix isolation)."""
        if self.outside_prefix:
            keys = ", ".join(self.outside_prefix)
            raise AssertionError(
                f"keys written outside the test's key prefix {self.classifier.prefix!r}: "
                f"{keys}. In prefix isolation other tests and workers share this Redis "
                "database; put cachesync.key_prefix in front of every key the app writes."
            )

    # -- the wrappers -------------------------------------------------------------------------

    def _target(self) -> tuple[Execute, bool]:
        if self._route is not None:
            route_execute: Execute = self._route.execute_command
            return route_execute, True
        return self._raw, False

    def _cache_keys(self, parsed: ParsedCommand) -> list[str]:
        classifier = self.classifier
        return [classifier.strip(k) for k in parsed.keys if classifier.is_cache(k)]

    def _before(self, parsed: ParsedCommand, bypassed: bool) -> list[str]:
        cache_keys = self._cache_keys(parsed)
        if self.classifier.prefix and not bypassed and parsed.kind in _WRITES:
            self._check_prefix(parsed)
        if not bypassed and self._interceptors:
            for interceptor in list(self._interceptors):
                interceptor(parsed, cache_keys)
        return cache_keys

    def _execute_command(self, *args: Any, **options: Any) -> Any:
        execute, bypassed = self._target()
        parsed = parse_command(args)
        cache_keys = self._before(parsed, bypassed)
        before = self._peek_all(execute, cache_keys) if parsed.kind is Kind.SCRIPT else {}
        result = execute(*args, **options)
        self._record(parsed, args, result, cache_keys, bypassed, False, execute, before)
        return result

    def _pipeline(self, transaction: bool = True, shard_hint: Any = None) -> redis.client.Pipeline:
        route = self._route
        pipe: redis.client.Pipeline
        if route is not None:
            pipe = route.pipeline(transaction, shard_hint)
        else:
            pipe = self._raw_pipeline(transaction, shard_hint)
        bypassed = route is not None
        execute_batch: Execute = pipe.execute
        immediate: Execute = pipe.immediate_execute_command
        peek_with: Execute = route.execute_command if route is not None else self._raw

        def execute(raise_on_error: bool = True) -> list[Any]:
            staged = [(parse_command(args), args) for args, _ in pipe.command_stack]
            keys = [self._before(parsed, bypassed) for parsed, _ in staged]
            script_keys = [
                k
                for (p, _), ks in zip(staged, keys, strict=True)
                if p.kind is Kind.SCRIPT
                for k in ks
            ]
            before = self._peek_all(peek_with, script_keys)
            results: list[Any] = execute_batch(raise_on_error)
            for (parsed, args), cache_keys, result in zip(staged, keys, results, strict=False):
                if not isinstance(result, Exception):
                    self._record(
                        parsed, args, result, cache_keys, bypassed, True, peek_with, before
                    )
            return results

        def immediate_execute_command(*args: Any, **options: Any) -> Any:
            parsed = parse_command(args)
            cache_keys = self._before(parsed, bypassed)
            result = immediate(*args, **options)
            self._record(parsed, args, result, cache_keys, bypassed, True, peek_with, {})
            return result

        pipe.execute = execute  # type: ignore[method-assign]
        pipe.immediate_execute_command = immediate_execute_command  # type: ignore[method-assign]
        return pipe

    # -- recording ----------------------------------------------------------------------------

    def _peek(self, execute: Execute, key: str) -> object:
        try:
            return execute("GET", self.classifier.full_key(key))
        except response_errors():
            return NOT_A_STRING

    def _peek_all(self, execute: Execute, keys: Sequence[str]) -> dict[str, object]:
        return {key: self._peek(execute, key) for key in keys}

    def _record(
        self,
        parsed: ParsedCommand,
        args: tuple[Any, ...],
        result: Any,
        cache_keys: list[str],
        bypassed: bool,
        in_pipeline: bool,
        execute: Execute,
        before: dict[str, object],
    ) -> None:
        at = self.now()
        self.events.append(CommandEvent(parsed.name, tuple(args), at, bypassed, in_pipeline))
        if parsed.name == "SCRIPT" and len(args) >= 3 and as_text(args[1]).upper() == "LOAD":
            self.scripts[as_text(result)] = args[2]
        elif parsed.name == "SCRIPT LOAD" and len(args) >= 2:
            self.scripts[as_text(result)] = args[1]
        if cache_keys:
            peek = functools.partial(self._peek, execute)
            self._key_effects.record(parsed, result, cache_keys, at, bypassed, before, peek)

    # -- what it saw ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything seen so far (the installation stays)."""
        self.events.clear()
        self.effects.clear()
        self.keys.clear()

    @property
    def commands_total(self) -> int:
        return sum(1 for e in self.events if not e.bypassed)

    def stats(self) -> dict[str, PatternStats]:
        """Figures per cache pattern, bypassed commands left out."""
        figures = {pattern: PatternStats() for pattern in self.classifier.patterns}
        for effect in self.effects:
            if not effect.bypassed:
                figures[effect.pattern].count(effect.effect)
        return figures

    def effects_for(self, key_or_pattern: str, effect: str | None = None) -> list[KeyEffect]:
        matches = self.classifier.matches
        return [
            e
            for e in self.effects
            if not e.bypassed
            and (effect is None or e.effect == effect)
            and (e.pattern == key_or_pattern or matches(e.key, key_or_pattern))
        ]

    def _assert_effect(self, key_or_pattern: str, effect: str, verb: str) -> None:
        if self.effects_for(key_or_pattern, effect):
            return
        seen = self.effects_for(key_or_pattern)
        lines = [f"expected {key_or_pattern!r} to be {verb}, but it was not."]
        if seen:
            lines.append("What happened to it:")
            lines += [f"  {e.effect:<12} {e.key} ({e.command})" for e in seen]
        else:
            lines.append("No command touched it.")
        raise AssertionError("\n".join(lines))

    def assert_hit(self, key_or_pattern: str) -> None:
        self._assert_effect(key_or_pattern, HIT, "served from the cache (hit)")

    def assert_missed(self, key_or_pattern: str) -> None:
        self._assert_effect(key_or_pattern, MISS, "looked up and missed")

    def assert_filled(self, key_or_pattern: str) -> None:
        self._assert_effect(key_or_pattern, FILL, "filled")

    def assert_invalidated(self, key_or_pattern: str) -> None:
        self._assert_effect(key_or_pattern, INVALIDATION, "invalidated")

    def assert_not_hit(self, key_or_pattern: str) -> None:
        hits = self.effects_for(key_or_pattern, HIT)
        if hits:
            keys = ", ".join(sorted({e.key for e in hits}))
            raise AssertionError(f"expected no cache hit on {key_or_pattern!r}, got: {keys}")

    def assert_commands_at_most(self, limit: int) -> None:
        sent = [e for e in self.events if not e.bypassed]
        if len(sent) <= limit:
            return
        shown = "\n".join(f"  {i:>3}. {e.render()}" for i, e in enumerate(sent[:50], 1))
        more = f"\n  ... and {len(sent) - 50} more" if len(sent) > 50 else ""
        raise AssertionError(
            f"expected at most {limit} Redis commands, {len(sent)} were sent:\n{shown}{more}"
        )
