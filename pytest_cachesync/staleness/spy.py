"""The cache spy: observes every command sent through one Redis client instance.

The client instance (not its class) gets its own `execute_command` and `pipeline`, the way
OpenTelemetry's redis instrumentation does it, so other clients are untouched and
`uninstall()` restores the instance exactly. `fakeredis.FakeRedis` subclasses `redis.Redis`,
so the same wrapper serves both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis

from pytest_cachesync.clock.reading import ClockLike, clock_reader

from .commands import Kind, ParsedCommand, TtlEffect, is_empty_reply, parse_command
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
from .spy_findings import SpyFindings

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
_NOT_A_STRING = object()


class RedisSpy(SpyFindings):
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
        if not isinstance(client, redis.Redis):
            raise TypeError(f"the spy wraps a redis.Redis instance, got {type(client).__name__}")
        self.client = client
        self.classifier = (
            classifier
            if isinstance(classifier, KeyClassifier)
            else KeyClassifier(classifier, prefix, lease_prefix)
        )
        self.now = clock_reader(clock)
        self.events: list[CommandEvent] = []
        self.effects: list[KeyEffect] = []
        self.keys: dict[str, KeyRecord] = {}
        self.scripts: dict[str, object] = {}
        self._interceptors: list[Interceptor] = []
        self._observers: list[Callable[[KeyEffect], None]] = []
        # Per thread: a replay in one thread must not reroute a threaded app's other requests.
        self._routes = threading.local()
        self._saved: dict[str, object] = {}
        self._raw: Execute = client.execute_command
        self._raw_pipeline: Callable[..., redis.client.Pipeline] = client.pipeline
        self.installed = False

    # -- installation -------------------------------------------------------------------------

    def install(self) -> RedisSpy:
        if self.installed:
            raise RuntimeError("this spy is already installed")
        current = self.client.__dict__.get("execute_command")
        if isinstance(getattr(current, "__self__", None), RedisSpy):
            raise RuntimeError("another cache spy already observes this client")
        for name in ("execute_command", "pipeline"):
            self._saved[name] = self.client.__dict__.get(name, _MISSING)
        self._raw = self.client.execute_command
        self._raw_pipeline = self.client.pipeline
        self.client.execute_command = self._execute_command  # type: ignore[method-assign]
        self.client.pipeline = self._pipeline  # type: ignore[method-assign]
        self.installed = True
        return self

    def uninstall(self) -> None:
        if not self.installed:
            return
        for name, saved in self._saved.items():
            if saved is _MISSING:
                self.client.__dict__.pop(name, None)
            else:
                setattr(self.client, name, saved)
        self._saved.clear()
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
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    @property
    def _route(self) -> redis.Redis | None:
        """Where this thread's commands go instead of the observed client (None: nowhere else)."""
        target: redis.Redis | None = getattr(self._routes, "target", None)
        return target

    @property
    def routed(self) -> bool:
        return self._route is not None

    @contextmanager
    def routed_to(self, target: redis.Redis) -> Iterator[None]:
        """Send every command of the block to `target` instead of the observed client."""
        if self._route is not None:
            raise RuntimeError("commands are already routed elsewhere; bypasses do not nest")
        self._routes.target = target
        try:
            yield
        finally:
            self._routes.target = None

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
        except redis.ResponseError:
            return _NOT_A_STRING

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
        if not cache_keys:
            return
        kind = parsed.kind
        if kind is Kind.READ:
            replies = result if parsed.name == "MGET" else [result] * len(cache_keys)
            for key, reply in zip(cache_keys, replies, strict=False):
                miss = is_empty_reply(reply) or self.classifier.is_lease(reply)
                self._effect(key, MISS if miss else HIT, parsed, at, bypassed, reply)
        elif kind is Kind.WRITE:
            if parsed.conditional and not result:
                return
            for key in cache_keys:
                if self.classifier.is_lease(parsed.value):
                    self._effect(key, LEASE, parsed, at, bypassed, parsed.value)
                else:
                    self._fill(key, parsed, at, bypassed, parsed.value, parsed.ttl_effect)
        elif kind is Kind.DELETE:
            for key in cache_keys:
                if parsed.name == "GETDEL":
                    effect = MISS if result is None or self.classifier.is_lease(result) else HIT
                    self._effect(key, effect, parsed, at, bypassed, result)
                self._effect(key, INVALIDATION, parsed, at, bypassed)
        elif kind is Kind.EXPIRE:
            for key in cache_keys:
                self._set_ttl(key, parsed.ttl, parsed.ttl_effect, bypassed)
        elif kind is Kind.SCRIPT:
            for key in cache_keys:
                self._script_effect(key, parsed, at, bypassed, result, before, execute)

    def _script_effect(
        self,
        key: str,
        parsed: ParsedCommand,
        at: float,
        bypassed: bool,
        result: object,
        before: dict[str, object],
        execute: Execute,
    ) -> None:
        # A script's meaning is unknown; its effect on a string key is read off the key's
        # value before and after it ran.
        old, new = before.get(key, _NOT_A_STRING), self._peek(execute, key)
        if new is _NOT_A_STRING or old is _NOT_A_STRING:
            return
        if new is not None and not self.classifier.is_lease(new) and new != old:
            self._fill(key, parsed, at, bypassed, new, TtlEffect.UNKNOWN)
        elif old is not None and new is None:
            self._effect(key, INVALIDATION, parsed, at, bypassed)
        elif self.classifier.is_lease(new) and new != old:
            self._effect(key, LEASE, parsed, at, bypassed, new)
        elif new is not None and not self.classifier.is_lease(new) and result is not None:
            self._effect(key, HIT, parsed, at, bypassed, new)
        elif result is None or self.classifier.is_lease(result):
            self._effect(key, MISS, parsed, at, bypassed)

    def _fill(
        self,
        key: str,
        parsed: ParsedCommand,
        at: float,
        bypassed: bool,
        value: object,
        ttl_effect: TtlEffect,
    ) -> None:
        self._effect(key, FILL, parsed, at, bypassed, value)
        if bypassed:
            return
        record = self._key_record(key)
        record.last_fill_at = at
        record.fills += 1
        self._set_ttl(key, parsed.ttl, ttl_effect, bypassed)

    def _set_ttl(self, key: str, ttl: float | None, effect: TtlEffect, bypassed: bool) -> None:
        if bypassed or effect is TtlEffect.NONE:
            return
        record = self._key_record(key)
        record.ttl_effect = effect
        record.ttl = ttl if effect is TtlEffect.SET else None
        if ttl is not None and effect is TtlEffect.SET:
            record.max_ttl_written = max(record.max_ttl_written or 0.0, ttl)

    def _key_record(self, key: str) -> KeyRecord:
        record = self.keys.get(key)
        if record is None:
            record = self.keys[key] = KeyRecord(self.classifier.pattern_for(key) or "")
        return record

    def _effect(
        self,
        key: str,
        effect: str,
        parsed: ParsedCommand,
        at: float,
        bypassed: bool,
        value: object = None,
    ) -> None:
        pattern = self.classifier.pattern_for(key) or ""
        record = KeyEffect(key, pattern, effect, parsed.name, at, bypassed, value)
        self.effects.append(record)
        for observer in list(self._observers):
            observer(record)
