from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from appkit import AppKit, is_fake

from pytest_cachesync import CacheClock
from pytest_cachesync.staleness.oracle import REPLAY_LOG_ATTRIBUTE
from sample_app import create_app, queries
from sample_app.cache import get_cache, invalidate
from sample_app.db import get_session
from sample_app.models import ParkingLot


def test_reads_log_miss_then_hit_and_count_per_pattern(
    kit: AppKit, caplog: pytest.LogCaptureFixture
) -> None:
    lot = kit.lot()
    caplog.set_level(logging.DEBUG, logger="sample_app.cache")
    kit.client.get(f"/parking-lots/{lot}")
    kit.client.get(f"/parking-lots/{lot}")
    records = [r for r in caplog.records if r.name == "sample_app.cache"]
    requests = [r.getMessage() for r in records if not getattr(r, REPLAY_LOG_ATTRIBUTE, False)]
    replays = [r.getMessage() for r in records if getattr(r, REPLAY_LOG_ATTRIBUTE, False)]
    assert requests == [f"Cache MISS: parking_lot:{lot}", f"Cache HIT: parking_lot:{lot}"]
    # In oracle mode each GET is replayed with the cache bypassed: a cold read the app's own
    # counters see too, one miss and one fill each.
    assert replays == [f"Cache MISS: parking_lot:{lot}"] * len(replays)
    misses = 1 + len(replays)
    stats = get_cache(kit.app).stats.snapshot()["parking_lot:*"]
    assert (stats["hits"], stats["misses"], stats["fills"], stats["hit_ratio"]) == (
        1,
        misses,
        misses,
        round(1 / (1 + misses), 4),
    )


def test_cached_values_are_json_with_the_configured_ttl(
    kit: AppKit, admin_headers: dict[str, str]
) -> None:
    lot = kit.lot()
    root = kit.client.get("/users", headers=admin_headers).get_json()[0]["id"]
    kit.client.get(f"/parking-lots/{lot}")
    kit.client.get("/parking-lots")
    kit.client.get(f"/users/{root}", headers=admin_headers)
    assert kit.cached(f"parking_lot:{lot}")["name"] == "Central"
    for key in (f"parking_lot:{lot}", "parking_lots:all", "users:all", f"user:{root}"):
        assert 4000 < kit.redis.pttl(key) <= 5000, key  # APP_ENV=testing: 5 s


def test_a_hit_is_served_as_stored_and_reads_like_the_miss(kit: AppKit) -> None:
    lot = kit.lot(name="Café ✓")
    miss = kit.client.get(f"/parking-lots/{lot}")
    hit = kit.client.get(f"/parking-lots/{lot}")
    stored = kit.redis.get(f"parking_lot:{lot}")
    assert stored is not None
    assert hit.data == stored + b"\n"
    assert miss.data == hit.data
    assert hit.mimetype == miss.mimetype == "application/json"
    with kit.app.app_context():
        detail = queries.lot_detail(get_session(), lot)
        assert hit.data == kit.app.json.response(detail).data  # what jsonify writes


def test_every_key_the_app_writes_has_a_ttl(kit: AppKit, admin_headers: dict[str, str]) -> None:
    lot = kit.lot()
    kit.client.post("/reservations", json={"lot_id": lot}, headers=admin_headers)
    root = kit.client.get("/users", headers=admin_headers).get_json()[0]["id"]
    for path in ("/parking-lots", f"/parking-lots/{lot}", "/users", f"/users/{root}"):
        kit.client.get(path, headers=admin_headers)
    keys = list(kit.redis.scan_iter())
    assert len(keys) >= 9
    assert all(kit.redis.pttl(key) > 0 for key in keys), {k: kit.redis.pttl(k) for k in keys}


# A change behind the app's back is stale by design until the cache entry's TTL (5 s in testing)
# ends: that is the staleness budget of this test's reads.
@pytest.mark.cachesync(staleness=5)
def test_value_changed_behind_the_app_is_served_until_the_ttl_ends(
    cachesync_clock: CacheClock, kit: AppKit
) -> None:
    lot = kit.lot()
    kit.client.get(f"/parking-lots/{lot}")
    with kit.app.app_context():
        get_session().execute(sa.update(ParkingLot).values(name="Renamed"))
        get_session().commit()
    cachesync_clock.advance(4.9)
    assert kit.client.get(f"/parking-lots/{lot}").get_json()["name"] == "Central"
    cachesync_clock.advance(0.1)
    assert kit.client.get(f"/parking-lots/{lot}").get_json()["name"] == "Renamed"


def test_invalidation_happens_at_commit_not_before(kit: AppKit) -> None:
    lot = kit.lot()
    kit.client.get(f"/parking-lots/{lot}")
    with kit.app.app_context():
        session = get_session()
        session.get_one(ParkingLot, lot).name = "Renamed"
        invalidate(f"parking_lot:{lot}")
        session.flush()
        assert kit.cached(f"parking_lot:{lot}") is not None
        session.commit()
        assert kit.cached(f"parking_lot:{lot}") is None


