"""The race injector on an app written elsewhere, in both SQL reset modes."""

from __future__ import annotations

import pytest

from .foreign import RESET_MODES, lots  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("lots")


@pytest.mark.parametrize("mode", RESET_MODES)
def test_an_injected_commit_survives_the_paused_request(
    pytester: pytest.Pytester, mode: str
) -> None:
    pytester.makepyfile(
        """
        def test_rename_during_fill(cachesync, client):
            cachesync.race.assert_no_race(
                "parking_lot:1",
                trigger=lambda: client.get("/lots/1"),
                during=lambda: client.put("/lots/1", json={"name": "South"}),
            )

        def test_the_commit_is_kept(cachesync, client):
            outcome = cachesync.race.run(
                "parking_lot:1",
                trigger=lambda: client.get("/lots/1"),
                during=lambda: client.put("/lots/1", json={"name": "South"}),
            )
            assert outcome.database_writes == 1
            assert outcome.describe().startswith("cache-fill race on parking_lot:1")
            cachesync.redis.delete("parking_lot:1")
            assert client.get("/lots/1").get_json()["name"] == "South"
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--cachesync-db-reset", mode)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*cache-fill race on parking_lot:1: the fill (SETEX) paused after its database read*",
            '*cached: {"id": 1, "name": "North", "spots": 2, "free": 1}*',
            '*fresh:  {"id": 1, "name": "South", "spots": 2, "free": 1}*',
        ]
    )


def test_a_consistent_outcome_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_other_lot(cachesync, client):
            east = client.post("/lots", json={"name": "East"}).get_json()["id"]
            outcome = cachesync.race.run(
                "parking_lot:1",
                trigger=lambda: client.get("/lots/1"),
                during=lambda: client.put(f"/lots/{east}", json={"name": "West"}),
            )
            assert outcome.consistent
            assert outcome.describe() == (
                "no cache-fill race on parking_lot:1: the fill (SETEX), paused after its "
                "database read while a write ran, cached the fresh value\\n"
                '  cached: {"id": 1, "name": "North", "spots": 2, "free": 1}'
            )
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


def test_a_rollback_around_another_commit_names_truncate_mode(pytester: pytest.Pytester) -> None:
    # The card request writes (a view it never commits) before its fill; the rename commits
    # inside it. One connection cannot keep that commit through the card's rollback.
    pytester.makepyfile(
        """
        def test_card(cachesync, client):
            cachesync.race.run(
                "parking_lot:1:card",
                trigger=lambda: client.get("/lots/1/card"),
                during=lambda: client.put("/lots/1", json={"name": "South"}),
            )
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--cachesync-db-reset", "rollback")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*a committed write was undone*",
            "*@pytest.mark.cachesync(db_reset='truncate')*",
        ]
    )
