"""The invalidation map on an app written elsewhere: missing invalidations no test reads back."""

from __future__ import annotations

import json

import pytest

from .conftest import Backend
from .foreign_app import shop

__all__ = ["shop"]  # the fixture, used by every test here

pytestmark = pytest.mark.usefixtures("shop")

DELETE_ONLY = """
def test_delete_user(client):
    client.get("/lots/3")
    client.get("/lots/4")
    client.get("/users/2")
    assert client.delete("/users/2").status_code == 200
"""

MISSING_LINE = (
    "*missing invalidation: DELETE /users/<user_id> wrote spots, members; keys were filled from "
    "what it wrote and not invalidated: parking_lot:3 from spots (rows *lot_id=3), "
    "parking_lot:4 from spots (rows *lot_id=4) (its rows (member_id=2) do not say which "
    "cached rows changed) (pattern parking_lot:*; keys parking_lot:3, parking_lot:4)"
)


@pytest.mark.parametrize("reset", ["rollback", "truncate"])
def test_oracle_mode_fails_a_delete_that_forgets_the_lot(
    pytester: pytest.Pytester, backend: Backend, reset: str
) -> None:
    pytester.makepyfile(test_delete=DELETE_ONLY)
    # SQLite renders the free-spot filter as `spots.free = 1`, PostgreSQL as a bare column.
    result = pytester.runpytest("--cachesync-oracle", f"--cachesync-db-reset={reset}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([MISSING_LINE])


RENAME_LOT = """
def test_rename_lot(client):
    client.get("/lots/3")
    client.get("/lots/4")
    assert client.put("/lots/4", json={"name": "East"}).status_code == 200
"""


def test_rows_known_on_both_sides_name_the_one_key(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    pytester.makepyfile(test_lot=RENAME_LOT)
    result = pytester.runpytest("--cachesync-oracle")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*missing invalidation: PUT /lots/<lot_id> wrote lots; parking_lot:4 was filled from "
            "lots (rows id=4) and was not invalidated (pattern parking_lot:*; keys parking_lot:4)"
        ]
    )
    # Lot 3 was read by id 3: rows known on both sides, and disjoint.
    assert "keys parking_lot:3" not in result.stdout.str()


def test_the_fixed_app_passes_and_its_map_says_invalidated(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    pytester.makepyfile(test_delete="BUGS = False\n" + DELETE_ONLY)
    result = pytester.runpytest("--cachesync-oracle", "--cachesync-report=out/report.json")
    result.assert_outcomes(passed=1)
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    cells = {(c["site"], c["pattern"]): c for c in report["invalidation_map"]["cells"]}
    lot = cells["DELETE /users/<user_id>", "parking_lot:*"]
    assert lot["state"] == "invalidated"
    assert lot["keys"] == ["parking_lot:3"]
    assert cells["DELETE /users/<user_id>", "user:*"]["state"] == "invalidated"
    assert report["invalidation_map"]["summary"]["missing"] == 0
    assert report["invalidation_map"]["sources"]["parking_lot:*"] == ["lots", "spots"]


def test_without_oracle_mode_the_report_shows_the_missing_cell(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    pytester.makepyfile(test_delete=DELETE_ONLY)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*- invalidation map -*",
            "write sites: 2, key patterns: 2; cells invalidated: 1, missing: 1, exempt: 0;*",
            "write site*parking_lot:[*]  user:[*]",
            "DELETE /users/<user_id>*MISSING*invalidated",
            "missing: DELETE /users/<user_id> wrote spots, members; keys were filled from *",
        ]
    )


NO_FINDINGS = """
import json


def test_a_read_that_filled_nothing(client, cachesync):
    cachesync.redis.set("parking_lot:3", json.dumps({"id": 3, "name": "North", "free": 0}))
    assert client.get("/lots/3").status_code == 200  # a hit: the test filled it, not a read
    assert client.delete("/users/2").status_code == 200


def test_writes_rolled_back(client):
    client.get("/lots/3")
    assert client.delete("/users/2", query_string={"dry_run": 1}).json == {"deleted": None}
"""


def test_no_finding_without_a_fill_or_a_commit(pytester: pytest.Pytester, backend: Backend) -> None:
    pytester.makepyfile(test_quiet=NO_FINDINGS)
    result = pytester.runpytest("--cachesync-oracle", "--cachesync-report=report.json")
    result.assert_outcomes(passed=2)
    run_map = json.loads((pytester.path / "report.json").read_text())["invalidation_map"]
    assert run_map["summary"]["missing"] == 0, run_map


def test_state_keys_are_never_findings(pytester: pytest.Pytester, backend: Backend) -> None:
    pytester.makepyfile(test_delete=DELETE_ONLY)
    result = pytester.runpytest("--cachesync-oracle", "-o", "cachesync_cache_patterns=user:*")
    result.assert_outcomes(passed=1)


def test_the_recording_can_be_turned_off(pytester: pytest.Pytester, backend: Backend) -> None:
    pytester.makepyfile(test_delete=DELETE_ONLY)
    result = pytester.runpytest("--cachesync-oracle", "-o", "cachesync_invalidation_map=false")
    result.assert_outcomes(passed=1)
    assert "invalidation map" not in result.stdout.str().split("cachesync staleness")[-1]


RENAME = """
def test_rename(client):
    client.get("/users/2")
    assert client.put("/users/2", json={"name": "Bea"}).status_code == 200
"""


@pytest.mark.parametrize("reset", ["rollback", "truncate"])
def test_an_invalidation_before_commit_fails_without_a_reader(
    pytester: pytest.Pytester, backend: Backend, reset: str
) -> None:
    pytester.makepyfile(test_rename=RENAME)
    result = pytester.runpytest("--cachesync-oracle", f"--cachesync-db-reset={reset}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*invalidated before commit: PUT /users/<user_id> invalidated user:2 before COMMIT of "
            "the write to members*",
        ]
    )


