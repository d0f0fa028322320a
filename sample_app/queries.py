"""Database loaders behind the cached reads (each returns the JSON shape the cache stores).

A loader runs after its lease is taken, and what it returns is cached: it must read the database
now. The request's Session may already hold the same rows from earlier in the request (the
logged-in user, a lot it checked), loaded before a concurrent write committed and invalidated
the key, so every loader refreshes the objects it gets (``populate_existing``) instead of
serving them from the identity map.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from sample_app.models import SPOT_AVAILABLE, SPOT_OCCUPIED, ParkingLot, ParkingSpot, User
from sample_app.serializers import lot_to_dict, spot_to_dict, user_to_dict


def users_list(session: Session) -> list[dict[str, Any]]:
    users = session.scalars(
        select(User).order_by(User.id).execution_options(populate_existing=True)
    )
    return [user_to_dict(u) for u in users]


def user_detail(session: Session, user_id: int) -> dict[str, Any] | None:
    user = session.get(User, user_id, populate_existing=True)
    return None if user is None else user_to_dict(user)


def lots_list(session: Session) -> list[dict[str, Any]]:
    available = func.coalesce(func.sum(case((ParkingSpot.status == SPOT_AVAILABLE, 1), else_=0)), 0)
    occupied = func.coalesce(func.sum(case((ParkingSpot.status == SPOT_OCCUPIED, 1), else_=0)), 0)
    rows = session.execute(
        select(ParkingLot, available, occupied)
        .outerjoin(ParkingSpot, ParkingSpot.lot_id == ParkingLot.id)
        .group_by(ParkingLot.id)
        .order_by(ParkingLot.id)
        .execution_options(populate_existing=True)
    ).all()
    return [lot_to_dict(lot, int(free), int(taken)) for lot, free, taken in rows]


def lot_detail(session: Session, lot_id: int) -> dict[str, Any] | None:
    lot = session.get(ParkingLot, lot_id, populate_existing=True)
    if lot is None:
        return None
    spots = list(
        session.scalars(
            select(ParkingSpot)
            .where(ParkingSpot.lot_id == lot_id)
            .order_by(ParkingSpot.number)
            .execution_options(populate_existing=True)
        )
    )
    free = sum(1 for s in spots if s.status == SPOT_AVAILABLE)
    data = lot_to_dict(lot, free, len(spots) - free)
    data["spots"] = [spot_to_dict(s) for s in spots]
    return data
