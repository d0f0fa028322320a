from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from appkit import AppKit

from pytest_cachesync import CacheSync

LOT = {
    "name": "Harbour",
    "address": "9 Dock Road",
    "pincode": "400001",
    "price_per_hour": "12.50",
    "number_of_spots": 4,
}


def test_public_list_and_get(kit: AppKit) -> None:
    lot = kit.lot(spots=2, cents=1999)
    listed = kit.client.get("/parking-lots").get_json()
    assert listed[0]["price_per_hour"] == 19.99
    assert listed[0]["price_per_hour_cents"] == 1999
    assert listed[0]["available_spots"] == 2
    detail = kit.client.get(f"/parking-lots/{lot}").get_json()
    assert [s["number"] for s in detail["spots"]] == [1, 2]
    spots = kit.client.get(f"/parking-lots/{lot}/available-spots").get_json()
    assert spots["available_spots"] == 2


def test_unknown_lot_is_404_everywhere(kit: AppKit, admin_headers: dict[str, str]) -> None:
    assert kit.client.get("/parking-lots/77").status_code == 404
    assert kit.client.get("/parking-lots/77/available-spots").status_code == 404
    assert kit.client.patch("/parking-lots/77", json={}, headers=admin_headers).status_code == 404
    assert kit.client.delete("/parking-lots/77", headers=admin_headers).status_code == 404
    assert kit.cached("parking_lot:77") is None


def test_create_invalidates_list_on_warm_cache(kit: AppKit, admin_headers: dict[str, str]) -> None:
    assert kit.client.get("/parking-lots").get_json() == []
    assert kit.cached("parking_lots:all") == []
    response = kit.client.post("/parking-lots", json=LOT, headers=admin_headers)
    assert response.status_code == 201
    assert response.get_json()["price_per_hour_cents"] == 1250
    assert len(response.get_json()["spots"]) == 4
    assert [lot["name"] for lot in kit.client.get("/parking-lots").get_json()] == ["Harbour"]


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({k: v for k, v in LOT.items() if k != "name"}, 400),
        (LOT | {"price_per_hour": "1.234"}, 400),
        (LOT | {"price_per_hour": -1}, 400),
        (LOT | {"price_per_hour": True}, 400),
        (LOT | {"number_of_spots": "4"}, 400),
        (LOT | {"number_of_spots": 0}, 400),
        (LOT | {"pincode": "abc"}, 400),
        (LOT | {"colour": "red"}, 400),
        (LOT | {"name": "Central"}, 409),
    ],
)
def test_create_rejects_bad_input_without_writing(
    kit: AppKit, admin_headers: dict[str, str], payload: dict[str, Any], status: int
) -> None:
    kit.lot("Central", spots=1)
    response = kit.client.post("/parking-lots", json=payload, headers=admin_headers)
    assert response.status_code == status
    assert "error" in response.get_json()
    assert [lot["name"] for lot in kit.client.get("/parking-lots").get_json()] == ["Central"]


def test_update_invalidates_lot_and_list(kit: AppKit, admin_headers: dict[str, str]) -> None:
    lot = kit.lot(spots=2)
    kit.client.get("/parking-lots")
    kit.client.get(f"/parking-lots/{lot}")
    response = kit.client.patch(
        f"/parking-lots/{lot}",
        json={"price_per_hour": 80, "number_of_spots": 5},
        headers=admin_headers,
    )
    assert response.status_code == 200
    detail = kit.client.get(f"/parking-lots/{lot}").get_json()
    assert (detail["price_per_hour_cents"], len(detail["spots"])) == (8000, 5)
    assert kit.client.get("/parking-lots").get_json()[0]["available_spots"] == 5
    shrunk = kit.client.put(
        f"/parking-lots/{lot}", json={"number_of_spots": 1}, headers=admin_headers
    )
    assert shrunk.get_json()["number_of_spots"] == 1
    assert kit.client.get(f"/parking-lots/{lot}/available-spots").get_json()["available_spots"] == 1