def test_an_invalidation_after_commit_passes(pytester: pytest.Pytester, backend: Backend) -> None:
    pytester.makepyfile(test_rename="BUGS = False\n" + RENAME)
    result = pytester.runpytest("--cachesync-oracle")
    result.assert_outcomes(passed=1)
    assert "before COMMIT" not in result.stdout.str()


def test_a_marker_exempts_a_site_and_the_report_says_so(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    marked = DELETE_ONLY.replace(
        "def test_delete_user",
        "import pytest\n\n\n@pytest.mark.cachesync(invalidation_exempt='DELETE /users/* -> "
        "parking_lot:*')\ndef test_delete_user",
    )
    pytester.makepyfile(test_delete=marked)
    result = pytester.runpytest("--cachesync-oracle")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "DELETE /users/<user_id>*exempt*invalidated",
            "exemption: DELETE /users/[*] -> parking_lot:[*] (marker)",
        ]
    )


def test_an_ini_list_exempts_and_unused_entries_are_shown(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    pytester.makepyfile(test_delete=DELETE_ONLY)
    ini = (pytester.path / "tox.ini").read_text()
    (pytester.path / "tox.ini").write_text(
        ini + "\ncachesync_invalidation_exempt =\n    DELETE /users/<user_id> -> parking_lot:*\n"
        "    POST /reservations -> user:*\n"
    )
    result = pytester.runpytest("--cachesync-oracle")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*invalidation-exempt=DELETE /users/<user_id> -> parking_lot:[*]; POST /reservations "
            "-> user:[*] (ini)*",
            "exemption: DELETE /users/<user_id> -> parking_lot:[*] (ini)",
            "exemption: POST /reservations -> user:[*] (ini), matched nothing",
        ]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "cachesync_invalidation_exempt=parking_lot:*"], "*is not 'METHOD /rule -> key*"),
        (["-o", "cachesync_invalidation_exempt=DELETE -> user:*"], "*is not 'METHOD /rule -> key*"),
    ],
)
def test_a_bad_exemption_is_a_usage_error(
    pytester: pytest.Pytester, backend: Backend, args: list[str], message: str
) -> None:
    pytester.makepyfile(test_delete=DELETE_ONLY)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_bad_marker_exemption_fails_the_test(pytester: pytest.Pytester, backend: Backend) -> None:
    pytester.makepyfile(
        test_delete="import pytest\n\n\n@pytest.mark.cachesync(invalidation_exempt=3)\n"
        + DELETE_ONLY.strip()
    )
    result = pytester.runpytest("--cachesync-oracle")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*invalidation_exempt=...) must be a string or a list*"])


def test_the_map_is_merged_across_xdist_workers(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    pytester.makepyfile(test_delete=DELETE_ONLY, test_rename="BUGS = False\n" + RENAME)
    result = pytester.runpytest("-n", "2", "--cachesync-report=report.json")
    result.assert_outcomes(passed=2)
    run_map = json.loads((pytester.path / "report.json").read_text())["invalidation_map"]
    sites = set(run_map["sites"])
    assert {"DELETE /users/<user_id>", "PUT /users/<user_id>"} <= sites, sites
    tests = {e["test"] for c in run_map["cells"] for e in c["evidence"]}
    assert tests == {"test_delete.py::test_delete_user", "test_rename.py::test_rename"}
    assert run_map["summary"]["missing"] == 1


def test_a_staleness_budget_exempts_nothing(pytester: pytest.Pytester, backend: Backend) -> None:
    budget = DELETE_ONLY.replace(
        "def test_delete_user",
        "import pytest\n\n\n@pytest.mark.cachesync(staleness=3600)\ndef test_delete_user",
    )
    pytester.makepyfile(test_delete=budget)
    result = pytester.runpytest("--cachesync-oracle")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([MISSING_LINE])


INSIDE_THE_TESTS_TRANSACTION = """
import shop


def test_delete_user(client, cachesync):
    client.get("/lots/3")
    # The test's Session opens its transaction (a SAVEPOINT in rollback mode) before the request.
    assert cachesync.db.get(shop.User, 2) is not None
    assert client.delete("/users/2").status_code == 200
"""


@pytest.mark.parametrize("reset", ["rollback", "truncate"])
def test_a_request_inside_the_tests_open_transaction_is_still_mapped(
    pytester: pytest.Pytester, backend: Backend, reset: str
) -> None:
    pytester.makepyfile(test_delete=INSIDE_THE_TESTS_TRANSACTION)
    result = pytester.runpytest("--cachesync-oracle", f"--cachesync-db-reset={reset}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*missing invalidation: DELETE /users/<user_id> wrote spots*"])


TEST_WRITES_AROUND_A_REQUEST = """
import shop

BUGS = False


def test_rename_around(client, cachesync):
    client.get("/users/2")
    cachesync.db.add(shop.User(id=5, name="Cy"))  # the table user:2 was filled from
    cachesync.db.flush()  # the test's own write, not committed yet
    assert client.put("/users/2", json={"name": "Bea"}).status_code == 200
    cachesync.db.commit()
"""


def test_the_tests_own_open_writes_are_not_the_requests(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    pytester.makepyfile(test_around=TEST_WRITES_AROUND_A_REQUEST)
    # Rollback mode: one connection, so the app can write while the test's transaction is open
    # (SQLite would lock a second one out).
    result = pytester.runpytest("--cachesync-oracle")
    result.assert_outcomes(passed=1)
    assert "before COMMIT" not in result.stdout.str()
