"""What the cache spy records: commands, their effects on cache keys, and per-key memory."""

from __future__ import annotations

from dataclasses import dataclass, field

from .commands import TtlEffect
from .patterns import as_text

HIT, MISS, FILL, INVALIDATION, LEASE = "hit", "miss", "fill", "invalidation", "lease"


# Not frozen: a frozen dataclass costs the spy ~1 us more per command.
@dataclass(slots=True)
class CommandEvent:
    """One command as the spy saw it."""

    name: str
    args: tuple[object, ...]
    at: float
    bypassed: bool
    in_pipeline: bool

    def render(self) -> str:
        shown = " ".join(as_text(a) for a in self.args)
        return shown if len(shown) <= 120 else shown[:117] + "..."


# Not frozen: a frozen dataclass costs the spy ~1 us more per command.
@dataclass(slots=True)
class KeyEffect:
    """What one command did to one cache key: hit, miss, fill, invalidation or lease."""

    key: str
    pattern: str
    effect: str
    command: str
    at: float
    bypassed: bool
    value: object = None


@dataclass(slots=True)
class KeyRecord:
    """The spy's memory of one cache key: last fill and the TTL it was given."""

    pattern: str
    last_fill_at: float | None = None
    ttl: float | None = None
    ttl_effect: TtlEffect = TtlEffect.NONE
    max_ttl_written: float | None = None
    fills: int = 0
    hits_since_fill: list[float] = field(default_factory=list)
