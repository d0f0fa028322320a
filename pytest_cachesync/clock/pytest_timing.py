"""pytest's own timers run on real time while a clock engine moves Python's.

pytest reads ``time.time`` and ``time.perf_counter`` through ``_pytest.timing`` for
``--durations``, junit times and the session's duration. time-machine moves ``time.time``
behind every reference to it, and freezegun swaps both functions in every loaded module, so
a test that travels would report durations of years. While a clock runs, ``_pytest.timing``
gets the engine's own real-time functions; it gets its own back when the clock stops.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

_NAMES = ("time", "perf_counter")


class PytestTiming:
    """Holds pytest's timing functions on real time between ``keep_real`` and ``restore``."""

    def __init__(self) -> None:
        self._saved: dict[str, object] = {}

    def save(self) -> None:
        """Remember pytest's functions; call before the engine starts (it may swap them)."""
        module = sys.modules.get("_pytest.timing")
        if module is not None:
            self._saved = {name: getattr(module, name) for name in _NAMES if hasattr(module, name)}

    def keep_real(self, time: Callable[[], float], perf_counter: Callable[[], float]) -> None:
        """Point pytest's timing at real time; call once the engine has started."""
        module = sys.modules.get("_pytest.timing")
        if module is None or not self._saved:
            return
        real = {"time": time, "perf_counter": perf_counter}
        for name in self._saved:
            setattr(module, name, real[name])

    def restore(self) -> None:
        """Give pytest its own functions back; call after the engine has stopped."""
        module = sys.modules.get("_pytest.timing")
        saved, self._saved = self._saved, {}
        if module is not None:
            for name, function in saved.items():
                setattr(module, name, function)
