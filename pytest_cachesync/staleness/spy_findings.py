"""The read side of the cache spy: what it saw, as figures per pattern and as assertions."""

from __future__ import annotations

from .patterns import KeyClassifier
from .records import FILL, HIT, INVALIDATION, MISS, CommandEvent, KeyEffect, KeyRecord
from .report import PatternStats


class SpyFindings:
    """The commands and cache-key effects a spy recorded; bypassed commands never count."""

    classifier: KeyClassifier
    events: list[CommandEvent]
    effects: list[KeyEffect]
    keys: dict[str, KeyRecord]

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
