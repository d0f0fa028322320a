from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from appkit import PASSWORD, AppKit, is_fake
from flask.testing import FlaskClient
from freezegun import freeze_time

NEW_USER = {"username": "bob", "email": "bob@example.com", "password": "hunter22"}


def test_register_creates_user_without_password_hash(client: FlaskClient) -> None:
    response = client.post("/auth/register", json=NEW_USER | {"vehicle_number": "KA01AB1234"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["username"] == "bob"
    assert body["role"] == "user"
    assert body["vehicle_number"] == "KA01AB1234"
    assert not any("password" in key for key in body)


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"username": "bob", "email": "bob@example.com"}, 400),
        (NEW_USER | {"username": 5}, 400),
        (NEW_USER | {"email": "not-an-email"}, 400),
        (NEW_USER | {"password": "123"}, 400),
        (NEW_USER | {"role": "admin"}, 400),
        ({"username": "alice", "email": "other@example.com", "password": "hunter22"}, 409),
        ({"username": "other", "email": "ALICE@example.com", "password": "hunter22"}, 409),
    ],
)
def test_register_rejects_bad_input_without_writing(
    kit: AppKit, payload: dict[str, Any], status: int
) -> None:
    kit.user("alice")
    admin = kit.admin()
    response = kit.client.post("/auth/register", json=payload)
    assert response.status_code == status
    assert "error" in response.get_json()
    users = kit.client.get("/users", headers=kit.headers("root")).get_json()
    assert sorted(u["username"] for u in users) == ["alice", "root"]
    assert admin


def test_login_and_logout(kit: AppKit) -> None:
    kit.user("alice")
    headers = kit.headers("alice")
    assert kit.client.get("/reservations", headers=headers).status_code == 200
    assert kit.client.post("/auth/logout", headers=headers).status_code == 200
    assert kit.client.get("/reservations", headers=headers).status_code == 401


@pytest.mark.parametrize(
    "payload",
    [
        {"username": "alice", "password": "wrong-password"},
        {"username": "nobody", "password": PASSWORD},
    ],
)
def test_login_rejects_bad_credentials(kit: AppKit, payload: dict[str, str]) -> None:
    kit.user("alice")
    response = kit.client.post("/auth/login", json=payload)
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid username or password"


def test_login_stores_session_and_active_user_with_12h_ttl(kit: AppKit) -> None:
    user_id = kit.user("alice")
    kit.headers("alice")
    sessions = list(kit.redis.scan_iter(match="user_session:*"))
    assert len(sessions) == 1
    assert 43_000_000 < kit.redis.pttl(sessions[0]) <= 12 * 3600 * 1000
    assert kit.redis.smembers("active_users") == {str(user_id).encode()}
    assert 43_000_000 < kit.redis.pttl("active_users") <= 12 * 3600 * 1000


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer not-a-token", "Basic abc", "Bearer eyJzaWQiOiJ4In0.bad"]
)
def test_invalid_tokens_are_401(client: FlaskClient, header: str) -> None:
    response = client.get("/reservations", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["error"] == "authentication required"


def test_token_expires_after_12_hours(kit: AppKit) -> None:
    kit.user("alice")
    start = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    with freeze_time(start) as frozen:
        headers = kit.headers("alice")
        frozen.tick(dt.timedelta(hours=11, minutes=59))
        assert kit.client.get("/reservations", headers=headers).status_code == 200
        frozen.tick(dt.timedelta(minutes=2))
        if is_fake(kit.redis):
            assert list(kit.redis.scan_iter(match="user_session:*")) == []
        assert kit.client.get("/reservations", headers=headers).status_code == 401


def test_token_of_deleted_user_is_rejected(kit: AppKit, admin_headers: dict[str, str]) -> None:
    user_id = kit.user("alice")
    headers = kit.headers("alice")
    assert kit.client.delete(f"/users/{user_id}", headers=admin_headers).status_code == 200
    assert kit.client.get("/reservations", headers=headers).status_code == 401
