"""A small price list API with a Redis cache in front of SQL: the example suite's app.

Written as many apps are: an app factory handed a Redis client and a SQLAlchemy bind, and
cache-aside reads that fill with ``SET ... EX``.
"""

from __future__ import annotations

import json
from typing import Any, cast

import flask
import redis
import sqlalchemy as sa
from sqlalchemy import orm

metadata = sa.MetaData()
products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("price_cents", sa.Integer, nullable=False),
)

PRODUCT_TTL_S = 30


def create_app(redis_client: redis.Redis, bind: sa.Engine | sa.Connection) -> flask.Flask:
    app = flask.Flask(__name__)
    # "create_savepoint": handed a connection inside a test's transaction, a commit of the
    # app's is a SAVEPOINT release, and the test's rollback still undoes it.
    sessions = orm.sessionmaker(bind=bind, join_transaction_mode="create_savepoint")

    @app.get("/products/<int:product_id>")
    def show(product_id: int) -> Any:
        key = f"product:{product_id}"
        cached = redis_client.get(key)
        if cached is not None:
            return json.loads(cached)
        with sessions() as session:
            row = session.execute(sa.select(products).where(products.c.id == product_id)).first()
        if row is None:
            flask.abort(404)
        body = {"id": row.id, "name": row.name, "price_cents": row.price_cents}
        redis_client.set(key, json.dumps(body), ex=PRODUCT_TTL_S)
        return body

    @app.put("/products/<int:product_id>")
    def update(product_id: int) -> Any:
        data = flask.request.get_json(silent=True)
        if not isinstance(data, dict) or type(data.get("price_cents")) is not int:
            return {"error": "price_cents must be an integer"}, 400
        with sessions.begin() as session:
            result = session.execute(
                products.update()
                .where(products.c.id == product_id)
                .values(price_cents=data["price_cents"])
            )
            changed = cast("sa.CursorResult[Any]", result).rowcount
        if not changed:
            flask.abort(404)
        # After the commit: a reader between a delete and the commit would re-fill old data.
        redis_client.delete(f"product:{product_id}")
        return {"id": product_id, "price_cents": data["price_cents"]}

    return app
