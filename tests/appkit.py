"""Test helpers over one app (rows inserted directly, logins through the API)."""

from __future__ import annotations

import json
from typing import Any

import fakeredis
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from sample_app.db import get_session
from sample_app.models import ParkingLot, ParkingSpot, User

PASSWORD = "secret-pass"
# Cheap hashing keeps tests fast; the app verifies whatever method a hash names.
_FAST_HASH = "pbkdf2:sha256:1000"


def is_fake(client: redis.Redis) -> bool:
    return isinstance(client, fakeredis.FakeRedis)


class AppKit:
    """Small helpers over one test's app: insert rows, log in, read Redis keys."""

    def __init__(self, app: Flask, client: FlaskClient, redis_client: redis.Redis) -> None:
        self.app = app
        self.client = client
        self.redis = redis_client

    def user(self, username: str, *, role: str = "user", password: str = PASSWORD) -> int:
        """Insert a user directly; returns its id."""
        with self.app.app_context():
            session = get_session()
            user = User(
                username=username,
                email=f"{username}@example.com",
                password_hash=generate_password_hash(password, method=_FAST_HASH),
                role=role,
            )
            session.add(user)
            session.commit()
            return user.id

    def admin(self, username: str = "root") -> int:
        return self.user(username, role="admin")

    def lot(self, name: str = "Central", *, spots: int = 3, cents: int = 6000) -> int:
        """Insert a lot with ``spots`` free spots directly; returns its id."""
        with self.app.app_context():
            session = get_session()
            lot = ParkingLot(
                name=name,
                address="1 Test Street",
                pincode="560001",
                price_per_hour_cents=cents,
                number_of_spots=spots,
            )
            session.add(lot)
            session.flush()
            session.add_all(ParkingSpot(lot_id=lot.id, number=n) for n in range(1, spots + 1))
            session.commit()
            return lot.id

    def token(self, username: str, password: str = PASSWORD) -> str:
        """Log ``username`` in through the API; the bearer token."""
        response = self.client.post(
            "/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.get_json()
        token = response.get_json()["token"]
        assert isinstance(token, str)
        return token

    def headers(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        """Log ``username`` in through the API; the Authorization header to send."""
        return {"Authorization": f"Bearer {self.token(username, password)}"}

    def cached(self, key: str) -> Any:
        """The JSON value cached under ``key`` (None when absent)."""
        raw = self.redis.get(key)
        return None if raw is None else json.loads(raw)
