"""Sample parking-lot API whose Redis cache layer is correct by construction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import fakeredis
import redis
import sqlalchemy
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry

from sample_app import (
    admin,
    auth,
    cache,
    cli,
    db,
    errors,
    health,
    lots,
    ratelimit,
    reservations,
    users,
    validation,
)
from sample_app.config import instance_secret_key, load_settings
from sample_app.routing import IdConverter

__all__ = ["create_app"]


def _redis_client(app: Flask) -> redis.Redis:
    url = app.config["REDIS_URL"]
    if url is None:
        # Embedded default: an in-process server of this app only.
        return fakeredis.FakeRedis(server=fakeredis.FakeServer())
    timeout = float(app.config["REDIS_SOCKET_TIMEOUT"])
    # No retries: a failing Redis must cost a request one short timeout, not several.
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def create_app(
    test_config: Mapping[str, Any] | None = None,
    *,
    redis_client: redis.Redis | None = None,
    engine: sqlalchemy.Engine | sqlalchemy.Connection | None = None,
) -> Flask:
    """Build the app. An injected Redis client / SQLAlchemy bind wins over the config URLs."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(load_settings(overrides=test_config))
    if app.config["SECRET_KEY"] is None:
        app.config["SECRET_KEY"] = instance_secret_key(app.instance_path)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.converters["id"] = IdConverter

    database = db.init_app(app, engine)
    cache.init_app(app, redis_client or _redis_client(app), database.session_factory)
    errors.register(app)
    validation.init_app(app)
    ratelimit.init_app(app)
    for blueprint in (
        auth.bp,
        users.bp,
        lots.bp,
        reservations.bp,
        admin.bp,
        admin.debug_bp,
        health.bp,
    ):
        app.register_blueprint(blueprint)
    cli.init_app(app)
    return app
