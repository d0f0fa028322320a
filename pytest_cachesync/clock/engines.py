"""The libraries that move Python's clock: time-machine (C level, fast) and freezegun (patching).

Both are imported only when a clock starts, so a test run that never travels pays nothing;
time-machine is installed with the plugin, freezegun with its extra. Every engine speaks Unix
timestamps in seconds; the conversions to each library's own types live here and nowhere else.
"""

from __future__ import annotations

import calendar
import datetime as dt
import importlib.metadata
import importlib.util
import time
from typing import Any, Literal, Protocol, get_args

from .pytest_timing import PytestTiming

EngineName = Literal["time-machine", "freezegun"]
EngineChoice = Literal["auto", "time-machine", "freezegun"]

ENGINE_CHOICES: tuple[str, ...] = get_args(EngineChoice)
_MODULE_OF: dict[EngineName, str] = {"time-machine": "time_machine", "freezegun": "freezegun"}
_INSTALL_HINT: dict[EngineName, str] = {
    "time-machine": "pip install 'pytest-cachesync[time-machine]'",
    "freezegun": "pip install 'pytest-cachesync[freezegun]'",
}


class EngineUnavailableError(ImportError):
    """The requested clock engine is not installed."""


class ClockEngine(Protocol):
    """Moves Python's clock. One instance drives one travel, from `start` to `stop`."""

    name: EngineName

    def start(self, timestamp: float, *, tick: bool) -> None: ...

    def timestamp(self) -> float:
        """The travelled time, read from the engine itself so that it is exact in any thread."""
        ...

    def real_timestamp(self) -> float:
        """The time outside the travel."""
        ...

    def shift(self, seconds: float) -> None: ...

    def move_to(self, timestamp: float) -> None: ...

    def stop(self) -> None: ...


def is_installed(name: EngineName) -> bool:
    return importlib.util.find_spec(_MODULE_OF[name]) is not None


def engine_version(name: EngineName) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def validate_choice(choice: str) -> EngineChoice:
    if choice not in ENGINE_CHOICES:
        raise ValueError(f"clock engine must be one of {', '.join(ENGINE_CHOICES)}; got {choice!r}")
    return choice  # type: ignore[return-value]


def resolve_engine_name(choice: str = "auto") -> EngineName:
    """The engine a clock with this choice uses: "auto" prefers time-machine, which is faster."""
    checked = validate_choice(choice)
    if checked == "auto":
        return "time-machine" if is_installed("time-machine") else "freezegun"
    if not is_installed(checked):
        raise EngineUnavailableError(
            f"clock engine {checked!r} is not installed; {_INSTALL_HINT[checked]}"
        )
    return checked


def engine_header(choice: str = "auto") -> str:
    """One line for pytest's report header, e.g. `clock: time-machine 3.6.0 (auto; ...)`."""
    checked = validate_choice(choice)
    try:
        name = resolve_engine_name(checked)
    except EngineUnavailableError as error:
        return f"clock: unavailable ({error})"
    others = [
        f"{other} {engine_version(other)} installed"
        for other in _MODULE_OF
        if other != name and is_installed(other)
    ]
    version = engine_version(name)
    label = f"{name} {version}" if version else name
    detail = "; ".join(["auto" if checked == "auto" else "chosen", *others])
    return f"clock: {label} ({detail})"


def create_engine(choice: str = "auto") -> ClockEngine:
    name = resolve_engine_name(choice)
    if name == "time-machine":
        return TimeMachineEngine()
    return FreezegunEngine()


def _utc_aware(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


def _utc_naive(timestamp: float) -> dt.datetime:
    return _utc_aware(timestamp).replace(tzinfo=None)


class TimeMachineEngine:
    """time-machine patches the C functions behind `time` and `datetime`, so every caller, in every
    thread, sees the travelled time. It leaves `time.monotonic` and `time.perf_counter` alone."""

    name: EngineName = "time-machine"

    def __init__(self) -> None:
        self._travel: Any = None
        self._traveller: Any = None
        self._pytest_timing = PytestTiming()

    def start(self, timestamp: float, *, tick: bool) -> None:
        import time_machine

        # A datetime, not a float: time-machine converts it to nanoseconds exactly.
        travel = time_machine.travel(_utc_aware(timestamp), tick=tick)
        self._pytest_timing.save()
        self._traveller = travel.start()
        self._travel = travel
        # time-machine leaves perf_counter alone: only time.time needs the escape hatch.
        self._pytest_timing.keep_real(time_machine.escape_hatch.time.time, time.perf_counter)

    def timestamp(self) -> float:
        return int(self._running().time_ns()) / 1e9

    def real_timestamp(self) -> float:
        import time_machine

        return float(time_machine.escape_hatch.time.time())

    def shift(self, seconds: float) -> None:
        self._running().shift(seconds)

    def move_to(self, timestamp: float) -> None:
        self._running().move_to(_utc_aware(timestamp))

    def stop(self) -> None:
        travel, self._travel, self._traveller = self._travel, None, None
        if travel is not None:
            travel.stop()
        self._pytest_timing.restore()

    def _running(self) -> Any:
        if self._traveller is None:
            raise RuntimeError("the time-machine engine is not started")
        return self._traveller


class FreezegunEngine:
    """freezegun swaps the functions in `time` and `datetime` and every module attribute that refers
    to them, which costs milliseconds with many modules loaded. It also freezes `time.monotonic` and
    `time.perf_counter`. A caller with a `threading`/`queue` frame among its five nearest frames
    gets real time (freezegun's ignore list), so a thread's target calling `time.time()` itself
    does too."""

    name: EngineName = "freezegun"

    def __init__(self) -> None:
        self._freezer: Any = None
        self._factory: Any = None
        self._pytest_timing = PytestTiming()

    def start(self, timestamp: float, *, tick: bool) -> None:
        import freezegun
        from freezegun.api import real_perf_counter, real_time

        # real_asyncio: event loops keep real monotonic time, or `asyncio.sleep` never returns.
        freezer = freezegun.freeze_time(_utc_naive(timestamp), tick=tick, real_asyncio=True)
        self._pytest_timing.save()
        self._factory = freezer.start()
        self._freezer = freezer
        self._pytest_timing.keep_real(real_time, real_perf_counter)

    def timestamp(self) -> float:
        # The same arithmetic as freezegun's own `time.time()`, so both agree to the microsecond.
        current: dt.datetime = self._running()()
        return calendar.timegm(current.timetuple()) + current.microsecond / 1_000_000

    def real_timestamp(self) -> float:
        from freezegun.api import real_time

        return float(real_time())

    def shift(self, seconds: float) -> None:
        factory = self._running()
        # `factory.tick` would rebase a ticking clock on its start instant and lose the time that
        # flowed since; moving from the current instant keeps it.
        factory.move_to(factory() + dt.timedelta(seconds=seconds))

    def move_to(self, timestamp: float) -> None:
        self._running().move_to(_utc_naive(timestamp))

    def stop(self) -> None:
        freezer, self._freezer, self._factory = self._freezer, None, None
        if freezer is not None:
            freezer.stop()
        self._pytest_timing.restore()

    def _running(self) -> Any:
        if self._factory is None:
            raise RuntimeError("the freezegun engine is not started")
        return self._factory
