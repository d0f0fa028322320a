"""Many threads booking, releasing, updating lots and reading; then the cache must equal the DB.

Runs on fakeredis + SQLite by default and on the real servers with ``CACHESYNC_REDIS_URL`` /
``CACHESYNC_DB_URL``. Threads need their own connections, hence the truncate strategy.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from appkit import AppKit
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sample_app import cache_keys, create_app, queries
from sample_app.cache import LEASE_PREFIX, get_cache
from sample_app.db import get_session
from sample_app.models import SPOT_AVAILABLE, SPOT_OCCUPIED, ParkingSpot, Reservation

from .figures import Figures

pytestmark = pytest.mark.cachesync(db_reset="truncate")

USERS = 6
OPERATIONS_PER_THREAD = 40
LOT_SIZES = (3, 4)


class Worker:
    """One thread's client and its seeded sequence of operations."""

    def __init__(self, app: Flask, token: str, user_id: int, lots: list[int], seed: int) -> None:
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {token}"}
        self.user_id = user_id
        self.lots = lots
        self.random = random.Random(seed)
        self.statuses: Counter[int] = Counter()
        self.mine: list[int] = []

    def _do(self, method: str, path: str, body: Any = None) -> Any:
        response = self.client.open(path, method=method, headers=self.headers, json=body)
        self.statuses[response.status_code] += 1
        return response

    def user_operation(self) -> None:
        lot = self.random.choice(self.lots)
        choice = self.random.random()
        if choice < 0.3:
            booked = self._do("POST", "/reservations", {"lot_id": lot})
            if booked.status_code == 201:
                self.mine.append(booked.get_json()["id"])
        elif choice < 0.5 and self.mine:
            self._do("POST", f"/reservations/{self.mine.pop(0)}/release")
        elif choice < 0.65:
            self._do("GET", f"/parking-lots/{lot}/available-spots")
        elif choice < 0.8:
            self._do("GET", f"/parking-lots/{lot}")
        elif choice < 0.9:
            self._do("GET", "/parking-lots")
        else:
            self._do("GET", f"/users/{self.user_id}")

    def admin_operation(self) -> None:
        lot = self.random.choice(self.lots)
        choice = self.random.random()
        if choice < 0.3:
            self._do(
                "PATCH", f"/parking-lots/{lot}", {"price_per_hour": self.random.randint(1, 99)}
            )
        elif choice < 0.55:
            self._do(
                "PATCH", f"/parking-lots/{lot}", {"number_of_spots": self.random.randint(2, 6)}
            )
        elif choice < 0.7:
            self._do("PATCH", f"/users/{self.random.randint(1, USERS + 1)}", {"phone": "555"})
        elif choice < 0.85:
            self._do("GET", "/users")
        else:
            self._do("GET", "/parking-lots")


def _recompute(session: Session, name: str) -> Any:
    """What ``name`` should hold, read from the database with the cache bypassed."""
    if name == cache_keys.USERS_ALL:
        value: Any = queries.users_list(session)
    elif name == cache_keys.PARKING_LOTS_ALL:
        value = queries.lots_list(session)
    elif name.startswith("parking_lot:"):
        value = queries.lot_detail(session, int(name.split(":")[1]))
    elif name.startswith("user:"):
        value = queries.user_detail(session, int(name.split(":")[1]))
    else:
        raise AssertionError(f"unexpected cache key {name!r}")
    return json.loads(json.dumps(value))


def cache_versus_database(app: Flask, redis_client: redis.Redis) -> dict[str, Any]:
    prefix = get_cache(app).prefix
    checked, stale, leases = 0, [], 0
    with app.app_context():
        session = get_session()
        for pattern in cache_keys.CACHE_PATTERNS:
            for raw_key in redis_client.scan_iter(match=prefix + pattern):
                name = bytes(raw_key).decode()[len(prefix) :]
                raw = redis_client.get(raw_key)
                if raw is None:
                    continue
                text = raw.decode() if isinstance(raw, bytes) else raw
                if text.startswith(LEASE_PREFIX):
                    leases += 1
                    continue
                checked += 1
                if json.loads(text) != _recompute(session, name):
                    stale.append(name)
    return {"cache_keys_checked": checked, "stale_keys": stale, "leases_left": leases}


def booking_invariants(app: Flask) -> dict[str, int]:
    with app.app_context():
        session = get_session()
        active = select(Reservation.spot_id).where(Reservation.end_at.is_(None))
        per_spot = Counter(session.scalars(active))
        occupied = set(
            session.scalars(select(ParkingSpot.id).where(ParkingSpot.status == SPOT_OCCUPIED))
        )
    return {
        "active_reservations": sum(per_spot.values()),
        "double_booked_spots": sum(1 for n in per_spot.values() if n > 1),
        "occupied_without_reservation": len(occupied - set(per_spot)),
        "reservation_on_free_spot": len(set(per_spot) - occupied),
    }


