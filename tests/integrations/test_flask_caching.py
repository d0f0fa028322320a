"""Flask-Caching routed to the test's Redis: ``cachesync.route_flask_caching`` and the option."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("flask_caching")

pytestmark = pytest.mark.usefixtures("backend")

# The production Redis of the app is unreachable: a command that is not routed fails.
CACHEDAPP = """
import flask
import sqlalchemy as sa
from flask_caching import Cache
from sqlalchemy.orm import Session

cache = Cache()
metadata = sa.MetaData()
lots = sa.Table(
    "lots", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("price", sa.Integer, nullable=False),
)


def create_app(bind, cache_type="RedisCache"):
    app = flask.Flask("cachedapp")
    app.config.update(
        CACHE_TYPE=cache_type,
        CACHE_REDIS_URL="redis://production-redis.invalid:6379/0",
        CACHE_REDIS_SENTINELS=[("production-sentinel.invalid", 26379)],
        CACHE_REDIS_SENTINEL_MASTER="production",
        CACHE_DEFAULT_TIMEOUT=60,
    )
    cache.init_app(app)

    def session():
        return Session(bind=bind, join_transaction_mode="create_savepoint")

    @cache.memoize()
    def get_lot(lot_id):
        with session() as s:
            return s.execute(sa.select(lots.c.price).where(lots.c.id == lot_id)).scalar_one()

    @app.get("/lots/<int:lot_id>")
    def lot(lot_id):
        return {"id": lot_id, "price": get_lot(lot_id)}

    @app.get("/lots")
    @cache.cached()
    def all_lots():
        with session() as s:
            prices = s.execute(sa.select(lots.c.price).order_by(lots.c.id)).scalars()
            return {"prices": list(prices)}

    @app.put("/lots/<int:lot_id>")
    def put_lot(lot_id):
        with session() as s:
            price = flask.request.json["price"]
            s.execute(lots.update().where(lots.c.id == lot_id).values(price=price))
            s.commit()
        if not flask.request.args.get("forget_lot"):
            cache.delete_memoized(get_lot, lot_id)
        if not flask.request.args.get("forget_list"):
            cache.delete("view//lots")
        return "", 204

    return app
"""

CONFTEST = """
import pytest
import sqlalchemy as sa
import cachedapp


@pytest.fixture(scope="session")
def cachesync_metadata():
    return cachedapp.metadata


@pytest.fixture
def app(cachesync):
    with cachesync.engine.begin() as conn:
        conn.execute(cachedapp.lots.delete())
    cachesync.db.execute(cachedapp.lots.insert(), [{"id": 1, "price": 2}, {"id": 2, "price": 3}])
    cachesync.db.commit()
    app = cachedapp.create_app(cachesync.bind)
    {route}
    return app
"""

TESTS = """
def test_memoized_read_after_write(cachesync_client):
    assert cachesync_client.get("/lots/1").get_json()["price"] == 2
    assert cachesync_client.get("/lots/1").get_json()["price"] == 2
    cachesync_client.put("/lots/1{lot_query}", json={{"price": 9}})
    assert cachesync_client.get("/lots/1").status_code == 200


def test_cached_view_after_write(cachesync_client):
    assert cachesync_client.get("/lots").get_json() == {{"prices": [2, 3]}}
    cachesync_client.put("/lots/2{list_query}", json={{"price": 7}})
    assert cachesync_client.get("/lots").status_code == 200


def test_keys_are_in_the_test_keyspace(cachesync, cachesync_client, cachesync_spy):
    cachesync_client.get("/lots")
    cachesync_client.get("/lots/1")
    keys = sorted(k.decode() for k in cachesync.keys())
    assert cachesync.key("flask_cache_view//lots") in keys
    assert any(k.startswith(cachesync.key("flask_cache_")) and "get_lot" in k for k in keys)
    cachesync_spy.assert_filled("view//lots")
