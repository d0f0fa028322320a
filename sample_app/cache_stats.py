"""Per-pattern cache counters of this process (shown on the dashboard)."""

from __future__ import annotations

import threading
from collections import defaultdict

EVENTS = ("hits", "misses", "fills", "dropped_fills", "read_throughs", "bypassed")


class CacheStats:
    """Thread-safe counters keyed by pattern then event name (one of ``EVENTS``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: defaultdict[str, dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(EVENTS, 0)
        )

    def record(self, pattern: str, event: str) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown cache event {event!r}")
        with self._lock:
            self._counts[pattern][event] += 1

    def snapshot(self) -> dict[str, dict[str, float]]:
        """Counts per pattern plus a ``hit_ratio`` (hits / (hits + misses), 0.0 when unused)."""
        with self._lock:
            result: dict[str, dict[str, float]] = {}
            for pattern, counts in self._counts.items():
                row: dict[str, float] = dict(counts)
                lookups = counts["hits"] + counts["misses"]
                row["hit_ratio"] = round(counts["hits"] / lookups, 4) if lookups else 0.0
                result[pattern] = row
            return result

    def totals(self) -> dict[str, float]:
        with self._lock:
            totals: dict[str, float] = dict.fromkeys(EVENTS, 0)
            for counts in self._counts.values():
                for event, value in counts.items():
                    totals[event] += value
        lookups = totals["hits"] + totals["misses"]
        totals["hit_ratio"] = round(totals["hits"] / lookups, 4) if lookups else 0.0
        return totals

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
