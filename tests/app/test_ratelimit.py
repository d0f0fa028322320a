from __future__ import annotations

import datetime as dt

import redis
import sqlalchemy as sa
from appkit import AppKit
from freezegun import freeze_time

from sample_app import create_app


def _kit(redis_client: redis.Redis, db_bind: sa.Engine, limit: int) -> AppKit:
    app = create_app(
        {"APP_ENV": "testing", "RATE_LIMIT_PER_HOUR": limit},
        redis_client=redis_client,
        engine=db_bind,
    )
    return AppKit(app, app.test_client(), redis_client)


def test_limit_answers_429_with_retry_after_until_the_window_ends(
    redis_client: redis.Redis, db_bind: sa.Engine
) -> None:
    kit = _kit(redis_client, db_bind, 3)
    with freeze_time(dt.datetime(2026, 2, 2, 10, 59, 30, tzinfo=dt.UTC)) as frozen:
        assert [kit.client.get("/parking-lots").status_code for _ in range(3)] == [200] * 3
        limited = kit.client.get("/parking-lots")
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "30"
        assert limited.get_json()["error"] == "rate limit exceeded"
        keys = [k.decode() for k in redis_client.scan_iter(match="rate_limit:*")]
        assert keys == [f"rate_limit:ip:127.0.0.1:{int(frozen().timestamp()) // 3600}"]
        assert 0 < redis_client.ttl(keys[0]) <= 30
        assert kit.client.get("/health/redis").status_code == 200  # health is never limited
        frozen.tick(dt.timedelta(seconds=30))
        assert kit.client.get("/parking-lots").status_code == 200


def test_limit_is_per_user_when_logged_in(redis_client: redis.Redis, db_bind: sa.Engine) -> None:
    kit = _kit(redis_client, db_bind, 2)
    kit.user("alice")
    kit.user("bob")
    alice = kit.headers("alice")  # request 1 of the anonymous client
    bob = kit.headers("bob")  # request 2
    assert kit.client.get("/reservations", headers=alice).status_code == 200
    assert kit.client.get("/reservations", headers=alice).status_code == 200
    assert kit.client.get("/reservations", headers=alice).status_code == 429
    assert kit.client.get("/reservations", headers=bob).status_code == 200


def test_zero_disables_the_limit(redis_client: redis.Redis, db_bind: sa.Engine) -> None:
    kit = _kit(redis_client, db_bind, 0)
    assert all(kit.client.get("/parking-lots").status_code == 200 for _ in range(5))
    assert list(redis_client.scan_iter(match="rate_limit:*")) == []