def test_concurrent_traffic_leaves_no_stale_key_and_no_double_booking(
    app: Flask, kit: AppKit, redis_client: redis.Redis, db_bind: sa.Engine, figures: Figures
) -> None:
    kit.admin("root")
    users = [kit.user(f"driver{n}") for n in range(USERS)]
    lots = [kit.lot(f"Lot {n}", spots=size) for n, size in enumerate(LOT_SIZES)]
    workers = [
        Worker(app, kit.token(f"driver{n}"), user_id, lots, seed=n)
        for n, user_id in enumerate(users)
    ]
    admin = Worker(app, kit.token("root"), 0, lots, seed=99)
    barrier = threading.Barrier(len(workers) + 1)

    def run(worker: Worker) -> None:
        barrier.wait()
        operation = worker.admin_operation if worker is admin else worker.user_operation
        for _ in range(OPERATIONS_PER_THREAD):
            operation()

    with ThreadPoolExecutor(len(workers) + 1) as pool:
        list(pool.map(run, [*workers, admin]))

    statuses: Counter[int] = Counter()
    for worker in [*workers, admin]:
        statuses.update(worker.statuses)
    # Reads after the storm go through the cache: they must agree with the database too.
    availability_mismatches = 0
    with app.app_context():
        session = get_session()
        for lot in lots:
            served = kit.client.get(f"/parking-lots/{lot}/available-spots").get_json()
            free = session.scalar(
                select(func.count())
                .select_from(ParkingSpot)
                .where(ParkingSpot.lot_id == lot, ParkingSpot.status == SPOT_AVAILABLE)
            )
            availability_mismatches += served["available_spots"] != free
    kit.client.get("/parking-lots")
    comparison = cache_versus_database(app, redis_client)
    invariants = booking_invariants(app)
    figures.record(
        "concurrency",
        threads=len(workers) + 1,
        operations=sum(statuses.values()),
        statuses=dict(sorted(statuses.items())),
        server_errors_5xx=sum(n for s, n in statuses.items() if s >= 500),
        cache_keys_checked=comparison["cache_keys_checked"],
        stale_keys=len(comparison["stale_keys"]),
        leases_left=comparison["leases_left"],
        availability_mismatches=availability_mismatches,
        backend=f"{type(redis_client).__name__} + {db_bind.dialect.name}",
        **invariants,
    )
    assert sum(n for s, n in statuses.items() if s >= 500) == 0, statuses
    assert statuses[201] > 0, "no booking succeeded: the run exercised nothing"
    assert comparison["stale_keys"] == []
    assert comparison["cache_keys_checked"] > 0
    assert invariants["double_booked_spots"] == 0
    assert invariants["occupied_without_reservation"] == 0
    assert invariants["reservation_on_free_spot"] == 0
    assert availability_mismatches == 0


def test_hundred_concurrent_misses_cost_one_database_load(
    kit: AppKit, redis_client: redis.Redis, db_bind: sa.Engine, figures: Figures
) -> None:
    lot = kit.lot()
    # A waiter gives up after CACHE_LEASE_WAIT_MS; a generous wait keeps a slow CI machine
    # from turning waiters into read-throughs.
    app = create_app(
        {"APP_ENV": "testing", "CACHE_LEASE_WAIT_MS": 10_000, "RATE_LIMIT_PER_HOUR": 0},
        redis_client=redis_client,
        engine=db_bind,
    )
    loads: list[int] = []
    original = queries.lot_detail

    def counting_lot_detail(session: Session, lot_id: int) -> dict[str, Any] | None:
        loads.append(lot_id)
        return original(session, lot_id)

    readers = 100
    barrier = threading.Barrier(readers)

    def read(_: int) -> int:
        client = app.test_client()
        barrier.wait()
        return client.get(f"/parking-lots/{lot}").status_code

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(queries, "lot_detail", counting_lot_detail)
        with ThreadPoolExecutor(readers) as pool:
            statuses = list(pool.map(read, range(readers)))
    stats = get_cache(app).stats.snapshot()["parking_lot:*"]
    figures.record(
        "concurrent_misses",
        readers=readers,
        database_loads=len(loads),
        fills=stats["fills"],
        read_throughs=stats["read_throughs"],
    )
    assert statuses == [200] * readers
    assert len(loads) == 1
    assert stats["fills"] == 1
