"""Isolation under pytest-xdist: every worker has its own keyspace and database."""

from __future__ import annotations

import json

import pytest

from .conftest import Backend

pytestmark = pytest.mark.usefixtures("models")

GENERATED = """
import json, os
import pytest
import sqlalchemy as sa
from models import items, tags, count


@pytest.mark.parametrize("i", range({n}))
def test_isolated(cachesync, i):
    assert cachesync.keys() == []
    assert count(cachesync.db) == 0 and count(cachesync.db, tags) == 0
    for name in ("user:1", "users:all", f"lot:{{i}}"):
        cachesync.redis.set(cachesync.key(name), i)
    cachesync.db.execute(items.insert().values(id=1, name=str(i)))
    cachesync.db.execute(tags.insert().values(item_id=1))
    cachesync.db.commit()
    assert len(cachesync.keys()) == 3
    assert count(cachesync.db) == 1
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    conn = cachesync.redis.connection_pool.connection_kwargs
    with open(f"where-{{worker}}.json", "w") as out:
        json.dump([str(cachesync.engine.url), conn.get("db"), cachesync.key_prefix], out)
"""


def _where(pytester: pytest.Pytester) -> dict[str, list[object]]:
    return {
        path.stem.removeprefix("where-"): json.loads(path.read_text())
        for path in pytester.path.glob("where-*.json")
    }


@pytest.mark.parametrize("reset", ["rollback", "truncate"])
def test_500_tests_under_two_workers_fail_none(
    pytester: pytest.Pytester, backend: Backend, reset: str
) -> None:
    pytester.makepyfile(test_generated=GENERATED.format(n=500))
    result = pytester.runpytest("-n", "2", "-p", "no:randomly", f"--cachesync-db-reset={reset}")
    result.assert_outcomes(passed=500)
    where = _where(pytester)
    assert sorted(where) == ["gw0", "gw1"]
    assert where["gw0"][0] != where["gw1"][0], "workers share a database"
    if backend.real:
        assert where["gw0"][1:] != where["gw1"][1:], "workers share a keyspace"


def test_prefix_isolation_under_two_workers(pytester: pytest.Pytester, backend: Backend) -> None:
    pytester.makepyfile(test_generated=GENERATED.format(n=60))
    result = pytester.runpytest("-n", "2", "--cachesync-redis-isolation=prefix")
    result.assert_outcomes(passed=60)
    where = _where(pytester)
    assert {w[2] for w in where.values()} == {"cachesync:gw0:", "cachesync:gw1:"}


def test_without_xdist(pytester: pytest.Pytester, backend: Backend) -> None:
    pytester.makepyfile(test_generated=GENERATED.format(n=50))
    result = pytester.runpytest("-p", "no:xdist")
    result.assert_outcomes(passed=50)
    assert list(_where(pytester)) == ["main"]
