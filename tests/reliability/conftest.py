"""Fixtures of the reliability suite: the sample app on the plugin's stores, plus figures.

``app``/``client``/``redis_client``/``db_bind``/``kit`` mirror the app tests' fixtures:
fakeredis and a SQLite file by default, the real servers with ``CACHESYNC_REDIS_URL`` /
``CACHESYNC_DB_URL``. Figures recorded through ``figures`` are printed at the end of the run
and kept in ``artifacts/reliability.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from pytest_cachesync.facade import CacheSync
from sample_app import create_app
from sample_app.models import Base

from .figures import Figures, render
from .kit import RelKit

_FIGURES = pytest.StashKey[Figures]()


@pytest.fixture(scope="session")
def cachesync_metadata() -> sa.MetaData:
    return Base.metadata


@pytest.fixture
def redis_client(cachesync: CacheSync) -> redis.Redis:
    return cachesync.redis


@pytest.fixture
def db_bind(cachesync: CacheSync) -> sa.Engine | sa.Connection:
    return cachesync.bind


@pytest.fixture
def app_config(cachesync: CacheSync) -> dict[str, Any]:
    return {
        "APP_ENV": "testing",
        "SECRET_KEY": "test-secret",
        "CACHE_KEY_PREFIX": cachesync.key_prefix,
        # Thousands of requests from one client: the limiter has its own tests.
        "RATE_LIMIT_PER_HOUR": 0,
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
    """The plugin's client for ``app``: with strict mode on, every GET is checked fresh."""
    return cachesync_client


@pytest.fixture
def kit(app: Flask, client: FlaskClient, redis_client: redis.Redis) -> RelKit:
    return RelKit(app, client, redis_client)


@pytest.fixture(scope="session")
def figures(pytestconfig: pytest.Config) -> Iterator[Figures]:
    collected = pytestconfig.stash.setdefault(_FIGURES, Figures())
    yield collected
    collected.save()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    collected = config.stash.get(_FIGURES, None)
    if collected is None or not collected.groups:
        return
    terminalreporter.section("reliability figures")
    for line in render(collected.groups):
        terminalreporter.write_line(line)
