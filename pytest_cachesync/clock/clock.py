"""One clock for Python and Redis: travel in time and every TTL in the test's keyspace follows.

    with CacheClock(redis_client, start_at="2024-03-01T08:00:00Z") as clock:
        app.cache_user(1)            # SET user:1 ... EX 10
        clock.advance(10)            # Python's time and the key's TTL move 10 s
        assert redis_client.get("user:1") is None

Rules:
- Time is UTC. A naive datetime or string means UTC (as in time-machine); the process's local
  timezone is never changed.
- Every jump of Python's clock (`start`, `advance`, `move_to`, `stop`) moves the keyspace's TTLs
  by the same amount. A key whose expiry the jump reaches is gone, and stays gone if the clock moves
  back; moving back makes the remaining TTLs longer.
- On a real server only relative TTLs follow: an EXPIREAT computed from the travelled time is off by
  the distance travelled.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import redis

from pytest_cachesync.clock.engines import (
    ClockEngine,
    EngineChoice,
    EngineName,
    create_engine,
    resolve_engine_name,
    validate_choice,
)
from pytest_cachesync.clock.ttl import KeyspaceTTLs

Instant = dt.datetime | dt.date | str | float | int
Duration = dt.timedelta | float | int


class ClockNotRunningError(RuntimeError):
    """The clock was asked to move or tell the time before `start()` or after `stop()`."""


def to_timestamp(instant: Instant) -> float:
    """A Unix timestamp for an aware or naive (UTC) datetime, a date (its UTC midnight), an ISO 8601
    string, or a number of seconds since the epoch."""
    if isinstance(instant, bool):
        raise TypeError("an instant cannot be a bool")
    if isinstance(instant, int | float):
        if not math.isfinite(instant):
            raise ValueError(f"an instant must be a finite timestamp, got {instant!r}")
        return float(instant)
    if isinstance(instant, str):
        try:
            instant = dt.datetime.fromisoformat(instant.strip())
        except ValueError:
            raise ValueError(
                f"cannot read {instant!r} as an instant; use ISO 8601, e.g. '2024-03-01T08:00:00Z'"
            ) from None
    if isinstance(instant, dt.datetime):
        aware = instant if instant.tzinfo is not None else instant.replace(tzinfo=dt.UTC)
        return aware.timestamp()
    if isinstance(instant, dt.date):
        return dt.datetime.combine(instant, dt.time(), tzinfo=dt.UTC).timestamp()
    raise TypeError(
        "an instant is a datetime, date, ISO 8601 string or Unix timestamp, "
        f"got {type(instant).__name__}"
    )


def to_seconds(duration: Duration) -> float:
    if isinstance(duration, bool):
        raise TypeError("a duration cannot be a bool")
    if isinstance(duration, dt.timedelta):
        return duration.total_seconds()
    if isinstance(duration, int | float):
        if not math.isfinite(duration):
            raise ValueError(f"a duration must be finite, got {duration!r}")
        return float(duration)
    raise TypeError(f"a duration is seconds or a timedelta, got {type(duration).__name__}")


def _ms(timestamp: float) -> int:
    return round(timestamp * 1000)


class CacheClock:
    """Python's clock and the Redis keyspace's TTLs, moved together.

    `redis_client` is the test's client (fakeredis or a real server); only keys under `prefix` have
    their TTLs moved on a real server. `engine` picks the library that moves Python's clock ("auto":
    time-machine when installed, else freezegun). The clock starts at `start_at` (default: now) and
    is frozen unless `tick` is true, in which case time flows from each instant travelled to.
    `server_follows_python_clock` overrides the detection of an in-process fakeredis (for example
    for a fakeredis TCP server reached through a plain `redis.Redis`).
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        prefix: str | bytes = "",
        engine: EngineChoice | str = "auto",
        start_at: Instant | None = None,
        tick: bool = False,
        server_follows_python_clock: bool | None = None,
    ) -> None:
        self._engine_name: EngineName = resolve_engine_name(engine)
        self._start_at = None if start_at is None else to_timestamp(start_at)
        self._tick = bool(tick)
        self._ttls = KeyspaceTTLs(
            redis_client, prefix, server_follows_python_clock=server_follows_python_clock
        )
        self._engine: ClockEngine | None = None

    @property
    def engine(self) -> EngineName:
        return self._engine_name

    @property
    def tick(self) -> bool:
        return self._tick

    @property
    def running(self) -> bool:
        return self._engine is not None

    @property
    def server_follows_python_clock(self) -> bool:
        """True for fakeredis, whose expiry reads Python's time; False for a real server."""
        return self._ttls.server_follows_python_clock

    def start(self) -> Self:
        if self._engine is not None:
            raise RuntimeError("the clock is already running")
        engine = create_engine(self._engine_name)
        real_now = time.time()
        target = real_now if self._start_at is None else self._start_at

        def begin() -> None:
            engine.start(target, tick=self._tick)

        self._jump(real_now, target, begin)
        self._engine = engine
        return self

    def stop(self) -> None:
        """Return Python to real time; the keyspace's TTLs jump back with it. Safe to call twice."""
        engine, self._engine = self._engine, None
        if engine is None:
            return
        stopped = False

        def leave() -> None:
            nonlocal stopped
            engine.stop()
            stopped = True

        try:
            self._jump(engine.timestamp(), engine.real_timestamp(), leave)
        finally:
            # Real time comes back even when the server could not be reached.
            if not stopped:
                engine.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def timestamp(self) -> float:
        return self._running().timestamp()

    def now(self) -> dt.datetime:
        """The travelled time as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.timestamp(), dt.UTC)

    def advance(self, delta: Duration) -> dt.datetime:
        """Move by `delta` (seconds or a timedelta; negative moves back). Returns `now()`."""
        seconds = to_seconds(delta)
        engine = self._running()
        current = engine.timestamp()
        self._jump(current, current + seconds, lambda: engine.shift(seconds))
        return self.now()

    def move_to(self, instant: Instant) -> dt.datetime:
        """Travel to `instant`: the same as `advance(instant - now())`. Returns `now()`."""
        target = to_timestamp(instant)
        engine = self._running()
        self._jump(engine.timestamp(), target, lambda: engine.move_to(target))
        return self.now()

    def _running(self) -> ClockEngine:
        if self._engine is None:
            raise ClockNotRunningError(
                "the clock is not running; call start() or use `with clock:`"
            )
        return self._engine

    def _jump(self, origin: float, target: float, move_python: Callable[[], None]) -> None:
        # Whole milliseconds of absolute instants, so that a series of jumps adds up without drift.
        shift_ms = _ms(target) - _ms(origin)
        if not self._ttls.server_follows_python_clock:
            # The server first: if it fails, Python's clock has not moved either.
            if shift_ms:
                self._ttls.move(shift_ms)
            move_python()
            return
        if shift_ms < 0:
            self._ttls.remove_due()
        move_python()
        if shift_ms > 0:
            self._ttls.remove_due()

    def __repr__(self) -> str:
        state = f"at {self.now().isoformat()}" if self.running else "stopped"
        flow = "ticking" if self._tick else "frozen"
        return f"<CacheClock {self._engine_name} {flow} {state}>"


@dataclass(frozen=True)
class ClockSettings:
    """How a test wants its clock: `@pytest.mark.cachesync_clock(start_at, *, tick, engine)`."""

    start_at: Instant | None = None
    tick: bool = False
    engine: EngineChoice | None = None

    @classmethod
    def from_marker(cls, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> ClockSettings:
        """Validate a marker's arguments: at most one positional (the start instant)."""
        unknown = sorted(set(kwargs) - {"start_at", "tick", "engine"})
        if unknown:
            raise TypeError(f"cachesync_clock got unexpected arguments: {', '.join(unknown)}")
        if len(args) > 1 or (args and "start_at" in kwargs):
            raise TypeError("cachesync_clock takes one start instant")
        start_at = args[0] if args else kwargs.get("start_at")
        if start_at is not None:
            to_timestamp(start_at)
        tick = kwargs.get("tick", False)
        if not isinstance(tick, bool):
            raise TypeError(f"cachesync_clock(tick=...) must be a bool, got {tick!r}")
        engine = kwargs.get("engine")
        return cls(
            start_at=start_at,
            tick=tick,
            engine=None if engine is None else validate_choice(engine),
        )
