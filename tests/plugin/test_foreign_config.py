"""Configuration a user steers: merged markers, the off switch, exact patterns."""

from __future__ import annotations

import pytest

from .foreign import lots, oracle_ini  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("lots")

STRICT_OR_NOT = """
import pytest
from pytest_cachesync.staleness.oracle import OracleClient

pytestmark = pytest.mark.cachesync(oracle=False)


@pytest.mark.cachesync(ttl_bounds="parking_lot:*=10")
def test_module_turns_the_oracle_off(cachesync_client):
    assert not isinstance(cachesync_client, OracleClient)


@pytest.mark.cachesync(db_reset="truncate")
class TestClass:
    @pytest.mark.cachesync(staleness=5)
    def test_three_levels(self, cachesync, cachesync_client):
        assert cachesync.db_reset == "truncate"
        assert not isinstance(cachesync_client, OracleClient)

    @pytest.mark.cachesync(oracle=True)
    def test_closest_wins_per_key(self, cachesync, cachesync_client):
        assert cachesync.db_reset == "truncate"
        assert isinstance(cachesync_client, OracleClient)
"""


def test_markers_merge_key_by_key(pytester: pytest.Pytester) -> None:
    oracle_ini(pytester)
    pytester.makepyfile(STRICT_OR_NOT)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


def test_the_command_line_turns_an_ini_true_off(pytester: pytest.Pytester) -> None:
    oracle_ini(pytester)
    pytester.makepyfile(
        """
        from pytest_cachesync.staleness.oracle import OracleClient

        def test_oracle_off(cachesync_client):
            assert not isinstance(cachesync_client, OracleClient)
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--no-cachesync-oracle")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*oracle=off (cli)*"])
    pytester.runpytest("-p", "no:randomly").assert_outcomes(failed=1)


def test_exact_patterns_leave_counters_alone(pytester: pytest.Pytester) -> None:
    # lotsapp counts created lots in parking_lots_created, with no TTL: state, not cache.
    pytester.makepyfile(
        """
        def test_counter_is_state(cachesync, client):
            client.post("/lots", json={"name": "East"})
            client.get("/lots/1")
            cachesync.check_ttl_policy()
            assert "parking_lots_created" not in cachesync.spy.keys
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)
    # The loose pattern the docs used to show takes the counter for a cache key.
    result = pytester.runpytest("-p", "no:randomly", "--cachesync-cache-patterns", "parking_lot*")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*parking_lots_created: no TTL*"])
