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
# Every way a token is revoked, as AppKit.revoked_headers names them.
REVOCATIONS = ("logged_out", "everywhere", "password_changed", "demoted", "deleted")
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

    def revoked_headers(self, admin_headers: dict[str, str]) -> dict[str, dict[str, str]]:
        """One revoked token per way of revoking (``REVOCATIONS``), revoked through the API.

        Each belongs to an admin of its own, so a revoked token that is still accepted passes
        every check, the admin checks included.
        """
        revoked: dict[str, dict[str, str]] = {}
        for kind in REVOCATIONS:
            user_id = self.admin(f"revoked_{kind}")
            own = self.headers(f"revoked_{kind}")
            method, path, headers, body = {
                "logged_out": ("POST", "/auth/logout", own, None),
                "everywhere": ("POST", "/auth/logout-everywhere", own, None),
                "password_changed": ("PATCH", f"/users/{user_id}", admin_headers,
                                     {"password": "changed-pw"}),
                "demoted": ("PATCH", f"/users/{user_id}", admin_headers, {"role": "user"}),
                "deleted": ("DELETE", f"/users/{user_id}", admin_headers, None),
            }[kind]  # fmt: skip
            done = self.client.open(path, method=method, headers=headers, json=body)
            assert done.status_code == 200, (kind, done.get_json())
            revoked[kind] = own
        return revoked
