"""The sample app's time-dependent behaviour, tested by moving the plugin's clock.

Each test runs on fakeredis by default and on a real Redis server with
``--cachesync-redis-url``: ``cachesync_clock`` moves Python's time and the TTLs of the test's
keys together, so nothing here waits.
"""

from __future__ import annotations

from typing import Any

import pytest
from appkit import AppKit

from pytest_cachesync import CacheClock, CacheSync
from sample_app.models import ParkingLot

START = "2026-05-01T09:00:00Z"


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    # The original app's development TTL, and a limit small enough to reach.
    app_config.update(CACHE_PARKING_TTL=10, CACHE_USER_TTL=10)
    return app_config


@pytest.fixture
def three_requests_per_hour(app_config: dict[str, Any]) -> None:
    """Request before ``kit``: the app is created with this limit."""
    app_config["RATE_LIMIT_PER_HOUR"] = 3


def change_price_behind_the_app(cachesync: CacheSync, lot_id: int, cents: int) -> None:
    """A write the app does not see (another service, a migration): nothing invalidates."""
    lot = cachesync.db.get(ParkingLot, lot_id)
    assert lot is not None
    lot.price_per_hour_cents = cents
    cachesync.db.commit()


# The stale read below is the point of the test: it may be served until the TTL ends.
@pytest.mark.cachesync(staleness=10)
@pytest.mark.cachesync_clock(START)
def test_cached_lot_is_served_until_its_ttl_then_refreshed(
    cachesync_clock: CacheClock, cachesync: CacheSync, kit: AppKit
) -> None:
    lot = kit.lot(cents=6000)
    assert kit.client.get(f"/parking-lots/{lot}").get_json()["price_per_hour_cents"] == 6000
    # A real server's TTLs count down in real time until the clock moves them: a loaded
    # machine can take tens of milliseconds from the fill to this line.
    assert 9_000 < cachesync.redis.pttl(cachesync.key(f"parking_lot:{lot}")) <= 10_000
    change_price_behind_the_app(cachesync, lot, 9000)

    cachesync_clock.advance(9.9)
    assert kit.client.get(f"/parking-lots/{lot}").get_json()["price_per_hour_cents"] == 6000

    cachesync_clock.advance(0.1)
    assert cachesync.redis.get(cachesync.key(f"parking_lot:{lot}")) is None
    assert kit.client.get(f"/parking-lots/{lot}").get_json()["price_per_hour_cents"] == 9000


@pytest.mark.cachesync_clock(START)
def test_reservation_cost_after_three_hours(cachesync_clock: CacheClock, kit: AppKit) -> None:
    lot = kit.lot(spots=1, cents=4000)
    kit.user("alice")
    headers = kit.headers("alice")
    booked = kit.client.post("/reservations", json={"lot_id": lot}, headers=headers).get_json()

    cachesync_clock.advance(3 * 3600)
    released = kit.client.delete(f"/reservations/{booked['id']}", headers=headers).get_json()

    assert released["start_at"] == "2026-05-01T09:00:00+00:00"
    assert released["end_at"] == "2026-05-01T12:00:00+00:00"
    assert released["cost_cents"] == 3 * 4000


@pytest.mark.cachesync_clock("2026-05-01T10:59:00Z")
def test_rate_limit_window_reopens_at_the_hour(
    cachesync_clock: CacheClock, cachesync: CacheSync, three_requests_per_hour: None, kit: AppKit
) -> None:
    for _ in range(3):
        assert kit.client.get("/parking-lots").status_code == 200
    refused = kit.client.get("/parking-lots")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "60"
    assert refused.get_json()["error"] == "rate limit exceeded"

    cachesync_clock.advance(59)
    still = kit.client.get("/parking-lots")
    assert (still.status_code, still.headers["Retry-After"]) == (429, "1")

    cachesync_clock.advance(1)
    assert kit.client.get("/parking-lots").status_code == 200
    # The closed window's counter expired with it, on the server too.
    window = int(cachesync_clock.timestamp() // 3600)
    assert list(cachesync.redis.scan_iter(match=cachesync.key("rate_limit:*"))) == [
        cachesync.key(f"rate_limit:ip:127.0.0.1:{window}").encode()
    ]


@pytest.mark.cachesync_clock("2026-11-27T23:59:30Z")
def test_daily_counter_rolls_over_at_midnight(
    cachesync_clock: CacheClock, cachesync: CacheSync, kit: AppKit
) -> None:
    lot = kit.lot(spots=3)
    kit.user("alice")
    headers = kit.headers("alice")
    assert (
        kit.client.post("/reservations", json={"lot_id": lot}, headers=headers).status_code == 201
    )
    assert cachesync.redis.get(cachesync.key("daily_reservations:2026-11-27")) == b"1"
    assert cachesync.redis.ttl(cachesync.key("daily_reservations:2026-11-27")) == 30

    cachesync_clock.advance(29.9)
    assert cachesync.redis.get(cachesync.key("daily_reservations:2026-11-27")) == b"1"
    cachesync_clock.advance(0.1)
    assert cachesync.redis.get(cachesync.key("daily_reservations:2026-11-27")) is None

    assert (
        kit.client.post("/reservations", json={"lot_id": lot}, headers=headers).status_code == 201
    )
    assert cachesync.redis.get(cachesync.key("daily_reservations:2026-11-28")) == b"1"
    assert cachesync.redis.ttl(cachesync.key("daily_reservations:2026-11-28")) == 24 * 3600


@pytest.mark.cachesync_clock(START)
def test_session_expires_after_twelve_hours(
    cachesync_clock: CacheClock, cachesync: CacheSync, kit: AppKit
) -> None:
    kit.user("alice")
    headers = kit.headers("alice")
    assert kit.client.get("/reservations", headers=headers).status_code == 200
    assert cachesync.redis.exists(cachesync.key("active_users"))

    cachesync_clock.advance(12 * 3600 - 1)
    assert kit.client.get("/reservations", headers=headers).status_code == 200

    cachesync_clock.advance(1)
    expired = kit.client.get("/reservations", headers=headers)
    assert expired.status_code == 401
    assert not list(cachesync.redis.scan_iter(match=cachesync.key("user_session:*")))
    assert not cachesync.redis.exists(cachesync.key("active_users"))
    # A new login opens a new 12 h session.
    assert kit.client.get("/reservations", headers=kit.headers("alice")).status_code == 200
