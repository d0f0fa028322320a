"""An installed plugin costs a project that does not use it nothing: no imports, no header."""

from __future__ import annotations

import os

import pytest

HEAVY = ("redis", "sqlalchemy", "fakeredis", "flask", "lupa", "werkzeug")

PROBE = """
import sys

HEAVY = {heavy!r}


def test_trivial():
    assert 1 + 1 == 2


def test_no_heavy_import():
    loaded = sorted(name for name in sys.modules if name.partition(".")[0] in HEAVY)
    assert loaded == []
"""


def _probe(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(PROBE.format(heavy=HEAVY))


@pytest.fixture
def unconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CACHESYNC_"):
            monkeypatch.delenv(name)


def test_unused_plugin_imports_nothing_heavy_and_prints_no_header(
    pytester: pytest.Pytester, unconfigured: None
) -> None:
    _probe(pytester)
    # A process of its own: this one has long imported every store library.
    result = pytester.runpytest_subprocess("-p", "no:hypothesispytest")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("cachesync*")


def test_unused_plugin_costs_xdist_workers_nothing(
    pytester: pytest.Pytester, unconfigured: None
) -> None:
    _probe(pytester)
    result = pytester.runpytest_subprocess("-p", "no:hypothesispytest", "-n", "2")
    result.assert_outcomes(passed=2)


def test_a_configured_plugin_shows_its_header(
    pytester: pytest.Pytester, unconfigured: None
) -> None:
    pytester.makeini("[pytest]\ncachesync_cache_patterns = users:*\n")
    pytester.makepyfile("def test_trivial():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:hypothesispytest")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["cachesync: redis=fakeredis*", "cachesync staleness: *users:**"])


def test_using_a_fixture_loads_the_stores(pytester: pytest.Pytester, unconfigured: None) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(
        """
        import sys

        def test_redis(cachesync_redis):
            cachesync_redis.set("k", "v")
            assert cachesync_redis.get("k") == b"v"
            assert "redis" in sys.modules
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:hypothesispytest")
    result.assert_outcomes(passed=1)
