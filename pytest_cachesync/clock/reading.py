"""Reading "now" in seconds from whatever clock a test hands over."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class AdvancingClock(Protocol):
    """A clock a test can move forward (the plugin's time-travel clock, or a fake)."""

    def advance(self, seconds: float) -> object: ...


ClockLike = object
"""Anything `clock_reader` accepts: None, a callable, or an object with timestamp()/now()."""


def _seconds(value: object) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    raise TypeError(f"a clock must tell time as a datetime or seconds, got {value!r}")


def _tolerant(read: Callable[[], object]) -> Callable[[], float]:
    # A time-travel clock that is not running (yet, or any more) leaves Python's time real.
    def now() -> float:
        try:
            return _seconds(read())
        except RuntimeError:
            return time.time()

    return now


def clock_reader(clock: ClockLike | None) -> Callable[[], float]:
    """A function returning the clock's current time in seconds since the epoch.

    Accepts None (wall time), a zero-argument callable, or an object with `timestamp()` or
    `now()` returning seconds or a datetime.
    """
    if clock is None:
        return time.time
    for name in ("timestamp", "now"):
        method = getattr(clock, name, None)
        if callable(method):
            return _tolerant(method)
    if callable(clock):
        plain: Callable[[], object] = clock
        return lambda: _seconds(plain())
    raise TypeError(f"{clock!r} is not a clock: give it timestamp() or now(), or pass a callable")


def advance(clock: ClockLike, seconds: float) -> None:
    """Move `clock` forward, refusing clocks that cannot move."""
    if not isinstance(clock, AdvancingClock):
        raise TypeError(f"{clock!r} cannot advance: it needs an advance(seconds) method")
    if seconds < 0:
        raise ValueError(f"cannot move a clock backwards ({seconds} s)")
    clock.advance(seconds)
