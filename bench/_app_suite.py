"""A generated suite of sample-app tests, as a user of the plugin would write them.

Each test drives the parking-lot API through the Flask test client on the plugin's stores:
log in, create a lot, read it (miss, then hit), book and release a spot, and check that the
cached reads changed with the writes. About ten requests and a few dozen SQL statements and
Redis commands per test: the kind of test whose suite is worth running in parallel.
"""

from __future__ import annotations

from pathlib import Path

CONFTEST = """
import pytest
from werkzeug.security import generate_password_hash

from sample_app import create_app
from sample_app.db import get_session
from sample_app.models import Base, User

# Cheap hashing, as test suites use: the app verifies whatever method a hash names.
PASSWORD_HASH = generate_password_hash("secret-pass", method="pbkdf2:sha256:1000")


@pytest.fixture(scope="session")
def cachesync_metadata():
    return Base.metadata


@pytest.fixture
def app(cachesync):
    config = {
        "APP_ENV": "testing",
        "SECRET_KEY": "bench",
        "CACHE_KEY_PREFIX": cachesync.key_prefix,
        "RATE_LIMIT_PER_HOUR": 0,
    }
    return create_app(config, redis_client=cachesync.redis, engine=cachesync.bind)


@pytest.fixture
def client(app):
    return app.test_client()


def _user(app, username, role):
    with app.app_context():
        session = get_session()
        session.add(
            User(
                username=username,
                email=f"{username}@example.com",
                password_hash=PASSWORD_HASH,
                role=role,
            )
        )
        session.commit()


def _headers(client, username):
    response = client.post("/auth/login", json={"username": username, "password": "secret-pass"})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": "Bearer " + response.get_json()["token"]}


@pytest.fixture
def admin(app, client):
    _user(app, "root", "admin")
    return _headers(client, "root")


@pytest.fixture
def driver(app, client):
    _user(app, "driver", "user")
    return _headers(client, "driver")
"""

TEST_MODULE = """
import pytest


def _new_lot(client, admin, n, spots=3):
    created = client.post(
        "/parking-lots",
        json={
            "name": f"Lot {n}",
            "address": "1 Bench Street",
            "pincode": "560001",
            "price_per_hour": 60,
            "number_of_spots": spots,
        },
        headers=admin,
    )
    assert created.status_code == 201, created.get_json()
    return created.get_json()["id"]


@pytest.mark.parametrize("n", range(HALF))
def test_booking_updates_the_cached_lot(n, client, admin, driver):
    lot = _new_lot(client, admin, n)
    assert client.get(f"/parking-lots/{lot}").get_json()["available_spots"] == 3
    assert client.get(f"/parking-lots/{lot}").get_json()["available_spots"] == 3
    booked = client.post("/reservations", json={"lot_id": lot}, headers=driver)
    assert booked.status_code == 201, booked.get_json()
    assert client.get(f"/parking-lots/{lot}").get_json()["available_spots"] == 2
    released = client.delete(f"/reservations/{booked.get_json()['id']}", headers=driver)
    assert released.get_json()["status"] == "released"
    assert client.get(f"/parking-lots/{lot}/available-spots").get_json()["available_spots"] == 3


@pytest.mark.parametrize("n", range(HALF))
def test_lot_changes_reach_the_cached_list(n, client, admin, driver):
    lot = _new_lot(client, admin, n, spots=2)
    assert [item["name"] for item in client.get("/parking-lots").get_json()] == [f"Lot {n}"]
    renamed = client.patch(f"/parking-lots/{lot}", json={"name": f"Renamed {n}"}, headers=admin)
    assert renamed.status_code == 200, renamed.get_json()
    assert [item["name"] for item in client.get("/parking-lots").get_json()] == [f"Renamed {n}"]
    mine = client.get("/reservations", headers=driver)
    assert mine.get_json() == []
    assert client.delete(f"/parking-lots/{lot}", headers=admin).status_code == 200
    assert client.get("/parking-lots").get_json() == []
"""


def write_app_suite(directory: Path, count: int) -> None:
    """Write ``count`` sample-app tests (two scenarios, ``count // 2`` each) to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    # An ini file of its own keeps the project's pytest settings (testpaths, addopts) out.
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (directory / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    module = TEST_MODULE.replace("HALF", str(count // 2))
    (directory / "test_sample_app.py").write_text(module, encoding="utf-8")
