"""JSON shapes of the models (what the API returns and the cache stores).

Money is returned both as integer cents and as a number of currency units.
"""

from __future__ import annotations

from typing import Any

from sample_app.models import ParkingLot, ParkingSpot, Reservation, User


def money(cents: int | None) -> float | None:
    return None if cents is None else cents / 100


def user_to_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "role": user.role,
        "vehicle_number": user.vehicle_number,
        "phone": user.phone,
        "created_at": user.created_at.isoformat(),
    }


def spot_to_dict(spot: ParkingSpot) -> dict[str, Any]:
    return {"id": spot.id, "number": spot.number, "status": spot.status}


def lot_to_dict(lot: ParkingLot, available: int, occupied: int) -> dict[str, Any]:
    return {
        "id": lot.id,
        "name": lot.name,
        "address": lot.address,
        "pincode": lot.pincode,
        "price_per_hour": money(lot.price_per_hour_cents),
        "price_per_hour_cents": lot.price_per_hour_cents,
        "number_of_spots": lot.number_of_spots,
        "available_spots": available,
        "occupied_spots": occupied,
        "created_at": lot.created_at.isoformat(),
    }


def reservation_to_dict(reservation: Reservation, spot: ParkingSpot) -> dict[str, Any]:
    return {
        "id": reservation.id,
        "lot_id": spot.lot_id,
        "spot_id": spot.id,
        "spot_number": spot.number,
        "user_id": reservation.user_id,
        "status": "active" if reservation.end_at is None else "released",
        "start_at": reservation.start_at.isoformat(),
        "end_at": None if reservation.end_at is None else reservation.end_at.isoformat(),
        "price_per_hour_cents": reservation.price_per_hour_cents,
        "cost_cents": reservation.cost_cents,
        "cost": money(reservation.cost_cents),
    }
