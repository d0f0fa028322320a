"""The cachesync_clock fixture, its marker and the clock-engine option, through pytester runs."""

from __future__ import annotations

import pytest

from .conftest import Backend

EXPIRY = """
import datetime as dt

import fakeredis
import pytest


@pytest.mark.parametrize("i", range({n}))
def test_ten_second_ttl(cachesync, cachesync_clock, i):
    assert cachesync.clock is cachesync_clock
    assert cachesync_clock.server_follows_python_clock is isinstance(
        cachesync.redis, fakeredis.FakeRedis
    )
    cachesync.redis.set(cachesync.key("user:1"), "alice", ex=10)
    cachesync.redis.set(cachesync.key("user:2"), "bob", ex=10)
    cachesync.redis.set(cachesync.key("state"), "kept")
    cachesync_clock.advance(9.9)
    assert cachesync.redis.get(cachesync.key("user:1")) == b"alice"
    cachesync_clock.advance(dt.timedelta(seconds=0.1))
    assert cachesync.redis.get(cachesync.key("user:1")) is None
    assert cachesync.redis.get(cachesync.key("user:2")) is None
    assert cachesync.redis.get(cachesync.key("state")) == b"kept"
"""


def test_ttl_expires_after_advance_on_the_backend(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    pytester.makepyfile(test_expiry=EXPIRY.format(n=2))
    pytester.runpytest("-p", "no:xdist").assert_outcomes(passed=2)


def test_ttl_expires_after_advance_under_two_workers(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    pytester.makepyfile(test_expiry=EXPIRY.format(n=20))
    pytester.runpytest("-n", "2").assert_outcomes(passed=20)


def test_one_clock_per_test_and_real_time_after(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    pytester.makepyfile(
        """
        import datetime as dt
        import time

        START = time.time()

        def test_lazy_clock(cachesync):
            clock = cachesync.clock
            assert cachesync.clock is clock and clock.running
            clock.advance(3600)
            assert time.time() > START + 3000

        def test_real_time_is_back():
            assert abs(time.time() - START) < 600
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_marker_starts_the_clock_at_an_instant(pytester: pytest.Pytester, backend: Backend) -> None:
    pytester.makepyfile(
        """
        import datetime as dt
        import pytest

        @pytest.mark.cachesync_clock("2024-03-01T08:00:00Z")
        def test_frozen_at(cachesync_clock):
            start = dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.UTC)
            assert cachesync_clock.now() == start
            assert dt.datetime.now(dt.UTC) == start
            assert cachesync_clock.advance(dt.timedelta(hours=3)) == start + dt.timedelta(hours=3)
            assert dt.date.today() == dt.date(2024, 3, 1)

        @pytest.mark.cachesync_clock(dt.date(2024, 12, 31), engine="freezegun")
        def test_midnight_with_freezegun(cachesync_clock):
            assert cachesync_clock.engine == "freezegun"
            cachesync_clock.advance(24 * 3600)
            assert dt.date.today() == dt.date(2025, 1, 1)

        @pytest.mark.cachesync_clock("yesterday")
        def test_bad_instant(cachesync_clock):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*test_bad_instant*@pytest.mark.cachesync_clock: cannot read 'yesterday' as an instant*"]
    )


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.cachesync_clock(start_at=None, *, tick=False*"])


ENGINE_PROBE = """
def test_engine(cachesync_clock):
    assert cachesync_clock.engine == "{engine}"
"""


@pytest.mark.parametrize(
    ("how", "engine", "source"),
    [
        ("cli", "freezegun", "cli"),
        ("env", "freezegun", "env"),
        ("ini", "freezegun", "ini"),
        ("none", "time-machine", "default"),
    ],
)
def test_engine_option_and_header(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    default_backend: None,
    how: str,
    engine: str,
    source: str,
) -> None:
    args: list[str] = []
    if how == "cli":
        args.append(f"--cachesync-clock-engine={engine}")
    elif how == "env":
        monkeypatch.setenv("CACHESYNC_CLOCK_ENGINE", engine)
    elif how == "ini":
        pytester.makeini(f"[pytest]\ncachesync_clock_engine = {engine}\n")
    pytester.makepyfile(ENGINE_PROBE.format(engine=engine))
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    if how == "none":
        # Nothing configured: the header stays pytest's own.
        result.stdout.no_fnmatch_line("cachesync*")
    else:
        result.stdout.fnmatch_lines([f"cachesync clock: {engine} *clock-engine from {source}?"])


def test_bad_engine_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, default_backend: None
) -> None:
    monkeypatch.setenv("CACHESYNC_CLOCK_ENGINE", "sundial")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*CACHESYNC_CLOCK_ENGINE*'sundial' is not one of auto*"])
