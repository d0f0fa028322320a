"""App fixtures: ``app``/``client`` built from the ``redis_client`` and ``db_bind`` fixtures.

By default each test gets a fresh fakeredis server and a SQLite file in ``tmp_path``. With
``CACHESYNC_REDIS_URL`` / ``CACHESYNC_DB_URL`` set, the real servers are used instead (the Redis db
is flushed before each test; PostgreSQL tables are created once and emptied between tests).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis
import sqlalchemy as sa
from appkit import AppKit
from flask import Flask
from flask.testing import FlaskClient

from sample_app import create_app
from sample_app.db import create_engine_for
from sample_app.models import Base

REAL_REDIS_URL = os.environ.get("CACHESYNC_REDIS_URL")
REAL_DB_URL = os.environ.get("CACHESYNC_DB_URL")


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    if REAL_REDIS_URL:
        client = redis.Redis.from_url(REAL_REDIS_URL)
        client.flushdb()
        yield client
        client.flushdb()
        client.close()
    else:
        yield fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture(scope="session")
def _real_engine() -> Iterator[sa.Engine | None]:
    if not REAL_DB_URL:
        yield None
        return
    url = sa.make_url(REAL_DB_URL)
    maintenance = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with maintenance.connect() as conn:
        exists = conn.scalar(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
        )
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    maintenance.dispose()
    engine = create_engine_for(REAL_DB_URL)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def db_bind(_real_engine: sa.Engine | None, tmp_path: Path) -> Iterator[sa.Engine]:
    if _real_engine is not None:
        yield _real_engine
        with _real_engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
        return
    engine = create_engine_for(f"sqlite:///{tmp_path / 'app.sqlite3'}")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Config overrides for ``app``; override or mutate in a test module to change them."""
    return {"APP_ENV": "testing", "SECRET_KEY": "test-secret"}


@pytest.fixture
def app(app_config: dict[str, Any], redis_client: redis.Redis, db_bind: sa.Engine) -> Flask:
    flask_app = create_app(app_config, redis_client=redis_client, engine=db_bind)
    flask_app.testing = True
    return flask_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def kit(app: Flask, client: FlaskClient, redis_client: redis.Redis) -> AppKit:
    return AppKit(app, client, redis_client)


@pytest.fixture
def admin_headers(kit: AppKit) -> dict[str, str]:
    kit.admin()
    return kit.headers("root")


@pytest.fixture
def user_headers(kit: AppKit) -> dict[str, str]:
    kit.user("alice")
    return kit.headers("alice")
