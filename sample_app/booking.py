"""Atomic booking and release of parking spots.

Booking claims a spot with ``UPDATE ... WHERE id = ? AND status = 'available'`` and checks the
row count, so two transactions can never both win one spot (on PostgreSQL the candidate is also
picked with ``FOR UPDATE SKIP LOCKED``; SQLite ignores that clause and serialises writers).
Cost: billed per started minute (at least one), ``minutes * price_per_hour_cents / 60`` rounded
half-up to the cent.
"""

from __future__ import annotations

import math
from typing import cast

import redis
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from sample_app import cache_keys, clock
from sample_app.cache import get_cache, invalidate_on_commit
from sample_app.errors import conflict, not_found
from sample_app.models import (
    SPOT_AVAILABLE,
    SPOT_OCCUPIED,
    ParkingLot,
    ParkingSpot,
    Reservation,
    User,
)

_MAX_CLAIM_ATTEMPTS = 50


def cost_cents(price_per_hour_cents: int, seconds: float) -> int:
    minutes = max(1, math.ceil(seconds / 60))
    return (minutes * price_per_hour_cents + 30) // 60


def lot_keys(lot_id: int) -> tuple[str, str]:
    """Cache keys whose content changes when a spot of ``lot_id`` changes."""
    return cache_keys.parking_lot(lot_id), cache_keys.PARKING_LOTS_ALL


def book_first_free_spot(session: Session, user: User, lot_id: int) -> Reservation:
    """Claim the lowest-numbered free spot of the lot for ``user`` (flushed, not committed)."""
    lot = session.get(ParkingLot, lot_id)
    if lot is None:
        raise not_found("parking lot", lot_id)
    for _ in range(_MAX_CLAIM_ATTEMPTS):
        spot_id = session.scalar(
            select(ParkingSpot.id)
            .where(ParkingSpot.lot_id == lot_id, ParkingSpot.status == SPOT_AVAILABLE)
            .order_by(ParkingSpot.number)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if spot_id is None:
            raise conflict("no free spot in this parking lot", {"lot_id": lot_id})
        claimed = cast(
            CursorResult[tuple[()]],
            session.execute(
                update(ParkingSpot)
                .where(ParkingSpot.id == spot_id, ParkingSpot.status == SPOT_AVAILABLE)
                .values(status=SPOT_OCCUPIED, user_id=user.id)
                .execution_options(synchronize_session=False)
            ),
        )
        if claimed.rowcount == 1:
            reservation = Reservation(
                spot_id=spot_id,
                user_id=user.id,
                price_per_hour_cents=lot.price_per_hour_cents,
                start_at=clock.now(),
            )
            session.add(reservation)
            session.flush()
            invalidate_on_commit(session, *lot_keys(lot_id))
            return reservation
    raise conflict("the parking lot is too busy, try again", {"lot_id": lot_id})


def release(session: Session, reservation: Reservation) -> Reservation:
    """End an active reservation with its cost and free its spot (flushed, not committed)."""
    ended = clock.now()
    cost = cost_cents(
        reservation.price_per_hour_cents, (ended - reservation.start_at).total_seconds()
    )
    closed = cast(
        CursorResult[tuple[()]],
        session.execute(
            update(Reservation)
            .where(Reservation.id == reservation.id, Reservation.end_at.is_(None))
            .values(end_at=ended, cost_cents=cost)
            .execution_options(synchronize_session=False)
        ),
    )
    if closed.rowcount != 1:
        raise conflict("reservation already released", {"id": reservation.id})
    session.execute(
        update(ParkingSpot)
        .where(ParkingSpot.id == reservation.spot_id)
        .values(status=SPOT_AVAILABLE, user_id=None)
        .execution_options(synchronize_session=False)
    )
    session.refresh(reservation)
    spot = session.get(ParkingSpot, reservation.spot_id)
    if spot is not None:
        session.refresh(spot)
        invalidate_on_commit(session, *lot_keys(spot.lot_id))
    return reservation


def count_today(counter: str) -> None:
    """INCR ``daily_{counter}:{date}``, expiring at the next UTC midnight (relative TTL)."""
    cache = get_cache()
    key = cache.key(cache_keys.daily(counter, clock.now().date()))
    ttl = clock.seconds_until_next_utc_midnight()

    def bump(client: redis.Redis) -> None:
        pipe = client.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, ttl)
        pipe.execute()

    cache.guarded(bump, None)
