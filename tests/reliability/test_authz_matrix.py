"""Every endpoint x every kind of caller: no unauthorised success, no password hash returned.

Callers: anonymous, the owner of the target rows, another user, an admin, the owner's token
once expired (time travel, 12 h + 2 min later), a token forged with another key claiming the
admin, and revoked tokens of admins: after a logout, "log out everywhere", a password change,
a demotion and the user's deletion (an accepted one would pass every check).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine
from appkit import PASSWORD, REVOCATIONS, AppKit
from flask import Flask
from itsdangerous import URLSafeSerializer
from werkzeug.security import check_password_hash

from sample_app import create_app
from sample_app.db import get_session
from sample_app.models import ParkingLot, User

from .figures import Figures

ANYONE = "anyone"
LOGGED_IN = "logged in"
OWNER_OR_ADMIN = "owner or admin"
ADMIN = "admin"
REVOKED_CALLERS = REVOCATIONS
REFUSED_CALLERS = ("anonymous", "expired", "forged", *REVOKED_CALLERS)
CALLERS = (*REFUSED_CALLERS, "other", "owner", "admin")
ALLOWED = {
    ANYONE: set(CALLERS),
    LOGGED_IN: {"other", "owner", "admin"},
    OWNER_OR_ADMIN: {"owner", "admin"},
    ADMIN: {"admin"},
}
HASH_MARKERS = (b"pbkdf2:", b"scrypt:", b"password_hash", PASSWORD.encode())


@dataclass
class World:
    """Rows the matrix targets: the owner's user row and reservation, lots, callers' headers."""

    owner_id: int
    admin_id: int
    lot_id: int
    spare_lot_id: int
    reservation_id: int
    headers: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: Callable[[World], str]
    rule: str
    body: Callable[[World, str], dict[str, Any] | None] = lambda _world, _caller: None
    accept: str = "application/json"


def _lot_body(_world: World, caller: str) -> dict[str, Any]:
    return {
        "name": f"Lot of {caller}",
        "address": "2 Test Street",
        "pincode": "560002",
        "price_per_hour": 40,
        "number_of_spots": 2,
    }


ENDPOINTS = [
    Endpoint("POST", lambda w: "/auth/register", ANYONE,
             lambda w, c: {"username": f"new_{c}", "email": f"{c}@new.example",
                           "password": "pw-123456"}),
    Endpoint("POST", lambda w: "/auth/login", ANYONE,
             lambda w, c: {"username": "owner", "password": PASSWORD}),
    Endpoint("POST", lambda w: "/auth/logout", LOGGED_IN),
    Endpoint("POST", lambda w: "/auth/logout-everywhere", LOGGED_IN),
    Endpoint("GET", lambda w: "/users", ADMIN),
    Endpoint("GET", lambda w: f"/users/{w.owner_id}", OWNER_OR_ADMIN),
    Endpoint("PUT", lambda w: f"/users/{w.owner_id}", OWNER_OR_ADMIN, lambda w, c: {"phone": c}),
    Endpoint("PATCH", lambda w: f"/users/{w.owner_id}", OWNER_OR_ADMIN, lambda w, c: {"phone": c}),
    Endpoint("PATCH", lambda w: f"/users/{w.owner_id}", ADMIN, lambda w, c: {"role": "admin"}),
    Endpoint("DELETE", lambda w: f"/users/{w.owner_id}", ADMIN),
    Endpoint("GET", lambda w: "/parking-lots", ANYONE),
    Endpoint("GET", lambda w: f"/parking-lots/{w.lot_id}", ANYONE),
    Endpoint("GET", lambda w: f"/parking-lots/{w.lot_id}/available-spots", ANYONE),
    Endpoint("POST", lambda w: "/parking-lots", ADMIN, _lot_body),
    Endpoint("PUT", lambda w: f"/parking-lots/{w.lot_id}", ADMIN,
             lambda w, c: {"price_per_hour": 9}),
    Endpoint("PATCH", lambda w: f"/parking-lots/{w.lot_id}", ADMIN, lambda w, c: {"name": c}),
    Endpoint("DELETE", lambda w: f"/parking-lots/{w.spare_lot_id}", ADMIN),
    Endpoint("POST", lambda w: "/reservations", LOGGED_IN, lambda w, c: {"lot_id": w.lot_id}),
    Endpoint("GET", lambda w: "/reservations", LOGGED_IN),
    Endpoint("GET", lambda w: f"/reservations/{w.reservation_id}", OWNER_OR_ADMIN),
    Endpoint("DELETE", lambda w: f"/reservations/{w.reservation_id}", OWNER_OR_ADMIN),
    Endpoint("POST", lambda w: f"/reservations/{w.reservation_id}/release", OWNER_OR_ADMIN),
    Endpoint("POST", lambda w: "/admin/clear-cache", ADMIN),
    Endpoint("POST", lambda w: "/admin/reset-database", ADMIN),
    Endpoint("GET", lambda w: "/admin/redis-dashboard?format=json", ADMIN),
    Endpoint("GET", lambda w: "/admin/redis-dashboard", ANYONE, accept="text/html"),
    Endpoint("GET", lambda w: "/debug/database-info", ADMIN),
    Endpoint("GET", lambda w: "/health/redis", ANYONE),
]  # fmt: skip


def _ids(endpoint: Endpoint) -> str:
    return f"{endpoint.method} {endpoint.rule.replace(' ', '_')} {endpoint.path(_PLACEHOLDER)}"


_PLACEHOLDER = World(owner_id=1, admin_id=1, lot_id=1, spare_lot_id=2, reservation_id=1)


def _forged_admin_token(world: World) -> str:
    forger = URLSafeSerializer("not-the-secret", salt="sample-app-auth-token")
    token = forger.dumps(
        {"sid": "forged", "uid": world.admin_id, "iat": dt.datetime.now(dt.UTC).timestamp()}
    )
    assert isinstance(token, str)
    return token


def build_world(kit: AppKit) -> World:
    owner_id = kit.user("owner")
    kit.user("other")
    admin_id = kit.admin("root")
    lot_id = kit.lot("Central", spots=4)
    spare_lot_id = kit.lot("Spare", spots=1)
    owner = kit.headers("owner")
    booked = kit.client.post("/reservations", json={"lot_id": lot_id}, headers=owner)
    assert booked.status_code == 201, booked.get_json()
    world = World(owner_id, admin_id, lot_id, spare_lot_id, booked.get_json()["id"])
    admin = kit.headers("root")
    world.headers = {
        "anonymous": {},
        "owner": owner,
        "other": kit.headers("other"),
        "admin": admin,
        "expired": kit.headers("owner"),
        "forged": {"Authorization": f"Bearer {_forged_admin_token(world)}"},
        **kit.revoked_headers(admin),
    }
    return world


def call(kit: AppKit, world: World, endpoint: Endpoint, caller: str) -> Any:
    headers = world.headers[caller] | {"Accept": endpoint.accept}
    body = endpoint.body(world, caller)
    path = endpoint.path(world)
    if caller != "expired":
        return kit.client.open(path, method=endpoint.method, headers=headers, json=body)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=12, minutes=2)
    with time_machine.travel(later, tick=False):
        return kit.client.open(path, method=endpoint.method, headers=headers, json=body)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_ids)
def test_no_caller_outside_the_rule_succeeds(
    kit: AppKit, endpoint: Endpoint, figures: Figures
) -> None:
    world = build_world(kit)
    allowed = ALLOWED[endpoint.rule]
    # Refused callers first: an allowed call may delete or change the target rows.
    order = sorted(CALLERS, key=lambda c: (c in allowed, c != "owner"))
    unauthorised: list[tuple[str, int]] = []
    leaks: list[str] = []
    outcomes: dict[str, int] = {}
    for caller in order:
        response = call(kit, world, endpoint, caller)
        outcomes[caller] = response.status_code
        if any(marker in response.data for marker in HASH_MARKERS):
            leaks.append(caller)
        if caller not in allowed and response.status_code < 400:
            unauthorised.append((caller, response.status_code))
    revoked_tried = [c for c in REVOKED_CALLERS if c not in allowed]
    figures.add(
        "authz_matrix",
        requests=len(order),
        unauthorised_successes=len(unauthorised),
        password_hash_leaks=len(leaks),
        revoked_token_requests=len(revoked_tried),
        revoked_tokens_accepted=sum(1 for c in revoked_tried if outcomes[c] != 401),
    )
    assert unauthorised == [], outcomes
    assert leaks == [], outcomes
    for caller in set(CALLERS) - allowed:
        expected = 401 if caller in REFUSED_CALLERS else 403
        assert outcomes[caller] == expected, (caller, outcomes)
    first_allowed = order[len(CALLERS) - len(allowed)]
    assert 200 <= outcomes[first_allowed] < 300, (first_allowed, outcomes)
    assert all(status < 500 for status in outcomes.values()), outcomes


def test_dashboard_page_is_public_but_data_free(kit: AppKit) -> None:
    world = build_world(kit)
    kit.client.get(f"/parking-lots/{world.lot_id}")
    page = kit.client.get("/admin/redis-dashboard", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    for secret in (b"parking_lot:", b"user_session:", b"owner", b"Central"):
        assert secret not in page.data


@pytest.fixture
def production_app(
    app_config: dict[str, Any], redis_client: Any, db_bind: sa.Engine | sa.Connection
) -> Flask:
    config = app_config | {"APP_ENV": "production", "SECRET_KEY": "production-secret"}
    return create_app(config, redis_client=redis_client, engine=db_bind)


def test_reset_and_debug_are_refused_in_production(
    production_app: Flask, redis_client: Any, figures: Figures
) -> None:
    kit = AppKit(production_app, production_app.test_client(), redis_client)
    kit.user("owner")
    kit.admin("root")
    kit.lot("Central")
    admin = kit.headers("root")
    reset = kit.client.post("/admin/reset-database", headers=admin)
    debug = kit.client.get("/debug/database-info", headers=admin)
    with production_app.app_context():
        session = get_session()
        rows = {
            "users": session.scalar(sa.select(sa.func.count()).select_from(User)),
            "lots": session.scalar(sa.select(sa.func.count()).select_from(ParkingLot)),
        }
    figures.record(
        "production_guards",
        reset_database_status=reset.status_code,
        debug_status=debug.status_code,
    )
    assert reset.status_code == 403
    assert reset.is_json
    assert debug.status_code == 404
    assert debug.is_json
    assert rows == {"users": 2, "lots": 1}


def test_registered_password_is_stored_hashed(kit: AppKit) -> None:
    response = kit.client.post(
        "/auth/register",
        json={"username": "carol", "email": "carol@example.com", "password": "carol-pass"},
    )
    assert response.status_code == 201
    assert b"carol-pass" not in response.data
    with kit.app.app_context():
        stored = get_session().scalar(sa.select(User.password_hash).where(User.username == "carol"))
    assert stored is not None
    assert "carol-pass" not in stored
    assert stored.startswith(("scrypt:", "pbkdf2:"))
    assert check_password_hash(stored, "carol-pass")


def test_reservation_rows_keep_no_reference_to_passwords(kit: AppKit) -> None:
    world = build_world(kit)
    listed = kit.client.get("/reservations", headers=world.headers["admin"])
    users = kit.client.get("/users", headers=world.headers["admin"])
    with kit.app.app_context():
        hashes = [h.encode() for h in get_session().scalars(sa.select(User.password_hash))]
    for body in (listed.data, users.data):
        assert not any(h in body for h in hashes)
