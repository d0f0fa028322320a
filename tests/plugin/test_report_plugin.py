"""The race injector through ``cachesync.race``, and the cache report: terminal and JSON."""

from __future__ import annotations

import json

import pytest

from .conftest import Backend
from .toy import toy  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("backend", "toy")


def test_race_injector_finds_the_cache_aside_race(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_race="""
        def test_fill_races_with_update(cachesync, client):
            cachesync.race.assert_no_race(
                "lot:*",
                trigger=lambda: client.get("/lots/1"),
                during=lambda: client.put("/lots/1", json={"price": 9}),
            )

        def test_injected_callable_must_write(cachesync, client):
            cachesync.race.assert_no_race(
                "lot:*",
                trigger=lambda: client.get("/lots/1"),
                during=lambda: client.get("/lots/2") if False else None,
            )
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*cache-fill race on lot:1: the fill (SET) paused after its database read wrote a "
            "value that is not the database's any more",
            '*cached: {"id": 1, "name": "North", "price": 2}',
            '*fresh:  {"id": 1, "name": "North", "price": 9}',
        ]
    )
    result.stdout.fnmatch_lines(["*the callable injected into the fill of lot:1 committed no*"])


SPIED = """
import json, os
import pytest


@pytest.mark.parametrize("i", range({n}))
def test_reads(cachesync_client, i):
    for _ in range(3):
        assert cachesync_client.get("/lots/1").status_code == 200
    cachesync_client.put("/lots/1", json={{"price": 9}})
    assert cachesync_client.get("/lots/1").get_json()["price"] == 9
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(f"ran-{{worker}}-{{i}}", "w"):
        pass


def test_without_the_spy():
    pass
"""


def _pattern(report: dict[str, object]) -> dict[str, object]:
    patterns = report["patterns"]
    assert isinstance(patterns, dict)
    figures = patterns["lot:*"]
    assert isinstance(figures, dict)
    return figures


def test_report_section_and_json(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_spied=SPIED.format(n=2))
    result = pytester.runpytest(
        "-p", "no:randomly", "--cachesync-oracle", "--cachesync-report", "out/cachesync.json"
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*= cachesync =*",
            "pattern *hits *misses *hit ratio *fills *invalidations *stale reads*",
            "lot:[*] *4 *4 *50% *4 *2 *0 *- *0",
            "reads checked: 8, fresh: 8 (all fresh, >= 0.9 nines)",
        ]
    )
    report = json.loads((pytester.path / "out" / "cachesync.json").read_text())
    assert report["summary"]["reads_checked"] == 8
    assert report["summary"]["violations"] == 0
    lot = _pattern(report)
    # Per test: the first GET misses and fills, two hit, the PUT invalidates, the last misses.
    assert (lot["hits"], lot["misses"], lot["fills"], lot["invalidations"]) == (4, 4, 4, 2)
    assert [t["nodeid"] for t in report["tests"]] == [
        "test_spied.py::test_reads[0]",
        "test_spied.py::test_reads[1]",
    ]


def test_no_section_when_nothing_was_observed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(cachesync):\n    cachesync.redis.set('lot:1', 1)\n")
    result = pytester.runpytest("--cachesync-report", "cachesync.json")
    result.assert_outcomes(passed=1)
    assert "= cachesync =" not in result.stdout.str()
    report = json.loads((pytester.path / "cachesync.json").read_text())
    assert report["tests"] == []
    assert report["summary"]["reads_checked"] == 0


def test_report_merges_the_workers_figures(pytester: pytest.Pytester, backend: Backend) -> None:
    n = 12
    pytester.makepyfile(test_spied=SPIED.format(n=n))
    result = pytester.runpytest("-n", "2", "--cachesync-oracle", "--cachesync-report", "r.json")
    result.assert_outcomes(passed=n + 1)
    workers = {path.name.split("-")[1] for path in pytester.path.glob("ran-*")}
    assert workers == {"gw0", "gw1"}
    report = json.loads((pytester.path / "r.json").read_text())
    assert len(report["tests"]) == n
    lot = _pattern(report)
    for name in ("hits", "misses", "fills", "invalidations"):
        assert lot[name] == sum(t["patterns"]["lot:*"][name] for t in report["tests"])
    assert (lot["hits"], lot["misses"], lot["invalidations"]) == (2 * n, 2 * n, n)
    assert report["summary"]["reads_checked"] == 4 * n
    result.stdout.fnmatch_lines([f"reads checked: {4 * n}, fresh: {4 * n} *"])
