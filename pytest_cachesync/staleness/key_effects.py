"""What a spy's commands did to cache keys: each effect in order, and a record per key.

A command, once it ran, is read as hits, misses, fills, leases and invalidations of the cache
keys it touched; a fill or an EXPIRE also updates the key's record (its last fill and TTL).
Bypassed commands are recorded as such and never change a key's record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .commands import Kind, ParsedCommand, TtlEffect, is_empty_reply
from .patterns import KeyClassifier
from .records import FILL, HIT, INVALIDATION, LEASE, MISS, KeyEffect, KeyRecord

NOT_A_STRING = object()
"""What peeking at a key reads when the key holds no string (a script's effect is then unknown)."""


class KeyEffects:
    """The cache-key effects of one spy's commands, told to its observers as they happen."""

    def __init__(self, classifier: KeyClassifier) -> None:
        self.classifier = classifier
        self.effects: list[KeyEffect] = []
        self.keys: dict[str, KeyRecord] = {}
        self.observers: list[Callable[[KeyEffect], None]] = []

    def record(
        self,
        parsed: ParsedCommand,
        result: Any,
        cache_keys: list[str],
        at: float,
        bypassed: bool,
        before: dict[str, object],
        peek: Callable[[str], object],
    ) -> None:
        """The effects of ``parsed`` on ``cache_keys``; ``before`` and ``peek`` read a key's
        value before and after a script ran."""
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
                self._script_effect(key, parsed, at, bypassed, result, before, peek)

    def _script_effect(
        self,
        key: str,
        parsed: ParsedCommand,
        at: float,
        bypassed: bool,
        result: object,
        before: dict[str, object],
        peek: Callable[[str], object],
    ) -> None:
        # A script's meaning is unknown; its effect on a string key is read off the key's
        # value before and after it ran.
        old, new = before.get(key, NOT_A_STRING), peek(key)
        if new is NOT_A_STRING or old is NOT_A_STRING:
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
        for observer in list(self.observers):
            observer(record)
