"""Wiring the plugin into apps: an app factory, and an existing module-level Flask app."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("backend")

FACTORY_APP = """
import json
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

metadata = sa.MetaData()
lots = sa.Table("lots", metadata, sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("free", sa.Integer, nullable=False))


def create_app(redis_client, bind, key_prefix=""):
    app = Flask(__name__)

    def session():
        return Session(bind, join_transaction_mode="create_savepoint")

    @app.get("/lots/<int:lot_id>")
    def get_lot(lot_id):
        key = f"{key_prefix}lot:{lot_id}"
        cached = redis_client.get(key)
        if cached is not None:
            return json.loads(cached)
        with session() as db:
            free = db.execute(sa.select(lots.c.free).where(lots.c.id == lot_id)).scalar_one()
        body = {"id": lot_id, "free": free}
        redis_client.set(key, json.dumps(body), ex=60)
        return body

    @app.put("/lots/<int:lot_id>/<int:free>")
    def put_lot(lot_id, free):
        with session() as db:
            db.execute(lots.update().where(lots.c.id == lot_id).values(free=free))
            db.commit()
        redis_client.delete(f"{key_prefix}lot:{lot_id}")
        return {"id": lot_id, "free": free}

    return app
"""

FACTORY_TESTS = """
import pytest
from factory_app import create_app, lots, metadata


@pytest.fixture(scope="session")
def cachesync_metadata():
    return metadata


@pytest.fixture
def client(cachesync):
    app = create_app(cachesync.redis, cachesync.bind, cachesync.key_prefix)
    cachesync.db.execute(lots.insert().values(id=1, free=5))
    cachesync.db.commit()
    return app.test_client()


@pytest.mark.parametrize("mode", ["rollback", "truncate"])
@pytest.mark.parametrize("round", range(2))
def test_read_update_read(request, mode, round):
    request.applymarker(pytest.mark.cachesync(db_reset=mode))
    cachesync = request.getfixturevalue("cachesync")
    client = request.getfixturevalue("client")
    assert client.get("/lots/1").get_json() == {"id": 1, "free": 5}
    assert cachesync.redis.exists(cachesync.key("lot:1"))
    client.put("/lots/1/4")
    assert client.get("/lots/1").get_json() == {"id": 1, "free": 4}
"""

EXISTING_APP = """
import redis
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///production-do-not-touch.db"
db = SQLAlchemy(app)
redis_client = redis.Redis(host="cache.example.invalid")


class Lot(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    free = db.Column(db.Integer, nullable=False)


@app.get("/lots/<int:lot_id>")
def get_lot(lot_id):
    cached = redis_client.get(f"lot:{lot_id}")
    if cached is not None:
        return {"free": int(cached), "cached": True}
    lot = db.session.get(Lot, lot_id)
    redis_client.set(f"lot:{lot_id}", lot.free, ex=60)
    return {"free": lot.free, "cached": False}


@app.post("/lots/<int:lot_id>")
def add_lot(lot_id):
    db.session.add(Lot(id=lot_id, free=3))
    db.session.commit()
    return {"ok": True}
"""

EXISTING_CONFTEST = """
import pytest
from pytest_cachesync import bind_flask_sqlalchemy
from myapp import app, db


@pytest.fixture
def client(cachesync):
    with bind_flask_sqlalchemy(db, app, cachesync.bind):
        yield app.test_client()
"""

EXISTING_TESTS = """
import pytest
from myapp import Lot


@pytest.mark.parametrize("mode", ["rollback", "truncate"])
@pytest.mark.parametrize("round", range(2))
def test_cache_then_db(request, mode, round):
    request.applymarker(pytest.mark.cachesync(db_reset=mode))
    client = request.getfixturevalue("client")
    cachesync = request.getfixturevalue("cachesync")
    assert cachesync.db.query(Lot).count() == 0
    client.post("/lots/7")
    assert client.get("/lots/7").get_json() == {"free": 3, "cached": False}
    assert client.get("/lots/7").get_json() == {"free": 3, "cached": True}
    assert cachesync.redis.get("lot:7") == b"3"
"""


def test_app_factory(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(factory_app=FACTORY_APP, test_factory=FACTORY_TESTS)
    pytester.syspathinsert()
    pytester.runpytest().assert_outcomes(passed=4)
    pytester.runpytest("-n", "2").assert_outcomes(passed=4)


def test_existing_flask_sqlalchemy_app(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(myapp=EXISTING_APP, test_existing=EXISTING_TESTS)
    pytester.makeconftest(EXISTING_CONFTEST)
    pytester.makeini(
        "[pytest]\ncachesync_redis_targets = myapp:redis_client\ncachesync_metadata = myapp:db\n"
    )
    pytester.syspathinsert()
    pytester.runpytest().assert_outcomes(passed=4)
    assert not (pytester.path / "instance" / "production-do-not-touch.db").exists()


def test_bind_flask_sqlalchemy_names_what_it_takes() -> None:
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from pytest_cachesync import bind_flask_sqlalchemy

    app = Flask("app")
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    db = SQLAlchemy(app)
    # The cachesync object itself, a common slip for cachesync.bind.
    with (
        pytest.raises(TypeError, match=r"Engine or a Connection, such as cachesync\.bind"),
        bind_flask_sqlalchemy(db, app, object()),  # type: ignore[arg-type]
    ):
        pass