def test_rollback_leaves_the_cache_untouched(kit: AppKit) -> None:
    lot = kit.lot()
    kit.client.get(f"/parking-lots/{lot}")
    kit.client.get("/parking-lots")
    with kit.app.app_context():
        session = get_session()
        session.get_one(ParkingLot, lot).name = "Renamed"
        invalidate(f"parking_lot:{lot}", "parking_lots:all")
        session.flush()
        session.rollback()
        session.commit()  # a later commit must not carry the discarded invalidations
    assert kit.cached(f"parking_lot:{lot}")["name"] == "Central"
    assert kit.cached("parking_lots:all")[0]["name"] == "Central"


def test_failed_request_leaves_the_cache_warm(kit: AppKit, admin_headers: dict[str, str]) -> None:
    lot = kit.lot(spots=1)
    kit.client.post("/reservations", json={"lot_id": lot}, headers=admin_headers)
    kit.client.get(f"/parking-lots/{lot}")
    refused = kit.client.post("/reservations", json={"lot_id": lot}, headers=admin_headers)
    assert refused.status_code == 409
    assert kit.cached(f"parking_lot:{lot}") is not None


def test_fill_whose_lease_was_invalidated_is_dropped(
    kit: AppKit, admin_headers: dict[str, str]
) -> None:
    lot = kit.lot()
    cache = get_cache(kit.app)

    def load_then_concurrent_write() -> dict[str, Any] | None:
        with kit.app.app_context():
            old = queries.lot_detail(get_session(), lot)
        assert kit.redis.get(f"parking_lot:{lot}").startswith(b"L:")
        renamed = kit.client.patch(
            f"/parking-lots/{lot}", json={"name": "Renamed"}, headers=admin_headers
        )
        assert renamed.status_code == 200
        return old

    with kit.app.app_context():
        served = cache.get_or_fill(f"parking_lot:{lot}", load_then_concurrent_write, 5)
    assert served is not None
    assert served["name"] == "Central"
    assert kit.redis.get(f"parking_lot:{lot}") is None
    assert cache.stats.snapshot()["parking_lot:*"]["dropped_fills"] == 1
    assert kit.client.get(f"/parking-lots/{lot}").get_json()["name"] == "Renamed"


def test_loader_failure_releases_the_lease(kit: AppKit) -> None:
    cache = get_cache(kit.app)

    def broken() -> None:
        raise RuntimeError("database exploded")

    with kit.app.app_context(), pytest.raises(RuntimeError):
        cache.get_or_fill("parking_lot:1", broken, 5)
    assert kit.redis.get("parking_lot:1") is None


# Threads need their own connections: rows are committed, then deleted before the next test.
@pytest.mark.cachesync(db_reset="truncate")
def test_hundred_concurrent_misses_fill_once(
    kit: AppKit, redis_client: redis.Redis, db_bind: sa.Engine
) -> None:
    lot = kit.lot()
    app = create_app(
        {"APP_ENV": "testing", "CACHE_LEASE_WAIT_MS": 10_000},
        redis_client=redis_client,
        engine=db_bind,
    )
    lot_selects: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM parking_lots" in statement:
            lot_selects.append(statement)

    sa.event.listen(db_bind, "before_cursor_execute", count)
    readers = 100
    barrier = threading.Barrier(readers)

    def read(_: int) -> tuple[int, Any]:
        client = app.test_client()
        barrier.wait()
        response = client.get(f"/parking-lots/{lot}")
        return response.status_code, response.get_json()

    try:
        with ThreadPoolExecutor(readers) as pool:
            results = list(pool.map(read, range(readers)))
    finally:
        sa.event.remove(db_bind, "before_cursor_execute", count)
    assert {status for status, _ in results} == {200}
    assert all(body["name"] == "Central" for _, body in results)
    assert len(lot_selects) == 1
    stats = get_cache(app).stats.snapshot()["parking_lot:*"]
    assert (stats["fills"], stats["read_throughs"]) == (1, 0)


def test_key_prefix_is_applied_to_every_key(redis_client: redis.Redis, db_bind: sa.Engine) -> None:
    app = create_app(
        {"APP_ENV": "testing", "CACHE_KEY_PREFIX": "w1:"},
        redis_client=redis_client,
        engine=db_bind,
    )
    kit = AppKit(app, app.test_client(), redis_client)
    lot = kit.lot()
    kit.admin()
    headers = kit.headers("root")
    kit.client.post("/reservations", json={"lot_id": lot}, headers=headers)
    kit.client.get("/parking-lots")
    kit.client.get("/users", headers=headers)
    keys = sorted(k.decode() for k in redis_client.scan_iter())
    assert "w1:parking_lots:all" in keys
    assert "w1:users:all" in keys
    assert all(k.startswith("w1:") for k in keys), keys
    cleared = kit.client.post("/admin/clear-cache", headers=headers).get_json()
    assert cleared["cleared"] == {
        "users:*": 1,
        "user:*": 0,
        "parking_lot:*": 0,
        "parking_lots:*": 1,
    }
    assert is_fake(redis_client) or redis_client.exists("w1:active_users")
