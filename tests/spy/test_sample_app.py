"""The oracle and the race injector over the sample app: nothing found, except where planted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis
import sqlalchemy as sa
from flask import Flask, jsonify
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from pytest_cachesync import OracleClient, RaceInjector, RedisSpy
from pytest_cachesync.staleness.bypass import Bypass
from pytest_cachesync.staleness.sql_recorder import SqlRecorder
from sample_app import cache_keys, create_app
from sample_app.db import create_engine_for, get_session
from sample_app.models import Base, ParkingLot, ParkingSpot, User
from sample_app.security import admin_required

PASSWORD = "secret-pass"


def add_planted_endpoint(app: Flask) -> None:
    """A copy of the lot update whose write forgets to invalidate the lot's cache keys."""

    @app.put("/planted/parking-lots/<int:lot_id>")
    @admin_required
    def update_lot_without_invalidation(lot_id: int) -> Any:
        session = get_session()
        lot = session.get(ParkingLot, lot_id)
        assert lot is not None
        lot.price_per_hour_cents += 100
        session.commit()
        return jsonify(ok=True)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Flask, redis.Redis, sa.Engine]]:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    engine = create_engine_for(f"sqlite:///{tmp_path / 'app.sqlite3'}")
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(User),
            [{"username": "root", "email": "root@example.com", "role": "admin",
              "password_hash": generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")}],
        )  # fmt: skip
    app = create_app({"APP_ENV": "testing", "SECRET_KEY": "s"}, redis_client=client, engine=engine)
    app.testing = True
    add_planted_endpoint(app)
    with app.app_context():
        session = get_session()
        for name in ("Central", "Harbour"):
            lot = ParkingLot(name=name, address="1 Test Street", pincode="560001",
                             price_per_hour_cents=6000, number_of_spots=2)  # fmt: skip
            session.add(lot)
            session.flush()
            session.add_all(ParkingSpot(lot_id=lot.id, number=n) for n in (1, 2))
        session.commit()
    yield app, client, engine
    engine.dispose()


def login(client: FlaskClient) -> dict[str, str]:
    response = client.post("/auth/login", json={"username": "root", "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


@pytest.fixture
def tools(
    stack: tuple[Flask, redis.Redis, sa.Engine],
) -> Iterator[tuple[OracleClient, RaceInjector, RedisSpy]]:
    app, client, engine = stack
    with RedisSpy(client, cache_keys.CACHE_PATTERNS) as spy, SqlRecorder(engine) as sql:
        bypass = Bypass(spy, sql=sql)
        oracle = OracleClient(app.test_client(), spy, bypass, sql=sql)
        yield oracle, RaceInjector(spy, bypass, sql=sql), spy


def test_oracle_finds_nothing_in_the_sample_app(
    tools: tuple[OracleClient, RaceInjector, RedisSpy],
) -> None:
    oracle, _, spy = tools
    admin = login(oracle.client)
    for path in ("/parking-lots", "/parking-lots/1", "/parking-lots/1", "/parking-lots/2"):
        oracle.get(path)
    oracle.put("/parking-lots/1", json={"price_per_hour": "75.00"}, headers=admin)
    oracle.get("/parking-lots/1")
    oracle.get("/parking-lots/1/available-spots")
    oracle.get("/parking-lots")
    oracle.assert_no_stale_reads()
    assert len(oracle.checks) == 7
    assert spy.stats()["parking_lot:*"].hits >= 2


def test_oracle_finds_the_planted_missing_invalidation(
    tools: tuple[OracleClient, RaceInjector, RedisSpy],
) -> None:
    oracle, _, _ = tools
    admin = login(oracle.client)
    oracle.get("/parking-lots/1")
    oracle.put("/planted/parking-lots/1", headers=admin)
    oracle.get("/parking-lots/1")
    [violation] = oracle.violations
    assert violation.path == "/parking-lots/1"
    assert violation.keys == ("parking_lot:1",)
    with pytest.raises(AssertionError, match="1 of 2 reads were stale"):
        oracle.assert_no_stale_reads()


def test_race_injector_finds_no_race_in_the_lease_guarded_cache(
    tools: tuple[OracleClient, RaceInjector, RedisSpy],
) -> None:
    oracle, injector, _ = tools
    admin = login(oracle.client)
    client = oracle.client
    outcome = injector.assert_no_race(
        "parking_lot:1",
        trigger=lambda: client.get("/parking-lots/1"),
        during=lambda: client.put(
            "/parking-lots/1", json={"price_per_hour": "80.00"}, headers=admin
        ),
    )
    assert outcome.cached is None
    assert float(client.get("/parking-lots/1").get_json()["price_per_hour"]) == 80.0
