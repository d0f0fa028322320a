"""Redis faults against a throwaway redis-server: killed, slow, paused, brought back.

The app builds its own client from ``REDIS_URL`` (short timeout, no retries), as in production;
the test drives the faults through a control client of its own.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis
import sqlalchemy as sa
from appkit import AppKit
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from sample_app import cache_keys, create_app
from sample_app.cache import CacheLayer
from sample_app.db import get_session
from sample_app.models import SPOT_AVAILABLE, ParkingSpot

from .figures import Figures
from .redis_server import ThrowawayRedis, redis_server_binary, throwaway_redis

SOCKET_TIMEOUT = 0.2
# A request skips Redis after its first failure, so it costs about one timeout at most; the
# margin absorbs a noisy machine.
MAX_DEGRADED_LATENCY = 1.5
STEPS_PER_PHASE = 40


@pytest.fixture
def server() -> Iterator[ThrowawayRedis]:
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    with throwaway_redis(binary) as started:
        yield started


@pytest.fixture
def app(
    server: ThrowawayRedis, app_config: dict[str, Any], db_bind: sa.Engine | sa.Connection
) -> Flask:
    config = app_config | {"REDIS_URL": server.url, "REDIS_SOCKET_TIMEOUT": SOCKET_TIMEOUT}
    flask_app = create_app(config, engine=db_bind)
    flask_app.testing = True
    return flask_app


class Traffic:
    """A fixed user workload; records statuses and latencies, checks lot data against the DB."""

    def __init__(self, kit: AppKit, lot_id: int, username: str) -> None:
        self.kit = kit
        self.client: FlaskClient = kit.client
        self.lot_id = lot_id
        self.username = username
        self.user_id = 0
        self.headers: dict[str, str] = {}
        self.reservation: int | None = None
        self.statuses: list[tuple[str, int]] = []
        self.latencies: list[float] = []
        self.stale: list[dict[str, Any]] = []

    def login(self) -> None:
        response = self.call(
            "POST", "/auth/login", json={"username": self.username, "password": "secret-pass"}
        )
        assert response.status_code == 200
        self.headers = {"Authorization": f"Bearer {response.get_json()['token']}"}
        self.user_id = response.get_json()["user"]["id"]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        started = time.perf_counter()
        response = self.client.open(path, method=method, headers=self.headers, **kwargs)
        self.latencies.append(time.perf_counter() - started)
        self.statuses.append((path, response.status_code))
        assert response.is_json, (path, response.data[:200])
        return response

    def free_spots_in_db(self) -> int:
        with self.kit.app.app_context():
            count = get_session().scalar(
                select(func.count())
                .select_from(ParkingSpot)
                .where(ParkingSpot.lot_id == self.lot_id, ParkingSpot.status == SPOT_AVAILABLE)
            )
        return int(count or 0)

    def check_lot(self) -> None:
        for path in (f"/parking-lots/{self.lot_id}", "/parking-lots"):
            body = self.call("GET", path).get_json()
            lot = (
                body if isinstance(body, dict) else next(b for b in body if b["id"] == self.lot_id)
            )
            truth = self.free_spots_in_db()
            if lot["available_spots"] != truth:
                self.stale.append({"path": path, "served": lot["available_spots"], "db": truth})

    def step(self, index: int) -> None:
        kind = index % 3
        if kind == 0 and self.reservation is None:
            booked = self.call("POST", "/reservations", json={"lot_id": self.lot_id})
            assert booked.status_code == 201, booked.get_json()
            self.reservation = booked.get_json()["id"]
        elif kind == 0:
            released = self.call("POST", f"/reservations/{self.reservation}/release")
            assert released.status_code == 200, released.get_json()
            self.reservation = None
        elif kind == 1:
            assert self.call("GET", f"/users/{self.user_id}").status_code == 200
        else:
            self.check_lot()

    def run(self, steps: int) -> None:
        for index in range(steps):
            self.step(index)

    @property
    def server_errors(self) -> list[tuple[str, int]]:
        return [(path, status) for path, status in self.statuses if status >= 500]


@pytest.fixture
def traffic(kit: AppKit) -> Traffic:
    lot_id = kit.lot(spots=3)
    kit.user("alice")
    workload = Traffic(kit, lot_id, "alice")
    workload.login()
    return workload


def revoked_token_requests(
    kit: AppKit, revoked: dict[str, dict[str, str]], lot_id: int
) -> tuple[int, int]:
    """Each revoked token on 3 routes: (requests, requests not refused with a 401)."""
    tried = accepted = 0
    for headers in revoked.values():
        for method, path, body in (
            ("GET", "/users", None),
            ("GET", "/reservations", None),
            ("POST", "/reservations", {"lot_id": lot_id}),
        ):
            response = kit.client.open(path, method=method, headers=headers, json=body)
            assert response.status_code < 500, (path, response.data[:200])
            tried += 1
            accepted += response.status_code != 401
    return tried, accepted


def test_killed_redis_costs_no_request_and_recovers_without_restart(
    traffic: Traffic, server: ThrowawayRedis, figures: Figures
) -> None:
    client = traffic.client
    traffic.kit.admin("root")
    revoked = traffic.kit.revoked_headers(traffic.kit.headers("root"))
    traffic.run(STEPS_PER_PHASE)
    traffic.check_lot()
    assert server.control().exists(cache_keys.parking_lot(traffic.lot_id))

    server.kill()
    outage_start = len(traffic.latencies)
    traffic.run(STEPS_PER_PHASE)
    outage_latencies = traffic.latencies[outage_start:]
    # With Redis gone only the database can refuse them: revocation must not fail open.
    revoked_tried, revoked_accepted = revoked_token_requests(traffic.kit, revoked, traffic.lot_id)
    # Logged out while Redis is down: its session key (if the server kept it) is not deleted.
    assert traffic.call("POST", "/auth/logout").status_code == 200
    logged_out_during_outage = traffic.headers
    revoked_tried += 1
    revoked_accepted += traffic.call("GET", "/reservations").status_code != 401
    during_outage = revoked_tried
    traffic.login()
    down = client.get("/health/redis")
    assert down.status_code == 503
    assert down.get_json()["status"] == "unavailable"

    server.start()  # same port, empty: the app is not rebuilt
    assert client.get("/health/redis").status_code == 200
    # The session lived in the killed server: the old token is refused, a new login works.
    sessions_lost = traffic.call("GET", f"/users/{traffic.user_id}").status_code == 401
    tried_after, accepted_after = revoked_token_requests(traffic.kit, revoked, traffic.lot_id)
    traffic.headers = logged_out_during_outage
    revoked_tried += tried_after + 1
    revoked_accepted += accepted_after + (traffic.call("GET", "/reservations").status_code != 401)
    traffic.login()
    traffic.run(STEPS_PER_PHASE)
    traffic.check_lot()
    control = server.control()
    assert control.exists(cache_keys.parking_lot(traffic.lot_id)), "cache not filled again"

    figures.record(
        "redis_killed",
        requests=len(traffic.statuses),
        requests_during_outage=len(outage_latencies),
        server_errors_5xx=len(traffic.server_errors),
        stale_lot_reads=len(traffic.stale),
        max_latency_during_outage_ms=round(max(outage_latencies) * 1000, 1),
        recovered_without_restart=True,
        token_refused_after_restart=sessions_lost,
        revoked_token_requests=revoked_tried,
        revoked_token_requests_during_outage=during_outage,
        revoked_tokens_accepted=revoked_accepted,
    )
    assert revoked_accepted == 0
    assert traffic.server_errors == []
    assert traffic.stale == []
    assert sessions_lost
    assert max(outage_latencies) < MAX_DEGRADED_LATENCY


def test_slow_redis_times_out_fast_and_recovers(
    traffic: Traffic, server: ThrowawayRedis, figures: Figures
) -> None:
    traffic.run(6)
    sleep_seconds = 2
    sleeper = threading.Thread(
        target=lambda: server.control().execute_command("DEBUG", "SLEEP", sleep_seconds)  # type: ignore[no-untyped-call]
    )
    slow_start = len(traffic.latencies)
    sleeper.start()
    steps = 0
    try:
        while sleeper.is_alive() and steps < 60:
            traffic.step(steps)
            steps += 1
    finally:
        sleeper.join(timeout=30)
    slow_latencies = traffic.latencies[slow_start:]
    assert steps >= 3, "the server was not slow for long enough to measure"
    assert traffic.client.get("/health/redis").status_code == 200
    traffic.run(12)

    figures.record(
        "redis_slow",
        server_sleep_s=sleep_seconds,
        socket_timeout_s=SOCKET_TIMEOUT,
        requests=len(traffic.statuses),
        requests_while_slow=len(slow_latencies),
        server_errors_5xx=len(traffic.server_errors),
        stale_lot_reads=len(traffic.stale),
        max_latency_while_slow_ms=round(max(slow_latencies) * 1000, 1),
    )
    assert traffic.server_errors == []
    assert traffic.stale == []
    assert max(slow_latencies) < MAX_DEGRADED_LATENCY


def test_invalidation_missed_during_pause_is_never_served(
    kit: AppKit, server: ThrowawayRedis, figures: Figures
) -> None:
    lot_id = kit.lot("Central")
    kit.admin()
    headers = kit.headers("root")
    key = cache_keys.parking_lot(lot_id)
    control = server.control()
    assert kit.client.get(f"/parking-lots/{lot_id}").get_json()["name"] == "Central"
    assert kit.client.get("/parking-lots").status_code == 200
    assert json.loads(control.get(key) or "null")["name"] == "Central"

    # Writes block, reads answer: the app's DEL after the commit times out and is dropped.
    control.client_pause(30_000, all=False)
    try:
        renamed = kit.client.patch(
            f"/parking-lots/{lot_id}", json={"name": "Renamed"}, headers=headers
        )
        during = kit.client.get(f"/parking-lots/{lot_id}").get_json()["name"]
    finally:
        control.client_unpause()
    assert renamed.status_code == 200, renamed.get_json()
    survived = json.loads(control.get(key) or "null")
    # The fault really happened: the old value is still on the server.
    assert survived is not None
    assert survived["name"] == "Central"

    after = kit.client.get(f"/parking-lots/{lot_id}").get_json()["name"]
    listed = {lot["id"]: lot["name"] for lot in kit.client.get("/parking-lots").get_json()}
    served = [during, after, listed[lot_id]]
    stale = sum(1 for name in served if name != "Renamed")
    figures.record(
        "redis_missed_invalidation",
        old_value_survived_on_server=True,
        reads_checked=len(served),
        stale_reads=stale,
        cached_after_recovery=json.loads(control.get(key) or "null") is not None,
    )
    assert stale == 0, served
    assert json.loads(control.get(key) or "null")["name"] == "Renamed"


def test_failure_during_recovery_flush_keeps_the_cache_dirty() -> None:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    layer = CacheLayer(client)
    layer.guarded(lambda c: c.ping(), None, needed=True)  # healthy: nothing to flush
    assert not layer.dirty
    layer._mark_down(redis.ConnectionError("outage"))
    flush = layer._delete_patterns

    def flush_while_another_invalidation_fails(patterns: Any) -> dict[str, int]:
        counts = flush(patterns)
        # Another thread's invalidation is lost after the flush passed its key.
        client.set("parking_lot:7", b"{}")
        layer._mark_down(redis.ConnectionError("lost invalidation"))
        return counts

    layer._delete_patterns = flush_while_another_invalidation_fails  # type: ignore[method-assign]
    layer.guarded(lambda c: c.ping(), None)
    assert layer.dirty, "a failure during the flush was forgotten"
    layer._delete_patterns = flush
    layer.guarded(lambda c: c.ping(), None)
    assert not layer.dirty
    assert client.get("parking_lot:7") is None
