from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from appkit import AppKit
from freezegun import freeze_time
from sqlalchemy.orm import Session

from pytest_cachesync import CacheSync
from sample_app.booking import cost_cents


def test_book_takes_first_free_spot_and_updates_cached_lot(kit: AppKit) -> None:
    lot = kit.lot(spots=2)
    kit.user("alice")
    headers = kit.headers("alice")
    kit.client.get("/parking-lots")
    kit.client.get(f"/parking-lots/{lot}")
    first = kit.client.post("/reservations", json={"lot_id": lot}, headers=headers)
    assert first.status_code == 201
    assert (first.get_json()["spot_number"], first.get_json()["status"]) == (1, "active")
    assert kit.cached(f"parking_lot:{lot}") is None
    assert kit.cached("parking_lots:all") is None
    assert kit.client.get(f"/parking-lots/{lot}").get_json()["available_spots"] == 1
    assert kit.client.get("/parking-lots").get_json()[0]["occupied_spots"] == 1
    second = kit.client.post("/reservations", json={"lot_id": lot}, headers=headers)
    assert second.get_json()["spot_number"] == 2
    full = kit.client.post("/reservations", json={"lot_id": lot}, headers=headers)
    assert full.status_code == 409
    assert kit.client.get(f"/parking-lots/{lot}/available-spots").get_json()["spots"] == []


@pytest.mark.parametrize(
    ("payload", "status"),
    [({}, 400), ({"lot_id": "1"}, 400), ({"lot_id": 0}, 400), ({"lot_id": 999}, 404)],
)
def test_book_rejects_bad_input(
    kit: AppKit, user_headers: dict[str, str], payload: dict[str, object], status: int
) -> None:
    response = kit.client.post("/reservations", json=payload, headers=user_headers)
    assert response.status_code == status
    assert kit.client.get("/reservations", headers=user_headers).get_json() == []


def test_booking_requires_login(kit: AppKit) -> None:
    lot = kit.lot()
    assert kit.client.post("/reservations", json={"lot_id": lot}).status_code == 401


def test_release_computes_cost_from_the_app_clock(kit: AppKit) -> None:
    lot = kit.lot(spots=1, cents=6000)
    kit.user("alice")
    with freeze_time(dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)) as frozen:
        headers = kit.headers("alice")
        booked = kit.client.post("/reservations", json={"lot_id": lot}, headers=headers)
        frozen.tick(dt.timedelta(minutes=90, seconds=1))
        kit.client.get(f"/parking-lots/{lot}")
        released = kit.client.delete(f"/reservations/{booked.get_json()['id']}", headers=headers)
        again = kit.client.post(f"/reservations/{booked.get_json()['id']}/release", headers=headers)
    body = released.get_json()
    assert released.status_code == 200
    assert body["status"] == "released"
    assert body["cost_cents"] == 9100  # 91 started minutes at 60.00 per hour
    assert body["end_at"] == "2026-05-01T10:30:01+00:00"
    assert kit.client.get(f"/parking-lots/{lot}").get_json()["available_spots"] == 1
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("price", "seconds", "expected"),
    [(6000, 1, 100), (6000, 60, 100), (6000, 61, 200), (1000, 60, 17), (999, 3600, 999)],
)
def test_cost_rounding(price: int, seconds: float, expected: int) -> None:
    assert cost_cents(price, seconds) == expected


def test_reservations_are_private(kit: AppKit, admin_headers: dict[str, str]) -> None:
    lot = kit.lot()
    kit.user("alice")
    kit.user("bob")
    alice = kit.headers("alice")
    bob = kit.headers("bob")
    booked = kit.client.post("/reservations", json={"lot_id": lot}, headers=alice).get_json()
    assert [r["id"] for r in kit.client.get("/reservations", headers=alice).get_json()] == [
        booked["id"]
    ]
    assert kit.client.get("/reservations", headers=bob).get_json() == []
    assert kit.client.get(f"/reservations/{booked['id']}", headers=bob).status_code == 403
    assert kit.client.delete(f"/reservations/{booked['id']}", headers=bob).status_code == 403
    assert kit.client.get(f"/reservations/{booked['id']}", headers=alice).status_code == 200
    assert kit.client.get(f"/reservations/{booked['id']}", headers=admin_headers).status_code == 200
    assert kit.client.get("/reservations/999", headers=alice).status_code == 404


