"""A parking-lot API written the way many Flask apps are, copied into pytester runs as is.

One module: a global Flask app, a global Flask-SQLAlchemy ``db``, a global Redis client made
from a URL at import, and plain ``SETEX`` fills after the database read. It has the bugs such
apps have: deleting a user frees their spots but forgets the lot's cached key, a lot's card
counts a view without committing it, and renaming a lot deletes the key before its COMMIT.
"""

from __future__ import annotations

import json
import os
from typing import Any

import redis
from flask import Flask, abort, jsonify, request
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get("LOTS_DATABASE_URL", "sqlite://")
db = SQLAlchemy(app)
cache = redis.Redis.from_url(os.environ.get("LOTS_REDIS_URL", "redis://cache.invalid:6379/0"))
TTL = 10


class Lot(db.Model):  # type: ignore[name-defined,misc]
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50), nullable=False)


class User(db.Model):  # type: ignore[name-defined,misc]
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50), nullable=False)


class Spot(db.Model):  # type: ignore[name-defined,misc]
    id = db.Column(db.Integer, primary_key=True)
    lot_id = db.Column(db.ForeignKey("lot.id"), nullable=False)
    user_id = db.Column(db.ForeignKey("user.id"), nullable=True)


class View(db.Model):  # type: ignore[name-defined,misc]
    id = db.Column(db.Integer, primary_key=True)
    lot_id = db.Column(db.Integer, nullable=False)


def lot_key(lot_id: int) -> str:
    return f"parking_lot:{lot_id}"


def lot_payload(lot: Any) -> dict[str, Any]:
    spots = Spot.query.filter_by(lot_id=lot.id).all()
    free = sum(1 for spot in spots if spot.user_id is None)
    return {"id": lot.id, "name": lot.name, "spots": len(spots), "free": free}


@app.get("/lots/<int:lot_id>")
def get_lot(lot_id: int) -> Any:
    cached = cache.get(lot_key(lot_id))
    if cached is not None:
        return jsonify(json.loads(cached))
    lot = db.session.get(Lot, lot_id) or abort(404)
    payload = lot_payload(lot)
    cache.setex(lot_key(lot_id), TTL, json.dumps(payload))
    return jsonify(payload)


@app.get("/lots/<int:lot_id>/card")
def lot_card(lot_id: int) -> Any:
    # Counts the view, and never commits it: the session's teardown rolls it back.
    db.session.add(View(lot_id=lot_id))
    db.session.flush()
    key = lot_key(lot_id) + ":card"
    cached = cache.get(key)
    if cached is not None:
        return jsonify(json.loads(cached))
    lot = db.session.get(Lot, lot_id) or abort(404)
    card = {"title": lot.name.upper()}
    cache.setex(key, TTL, json.dumps(card))
    return jsonify(card)


@app.post("/lots")
def create_lot() -> Any:
    lot = Lot(name=request.json["name"])
    db.session.add(lot)
    db.session.flush()
    for _ in range(int(request.json.get("spots", 2))):
        db.session.add(Spot(lot_id=lot.id))
    db.session.commit()
    cache.incr("parking_lots_created")
    return jsonify({"id": lot.id}), 201


@app.put("/lots/<int:lot_id>")
def rename_lot(lot_id: int) -> Any:
    lot = db.session.get(Lot, lot_id) or abort(404)
    # Deleted before the COMMIT: a reader in between fills the old name back.
    cache.delete(lot_key(lot_id))
    lot.name = request.json["name"]
    db.session.commit()
    return jsonify({"id": lot.id, "name": lot.name})


@app.post("/lots/<int:lot_id>/spots/<int:spot_id>/take")
def take_spot(lot_id: int, spot_id: int) -> Any:
    spot = db.session.get(Spot, spot_id) or abort(404)
    spot.user_id = request.json["user_id"]
    db.session.commit()
    cache.delete(lot_key(lot_id))
    return "", 204


@app.delete("/users/<int:user_id>")
def delete_user(user_id: int) -> Any:
    user = db.session.get(User, user_id) or abort(404)
    Spot.query.filter_by(user_id=user_id).update({"user_id": None})
    db.session.delete(user)
    db.session.commit()
    # Forgets the lots whose spots it freed: their cached "free" counts are now stale.
    return "", 204


@app.get("/stats")
def stats() -> Any:
    return jsonify({"lots_created": int(cache.get("parking_lots_created") or 0)})
