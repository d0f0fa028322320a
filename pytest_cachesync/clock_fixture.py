"""The ``cachesync_clock`` fixture and its marker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ._markers import CLOCK_MARKER_NAME as CLOCK_MARKER
from ._session import RUNTIME_KEY

if TYPE_CHECKING:
    import redis

    from .clock.clock import CacheClock, ClockSettings
    from .stores.redis import RedisKeyspace

CLOCK_KEY = pytest.StashKey["CacheClock"]()
"""The running clock of a test, on ``item.stash``: the spy reads its time from it."""


def clock_settings(node: pytest.Item) -> ClockSettings:
    from .clock.clock import ClockSettings

    marker = node.get_closest_marker(CLOCK_MARKER)
    if marker is None:
        return ClockSettings()
    try:
        return ClockSettings.from_marker(marker.args, marker.kwargs)
    except (TypeError, ValueError) as error:
        pytest.fail(f"{node.nodeid}: @pytest.mark.{CLOCK_MARKER}: {error}", pytrace=False)


@pytest.fixture
def cachesync_clock(
    request: pytest.FixtureRequest,
    cachesync_redis: redis.Redis,
    _cachesync_keyspace: RedisKeyspace,
) -> Iterator[CacheClock]:
    """A frozen clock that moves Python's time and the TTLs of the test's Redis keys together.

    ``advance(seconds or timedelta)``, ``move_to(instant)``, ``now()`` (aware UTC) and
    ``timestamp()``: a key written with ``EX 10`` is gone after ``advance(10)``, on fakeredis and
    on a real server alike. It starts at the instant of
    ``@pytest.mark.cachesync_clock("2024-03-01T08:00:00Z")`` (default: now), moves Python's time
    with ``--cachesync-clock-engine`` (time-machine when installed, else freezegun) and returns to
    real time at teardown. ``cachesync.clock`` is the same object.
    """
    from .clock.clock import CacheClock

    wanted = clock_settings(request.node)
    engine = wanted.engine or request.config.stash[RUNTIME_KEY].settings.clock_engine.value
    clock = CacheClock(
        cachesync_redis,
        prefix=_cachesync_keyspace.key_prefix,
        engine=engine,
        start_at=wanted.start_at,
        tick=wanted.tick,
    )
    clock.start()
    request.node.stash[CLOCK_KEY] = clock
    try:
        yield clock
    finally:
        del request.node.stash[CLOCK_KEY]
        clock.stop()
