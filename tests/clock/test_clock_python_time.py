"""What moves on the Python side, per engine; starting, stopping, ticking, threads, bad input."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import fakeredis
import pytest
import redis

from pytest_cachesync.clock.clock import (
    CacheClock,
    ClockNotRunningError,
    ClockSettings,
    to_timestamp,
)
from pytest_cachesync.clock.engines import EngineName, engine_header, resolve_engine_name

START = dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.UTC)
REAL_TIME_FLOOR = dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp()


@pytest.fixture
def fake_clock(fake_redis: fakeredis.FakeRedis, engine: EngineName) -> Any:
    with CacheClock(fake_redis, engine=engine, start_at=START) as running:
        yield running


def test_time_and_datetime_move(fake_clock: CacheClock) -> None:
    assert time.time() == START.timestamp()
    assert dt.datetime.now(dt.UTC) == START
    assert fake_clock.now() == START
    fake_clock.advance(dt.timedelta(hours=3))
    assert time.time() == START.timestamp() + 3 * 3600
    assert dt.datetime.now(dt.UTC) == START + dt.timedelta(hours=3)
    assert dt.date.today() == dt.date(2024, 3, 1)
    assert fake_clock.timestamp() == time.time()


def test_frozen_by_default(fake_clock: CacheClock) -> None:
    first = time.time()
    for _ in range(1000):
        assert time.time() == first
    assert fake_clock.tick is False


def test_monotonic_moves_only_with_freezegun(fake_clock: CacheClock, engine: EngineName) -> None:
    before = time.monotonic()
    fake_clock.advance(3600)
    moved = time.monotonic() - before
    if engine == "freezegun":
        assert moved == 3600
    else:
        assert moved < 60


def test_naive_datetimes_and_strings_mean_utc(fake_clock: CacheClock) -> None:
    fake_clock.move_to(dt.datetime(2024, 6, 1, 12, 0))
    assert fake_clock.now() == dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
    fake_clock.move_to("2024-06-02 12:00")
    assert time.time() == dt.datetime(2024, 6, 2, 12, 0, tzinfo=dt.UTC).timestamp()
    fake_clock.move_to(dt.date(2024, 6, 3))
    assert fake_clock.now() == dt.datetime(2024, 6, 3, tzinfo=dt.UTC)
    paris = dt.timezone(dt.timedelta(hours=2))
    fake_clock.move_to(dt.datetime(2024, 6, 4, 14, 0, tzinfo=paris))
    assert fake_clock.now() == dt.datetime(2024, 6, 4, 12, 0, tzinfo=dt.UTC)


def test_nested_moves_add_up(fake_clock: CacheClock) -> None:
    fake_clock.advance(1.5)
    fake_clock.advance(-0.25)
    fake_clock.move_to(fake_clock.now() + dt.timedelta(days=1))
    fake_clock.advance(dt.timedelta(minutes=-30))
    expected = START + dt.timedelta(days=1, seconds=1.25, minutes=-30)
    assert fake_clock.now() == expected
    assert time.time() == expected.timestamp()


def test_ticking_flows_from_each_travelled_instant(
    redis_client: redis.Redis, engine: EngineName
) -> None:
    with CacheClock(redis_client, engine=engine, start_at=START, tick=True) as clock:
        first = clock.timestamp()
        assert START.timestamp() <= first < START.timestamp() + 5
        for _ in range(1_000_000):
            if time.time() > first:
                break
        assert time.time() > first
        clock.advance(3600)
        assert START.timestamp() + 3600 <= time.time() < START.timestamp() + 3605
        redis_client.set("k", 1, ex=10)
        clock.advance(10)
        assert redis_client.get("k") is None
        clock.move_to("2030-01-01")
        assert dt.datetime(2030, 1, 1, tzinfo=dt.UTC) <= clock.now()
        assert clock.now() < dt.datetime(2030, 1, 1, 0, 0, 5, tzinfo=dt.UTC)


def test_stop_restores_real_time_even_after_a_failure(
    fake_redis: fakeredis.FakeRedis, engine: EngineName
) -> None:
    clock = CacheClock(fake_redis, engine=engine, start_at="2001-01-01")

    def fail_while_travelling() -> None:
        with clock:
            clock.advance(10)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fail_while_travelling()
    assert not clock.running
    assert time.time() > REAL_TIME_FLOOR
    assert dt.datetime.now(dt.UTC).timestamp() > REAL_TIME_FLOOR
    assert type(dt.datetime.now()) is dt.datetime
    clock.stop()  # a second stop is harmless


def test_stop_restores_real_time_when_the_server_is_gone(engine: EngineName) -> None:
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    clock = CacheClock(client, engine=engine, start_at="2001-01-01").start()
    server.connected = False
    with pytest.raises(redis.ConnectionError):
        clock.stop()
    assert not clock.running
    assert time.time() > REAL_TIME_FLOOR


def test_clock_can_run_again_after_stop(
    fake_redis: fakeredis.FakeRedis, engine: EngineName
) -> None:
    clock = CacheClock(fake_redis, engine=engine, start_at=START)
    for _ in range(2):
        with clock:
            assert clock.now() == START


def test_threads_see_the_travelled_time(
    clock: CacheClock, redis_client: redis.Redis, engine: EngineName
) -> None:
    redis_client.set("k", 1, ex=10)
    clock.advance(10)
    seen: dict[str, Any] = {}

    def read() -> None:
        seen["time"] = time.time()
        seen["value"] = redis_client.get("k")
        seen["clock"] = clock.timestamp()

    worker = threading.Thread(target=read)
    worker.start()
    worker.join()
    assert seen["value"] is None
    assert seen["clock"] == START.timestamp() + 10
    if engine == "time-machine":
        assert seen["time"] == START.timestamp() + 10
    else:
        # freezegun answers real time to callers near a `threading` frame.
        assert seen["time"] > REAL_TIME_FLOOR


def test_not_running_is_a_clear_error(fake_redis: fakeredis.FakeRedis) -> None:
    clock = CacheClock(fake_redis)
    with pytest.raises(ClockNotRunningError, match="not running"):
        clock.advance(1)
    with pytest.raises(ClockNotRunningError):
        clock.now()
    with clock, pytest.raises(RuntimeError, match="already running"):
        clock.start()


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (True, TypeError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("next tuesday", ValueError),
        ([2024, 1, 1], TypeError),
    ],
)
def test_bad_instants_are_refused(bad: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        to_timestamp(bad)


@pytest.mark.parametrize(("bad", "error"), [(True, TypeError), (float("nan"), ValueError)])
def test_bad_durations_are_refused(
    fake_clock: CacheClock, bad: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        fake_clock.advance(bad)
    assert fake_clock.now() == START


def test_instants() -> None:
    assert to_timestamp(0) == 0.0
    assert to_timestamp("1970-01-01T00:00:10Z") == 10.0
    assert to_timestamp("1970-01-01T01:00:10+01:00") == 10.0
    assert to_timestamp(dt.date(1970, 1, 2)) == 86400.0


def test_engine_choice(fake_redis: fakeredis.FakeRedis) -> None:
    assert resolve_engine_name("auto") == "time-machine"
    assert CacheClock(fake_redis).engine == "time-machine"
    assert CacheClock(fake_redis, engine="freezegun").engine == "freezegun"
    with pytest.raises(ValueError, match="auto, time-machine, freezegun"):
        CacheClock(fake_redis, engine="arrow")


def test_header_names_the_engine_and_its_version() -> None:
    header = engine_header("auto")
    assert header.startswith("clock: time-machine 3.")
    assert "(auto; freezegun 1." in header
    assert engine_header("freezegun").startswith("clock: freezegun 1.")


def test_only_sync_redis_clients_are_accepted() -> None:
    with pytest.raises(TypeError, match=r"redis\.Redis"):
        CacheClock(object())  # type: ignore[arg-type]


def test_marker_settings() -> None:
    assert ClockSettings.from_marker((), {}) == ClockSettings()
    settings = ClockSettings.from_marker(("2024-03-01",), {"tick": True, "engine": "freezegun"})
    assert settings == ClockSettings(start_at="2024-03-01", tick=True, engine="freezegun")
    with pytest.raises(TypeError, match="unexpected"):
        ClockSettings.from_marker((), {"start": "2024"})
    with pytest.raises(TypeError, match="one start instant"):
        ClockSettings.from_marker(("2024-03-01", "2024-03-02"), {})
    with pytest.raises(TypeError, match="bool"):
        ClockSettings.from_marker((), {"tick": "yes"})
    with pytest.raises(ValueError, match="ISO 8601"):
        ClockSettings.from_marker(("soon",), {})
    with pytest.raises(ValueError, match="clock engine"):
        ClockSettings.from_marker((), {"engine": "arrow"})