"""

INI = """
[pytest]
cachesync_cache_patterns = view/* flask_cache_*
cachesync_oracle = true
"""


def _write(
    pytester: pytest.Pytester, route: str, *, lot_query: str = "", list_query: str = ""
) -> None:
    pytester.makepyfile(cachedapp=CACHEDAPP)
    pytester.makeconftest(CONFTEST.replace("{route}", route))
    pytester.makepyfile(test_app=TESTS.format(lot_query=lot_query, list_query=list_query))
    pytester.makeini(INI)
    pytester.syspathinsert()


ROUTE = "cachesync.route_flask_caching(cachedapp.cache)"


@pytest.mark.parametrize("backend_type", ["RedisCache", "RedisSentinelCache"])
def test_correct_invalidations_are_clean(pytester: pytest.Pytester, backend_type: str) -> None:
    _write(pytester, ROUTE)
    pytester.makeconftest(
        CONFTEST.replace("{route}", ROUTE).replace(
            "create_app(cachesync.bind)", f"create_app(cachesync.bind, {backend_type!r})"
        )
    )
    result = pytester.runpytest("-p", "no:randomly", "--cachesync-report", "r.json")
    result.assert_outcomes(passed=3)
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["summary"]["stale"] == 0
    # Both PUTs delete the cached view; the memoized values live under opaque hashes, which
    # only the prefix as stored names.
    assert report["patterns"]["view/*"]["invalidations"] == 2
    assert report["patterns"]["flask_cache_*"]["hits"] >= 1
    assert report["patterns"]["flask_cache_*"]["invalidations"] == 2
    assert "production-" not in result.stdout.str()


def test_missing_invalidations_are_flagged(pytester: pytest.Pytester) -> None:
    _write(pytester, ROUTE, lot_query="?forget_lot=1", list_query="?forget_list=1")
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*test_memoized_read_after_write*", "*stale*"])
    output = result.stdout.str()
    assert '"price": 9' in output or "'price': 9" in output
    assert "view//lots" in output


def test_the_option_routes_a_cache_the_app_factory_initialises(pytester: pytest.Pytester) -> None:
    _write(pytester, "", lot_query="?forget_lot=1")
    pytester.makeini(INI + "cachesync_flask_caching = cachedapp:cache\n")
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*FAILED test_app.py::test_memoized_read_after_write*"])


def test_unrouted_cache_goes_to_the_production_url(pytester: pytest.Pytester) -> None:
    # What the routed runs above are compared with: Flask-Caching logs the failed commands
    # and serves uncached.
    _write(pytester, "")
    result = pytester.runpytest("-p", "no:randomly", "-k", "test_cached_view", "-rP")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*connecting to production-redis.invalid:6379*"])


def test_prefix_isolation_prefixes_the_cache_keys(pytester: pytest.Pytester) -> None:
    _write(pytester, ROUTE)
    result = pytester.runpytest("-p", "no:randomly", "--cachesync-redis-isolation=prefix")
    result.assert_outcomes(passed=3)


def test_a_backend_that_is_not_redis_is_refused(pytester: pytest.Pytester) -> None:
    _write(pytester, ROUTE)
    pytester.makeconftest(
        CONFTEST.replace("{route}", ROUTE).replace(
            "create_app(cachesync.bind)", 'create_app(cachesync.bind, "SimpleCache")'
        )
    )
    result = pytester.runpytest("-p", "no:randomly", "-k", "test_cached_view")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the cache backend of app 'cachedapp' is SimpleCache*"])


def test_the_option_refuses_what_is_not_a_cache(pytester: pytest.Pytester) -> None:
    _write(pytester, "")
    pytester.makeini(INI + "cachesync_flask_caching = cachedapp:metadata\n")
    result = pytester.runpytest("-p", "no:randomly", "-k", "test_cached_view")
    assert "cachedapp:metadata is a MetaData, not a flask_caching.Cache" in (
        result.stdout.str() + result.stderr.str()
    )
    assert result.ret != 0