def test_cannot_shrink_below_occupied_spots(kit: AppKit, admin_headers: dict[str, str]) -> None:
    lot = kit.lot(spots=2)
    kit.client.post("/reservations", json={"lot_id": lot}, headers=admin_headers)
    kit.client.post("/reservations", json={"lot_id": lot}, headers=admin_headers)
    kit.client.get(f"/parking-lots/{lot}")
    response = kit.client.patch(
        f"/parking-lots/{lot}",
        json={"number_of_spots": 1, "name": "Renamed"},
        headers=admin_headers,
    )
    assert response.status_code == 409
    detail = kit.client.get(f"/parking-lots/{lot}").get_json()
    assert (detail["name"], detail["number_of_spots"]) == ("Central", 2)


def test_rename_to_existing_name_is_409(kit: AppKit, admin_headers: dict[str, str]) -> None:
    kit.lot("Central")
    other = kit.lot("Other")
    response = kit.client.patch(
        f"/parking-lots/{other}", json={"name": "Central"}, headers=admin_headers
    )
    assert response.status_code == 409


def test_delete_invalidates_and_refuses_occupied(
    kit: AppKit, admin_headers: dict[str, str]
) -> None:
    lot = kit.lot(spots=1)
    booked = kit.client.post("/reservations", json={"lot_id": lot}, headers=admin_headers)
    kit.client.get("/parking-lots")
    assert kit.client.delete(f"/parking-lots/{lot}", headers=admin_headers).status_code == 409
    kit.client.delete(f"/reservations/{booked.get_json()['id']}", headers=admin_headers)
    kit.client.get(f"/parking-lots/{lot}")
    assert kit.client.delete(f"/parking-lots/{lot}", headers=admin_headers).status_code == 200
    assert kit.client.get(f"/parking-lots/{lot}").status_code == 404
    assert kit.client.get("/parking-lots").get_json() == []


# The booking commits on its own connection while the resize is in progress.
@pytest.mark.cachesync(db_reset="truncate")
def test_shrinking_never_deletes_a_spot_booked_after_it_was_read(
    kit: AppKit, cachesync: CacheSync, admin_headers: dict[str, str]
) -> None:
    lot = kit.lot(spots=2)
    kit.user("alice")
    kit.user("bob")
    alice, bob = kit.headers("alice"), kit.headers("bob")
    assert kit.client.post("/reservations", json={"lot_id": lot}, headers=alice).status_code == 201
    booked: list[Any] = []

    def book_once_the_resize_has_read_the_spots(
        _conn: Any, _cursor: Any, statement: str, *_rest: Any
    ) -> None:
        if not booked and "ORDER BY parking_spots.number" in statement:
            booked.append(None)  # first: the booking runs statements too
            # Another thread, as another client would: a request nested in this one would
            # share its application context (its `g`, so its Session and user).
            thread = threading.Thread(target=book)
            thread.start()
            thread.join(timeout=30)

    def book() -> None:
        booked[0] = kit.app.test_client().post("/reservations", json={"lot_id": lot}, headers=bob)

    sa.event.listen(
        cachesync.engine, "after_cursor_execute", book_once_the_resize_has_read_the_spots
    )
    try:
        shrunk = kit.client.patch(
            f"/parking-lots/{lot}", json={"number_of_spots": 1}, headers=admin_headers
        )
    finally:
        sa.event.remove(
            cachesync.engine, "after_cursor_execute", book_once_the_resize_has_read_the_spots
        )
    assert booked[0].status_code == 201, booked[0].get_json()
    assert booked[0].get_json()["spot_number"] == 2
    assert shrunk.status_code == 409, shrunk.get_json()
    mine = kit.client.get(f"/reservations/{booked[0].get_json()['id']}", headers=bob)
    assert mine.status_code == 200, (mine.get_json(), booked[0].get_json())
    detail = kit.client.get(f"/parking-lots/{lot}").get_json()
    assert (detail["number_of_spots"], detail["occupied_spots"]) == (2, 2)
