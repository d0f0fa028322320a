"""Fixtures shared by the sample app's tests: ``app``/``client`` on pytest-cachesync's stores.

Every test starts with an empty Redis and a clean database from the plugin: fakeredis and a
SQLite file by default, the real servers with ``--cachesync-redis-url`` /
``--cachesync-db-url`` (or ``CACHESYNC_REDIS_URL`` / ``CACHESYNC_DB_URL``). Tests that use threads
need the truncate strategy (one Connection cannot be shared across threads):
``@pytest.mark.cachesync(db_reset="truncate")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from appkit import AppKit
from flask import Flask
from flask.testing import FlaskClient

from pytest_cachesync import CacheSync
from sample_app import create_app
from sample_app.models import Base

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _instance_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Apps built by tests keep instance files (SQLite file, drawn key) out of the checkout."""
    instance = str(tmp_path / "instance")
    monkeypatch.setattr("flask.Flask.auto_find_instance_path", lambda _self: instance)


@pytest.fixture(scope="session")
def cachesync_metadata() -> sa.MetaData:
    """The sample app's tables, created by the plugin once per session and worker."""
    return Base.metadata


@pytest.fixture
def redis_client(cachesync: CacheSync) -> redis.Redis:
    """The test's Redis client from the plugin: fakeredis by default, real with a URL."""
    return cachesync.redis


@pytest.fixture
def db_bind(cachesync: CacheSync) -> sa.Engine | sa.Connection:
    """What the app binds its sessions to: the test's connection (rollback) or the engine."""
    return cachesync.bind


@pytest.fixture
def app_config(cachesync: CacheSync) -> dict[str, Any]:
    """Config overrides for ``app``; override or mutate in a test module to change them."""
    return {
        "APP_ENV": "testing",
        "SECRET_KEY": "test-secret",
        "CACHE_KEY_PREFIX": cachesync.key_prefix,
    }


@pytest.fixture
def app(
    app_config: dict[str, Any], redis_client: redis.Redis, db_bind: sa.Engine | sa.Connection
) -> Flask:
    flask_app = create_app(app_config, redis_client=redis_client, engine=db_bind)
    flask_app.testing = True
    return flask_app


@pytest.fixture
def client(cachesync_client: FlaskClient) -> FlaskClient:
    """The plugin's client for ``app``: with ``--cachesync-oracle`` every GET is checked fresh."""
    return cachesync_client


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
