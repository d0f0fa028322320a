"""Tokens die with their user, its password or role, "log out everywhere" and logout, also while
Redis is down; ids are never handed out twice.

These run on the plugin's database (SQLite by default, PostgreSQL with ``CACHESYNC_DB_URL``).
"""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
import sqlalchemy as sa
from appkit import AppKit

from sample_app import create_app
from sample_app.db import get_session
from sample_app.models import RevokedSession
from sample_app.security import close_session, token_claims

NEW = {"email": "x@example.com", "password": "pw-123456"}


def _session_keys(kit: AppKit) -> list[bytes]:
    return list(kit.redis.scan_iter(match="*user_session:*"))


def _register(kit: AppKit, username: str) -> int:
    response = kit.client.post(
        "/auth/register", json=NEW | {"username": username, "email": f"{username}@example.com"}
    )
    assert response.status_code == 201, response.get_json()
    user_id = response.get_json()["id"]
    assert isinstance(user_id, int)
    return user_id


def test_deleted_users_token_never_reaches_the_next_account(
    kit: AppKit, admin_headers: dict[str, str]
) -> None:
    # The victim of a reused id would be the row created right after the highest one is gone.
    mallory = _register(kit, "mallory")
    stolen = kit.headers("mallory", NEW["password"])
    assert len(_session_keys(kit)) == 2
    assert kit.client.delete(f"/users/{mallory}", headers=admin_headers).status_code == 200
    assert len(_session_keys(kit)) == 1  # the admin's

    bob = _register(kit, "bob")
    assert bob > mallory
    for target in (bob, mallory):
        assert kit.client.get(f"/users/{target}", headers=stolen).status_code == 401
        changed = kit.client.patch(
            f"/users/{target}", json={"password": "taken-over"}, headers=stolen
        )
        assert changed.status_code == 401
    assert kit.headers("bob", NEW["password"])


def test_deleted_lot_and_reservation_ids_are_not_reused(
    kit: AppKit, admin_headers: dict[str, str]
) -> None:
    first = kit.client.post(
        "/parking-lots",
        json={"name": "A", "address": "x", "pincode": "5600", "price_per_hour": 1,
              "number_of_spots": 1},
        headers=admin_headers,
    ).get_json()["id"]  # fmt: skip
    assert kit.client.delete(f"/parking-lots/{first}", headers=admin_headers).status_code == 200
    second = kit.lot("B")
    assert second > first


def test_password_change_ends_every_session_of_the_user(kit: AppKit) -> None:
    alice = kit.user("alice")
    phone, laptop = kit.headers("alice"), kit.headers("alice")
    changed = kit.client.patch(f"/users/{alice}", json={"password": "brand-new"}, headers=laptop)
    assert changed.status_code == 200, changed.get_json()
    for headers in (phone, laptop):
        assert kit.client.get(f"/users/{alice}", headers=headers).status_code == 401
    assert _session_keys(kit) == []
    fresh = kit.headers("alice", "brand-new")
    assert kit.client.get(f"/users/{alice}", headers=fresh).status_code == 200


def test_profile_edits_keep_sessions(kit: AppKit) -> None:
    alice = kit.user("alice")
    headers = kit.headers("alice")
    edited = kit.client.patch(f"/users/{alice}", json={"phone": "+91 1"}, headers=headers)
    assert edited.status_code == 200
    assert kit.client.get(f"/users/{alice}", headers=headers).status_code == 200


def test_role_change_by_an_admin_ends_the_users_sessions_not_the_admins(
    kit: AppKit, admin_headers: dict[str, str]
) -> None:
    alice = kit.user("alice")
    headers = kit.headers("alice")
    promoted = kit.client.patch(f"/users/{alice}", json={"role": "admin"}, headers=admin_headers)
    assert promoted.status_code == 200
    assert kit.client.get(f"/users/{alice}", headers=headers).status_code == 401
    assert kit.client.get("/users", headers=admin_headers).status_code == 200
    # Setting the role it already has revokes nothing.
    again = kit.headers("alice")
    same = kit.client.patch(f"/users/{alice}", json={"role": "admin"}, headers=admin_headers)
    assert same.status_code == 200
    assert kit.client.get("/users", headers=again).status_code == 200


def test_logout_everywhere_ends_all_sessions_of_the_caller_only(kit: AppKit) -> None:
    alice = kit.user("alice")
    kit.user("bob")
    phone, laptop, bob = kit.headers("alice"), kit.headers("alice"), kit.headers("bob")
    done = kit.client.post("/auth/logout-everywhere", headers=phone)
    assert done.status_code == 200
    for headers in (phone, laptop):
        assert kit.client.get(f"/users/{alice}", headers=headers).status_code == 401
    assert kit.client.get("/reservations", headers=bob).status_code == 200
    assert len(_session_keys(kit)) == 1
    assert kit.client.post("/auth/logout-everywhere").status_code == 401


def test_logout_is_recorded_in_the_database(kit: AppKit) -> None:
    kit.user("alice")
    headers = kit.headers("alice")
    kept = kit.headers("alice")
    assert kit.client.post("/auth/logout", headers=headers).status_code == 200
    # A session key written back (a restore, a lost delete) does not bring the token back.
    assert kit.client.post("/auth/logout", headers=headers).status_code == 401
    assert kit.client.get("/reservations", headers=kept).status_code == 200


@pytest.fixture
def outage(
    app_config: dict[str, Any], db_bind: sa.Engine | sa.Connection
) -> tuple[AppKit, fakeredis.FakeServer]:
    """An app on a Redis of its own that the test can take down (``server.connected``)."""
    server = fakeredis.FakeServer()
    redis_client = fakeredis.FakeRedis(server=server)
    app = create_app(
        app_config | {"CACHE_KEY_PREFIX": ""}, redis_client=redis_client, engine=db_bind
    )
    return AppKit(app, app.test_client(), redis_client), server


def test_revoked_tokens_stay_dead_while_redis_is_down(
    outage: tuple[AppKit, fakeredis.FakeServer],
) -> None:
    kit, server = outage
    kit.admin("root")
    revoked = kit.revoked_headers(kit.headers("root"))
    kit.user("live")
    live = kit.headers("live")
    server.connected = False
    accepted = {
        name: status
        for name, headers in revoked.items()
        if (status := kit.client.get("/reservations", headers=headers).status_code) != 401
    }
    assert accepted == {}
    assert kit.client.get("/reservations", headers=live).status_code == 200

    # A logout during the outage cannot delete the session key, and still holds afterwards.
    assert kit.client.post("/auth/logout", headers=live).status_code == 200
    server.connected = True
    assert kit.redis.exists(*[k for k in kit.redis.scan_iter(match="user_session:*")]) >= 1
    assert kit.client.get("/reservations", headers=live).status_code == 401
    for headers in revoked.values():
        assert kit.client.get("/reservations", headers=headers).status_code == 401


def test_two_logouts_of_one_token_at_once_both_succeed(
    kit: AppKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit.user("alice")
    token = kit.token("alice")
    with kit.app.test_request_context(headers={"Authorization": f"Bearer {token}"}):
        claims = token_claims()
        assert claims is not None
        session = get_session()
        close_session(session, claims)
        # The second request checked before the first one's row was committed.
        monkeypatch.setattr(session, "get", lambda *_args, **_kwargs: None)
        close_session(session, claims)
        monkeypatch.undo()
        rows = session.scalars(sa.select(RevokedSession.session_id)).all()
    assert rows == [claims.session_id]
