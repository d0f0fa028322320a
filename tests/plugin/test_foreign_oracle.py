"""The staleness helpers with the oracle client, on an app written elsewhere."""

from __future__ import annotations

import pytest

from .foreign import RESET_MODES, lots, oracle_ini  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("lots")


@pytest.mark.parametrize("mode", RESET_MODES)
def test_bypass_helpers_compose_with_the_oracle_client(
    pytester: pytest.Pytester, mode: str
) -> None:
    oracle_ini(pytester)
    pytester.makepyfile(
        """
        import pytest

        def read(client):
            return lambda: client.get("/lots/1").get_json()

        def test_assert_fresh(cachesync, cachesync_client):
            assert cachesync.assert_fresh(read(cachesync_client))["free"] == 1

        # The delete's missing invalidation is planted: this test is about the TTL ending it.
        @pytest.mark.cachesync(invalidation_exempt="DELETE /users/<user_id> -> parking_lot:*")
        def test_assert_fresh_within(cachesync, cachesync_client):
            cachesync_client.get("/lots/1")
            cachesync_client.delete("/users/2")
            cachesync.assert_fresh_within(read(cachesync_client), 10.5)

        def test_assert_invalidated_reads(cachesync, cachesync_client):
            cachesync_client.get("/lots/1")
            with cachesync.assert_invalidated(reads=[read(cachesync_client)]):
                cachesync_client.post("/lots/1/spots/2/take", json={"user_id": 2})

        def test_race(cachesync, cachesync_client):
            cachesync.race.assert_no_race(
                "parking_lot:1",
                trigger=read(cachesync_client),
                during=lambda: cachesync_client.put("/lots/1", json={"name": "South"}),
            )

        def test_stale_read_names_the_write(cachesync, cachesync_client):
            cachesync_client.get("/lots/1")
            cachesync_client.delete("/users/2")
            cachesync_client.get("/lots/1")
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--cachesync-db-reset", mode)
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.no_fnmatch_line("*bypasses do not nest*")
    result.stdout.fnmatch_lines(
        [
            "*test_race*",
            "*cache-fill race on parking_lot:1*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*test_stale_read_names_the_write*",
            "*GET /lots/1: stale for * (allowed: 0 s)*",
            "*write requests since the value was filled:*",
            "*DELETE /users/2 -> 204 (invalidated: none)*",
        ]
    )
