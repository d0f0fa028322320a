"""The app's only source of time.

Both functions read the clock at call time, so freezegun and time-machine move the app's time.
"""

from __future__ import annotations

import datetime as _dt
import time as _time


def now() -> _dt.datetime:
    """Current time, timezone-aware UTC."""
    return _dt.datetime.now(_dt.UTC)


def timestamp() -> float:
    """Current POSIX timestamp in seconds."""
    return _time.time()


def seconds_until_next_utc_midnight() -> int:
    """Whole seconds (at least 1) until the next UTC midnight, for ``daily_*`` counters."""
    current = now()
    midnight = (current + _dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - current).total_seconds() + 0.999999))
