"""assert_invalidated on an app written elsewhere: a DEL is not enough, the end state counts."""

from __future__ import annotations

import pytest

from .foreign import RESET_MODES, lots  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("lots")

BLOCKS = """
import json

import pytest
from pytest_cachesync.staleness.race import run_elsewhere


def reader_after_each_delete(cachesync, client):
    # A concurrent GET that runs right after the rename's DEL, before its COMMIT.
    def observe(effect):
        if effect.effect == "invalidation" and not effect.bypassed:
            run_elsewhere(lambda: client.get("/lots/1"))

    return cachesync.spy.add_observer(observe)


def test_delete_before_commit_with_a_reader_between(cachesync, client):
    client.get("/lots/1")
    reader_after_each_delete(cachesync, client)
    with cachesync.assert_invalidated("parking_lot:1"):
        client.put("/lots/1", json={"name": "South"})


def test_the_same_with_reads(cachesync, client):
    client.get("/lots/1")
    reader_after_each_delete(cachesync, client)
    with cachesync.assert_invalidated(reads=[lambda: client.get("/lots/1")]):
        client.put("/lots/1", json={"name": "South"})


def test_commit_then_delete_then_read_is_fresh(cachesync, client):
    client.get("/lots/1")
    with cachesync.assert_invalidated("parking_lot:1"):
        client.post("/lots/1/spots/2/take", json={"user_id": 2})
        assert client.get("/lots/1").get_json()["free"] == 0


def test_a_stale_value_written_back(cachesync, client):
    old = client.get("/lots/1").get_data()
    with cachesync.assert_invalidated("parking_lot:1"):
        client.post("/lots/1/spots/2/take", json={"user_id": 2})
        cachesync.redis.setex("parking_lot:1", 10, old)


def test_forgotten_key(cachesync, client):
    client.get("/lots/1")
    with cachesync.assert_invalidated("parking_lot:1"):
        client.delete("/users/2")
"""


@pytest.mark.parametrize("mode", RESET_MODES)
def test_the_block_form_judges_what_is_cached_at_its_end(
    pytester: pytest.Pytester, mode: str
) -> None:
    pytester.makepyfile(test_blocks=BLOCKS)
    result = pytester.runpytest("-p", "no:randomly", "--cachesync-db-reset", mode)
    result.assert_outcomes(passed=1, failed=4)
    result.stdout.fnmatch_lines(
        [
            "*_ test_delete_before_commit_with_a_reader_between _*",
            "*parking_lot:1: invalidated, then re-filled (SETEX) from a read that began before a"
            " write COMMIT of the block; the cached value may be stale:",
            '*cached: {"id": 1, "name": "North", "spots": 2, "free": 1}',
            "*_ test_the_same_with_reads _*",
            "*parking_lot:1: still cached with a stale value",
            '*-  "name": "North",',
            '*+  "name": "South",',
            "*_ test_a_stale_value_written_back _*",
            "*parking_lot:1: invalidated, then re-filled (SETEX) with no cache miss before it*",
            "*_ test_forgotten_key _*",
            "*parking_lot:1: not invalidated",
        ]
    )
    # The assertion's own frames are hidden: the traceback ends in the test.
    result.stdout.no_fnmatch_line("*pytest_cachesync/*.py:[0-9]*")
