"""An app written the way many are, for pytester runs of the invalidation map.

Module-level Flask app, Flask-SQLAlchemy ``db``, a module-level ``redis_client`` and plain
``SETEX`` fills after the read. ``DELETE /users/<id>`` frees the user's spots but forgets the
lot's key (``?dry_run=1`` rolls it all back), ``PUT /lots/<id>`` forgets its own key, and
``PUT /users/<id>`` deletes the user's key before its commit. ``BUGS = False`` in a
test module fixes both.
"""

from __future__ import annotations

import pytest

SHOP = """
import json

import flask
import redis
import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy

app = flask.Flask("shop")
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
db = SQLAlchemy(app)
redis_client = redis.Redis.from_url("redis://cache.invalid:6379/0")
BUGS = True


class User(db.Model):
    __tablename__ = "members"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50), nullable=False)


class Lot(db.Model):
    __tablename__ = "lots"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50), nullable=False)


class Spot(db.Model):
    __tablename__ = "spots"
    id = db.Column(db.Integer, primary_key=True)
    lot_id = db.Column(db.ForeignKey("lots.id"), nullable=False)
    member_id = db.Column(db.ForeignKey("members.id"), nullable=True)
    free = db.Column(db.Boolean, nullable=False, default=True)


def cached(key, load):
    hit = redis_client.get(key)
    if hit is not None:
        return json.loads(hit)
    value = load()
    redis_client.setex(key, 60, json.dumps(value))
    return value


@app.get("/lots/<int:lot_id>")
def get_lot(lot_id):
    def load():
        lot = db.session.get(Lot, lot_id)
        free = db.session.scalar(
            sa.select(sa.func.count()).select_from(Spot).where(Spot.lot_id == lot_id, Spot.free)
        )
        return {"id": lot.id, "name": lot.name, "free": free}

    return cached(f"parking_lot:{lot_id}", load)


@app.get("/users/<int:user_id>")
def get_user(user_id):
    def load():
        user = db.session.get(User, user_id)
        return {"id": user.id, "name": user.name}

    return cached(f"user:{user_id}", load)


@app.post("/spots/<int:spot_id>/take")
def take(spot_id):
    spot = db.session.get(Spot, spot_id)
    spot.member_id, spot.free = flask.request.json["user_id"], False
    db.session.commit()
    redis_client.delete(f"parking_lot:{spot.lot_id}")
    return {"spot": spot_id}


@app.delete("/users/<int:user_id>")
def delete_user(user_id):
    lots = db.session.scalars(sa.select(Spot.lot_id).where(Spot.member_id == user_id)).all()
    db.session.execute(
        sa.update(Spot).where(Spot.member_id == user_id).values(member_id=None, free=True)
    )
    db.session.delete(db.session.get(User, user_id))
    if flask.request.args.get("dry_run"):
        db.session.rollback()
        return {"deleted": None}
    db.session.commit()
    redis_client.delete(f"user:{user_id}")
    if not BUGS:
        for lot_id in lots:
            redis_client.delete(f"parking_lot:{lot_id}")
    return {"deleted": user_id}


@app.put("/lots/<int:lot_id>")
def rename_lot(lot_id):
    db.session.execute(
        sa.update(Lot).where(Lot.id == lot_id).values(name=flask.request.json["name"])
    )
    db.session.commit()
    if not BUGS:
        redis_client.delete(f"parking_lot:{lot_id}")
    return {"renamed": lot_id}


@app.put("/users/<int:user_id>")
def rename_user(user_id):
    db.session.get(User, user_id).name = flask.request.json["name"]
    if BUGS:
        db.session.flush()
        redis_client.delete(f"user:{user_id}")
        db.session.commit()
    else:
        db.session.commit()
        redis_client.delete(f"user:{user_id}")
    return {"renamed": user_id}
"""

CONFTEST = """
import pytest

import shop
from pytest_cachesync.integrations.flask_sqlalchemy import bind_flask_sqlalchemy


@pytest.fixture
def app(request, cachesync):
    shop.BUGS = getattr(request.module, "BUGS", True)
    with bind_flask_sqlalchemy(shop.db, shop.app, cachesync.bind):
        yield shop.app


@pytest.fixture
def client(app, cachesync_client):
    with shop.app.app_context():
        shop.db.session.add_all([shop.User(id=2, name="Ann"), shop.Lot(id=3, name="North")])
        shop.db.session.add(shop.Lot(id=4, name="South"))
        shop.db.session.flush()  # no relationship() tells the unit of work the order
        shop.db.session.add_all(
            [shop.Spot(id=7, lot_id=3, member_id=2, free=False), shop.Spot(id=8, lot_id=4)]
        )
        shop.db.session.commit()
    return cachesync_client
"""

INI = """
[pytest]
cachesync_redis_targets = shop:redis_client
cachesync_metadata = shop:db
cachesync_cache_patterns = user:* parking_lot:*
filterwarnings = ignore:Call to deprecated setex
"""


@pytest.fixture
def shop(pytester: pytest.Pytester) -> None:
    """``shop.py`` (the app), its conftest and a pytest.ini naming its cache keys."""
    pytester.makepyfile(shop=SHOP)
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    pytester.syspathinsert()
