from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from appkit import AppKit

from pytest_cachesync import CacheSync


def test_admin_lists_users(kit: AppKit, admin_headers: dict[str, str]) -> None:
    kit.user("alice")
    response = kit.client.get("/users", headers=admin_headers)
    assert response.status_code == 200
    assert [u["username"] for u in response.get_json()] == ["root", "alice"]
    assert all("password_hash" not in u for u in response.get_json())


def test_user_reads_self_but_not_others(kit: AppKit) -> None:
    alice = kit.user("alice")
    bob = kit.user("bob")
    headers = kit.headers("alice")
    assert kit.client.get(f"/users/{alice}", headers=headers).get_json()["username"] == "alice"
    assert kit.client.get(f"/users/{bob}", headers=headers).status_code == 403
    assert kit.client.get("/users", headers=headers).status_code == 403


def test_unknown_user_is_404(kit: AppKit, admin_headers: dict[str, str]) -> None:
    assert kit.client.get("/users/999", headers=admin_headers).status_code == 404
    assert kit.client.patch("/users/999", json={}, headers=admin_headers).status_code == 404
    assert kit.client.delete("/users/999", headers=admin_headers).status_code == 404


def test_update_self_invalidates_user_keys_on_warm_cache(
    kit: AppKit, admin_headers: dict[str, str]
) -> None:
    alice = kit.user("alice")
    headers = kit.headers("alice")
    kit.client.get(f"/users/{alice}", headers=headers)
    kit.client.get("/users", headers=admin_headers)
    assert kit.cached(f"user:{alice}")["phone"] is None
    assert kit.cached("users:all") is not None
    response = kit.client.patch(f"/users/{alice}", json={"phone": "+91 555"}, headers=headers)
    assert response.status_code == 200
    assert response.get_json()["phone"] == "+91 555"
    assert kit.cached(f"user:{alice}") is None
    assert kit.cached("users:all") is None
    assert kit.client.get(f"/users/{alice}", headers=headers).get_json()["phone"] == "+91 555"
    users = kit.client.get("/users", headers=admin_headers).get_json()
    assert {u["username"]: u["phone"] for u in users}["alice"] == "+91 555"


def test_password_update_takes_effect(kit: AppKit) -> None:
    alice = kit.user("alice")
    headers = kit.headers("alice")
    kit.client.put(f"/users/{alice}", json={"password": "brand-new-pw"}, headers=headers)
    assert kit.headers("alice", "brand-new-pw")


def test_only_admin_changes_roles(kit: AppKit, admin_headers: dict[str, str]) -> None:
    alice = kit.user("alice")
    headers = kit.headers("alice")
    assert (
        kit.client.patch(f"/users/{alice}", json={"role": "admin"}, headers=headers).status_code
        == 403
    )
    bad = kit.client.patch(f"/users/{alice}", json={"role": "boss"}, headers=admin_headers)
    assert bad.status_code == 400
    ok = kit.client.patch(f"/users/{alice}", json={"role": "admin"}, headers=admin_headers)
    assert ok.get_json()["role"] == "admin"


def test_update_rejects_bad_input_and_duplicates(kit: AppKit) -> None:
    alice = kit.user("alice")
    kit.user("bob")
    headers = kit.headers("alice")
    for payload, status in [
        ({"email": "bob@example.com"}, 409),
        ({"email": 12}, 400),
        ({"nickname": "x"}, 400),
        ({"phone": ["1"]}, 400),
    ]:
        response = kit.client.patch(f"/users/{alice}", json=payload, headers=headers)
        assert response.status_code == status, payload
    assert kit.client.get(f"/users/{alice}", headers=headers).get_json()["email"] == (
        "alice@example.com"
    )


def test_admin_delete_releases_spots_and_invalidates(
    kit: AppKit, admin_headers: dict[str, str]
) -> None:
    alice = kit.user("alice")
    lot = kit.lot(spots=2)
    headers = kit.headers("alice")
    kit.client.post("/reservations", json={"lot_id": lot}, headers=headers)
    assert kit.client.get(f"/parking-lots/{lot}").get_json()["available_spots"] == 1
    kit.client.get("/users", headers=admin_headers)
    response = kit.client.delete(f"/users/{alice}", headers=admin_headers)
    assert response.status_code == 200
    assert len(response.get_json()["released_reservations"]) == 1
    assert kit.client.get(f"/parking-lots/{lot}").get_json()["available_spots"] == 2
    assert kit.client.get("/parking-lots").get_json()[0]["available_spots"] == 2
    assert [u["username"] for u in kit.client.get("/users", headers=admin_headers).get_json()] == [
        "root"
    ]


def test_admin_cannot_delete_self(kit: AppKit, admin_headers: dict[str, str]) -> None:
    root = kit.client.get("/users", headers=admin_headers).get_json()[0]["id"]
    assert kit.client.delete(f"/users/{root}", headers=admin_headers).status_code == 409


# The update commits on its own connection while the read is in progress.
@pytest.mark.cachesync(db_reset="truncate")
def test_a_read_never_caches_the_user_it_loaded_before_an_update(
    kit: AppKit, cachesync: CacheSync, admin_headers: dict[str, str]
) -> None:
    alice = kit.user("alice")
    headers = kit.headers("alice")
    updated: list[Any] = []

    def update_once_alice_is_authenticated(
        _conn: Any, _cursor: Any, statement: str, *_rest: Any
    ) -> None:
        # The first users query of alice's GET is her authentication; then an admin, as another
        # client would, changes her phone and invalidates user:<id> before her cache miss.
        if not updated and "FROM users" in statement:
            updated.append(None)
            thread = threading.Thread(target=update)
            thread.start()
            thread.join(timeout=30)

    def update() -> None:
        updated[0] = kit.app.test_client().patch(
            f"/users/{alice}", json={"phone": "555-0100"}, headers=admin_headers
        )

    sa.event.listen(cachesync.engine, "after_cursor_execute", update_once_alice_is_authenticated)
    try:
        served = kit.client.get(f"/users/{alice}", headers=headers).get_json()
    finally:
        sa.event.remove(
            cachesync.engine, "after_cursor_execute", update_once_alice_is_authenticated
        )
    assert updated[0].status_code == 200, updated[0].get_json()
    assert served["phone"] == "555-0100"
    assert kit.cached(f"user:{alice}") in (None, served)
