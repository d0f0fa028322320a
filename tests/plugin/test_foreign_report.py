"""What the report and the teardown say about an app written elsewhere."""

from __future__ import annotations

import json

import pytest

from .foreign import lots, oracle_ini  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("lots")

UNROUTED = """
import fakeredis
import pytest
import lotsapp


@pytest.fixture
def app(app, monkeypatch):
    # The app keeps a Redis client of its own: the test's Redis never sees its commands.
    monkeypatch.setattr(lotsapp, "cache", fakeredis.FakeRedis())
    return app


def test_reads(cachesync_client):
    for _ in range(3):
        assert cachesync_client.get("/lots/1").status_code == 200
"""


def test_oracle_checks_without_cache_traffic_fail_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    oracle_ini(pytester)
    pytester.makepyfile(test_unrouted=UNROUTED)
    result = pytester.runpytest("-p", "no:randomly", "--cachesync-report", "report.json")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "reads checked: 3, fresh: 3*",
            "ERROR: no cache traffic reached the test Redis; is the app's client routed?*",
        ]
    )
    summary = json.loads((pytester.path / "report.json").read_text())["summary"]
    assert summary["no_cache_traffic"] is True
    assert summary["error"].startswith("no cache traffic reached the test Redis")
    # The CI job summary says it too, not only the terminal.
    assert "> **Error:** no cache traffic reached the test Redis" in step_summary.read_text()


def test_routed_client_passes(pytester: pytest.Pytester) -> None:
    oracle_ini(pytester)
    pytester.makepyfile(
        """
        def test_reads(cachesync_client):
            for _ in range(3):
                cachesync_client.get("/lots/1")
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*no cache traffic*")


def test_a_key_written_outside_the_prefix_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_unprefixed(cachesync, client):
            assert cachesync.key_prefix
            cachesync.spy  # the spy watches the test's client from here on
            client.post("/lots", json={"name": "East"})  # INCR parking_lots_created
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--cachesync-redis-isolation", "prefix")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*keys written outside the test's key prefix*: parking_lots_created.*"]
    )


def test_worst_staleness_is_filled_on_a_frozen_clock(pytester: pytest.Pytester) -> None:
    oracle_ini(pytester)
    pytester.makepyfile(
        """
        def test_stale(cachesync_clock, cachesync_client):
            cachesync_client.get("/lots/1")
            cachesync_client.delete("/users/2")
            cachesync_client.get("/lots/1")
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["parking_lot:[*] * 1 * 0 s * 0"])