def test_booking_counts_daily_reservations_until_midnight(kit: AppKit) -> None:
    lot = kit.lot()
    kit.user("alice")
    with freeze_time(dt.datetime(2026, 11, 27, 23, 0, tzinfo=dt.UTC)):
        headers = kit.headers("alice")
        kit.client.post("/reservations", json={"lot_id": lot}, headers=headers)
        assert kit.redis.get("daily_reservations:2026-11-27") == b"1"
        assert 3590 < kit.redis.ttl("daily_reservations:2026-11-27") <= 3600


# Threads need their own connections: rows are committed, then deleted before the next test.
@pytest.mark.cachesync(db_reset="truncate")
def test_concurrent_bookings_never_double_book(kit: AppKit) -> None:
    spots, clients = 5, 16
    lot = kit.lot(spots=spots)
    names = [f"driver{i}" for i in range(clients)]
    for name in names:
        kit.user(name)
    headers = [kit.headers(name) for name in names]
    barrier = threading.Barrier(clients)

    def book(h: dict[str, str]) -> tuple[int, dict[str, object]]:
        client = kit.app.test_client()
        barrier.wait()
        response = client.post("/reservations", json={"lot_id": lot}, headers=h)
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(book, headers))
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] * spots + [409] * (clients - spots)
    won = [body["spot_id"] for status, body in results if status == 201]
    assert len(set(won)) == spots
    detail = kit.client.get(f"/parking-lots/{lot}").get_json()
    assert (detail["available_spots"], detail["occupied_spots"]) == (0, spots)


# The release commits on its own connection; the lot's deletion runs on another.
@pytest.mark.cachesync(db_reset="truncate")
def test_release_answers_with_what_it_committed_when_the_lot_is_deleted_right_after(
    kit: AppKit, cachesync: CacheSync, admin_headers: dict[str, str]
) -> None:
    lot = kit.lot(spots=1)
    kit.user("alice")
    alice = kit.headers("alice")
    booked = kit.client.post("/reservations", json={"lot_id": lot}, headers=alice).get_json()
    deleted: list[Any] = []
    released_in_this_thread: list[bool] = []

    def note_the_release(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.startswith("UPDATE reservations SET end_at"):
            released_in_this_thread.append(True)

    def delete_the_lot_once_the_release_committed(_session: Session) -> None:
        if released_in_this_thread and not deleted:
            deleted.append(None)
            # Another thread, as another client would (a nested request shares this one's `g`).
            thread = threading.Thread(target=delete)
            thread.start()
            thread.join(timeout=30)

    def delete() -> None:
        deleted[0] = kit.app.test_client().delete(f"/parking-lots/{lot}", headers=admin_headers)

    sa.event.listen(cachesync.engine, "after_cursor_execute", note_the_release)
    sa.event.listen(Session, "after_commit", delete_the_lot_once_the_release_committed)
    try:
        released = kit.client.delete(f"/reservations/{booked['id']}", headers=alice)
    finally:
        sa.event.remove(Session, "after_commit", delete_the_lot_once_the_release_committed)
        sa.event.remove(cachesync.engine, "after_cursor_execute", note_the_release)
    assert deleted, "the release never committed"
    assert deleted[0].status_code == 200, deleted[0].get_json()
    assert released.status_code == 200, released.get_json()
    assert released.get_json()["status"] == "released"
    assert released.get_json()["spot_number"] == 1
    assert kit.client.get("/reservations", headers=alice).get_json() == []
