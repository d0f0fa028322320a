"""Real servers for the suite's own tests, only when the run asks for them.

The embedded run (``make test``) touches no server. With ``CACHESYNC_REDIS_URL`` set, a test that
wants a real Redis gets the plugin's own keyspace for it: guarded, claimed against concurrent
sessions, a database of its own per xdist worker, emptied before the test.
"""

from __future__ import annotations

import pytest
import redis

from pytest_cachesync._session import RUNTIME_KEY

NO_REAL_REDIS = (
    "real Redis runs only when asked: set CACHESYNC_REDIS_URL (or --cachesync-redis-url); "
    "the embedded run touches no server"
)


def real_redis_requested(config: pytest.Config) -> bool:
    return config.stash[RUNTIME_KEY].settings.redis_url.value is not None


def claimed_real_redis(request: pytest.FixtureRequest) -> redis.Redis:
    """The plugin's real keyspace for this test, or a skip when the run is embedded."""
    if not real_redis_requested(request.config):
        pytest.skip(NO_REAL_REDIS)
    plan = request.config.stash[RUNTIME_KEY].redis_plan
    if plan.mode != "db":
        # These tests write keys of fixed names and move every TTL of the database.
        pytest.skip(f"needs a Redis database of its own, not the plugin's {plan.describe()}")
    client: redis.Redis = request.getfixturevalue("cachesync_redis")
    return client
