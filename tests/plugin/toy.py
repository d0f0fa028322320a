"""A toy Flask app that caches SQL rows in Redis, written into pytester runs.

`INVALIDATE = False` in a test module plants a missing invalidation; `TTL` sets the cache TTL.
"""

from __future__ import annotations

import pytest

TOYAPP = """
import json

import flask
import sqlalchemy as sa
from sqlalchemy.orm import Session

metadata = sa.MetaData()
lots = sa.Table(
    "lots", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("price", sa.Integer, nullable=False),
)


def create_app(redis, bind, prefix="", *, invalidate=True, ttl=10):
    app = flask.Flask("toyapp")

    def session():
        return Session(bind=bind, join_transaction_mode="create_savepoint")

    def key(lot_id):
        return f"{prefix}lot:{lot_id}"

    @app.get("/lots/<int:lot_id>")
    def get_lot(lot_id):
        cached = redis.get(key(lot_id))
        if cached is not None:
            return flask.jsonify(json.loads(cached))
        with session() as s:
            row = s.execute(sa.select(lots).where(lots.c.id == lot_id)).mappings().one()
        lot = dict(row)
        redis.set(key(lot_id), json.dumps(lot), ex=ttl)
        return flask.jsonify(lot)

    @app.put("/lots/<int:lot_id>")
    def put_lot(lot_id):
        with session() as s:
            s.execute(
                lots.update().where(lots.c.id == lot_id).values(price=flask.request.json["price"])
            )
            s.commit()
        if invalidate:
            redis.delete(key(lot_id))
        return "", 204

    return app
"""

CONFTEST = """
import pytest
import toyapp


@pytest.fixture(scope="session")
def cachesync_metadata():
    return toyapp.metadata


@pytest.fixture
def app(request, cachesync):
    cachesync.db.execute(toyapp.lots.insert().values(id=1, name="North", price=2))
    cachesync.db.commit()
    return toyapp.create_app(
        cachesync.redis,
        cachesync.bind,
        cachesync.key_prefix,
        invalidate=getattr(request.module, "INVALIDATE", True),
        ttl=getattr(request.module, "TTL", 10),
    )


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def read(client):
    return lambda: client.get("/lots/1").get_json()
"""

INI = """
[pytest]
cachesync_cache_patterns = lot:*
"""


@pytest.fixture
def toy(pytester: pytest.Pytester) -> None:
    """`toyapp.py`, a conftest with `app`, `client` and `read` fixtures, and cache patterns."""
    pytester.makepyfile(toyapp=TOYAPP)
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    pytester.syspathinsert()
